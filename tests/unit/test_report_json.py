"""results.json: schema, round trip, validation of broken files, and the documentation."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from harness.report import json_writer
from harness.report.json_writer import (
    SCHEMA_PATH,
    ResultsFileError,
    load_json,
    schema,
    validate,
    write_json,
)
from harness.report.model import Evidence, Outcome, RunResult
from harness.report.write import write_reports

try:
    from report_samples import NASTY, sample_run
except ImportError:  # tests/unit is a package
    from .report_samples import NASTY, sample_run

DOC = Path(__file__).resolve().parents[2] / "docs" / "results-schema.md"


@pytest.fixture
def written(tmp_path: Path) -> tuple[RunResult, Path]:
    result = sample_run()
    path = tmp_path / "results.json"
    write_json(result, path)
    return result, path


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_written_file_validates_and_round_trips(written: tuple[RunResult, Path]) -> None:
    result, path = written
    data = load_json(path)
    assert data == result.to_dict()
    jsonschema.Draft202012Validator(schema()).validate(data)
    assert data["schema_version"] == 1


def test_file_is_utf8_indented_and_keeps_nasty_strings(written: tuple[RunResult, Path]) -> None:
    _, path = written
    raw = path.read_bytes()
    text = raw.decode("utf-8")  # strict: surrogate-escaped bytes must not break UTF-8
    assert text.startswith('{\n  "schema_version": 1,')
    assert "\x00" not in text and "\x1b" not in text  # control characters are JSON escapes
    assert "\\udcff\\udc80" in text
    assert "§" in text and "⇒" in text  # other non-ASCII stays readable
    data = load_json(path)
    check = data["scenarios"][1]["checks"][0]
    assert check["actual"] == NASTY
    assert check["verdict"] == "fail"


def test_verdicts_are_written(written: tuple[RunResult, Path]) -> None:
    result, path = written
    data = load_json(path)
    assert [s["verdict"] for s in data["scenarios"]] == [s.verdict for s in result.scenarios]
    proxy = next(s for s in data["scenarios"] if s["id"] == "proxy-v1-unknown")
    assert proxy["outcome"] == "fail" and proxy["verdict"] == "non-strict"
    assert [c["verdict"] for c in proxy["checks"]] == ["pass", "non-strict"]
    assert set(data["summary"]["verdicts"]) == {"pass", "fail", "non-strict", "unsupported",
                                                "skip", "error"}


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")
    write_json(sample_run(), path)
    assert json.loads(path.read_text())["schema_version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left


def test_unserialisable_content_fails_before_touching_the_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")
    result = sample_run()
    result.scenarios[0].evidence.append(Evidence("oops", "json", object()))
    with pytest.raises(TypeError, match="cannot serialise object"):
        write_json(result, path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_interrupted_write_keeps_old_file_and_leaves_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")

    def fail(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(json_writer.os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_json(sample_run(), path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_raw_bytes_in_evidence_are_written_escaped(tmp_path: Path) -> None:
    result = sample_run()
    result.scenarios[0].evidence.append(Evidence("raw", "bytes", b"EHLO \x00\xff\\\r\n"))
    path = tmp_path / "results.json"
    write_json(result, path)
    ev = load_json(path)["scenarios"][0]["evidence"][-1]
    assert ev["content"] == "EHLO \\x00\\xff\\\\\\x0d\\x0a"


def _broken(mutate) -> dict:
    data = copy.deepcopy(json.loads(json.dumps(sample_run().to_dict())))
    mutate(data)
    return data


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["scenarios"][0].__setitem__("outcome", "passed"), "scenarios/0/outcome"),
    (lambda d: d["scenarios"][1]["checks"][0].__setitem__("verdict", "bad"),
     "scenarios/1/checks/0/verdict"),
    (lambda d: d["scenarios"][1]["checks"][0].__setitem__("level", "MUST NOT"),
     "scenarios/1/checks/0/level"),
    (lambda d: d["scenarios"][0].pop("checks"), "scenarios/0"),
    (lambda d: d["scenarios"][0].__setitem__("extra", 1), "scenarios/0"),
    (lambda d: d["scenarios"][0]["evidence"][0]["content"][0].__setitem__("dir", "X"),
     "scenarios/0/evidence/0/content/0/dir"),
    (lambda d: d["scenarios"][0]["evidence"][0].__setitem__("content", "not a list"),
     "scenarios/0/evidence/0/content"),
    (lambda d: d["scenarios"][6]["evidence"][1].__setitem__("content", ["text as list"]),
     "scenarios/6/evidence/1/content"),
    (lambda d: d["targets"][0].__setitem__("kind", "docker"), "targets/0/kind"),
    (lambda d: d.__setitem__("started", "yesterday"), "started"),
    (lambda d: d["summary"]["outcomes"].pop("error"), "summary/outcomes"),
    (lambda d: d["scenarios"][0].__setitem__("duration_s", -1), "scenarios/0/duration_s"),
    (lambda d: d["requirements"][0].__setitem__("id", "prdr 1"), "requirements/0/id"),
])
def test_broken_documents_fail_validation(mutate, where: str) -> None:
    with pytest.raises(ResultsFileError) as err:
        validate(_broken(mutate))
    assert err.value.where == where


def test_load_refuses_other_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_broken(lambda d: d.__setitem__("schema_version", 2))))
    with pytest.raises(ResultsFileError, match="schema_version 2 is not supported"):
        load_json(path)


@pytest.mark.parametrize("content, match", [
    (b'{"schema_version": 1,', "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"schema_version": "\xff"}', "not UTF-8"),
])
def test_load_refuses_unreadable_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(ResultsFileError, match=match):
        load_json(path)


def test_truncated_file_fails(written: tuple[RunResult, Path]) -> None:
    _, path = written
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(ResultsFileError, match="not JSON"):
        load_json(path)


def test_empty_and_stopped_early_runs_validate(tmp_path: Path) -> None:
    empty = RunResult({"name": "mtaconform", "version": "0.1.0"}, "2025-11-25T11:30:00Z",
                      "2025-11-25T11:30:01Z", [], [], stopped_early="interrupted (SIGINT)")
    write_json(empty, tmp_path / "r.json")
    assert load_json(tmp_path / "r.json")["stopped_early"] == "interrupted (SIGINT)"


def test_every_outcome_is_in_the_schema() -> None:
    assert set(schema()["$defs"]["outcome"]["enum"]) == {o.value for o in Outcome}


def test_write_reports_writes_all_three(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "latest"
    paths = write_reports(sample_run(), out)
    assert paths == {"json": out / "results.json", "junit": out / "junit.xml",
                     "html": out / "index.html"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    load_json(paths["json"])


# --- the documentation ----------------------------------------------------------------------


def _schema_field_names(node: object) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= _schema_field_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _schema_field_names(value)
    return names


def test_doc_describes_every_schema_field() -> None:
    doc = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.M))
    missing = _schema_field_names(json.loads(SCHEMA_PATH.read_text())) - documented
    missing -= {"pass", "fail", "unsupported", "skip", "error"}  # summary.outcomes keys
    assert not missing, f"docs/results-schema.md lacks a row for: {sorted(missing)}"
    assert "schema_version" in doc and "must check `schema_version`" in doc


def test_doc_example_is_valid() -> None:
    doc = DOC.read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)\n```", doc, re.S)
    assert example
    validate(json.loads(example.group(1)), "docs/results-schema.md example")
