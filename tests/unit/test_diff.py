"""Comparing verdicts (harness/report/compare.py) and `mtaconform diff` on saved results."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import pytest

from harness import cli
from harness.engine.yamlsrc import InputError
from harness.report.compare import (
    CheckKey,
    ScenarioVerdicts,
    change_line,
    check_keys,
    classify,
    compare,
    format_changes,
    summary_line,
    table_from_results,
    table_from_run,
)
from harness.report.json_writer import load_json, write_json
from harness.report.model import BaselineChange, Outcome, RunResult

try:
    from report_samples import EXIM, EXTERNAL, sample_run
except ImportError:  # tests/unit is a package
    from .report_samples import EXIM, EXTERNAL, sample_run

A = CheckKey("check_a", "PRDR-01")
B = CheckKey("check_b", "PRDR-02")


def sv(verdict: str, checks: dict[CheckKey, str] | None = None) -> ScenarioVerdicts:
    return ScenarioVerdicts(verdict, checks)


@pytest.mark.parametrize(("old", "new", "kind"), [
    ("pass", "pass", "same"),
    ("pass", "fail", "worse"),
    ("pass", "non-strict", "worse"),
    ("pass", "skip", "worse"),          # coverage lost
    ("pass", "unsupported", "worse"),   # the feature disappeared
    ("pass", "error", "worse"),
    ("non-strict", "fail", "worse"),
    ("skip", "non-strict", "worse"),
    ("fail", "error", "worse"),
    ("unsupported", "skip", "changed"),
    ("skip", "unsupported", "changed"),
    ("fail", "non-strict", "better"),
    ("fail", "pass", "better"),
    ("error", "fail", "better"),
    ("fail", "skip", "better"),
    (None, "fail", "worse"),            # new and failing: as it would without a baseline
    (None, "error", "worse"),
    (None, "non-strict", "added"),
    (None, "pass", "added"),
    (None, "unsupported", "added"),
    ("fail", None, "removed"),
])
def test_classify(old: str | None, new: str | None, kind: str) -> None:
    assert classify(old, new) == kind


def test_unchanged_deviation_is_known_not_a_change() -> None:
    old = {(EXIM, "s"): sv("fail", {A: "fail", B: "pass"})}
    result = compare(old, copy.deepcopy(old))
    assert result.changes == [] and result.unchanged == 1
    assert result.scenario_marks[(EXIM, "s")].status == "known"
    assert result.check_marks[(EXIM, "s", A)].status == "known"
    assert result.check_marks[(EXIM, "s", B)].status == "same"
    assert result.known == 1


def test_a_new_failure_inside_a_known_failing_scenario_is_a_regression() -> None:
    old = {(EXIM, "s"): sv("fail", {A: "fail", B: "pass"})}
    new = {(EXIM, "s"): sv("fail", {A: "fail", B: "fail"})}
    result = compare(old, new)
    assert result.changes == [BaselineChange("worse", EXIM, "s", "check_b", "PRDR-02", "pass", "fail")]
    assert result.scenario_marks[(EXIM, "s")].status == "worse"
    assert result.check_marks[(EXIM, "s", A)].status == "known"
    assert result.check_marks[(EXIM, "s", B)].status == "worse"


def test_the_scenario_line_is_left_out_when_its_checks_tell_the_story() -> None:
    result = compare({(EXIM, "s"): sv("pass", {A: "pass", B: "pass"})},
                     {(EXIM, "s"): sv("fail", {A: "pass", B: "fail"})})
    assert [(c.check, c.old, c.new) for c in result.changes] == [("check_b", "pass", "fail")]


def test_a_scenario_without_checks_is_compared_as_a_whole() -> None:
    result = compare({(EXIM, "s"): sv("pass", {A: "pass"})}, {(EXIM, "s"): sv("skip", {})})
    assert result.changes == [BaselineChange("worse", EXIM, "s", None, None, "pass", "skip")]
    assert result.scenario_marks[(EXIM, "s")].status == "worse"


def test_improvement_of_a_deviation_is_listed_and_what_remains_is_known() -> None:
    result = compare({(EXIM, "s"): sv("fail", {A: "fail", B: "non-strict"})},
                     {(EXIM, "s"): sv("non-strict", {A: "pass", B: "non-strict"})})
    assert result.improvements == [BaselineChange("better", EXIM, "s", "check_a", "PRDR-01",
                                                  "fail", "pass")]
    assert result.regressions == []
    assert result.scenario_marks[(EXIM, "s")].status == "known"


def test_short_form_means_every_check_had_the_scenarios_verdict() -> None:
    old = {(EXIM, "s"): sv("pass")}  # `s: pass` in a baseline file
    assert compare(old, {(EXIM, "s"): sv("pass", {A: "pass", B: "pass"})}).changes == []
    # A check that is skipped now, although its scenario still passes, lost coverage.
    result = compare(old, {(EXIM, "s"): sv("pass", {A: "pass", B: "skip"})})
    assert [(c.kind, c.check, c.old, c.new) for c in result.changes] == [
        ("worse", "check_b", "pass", "skip")]


def test_new_and_removed_scenarios_and_checks() -> None:
    old = {(EXIM, "kept"): sv("pass", {A: "pass"}), (EXIM, "gone"): sv("fail", {A: "fail"})}
    new = {(EXIM, "kept"): sv("fail", {A: "pass", B: "fail"}),
           (EXIM, "new-fail"): sv("fail", {A: "fail"}),
           (EXIM, "new-ok"): sv("non-strict", {A: "non-strict"})}
    result = compare(old, new)
    kinds = [(c.kind, c.scenario, c.check, c.old, c.new) for c in result.changes]
    assert kinds == [
        ("worse", "kept", "check_b", None, "fail"),  # a new check that fails
        ("worse", "new-fail", None, None, "fail"),
        ("added", "new-ok", None, None, "non-strict"),
        ("removed", "gone", None, "fail", None),
    ]
    assert result.scenario_marks[(EXIM, "new-ok")].status == "new"
    assert result.scenario_marks[(EXIM, "new-fail")].status == "worse"
    # A run of part of the suite: the scenarios it did not run are counted, not "removed".
    partial = compare(old, {(EXIM, "kept"): sv("pass", {A: "pass"})}, only_ran=True)
    assert partial.changes == [] and partial.not_compared == 1


def test_check_keys_number_repeated_pairs() -> None:
    keys = check_keys([("no_mail_via", "DANE-16"), ("no_mail_via", "DANE-16"),
                       ("deferred_not_bounced", "DANE-16")])
    assert [k.label for k in keys] == ["no_mail_via DANE-16", "no_mail_via DANE-16 (2)",
                                       "deferred_not_bounced DANE-16"]
    assert keys[1].name == "no_mail_via (2)"


def _degraded() -> RunResult:
    """sample_run() with the external target's EHLO check failing and an exim scenario skipped."""
    result = sample_run()
    for s in result.scenarios:
        if s.target == EXTERNAL and s.id == "prdr-ehlo-keyword":
            s.outcome = s.checks[0].outcome = Outcome.FAIL
        if s.target == EXIM and s.id == "dsn-fields":
            s.outcome, s.checks, s.reason = Outcome.SKIP, [], "the DSN sink is missing"
    return result


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Path]:
    """Two saved results files: a run, and the same run on a degraded target."""
    old, new = tmp_path / "old" / "results.json", tmp_path / "new" / "results.json"
    for path, result in ((old, sample_run()), (new, _degraded())):
        path.parent.mkdir()
        write_json(result, path)
    return old, new


