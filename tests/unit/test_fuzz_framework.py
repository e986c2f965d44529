"""The fuzz framework's own parts, in-process: oracles on replies, byte scripts, finding files,
and a whole campaign on a lane with a planted bug (found, shrunk, saved, replayed)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from harness.engine.yamlsrc import InputError
from harness.fuzz.campaign import Budget, Campaign
from harness.fuzz.lanes.base import Context, Lane
from harness.fuzz.lanes.selfcheck import PARSERS, SelfLane
from harness.fuzz.model import Execution, Finding, Stats, Violation, violation_json
from harness.fuzz.oracles import ANY, MORE, code_problem, reply_code_violations, unsolicited
from harness.fuzz.run import replay_once
from harness.fuzz.script import Script, Step, after_ambiguity
from harness.smtp.codec import Reply


def reply(code: int, text: str = "ok") -> Reply:
    return Reply(code, (text,), f"{code} {text}\r\n".encode(), None)


@pytest.mark.parametrize("expect, code, wrong", [
    ("DATA", 354, False), ("DATA", 250, True), ("NOOP", 354, True), ("NOOP", 250, False),
    ("QUIT", 221, False), ("RSET", 221, True), ("BANNER", 220, False), ("EHLO", 220, True),
    ("END-OF-DATA-PRDR", 353, False), ("END-OF-DATA", 353, True), ("STARTTLS", 220, False),
    ("RCPT", 251, False), ("MAIL", 550, False), ("NOOP", 421, False), (ANY, 354, False),
])
def test_reply_code_oracle(expect: str, code: int, wrong: bool) -> None:
    assert (code_problem(expect, reply(code)) is not None) is wrong


def test_reply_code_violations_name_the_command() -> None:
    found = reply_code_violations(["EHLO", "NOOP"], [reply(250), reply(354)])
    assert [v.oracle for v in found] == ["reply-code"]
    assert "354 in answer to NOOP" in found[0].message and "RFC 5321" in found[0].cite


def test_unsolicited_replies() -> None:
    assert unsolicited(["NOOP"], [reply(250), reply(250)])[0].oracle == "unsolicited-reply"
    assert unsolicited(["NOOP"], [reply(250), reply(421, "closing")]) == []  # 421: any time
    assert unsolicited(["NOOP", MORE], [reply(250), reply(500), reply(250)]) == []


def test_expectations_after_an_ambiguous_step_are_guesses() -> None:
    assert after_ambiguity(["EHLO", MORE, "NOOP"]) == ["EHLO", ANY, ANY]
    assert after_ambiguity(["EHLO", "NOOP"]) == ["EHLO", "NOOP"]


def test_script_round_trips_through_json() -> None:
    script = Script((Step(b"\x00PROXY\r\n", 0, 0.02), Step(b"", 1, expect=("BANNER",)),
                     Step(b"QUIT\r\n", 1, shut=True, starttls=False, expect=("QUIT",))),
                    "listed", {"header": "AA=="})
    data = json.loads(json.dumps(script.to_json()))
    assert Script.from_json(data) == script
    assert data["steps"][0]["text"].startswith("\\x00PROXY")  # readable bytes beside base64


@pytest.mark.parametrize("data, message", [
    ({"steps": [{"send": "!!"}]}, "not a byte script"),
    ({"steps": [], "source": "elsewhere"}, "source"),
    ({}, "not a byte script"),
])
def test_bad_scripts_are_input_errors(data: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Script.from_json(data)


@pytest.mark.parametrize("text, message", [
    ("not json", "not a finding file"),
    ('{"format": "x"}', "not a finding file"),
    ('{"format": "mtaconform-fuzz-finding/1", "lane": "smtp"}', "incomplete finding file"),
])
def test_bad_finding_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        Finding.from_file(path)
    assert str(path) in str(info.value)


class PlantedLane(Lane):
    """In-process: 'crashes' on any list holding a number ≥ 1000 next to a negative one."""

    name = "planted"
    description = "a planted bug"
    needs_target = False
    batch = 100

    def strategy(self) -> Any:
        return st.lists(st.integers(-5000, 5000), max_size=12)

    def execute(self, ctx: Context, case: list[int]) -> Execution:
        ex = Execution(states={f"len{len(case)}"}, reply_classes={"ok"})
        if any(x >= 1000 for x in case) and any(x < 0 for x in case):
            ex.violations.append(Violation("planted", f"boom on {case}", "the test"))
        return ex


def test_campaign_finds_shrinks_and_saves_a_planted_bug(tmp_path: Path) -> None:
    result = Campaign(PlantedLane(), None, seed=7, budget=Budget(examples=300), out_dir=tmp_path).run()
    assert result.stats.executions >= 300 and result.stats.stopped == "examples"
    assert len(result.findings) == 1  # met many times, shrunk and saved once
    finding = result.findings[0]
    assert sorted(finding.case) == [-1, 1000]  # Hypothesis's minimal example
    saved = Finding.from_file(tmp_path / finding.file)
    assert saved.case == finding.case and saved.oracles == ["planted"] and saved.seed == 7
    assert replay_once(PlantedLane(), None, saved.case, reply_timeout=1.0) is not None
    assert replay_once(PlantedLane(), None, [1, 2, 3], reply_timeout=1.0) is None


def test_campaigns_are_reproducible_by_seed(tmp_path: Path) -> None:
    def run(seed: int) -> Stats:
        return Campaign(PlantedLane(), None, seed=seed, budget=Budget(examples=120),
                        out_dir=tmp_path / str(seed)).run().stats

    a, b = run(3), run(3)
    assert a.states == b.states and a.executions == b.executions


def test_time_budget_stops_the_campaign(tmp_path: Path) -> None:
    result = Campaign(PlantedLane(), None, seed=1, budget=Budget(seconds=0.5), out_dir=tmp_path).run()
    assert result.stats.stopped == "time" and result.stats.elapsed_s < 30


def test_self_lane_catches_a_parser_that_raises_the_wrong_error(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    def fragile(pieces: list[bytes]) -> list[Any]:
        data = b"".join(pieces)
        if b"\x00" in data:
            raise IndexError("planted")  # what no parser may raise
        return [data]

    monkeypatch.setitem(PARSERS, "proxy", (fragile, False))
    result = Campaign(SelfLane(), None, seed=2, budget=Budget(examples=400), out_dir=tmp_path).run()
    crashes = [f for f in result.findings if f.oracles == ["parser-crash"]]
    assert crashes and "IndexError" in crashes[0].message
    assert b"\x00" in base64.b64decode(crashes[0].case["data"])  # the byte that trips it
    assert replay_once(SelfLane(), None, crashes[0].case, reply_timeout=1.0) is not None


def test_report_shows_each_finding_with_its_oracle_bytes_and_evidence(tmp_path: Path) -> None:
    from harness.fuzz.report import write_campaign_report

    result = Campaign(PlantedLane(), None, seed=7, budget=Budget(examples=200), out_dir=tmp_path).run()
    script = Script((Step(b"", 1, expect=("BANNER",)), Step(b"NOOP\x00\r\n", 1, expect=("NOOP",))))
    ex = Execution(violations=[Violation("reply-code", "354 in answer to NOOP", "RFC 5321 §4.3.2")])
    result.findings.append(Finding("smtp", ["reply-code"], "reply-code: 354 in answer to NOOP",
                                   script.to_json(), [violation_json(v) for v in ex.violations], [],
                                   {"name": "t"}, 7, "now", file="findings/smtp-002-reply-code.json"))
    paths = write_campaign_report(result, PlantedLane(), tmp_path, "now")
    html = paths["html"].read_text()
    assert "2 finding(s)" in html and "reply-code" in html and "planted" in html
    assert "Bytes sent" in html and "NOOP\\x00\\r\\n" in html  # bytes shown escaped
    assert "<h4>Case</h4>" in html  # a case that is not a byte script: as JSON
    assert "mtaconform replay findings/smtp-002-reply-code.json" in html
    stats = json.loads(paths["stats"].read_text())
    assert stats["seed"] == 7 and len(stats["findings"]) == 2


def test_a_smaller_case_met_again_replaces_the_saved_one() -> None:
    f = Finding("planted", ["planted"], "planted: boom on [5, -3, 1000]", [5, -3, 1000], [], [], {}, 1, "now")
    f.met_again([-1, 1000], Execution(violations=[Violation("planted", "boom on [-1, 1000]")]))
    f.met_again([7, 8, -1, 1000], Execution(violations=[Violation("planted", "boom")]))
    assert f.hits == 3 and f.case == [-1, 1000] and f.message == "planted: boom on [-1, 1000]"
