"""harness.engine.scenario: every shipped scenario loads; a malformed one says FILE:LINE: what."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.engine.actions import VALIDATORS
from harness.engine.catalogue import Catalogue, load_catalogue
from harness.engine.checks import all_checks
from harness.engine.scenario import Scenario, find_scenario_files, load_scenario, load_scenarios
from harness.engine.yamlsrc import InputError

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
SCENARIO_FILES = sorted(SCENARIOS.rglob("*.yaml"))


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def checks() -> Mapping[str, Any]:
    return all_checks()


def test_the_scenario_folder_is_not_empty() -> None:
    assert len(SCENARIO_FILES) >= 20
    assert find_scenario_files([SCENARIOS]) == SCENARIO_FILES


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(path: Path, catalogue: Catalogue, checks: Mapping[str, Any]) -> None:
    sc = load_scenario(path, catalogue, checks, VALIDATORS)
    assert sc.id == path.stem
    assert sc.feature == path.parent.name
    assert sc.action_kind in VALIDATORS
    assert sc.checks
    for spec in sc.checks:
        assert spec.check in checks
        assert spec.requirement in sc.requirements
        assert spec.line is not None and spec.line > 1
    for rid in sc.requirements:
        assert catalogue[rid].feature == sc.feature
    # The outbound action is for the MTA as client, the session action for the MTA as server.
    assert (sc.action_kind == "session") == (sc.side == "server")


def test_load_scenarios_loads_the_whole_folder(catalogue: Catalogue, checks: Mapping[str, Any]) -> None:
    scenarios = load_scenarios([SCENARIOS], catalogue, checks, VALIDATORS)
    assert [s.source for s in scenarios] == SCENARIO_FILES
    assert len({s.id for s in scenarios}) == len(scenarios)


def test_loaded_values_are_plain_containers(catalogue: Catalogue, checks: Mapping[str, Any]) -> None:
    sc = load_scenario(SCENARIOS / "prdr" / "prdr-server-block.yaml", catalogue, checks, VALIDATORS)
    assert type(sc.action) is dict and type(sc.action["session"]) is list
    assert all(type(c.params) is dict for c in sc.checks)
    assert sc.requirements[0] == "PRDR-06"
    levels = {(c.check, c.level) for c in sc.checks}
    assert ("prdr_reply_esc", "SHOULD") in levels and ("prdr_intro_line", None) in levels


# --- malformed scenarios --------------------------------------------------------------------
# BASE is valid; each case edits it. Line numbers of BASE:
BASE = """\
id: x-test
title: A scenario for the loader tests
feature: prdr
side: server
requirements: [PRDR-03, PRDR-05]
expectation: Something observable.
action:
  session:
    - ehlo: client.test
    - mail: {from: a@client.test, params: {PRDR: null}}
    - rcpt: accept
    - data: {}
    - quit
checks:
  - check: reply_is
    requirement: PRDR-03
    with: {step: mail, classes: [2]}
  - check: single_end_of_data_reply
    requirement: PRDR-05
