"""junit.xml: counts that CI reporters show must mean what they say."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.junit import MESSAGE_MAX, write_junit, xml_text
from harness.report.model import CheckResult, Outcome, RunResult, ScenarioResult, TargetInfo

try:
    from report_samples import EXIM, EXPECTED_COUNTS, EXTERNAL, NASTY, sample_run
except ImportError:  # tests/unit is a package
    from .report_samples import EXIM, EXPECTED_COUNTS, EXTERNAL, NASTY, sample_run


def _write(tmp_path: Path, result: RunResult | None = None) -> tuple[bytes, ET.Element]:
    path = tmp_path / "junit.xml"
    write_junit(result or sample_run(), path)
    raw = path.read_bytes()
    return raw, ET.fromstring(raw)


def _case(root: ET.Element, suite: str, name: str) -> ET.Element:
    (case,) = [c for s in root.iter("testsuite") if s.get("name") == suite
               for c in s.iter("testcase") if c.get("name") == name]
    return case


def _counts(el: ET.Element) -> tuple[int, int, int, int]:
    return tuple(int(el.get(k)) for k in ("tests", "failures", "errors", "skipped"))


def test_one_suite_per_target_with_exact_counts(tmp_path: Path) -> None:
    _, root = _write(tmp_path)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [EXIM, EXTERNAL]
    for suite in suites:
        expected = EXPECTED_COUNTS[suite.get("name")]
        assert _counts(suite) == expected
        # the counts agree with the testcases they summarise
        cases = suite.findall("testcase")
        assert (len(cases), sum(c.find("failure") is not None for c in cases),
                sum(c.find("error") is not None for c in cases),
                sum(c.find("skipped") is not None for c in cases)) == expected
    totals = [sum(col) for col in zip(*EXPECTED_COUNTS.values())]
    assert list(_counts(root)) == totals


def test_testcase_naming_and_time(tmp_path: Path) -> None:
    _, root = _write(tmp_path)
    case = _case(root, EXIM, "prdr-353-intro")
    assert case.get("classname") == "exim.prdr"
    assert case.get("time") == "0.120"
    assert case.get("file") == "scenarios/prdr/353-intro.yaml"
    assert _case(root, EXTERNAL, "prdr-353-intro").get("classname") == f"{EXTERNAL}.prdr"
    suite = root.find("testsuite")
    assert float(suite.get("time")) == pytest.approx(0.041 + 0.12 + 0.052 + 0.002 + 1.5 + 0.3)


def test_must_failure_is_a_failure_not_an_error(tmp_path: Path) -> None:
    _, root = _write(tmp_path)
    case = _case(root, EXIM, "prdr-353-intro")
    assert case.find("error") is None
    failure = case.find("failure")
    assert failure is not None
    message = failure.get("message")
    assert message.startswith("PRDR-06 MUST: After DATA the server replied")
    assert len(message) <= MESSAGE_MAX
    assert "PRDR-07" not in message  # the SHOULD-level failure is not part of the failure
    body = failure.text
    assert "PRDR-06 (MUST) FAIL — check prdr_intro_line" in body
    assert "expected: 353 (the PRDR intro line)" in body
    assert "actual:   250 ok\\x00\\x1b[31m</script>" in body
    # the SHOULD-level failure of the same scenario is reported on the side
    assert "PRDR-07 (SHOULD) NON-STRICT" in case.find("system-out").text
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["non-strict"] == "PRDR-07 SHOULD: Replies are not in RCPT order."
    assert props["verdict"] == "fail"


def test_non_strict_scenario_is_not_a_failure(tmp_path: Path) -> None:
    _, root = _write(tmp_path)
    for suite, name in [(EXIM, "proxy-v1-unknown"), (EXTERNAL, "dsn-fields")]:
        case = _case(root, suite, name)
        assert [c.tag for c in case] == ["properties", "system-out"], name
        out = case.find("system-out").text
        assert "NON-STRICT" in out and "not a test failure" in out
        props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
        assert ("verdict", "non-strict") in props
        assert any(n == "non-strict" for n, _ in props)
    out = _case(root, EXIM, "proxy-v1-unknown").find("system-out").text
    assert "PROXY-06 (SHOULD) NON-STRICT — check proxy_unknown_accepted" in out
    assert "expected: 220 greeting" in out and "actual:   connection closed" in out


def test_unsupported_and_skip_are_skipped_with_reason(tmp_path: Path) -> None:
    _, root = _write(tmp_path)
    unsupported = _case(root, EXIM, "dane-pkix-ta").find("skipped")
    assert unsupported.get("message") == "unsupported: the target was built without DANE support"
    skip = _case(root, EXIM, "ocsp-client-must-staple").find("skipped")
    assert skip.get("message").startswith("skip: the lab's OpenSSL")


def test_error_carries_the_traceback(tmp_path: Path) -> None:
    _, root = _write(tmp_path)
    case = _case(root, EXIM, "dsn-structure")
    assert case.find("failure") is None
    error = case.find("error")
    assert error.get("message").startswith("the fake MX crashed: 250 ok\\x00")
    assert "Traceback (most recent call last):" in error.text
    assert "RuntimeError: boom \\x00\\x1b" in error.text


def test_passing_case_has_no_result_element(tmp_path: Path) -> None:
    _, root = _write(tmp_path)
    case = _case(root, EXIM, "prdr-ehlo-keyword")
    assert [c.tag for c in case] == ["properties"]


def test_control_characters_and_surrogates_still_parse(tmp_path: Path) -> None:
    raw, root = _write(tmp_path)
    assert raw.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    raw.decode("utf-8")  # strict
    for bad in (b"\x00", b"\x1b", b"\x7f", "\u202e".encode()):
        assert bad not in raw
    text = raw.decode()
    assert "\\x00\\x1b[31m" in text and "\\u202eevil\\x7f\\xff\\x80" in text
    # markup in data is escaped, not interpreted
    assert root.find(".//script") is None
    assert NASTY.split("\x00")[0] in text


def test_xml_text_replacements() -> None:
    assert xml_text("a\x00b\x1fc\td\ne\rf") == "a\\x00b\\x1fc\td\ne\rf"
    assert xml_text("\udcff\ud800\ufffe") == "\\xff\\ud800\\ufffe"
    assert xml_text(None) == ""
    assert xml_text(3) == "3"


def test_error_check_without_traceback_and_empty_target(tmp_path: Path) -> None:
    result = RunResult(
        {"name": "mtaconform", "version": "0.1.0"}, "2025-11-25T11:30:00Z",
        "2025-11-25T11:30:01Z",
        [TargetInfo("postfix", "managed", "3.9"), TargetInfo("idle", "managed")],
        [ScenarioResult("x", "X", "prdr", "server", "postfix", ["PRDR-01"], Outcome.ERROR,
                        checks=[CheckResult("c", "PRDR-01", "MUST", Outcome.ERROR,
                                            "check crashed")])],
        stopped_early="interrupted (SIGINT)")
    _, root = _write(tmp_path, result)
    postfix, idle = root.findall("testsuite")
    assert _counts(postfix) == (1, 0, 1, 0)
    assert _counts(idle) == (0, 0, 0, 0)
    assert postfix.find("testcase/error").get("message") == "check crashed"
    props = {p.get("name"): p.get("value") for p in postfix.find("properties")}
    assert props["stopped_early"] == "interrupted (SIGINT)"
    assert "interrupted" in postfix.find("system-err").text


def test_scenario_for_unlisted_target_gets_its_own_suite(tmp_path: Path) -> None:
    result = sample_run()
    result.targets = result.targets[:1]
    _, root = _write(tmp_path, result)
    assert [s.get("name") for s in root.findall("testsuite")] == [EXIM, EXTERNAL]
    assert _counts(root.findall("testsuite")[1]) == EXPECTED_COUNTS[EXTERNAL]