def test_tables_from_a_run_and_from_its_results_file_agree(saved: tuple[Path, Path]) -> None:
    old, _ = saved
    assert table_from_results(load_json(old)) == table_from_run(sample_run())


def test_diff_of_saved_results(saved: tuple[Path, Path]) -> None:
    result = compare(table_from_results(load_json(saved[0])), table_from_results(load_json(saved[1])))
    assert [change_line(c) for c in result.regressions] == [
        "exim dsn-fields: pass -> skip",
        f"{EXTERNAL} prdr-ehlo-keyword ehlo_has_keyword PRDR-01: pass -> fail",
    ]
    lines = format_changes(result)
    assert lines[0] == "regressions (2):"
    assert summary_line(result).startswith("2 regressions, 0 improvements, ")
    back = compare(table_from_results(load_json(saved[1])), table_from_results(load_json(saved[0])))
    assert back.regressions == [] and len(back.improvements) == 2


def test_lists_other_than_regressions_are_cut_short_and_whole_targets_summarised() -> None:
    old = {(EXIM, f"s{i}"): sv("fail", {A: "fail"}) for i in range(5)}
    old[("gone-target", "x")] = sv("pass")
    new = {(EXIM, f"s{i}"): sv("pass", {A: "pass"}) for i in range(5)}
    new |= {(EXIM, f"r{i}"): sv("fail", {A: "fail"}) for i in range(4)}
    lines = format_changes(compare(old, new), limit=2)
    assert lines == [
        "regressions (4):", *(f"  exim r{i}: (new) -> fail" for i in range(4)),
        "improvements (5):", "  exim s0 check_a PRDR-01: fail -> pass",
        "  exim s1 check_a PRDR-01: fail -> pass", "  … and 3 more",
        "removed (1):", "  gone-target: 1 scenario(s) (a target of the old results only)",
    ]