"""


def _write(folder: Path, text: str, name: str = "x-test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def _load(path: Path) -> Scenario:
    return load_scenario(path, load_catalogue(), all_checks(), VALIDATORS)


def _edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def test_the_base_scenario_is_valid(tmp_path: Path) -> None:
    sc = _load(_write(tmp_path, BASE))
    assert sc.id == "x-test"
    assert [c.line for c in sc.checks] == [15, 18]


MALFORMED = {
    "missing required field": (
        _edit("title: A scenario for the loader tests\n", ""), 1, "top level: 'title' is a required property"),
    "bad feature": (
        _edit("feature: prdr", "feature: prdx"), 3, "feature: 'prdx' is not one of prdr, dane"),
    "bad side": (
        _edit("side: server", "side: both"), 4, "side: 'both' is not one of server, client"),
    "unknown requirement ID": (
        _edit("requirements: [PRDR-03, PRDR-05]", "requirements:\n  - PRDR-03\n  - PRDR-99\n  - PRDR-05"),
        7, "unknown requirement 'PRDR-99'"),
    "requirement of another feature": (
        _edit("requirements: [PRDR-03, PRDR-05]", "requirements:\n  - PRDR-03\n  - PRDR-05\n  - DANE-01"),
        8, "DANE-01 belongs to feature 'dane', not 'prdr'"),
    "unknown check name": (
        _edit("check: single_end_of_data_reply", "check: single_reply_please"),
        18, "unknown check 'single_reply_please' (known: "),
    "check requirement not in the list": (
        _edit("    requirement: PRDR-05\n", "    requirement: PRDR-04\n"),
        19, "PRDR-04 is not in this scenario's requirements list"),
    "check without requirement": (
        _edit("    requirement: PRDR-05\n", ""), 18, "checks/1: 'requirement' is a required property"),
    "unknown check parameter (flow)": (
        _edit("with: {step: mail, classes: [2]}", "with: {step: mail, klasses: [2]}"),
        17, "check reply_is: unknown parameter(s) ('klasses' was unexpected)"),
    "parameter of the wrong type": (
        _edit("with: {step: mail, classes: [2]}", "with:\n      step: mail\n      classes: two"),
        19, "check reply_is: 'two' is not of type 'array'"),
    "parameter item out of range": (
        _edit("with: {step: mail, classes: [2]}", "with:\n      step: mail\n      classes: [2, 7]"),
        19, "check reply_is: 7 is not one of [2, 3, 4, 5]"),
    "missing required parameter": (
        _edit("with: {step: mail, classes: [2]}", "with: {classes: [2]}"),
        17, "check reply_is: 'step' is a required property"),
    "unknown session step": (
        _edit("    - rcpt: accept\n", "    - rcpt: accept\n    - frobnicate: 1\n"),
        12, "unknown step 'frobnicate' (known: ehlo, helo, mail, rcpt,"),
    "rcpt without role, to or raw": (
        _edit("    - rcpt: accept\n", "    - rcpt: {params: {NOTIFY: NEVER}}\n"), 11, "rcpt needs role, to or raw"),
    "rcpt with an unknown key": (
        _edit("    - rcpt: accept\n", "    - rcpt: {role: accept, colour: red}\n"),
        11, "rcpt: {'role': 'accept', 'colour': 'red'} is not valid under any of the given schemas"),
    "step with two keys": (
        _edit("    - quit\n", "    - {quit: null, noop: null}\n"), 13, "each step is one word"),
    "mail padding below the minimum": (
        _edit("{from: a@client.test, params: {PRDR: null}}", "{from: a@client.test, pad_line_to: 5}"),
        10, "mail: 5 is less than the minimum of 16"),
    "id not matching the file name": (
        _edit("id: x-test", "id: y-test"), 1, "id 'y-test' must match the file name (x-test.yaml)"),
    "id with capitals": (
        _edit("id: x-test", "id: X_Test"), 1, "id: 'X_Test' does not match"),
    "two actions": (
        _edit("action:\n", "action:\n  outbound: {to: [r@d.test]}\n"), 8, "action: {'outbound': {'to': ['r@d.test']}, 'session': "),
    "a list, not a mapping": ("- id: x-test\n", 1, "a scenario file is a YAML mapping"),
    "an empty file": ("", 1, "a scenario file is a YAML mapping"),
    "duplicate key": (_edit("side: server\n", "side: server\nfeature: prdr\n"), 5, "duplicate key 'feature'"),
    "YAML syntax": (_edit("    - quit\n", "    - quit\n   - noop\n"), 14, "YAML syntax: "),
}


@pytest.mark.parametrize(("text", "line", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_scenario_gives_file_line_message(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        _load(path)
    assert info.value.file == str(path)
    assert str(info.value).startswith(f"{path}:{line}: {message}"), str(info.value)


def test_unknown_top_level_field_points_at_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _edit("expectation:", "colour: red\nexpectation:"))
    with pytest.raises(InputError) as info:
        _load(path)
    assert "unknown field(s) ('colour' was unexpected)" in str(info.value)
    assert info.value.line == 6


def test_unknown_check_parameter_in_block_mapping_points_at_it(tmp_path: Path) -> None:
    path = _write(tmp_path, _edit("with: {step: mail, classes: [2]}", "with:\n      step: mail\n      klasses: [2]"))
    with pytest.raises(InputError) as info:
        _load(path)
    assert "unknown parameter(s) ('klasses' was unexpected)" in str(info.value)
    assert info.value.line == 19


def test_validators_are_optional(tmp_path: Path) -> None:
    # Without action validators a bad session step is not noticed at load time.
    path = _write(tmp_path, _edit("    - rcpt: accept\n", "    - rcpt: accept\n    - frobnicate: 1\n"))
    sc = load_scenario(path, load_catalogue(), all_checks())
    assert {"frobnicate": 1} in sc.action["session"]


def test_duplicate_scenario_id_across_two_files(tmp_path: Path) -> None:
    first = _write(tmp_path / "a", BASE)
    second = _write(tmp_path / "b", BASE)
    with pytest.raises(InputError) as info:
        load_scenarios([tmp_path], load_catalogue(), all_checks(), VALIDATORS)
    assert str(info.value) == f"{second}:1: scenario id 'x-test' is also used by {first}"


def test_duplicate_scenario_id_points_at_the_id_line(tmp_path: Path) -> None:
    text = "# a header comment\n\n" + BASE
    _write(tmp_path / "a", text)
    second = _write(tmp_path / "b", text)
    with pytest.raises(InputError) as info:
        load_scenarios([tmp_path], load_catalogue(), all_checks(), VALIDATORS)
    assert str(info.value).startswith(f"{second}:3: ")


def test_missing_scenario_root(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_scenarios([tmp_path / "nowhere"], load_catalogue(), all_checks(), VALIDATORS)
    assert str(info.value) == f"{tmp_path / 'nowhere'}: no such scenario file or folder"
