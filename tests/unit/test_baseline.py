"""Baseline files (harness/report/baseline.py), a run against its baseline, and how the reports
and the exit status show it."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.engine.yamlsrc import InputError
from harness.report import baseline
from harness.report.compare import CheckKey, compare, table_from_run
from harness.report.html import render_html
from harness.report.json_writer import load_json, write_json
from harness.report.junit import build_junit
from harness.report.model import Outcome, RunResult

try:
    from report_samples import EXIM, EXTERNAL, sample_run
except ImportError:  # tests/unit is a package
    from .report_samples import EXIM, EXTERNAL, sample_run


def _save(tmp_path: Path, result: RunResult | None = None) -> Path:
    path = tmp_path / "baseline.yaml"
    baseline.save(path, table_from_run(result or sample_run()), tool="mtaconform 0.1.0",
                  source="test")
    return path


# --- the file --------------------------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = _save(tmp_path)
    loaded = baseline.load(path)
    assert loaded.targets == [EXIM, EXTERNAL] and loaded.tool == "mtaconform 0.1.0"
    assert loaded.created and loaded.source == "test"
    table = table_from_run(sample_run())
    assert set(loaded.table) == set(table)
    for key, entry in loaded.table.items():
        assert entry.verdict == table[key].verdict, key
    result = compare(loaded.table, table)
    assert result.changes == [] and result.known == 5


def test_file_is_one_line_per_passing_scenario_and_a_block_per_deviation(tmp_path: Path) -> None:
    text = _save(tmp_path).read_text(encoding="utf-8")
    assert text.startswith("# mtaconform baseline: ")
    doc = yaml.safe_load(text)
    assert doc["mtaconform-baseline"] == 1 and doc["tool"] == "mtaconform 0.1.0"
    exim = doc["targets"][EXIM]
    assert list(exim) == sorted(exim)  # sorted by scenario id: stable diffs
    assert exim["prdr-ehlo-keyword"] == "pass"
    assert exim["dane-pkix-ta"] == "unsupported" and exim["ocsp-client-must-staple"] == "skip"
    assert exim["prdr-353-intro"] == {"verdict": "fail", "checks": {
        "prdr_intro_line PRDR-06": "fail", "prdr_reply_count PRDR-07": "pass",
        "prdr_reply_order PRDR-07": "non-strict"}}
    assert exim["dsn-structure"] == {"verdict": "error", "checks": {}}
    assert "  prdr-ehlo-keyword: pass\n" in text


def test_resave_keeps_comments(tmp_path: Path) -> None:
    path = _save(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["targets"][EXIM]["prdr-353-intro"]["comment"] = "Exim answers 250; reported upstream."
    doc["targets"][EXIM]["prdr-ehlo-keyword"] = {"verdict": "pass", "comment": "must stay so"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    kept = baseline.save(path, table_from_run(sample_run()), tool="mtaconform 0.1.0", source="t")
    assert kept == 2
    loaded = baseline.load(path)
    assert loaded.table[(EXIM, "prdr-353-intro")].comment == "Exim answers 250; reported upstream."
    assert loaded.table[(EXIM, "prdr-ehlo-keyword")].comment == "must stay so"


def test_saving_over_a_broken_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text("mtaconform-baseline: 1\ntargets:\n  exim:\n    s: passs\n")
    with pytest.raises(InputError) as err:
        baseline.save(path, table_from_run(sample_run()), tool="t", source="t")
    assert str(err.value).startswith(f"{path}:4: ") and "fix it or remove it" in str(err.value)
    assert "passs" in path.read_text()  # untouched


GOOD_HEAD = "mtaconform-baseline: 1\ntargets:\n  exim:\n"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("- a list\n", 1, "not a baseline file"),
    ("mtaconform-baseline: 2\ntargets: {}\n", 1, "not a baseline file of format 1"),
    ("targets: {}\n", 1, "not a baseline file of format 1"),
    ("mtaconform-baseline: 1\ntarget: {}\n", 2, "unknown field 'target'"),
    ("mtaconform-baseline: 1\ntargets: [exim]\n", 2, "targets: a mapping"),
    (GOOD_HEAD + "    a: pass\n    b: failed\n", 5, "targets/exim/b: 'failed' is not a verdict"),
    (GOOD_HEAD + "    a:\n      verdict: fail\n      checks:\n        bad-label: fail\n", 7,
     "'bad-label' is not 'CHECK REQUIREMENT'"),
    (GOOD_HEAD + "    a:\n      verdict: fail\n      checks:\n        x PRDR-01: nope\n", 7,
     "targets/exim/a/checks/x PRDR-01: 'nope' is not a verdict"),
    (GOOD_HEAD + "    a:\n      checks: {}\n", 5, "targets/exim/a: no verdict"),
    (GOOD_HEAD + "    a:\n      verdict: pass\n      why: x\n", 6, "unknown field 'why'"),
    (GOOD_HEAD + "    a:\n      verdict: pass\n      checks: [x]\n", 6, "checks: a mapping"),
    (GOOD_HEAD + "    a: [pass\n", 5, "YAML syntax"),
    (GOOD_HEAD + "    a: pass\n    a: fail\n", 5, "duplicate key 'a'"),
])
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        baseline.load(path)
    assert err.value.file == str(path) and err.value.line == line, str(err.value)
    assert message in err.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such baseline file"):
        baseline.load(tmp_path / "nope.yaml")


def test_a_baseline_for_other_targets_is_refused_before_the_run(tmp_path: Path) -> None:
    known = baseline.load(_save(tmp_path))
    baseline.check_targets(known, ["exim", "postfix"])  # one known target is enough
    with pytest.raises(InputError, match=r"no verdicts for target postfix \(it has: exim, smtp"):
        baseline.check_targets(known, ["postfix"])


# --- a run against its baseline ------------------------------------------------------------

def _scenario(result: RunResult, target: str, sid: str):
    return next(s for s in result.scenarios if s.target == target and s.id == sid)


def test_known_failures_do_not_fail_the_run(tmp_path: Path) -> None:
    run = sample_run()
    assert run.exit_status() == 3  # an error outcome and MUST failures, without a baseline
    comparison = baseline.apply(run, baseline.load(_save(tmp_path)))
    assert comparison.regressions == [] and run.exit_status() == 0
    s = _scenario(run, EXIM, "prdr-353-intro")
    assert (s.baseline.verdict, s.baseline.status) == ("fail", "known")
    assert [c.baseline.status for c in s.checks] == ["known", "same", "known"]
    assert _scenario(run, EXIM, "prdr-ehlo-keyword").baseline.status == "same"
    assert run.baseline.known == 5 and run.baseline.not_compared == 0


def _degrade(run: RunResult) -> None:
    ehlo = _scenario(run, EXTERNAL, "prdr-ehlo-keyword")
    ehlo.outcome = ehlo.checks[0].outcome = Outcome.FAIL
    skipped = _scenario(run, EXIM, "dsn-fields")
    skipped.outcome, skipped.checks, skipped.reason = Outcome.SKIP, [], "no DSN sink"


def test_a_verdict_that_got_worse_fails_the_run(tmp_path: Path) -> None:
    run = sample_run()
    _degrade(run)
    baseline.apply(run, baseline.load(_save(tmp_path)))
    assert run.exit_status() == 1
    assert [(c.target, c.scenario, c.check, c.old, c.new) for c in run.baseline.regressions] == [
        (EXIM, "dsn-fields", None, "pass", "skip"),
        (EXTERNAL, "prdr-ehlo-keyword", "ehlo_has_keyword", "pass", "fail"),
    ]
    assert _scenario(run, EXTERNAL, "prdr-ehlo-keyword").checks[0].baseline.status == "worse"


def test_a_new_harness_error_exits_3(tmp_path: Path) -> None:
    run = sample_run()
    ehlo = _scenario(run, EXIM, "prdr-ehlo-keyword")
    ehlo.outcome, ehlo.checks = Outcome.ERROR, []
    baseline.apply(run, baseline.load(_save(tmp_path)))
    assert [c.new for c in run.baseline.regressions] == ["error"]
    assert run.exit_status() == 3


def test_scenarios_the_run_did_not_select_are_not_compared(tmp_path: Path) -> None:
    run = sample_run()
    run.scenarios = [s for s in run.scenarios if s.feature == "prdr"]
    baseline.apply(run, baseline.load(_save(tmp_path)))
    assert run.baseline.changes == [] and run.baseline.not_compared == 7
    assert run.exit_status() == 0


def test_results_json_carries_the_comparison_and_validates(tmp_path: Path) -> None:
    run = sample_run()
    _degrade(run)
    baseline.apply(run, baseline.load(_save(tmp_path)))
    write_json(run, tmp_path / "results.json")
    data = load_json(tmp_path / "results.json")  # validated against the schema
    b = data["baseline"]
    assert b["file"] == str(tmp_path / "baseline.yaml") and b["tool"] == "mtaconform 0.1.0"
    assert (b["regressions"], b["improvements"], b["known"]) == (2, 0, 5)
    assert b["changes"][1] == {"kind": "worse", "target": EXTERNAL, "scenario": "prdr-ehlo-keyword",
                               "check": "ehlo_has_keyword", "requirement": "PRDR-01",
                               "old": "pass", "new": "fail"}
    s = next(s for s in data["scenarios"] if s["target"] == EXIM and s["id"] == "prdr-353-intro")
    assert s["baseline"] == {"verdict": "fail", "status": "known", "comment": None}
    assert s["checks"][0]["baseline"] == {"verdict": "fail", "status": "known", "comment": None}
    plain = sample_run().to_dict()
    assert plain["baseline"] is None and plain["scenarios"][0]["baseline"] is None


def test_junit_known_deviation_is_skipped_and_regressions_fail(tmp_path: Path) -> None:
    run = sample_run()
    _degrade(run)
    baseline.apply(run, baseline.load(_save(tmp_path)))
    root = build_junit(run).getroot()
    ET.fromstring(ET.tostring(root))

    def case(suite: str, name: str) -> ET.Element:
        return next(c for s in root.iter("testsuite") if s.get("name") == suite
                    for c in s.iter("testcase") if c.get("name") == name)

    known = case(EXIM, "prdr-353-intro")
    assert known.find("failure") is None
    assert known.find("skipped").get("message").startswith(
        "known deviation (baseline): fail: PRDR-06 MUST: ")
    assert "PRDR-06 (MUST) FAIL" in known.find("system-out").text
    props = {p.get("name"): p.get("value") for p in known.iter("property")}
    assert props["baseline"] == "known" and props["baseline.verdict"] == "fail"
    known_error = case(EXIM, "dsn-structure")
    assert known_error.find("error") is None and known_error.find("skipped") is not None

    worse = case(EXTERNAL, "prdr-ehlo-keyword").find("failure")
    assert worse.get("message").startswith(
        "regression (baseline pass -> fail: PRDR-01 ehlo_has_keyword pass -> fail)")
    lost = case(EXIM, "dsn-fields").find("failure")  # pass -> skip fails a baseline run
    assert lost.get("type") == "regression"
    assert lost.get("message") == "regression (baseline pass -> skip)"
    # The counts CI shows agree with the exit status: failures only for regressions.
    assert (root.get("failures"), root.get("errors")) == ("2", "0")


def test_html_shows_the_comparison(tmp_path: Path) -> None:
    run = sample_run()
    _degrade(run)
    known = baseline.load(_save(tmp_path))
    known.table[(EXIM, "prdr-353-intro")].comment = "reported upstream <b>"
    baseline.apply(run, known)
    html = render_html(run)
    assert '<span class="exit-code">exit 1</span> a verdict got worse than the baseline' in html
    section = html[html.index('<section class="baseline"'):]
    section = section[: section.index("</section>")]
    assert "Regressions: worse than the baseline (these fail the run) (2)" in section
    assert 'href="#smtp-127.0.0.1-2525--prdr-ehlo-keyword"' in section
    row = html[html.index('id="req-PRDR-06"'):]
    row = row[: row.index("</tr>")]
    assert 'class="chip v-fail bl-known" href="#exim--prdr-353-intro"' in row
    row = html[html.index('id="req-PRDR-01"'):]
    row = row[: row.index("</tr>")]
    assert 'class="chip v-fail bl-worse" href="#smtp-127.0.0.1-2525--prdr-ehlo-keyword"' in row
    assert "reported upstream &lt;b&gt;" in html
    # A known failure stays closed; a regression is open.
    assert '<details class="scn v-fail" id="exim--prdr-353-intro" data-feature="prdr">' in html
    assert '<details class="scn v-fail" id="smtp-127.0.0.1-2525--prdr-ehlo-keyword" ' \
           'data-feature="prdr" open>' in html


def test_html_without_baseline_has_no_baseline_section() -> None:
    html = render_html(sample_run())
    assert '<section class="baseline"' not in html and "bl-known" not in html.split("<style>")[0]


# --- `mtaconform baseline save` --------------------------------------------------------------

def _baseline_save(file: Path, source: Path) -> int:
    return cli.cmd_baseline(argparse.Namespace(file=file, source=source))


def test_cmd_baseline_save(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    write_json(sample_run(), results)
    assert _baseline_save(tmp_path / "ci" / "baseline.yaml", results) == 0
    assert capsys.readouterr().out == (
        f"{tmp_path / 'ci' / 'baseline.yaml'}: 11 scenario verdict(s) of 2 target(s) "
        f"(1 error, 2 fail, 2 non-strict, 3 pass, 2 skip, 1 unsupported)\n")
    loaded = baseline.load(tmp_path / "ci" / "baseline.yaml")
    assert loaded.source == f"{results} (run started 2025-11-25T11:30:00+00:00)"
    assert loaded.table[(EXIM, "prdr-353-intro")].checks[CheckKey("prdr_intro_line", "PRDR-06")] == "fail"


def test_cmd_baseline_save_refuses_incomplete_or_missing_results(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    write_json(sample_run(stopped_early="interrupted (SIGINT)"), results)
    with pytest.raises(InputError, match=r"the run stopped early \(interrupted \(SIGINT\)\)"):
        _baseline_save(tmp_path / "b.yaml", results)
    with pytest.raises(InputError, match="no such results file"):
        _baseline_save(tmp_path / "b.yaml", tmp_path / "none.json")
    results.write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(InputError) as err:
        _baseline_save(tmp_path / "b.yaml", results)
    assert str(err.value).startswith(f"{results}: (top): ")
    assert not (tmp_path / "b.yaml").exists()


def test_command_line() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["baseline", "save", "b.yaml"])
    assert (args.command, args.file, args.source) == ("baseline", Path("b.yaml"),
                                                      Path("reports/latest/results.json"))
    assert cli.COMMANDS[args.command] is cli.cmd_baseline
    args = parser.parse_args(["diff", "old.json", "new.json"])
    assert (args.old, args.new) == (Path("old.json"), Path("new.json"))
    assert cli.COMMANDS[args.command] is cli.cmd_diff
    assert parser.parse_args(["run", "--baseline", "b.yaml"]).baseline == Path("b.yaml")
    assert parser.parse_args(["run"]).baseline is None
    with pytest.raises(SystemExit):  # `baseline` needs an action
        parser.parse_args(["baseline"])