def _diff(old: Path, new: Path) -> int:
    return cli.cmd_diff(argparse.Namespace(old=old, new=new))


def test_cmd_diff_exit_status_and_output(saved: tuple[Path, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    old, new = saved
    assert _diff(old, new) == 1
    out = capsys.readouterr().out
    assert "regressions (2):\n  exim dsn-fields: pass -> skip\n" in out
    assert out.rstrip().splitlines()[-1].startswith(f"{old} -> {new}: 2 regressions")
    assert _diff(new, old) == 0
    assert "improvements (2):" in capsys.readouterr().out
    assert _diff(old, old) == 0
    assert capsys.readouterr().out == (f"{old} -> {old}: 0 regressions, 0 improvements, "
                                       f"5 known deviation(s), 11 unchanged\n")


@pytest.mark.parametrize(("content", "message"), [
    (b'{"schema_version": 1,', "not JSON"),
    (b'{"schema_version": 9}', "schema_version 9 is not supported"),
    (b'{"schema_version": 1, "scenarios": []}', "(top): "),
])
def test_cmd_diff_names_a_bad_file(saved: tuple[Path, Path], tmp_path: Path, content: bytes,
                                   message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(InputError) as err:
        _diff(saved[0], bad)
    assert str(err.value).startswith(f"{bad}: ") and message in str(err.value)
    with pytest.raises(InputError, match="no such results file"):
        _diff(tmp_path / "missing.json", saved[0])


def test_a_scenario_that_now_runs_is_compared_as_a_whole() -> None:
    # `s: skip` in a baseline (no checks), and the scenario now runs: one line, not one per check.
    for old in (sv("skip"), sv("skip", {})):
        result = compare({(EXIM, "s"): old}, {(EXIM, "s"): sv("fail", {A: "fail", B: "pass"})})
        assert result.changes == [BaselineChange("worse", EXIM, "s", None, None, "skip", "fail")]
        assert result.check_marks[(EXIM, "s", A)].status == "worse"
        assert result.check_marks[(EXIM, "s", B)].status == "better"
    # A failure without checks that now fails with checks is still the known failure.
    result = compare({(EXIM, "s"): sv("fail", {})}, {(EXIM, "s"): sv("fail", {A: "fail"})})
    assert result.changes == [] and result.check_marks[(EXIM, "s", A)].status == "known"
