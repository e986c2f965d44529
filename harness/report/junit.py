"""`junit.xml`: the run as JUnit XML, for CI test reporters (Jenkins, GitLab, GitHub actions).

Layout: one `<testsuites>`, one `<testsuite>` per target, one `<testcase>` per scenario
(classname "TARGET.FEATURE", name = scenario id, time = duration). Verdicts map to JUnit so that
the counts mean what CI users expect:

| verdict      | JUnit                                                                  |
|--------------|------------------------------------------------------------------------|
| pass         | plain testcase                                                         |
| fail         | `<failure>`: a MUST-level check failed (never `<error>`)               |
| non-strict   | passes; the failed SHOULD/MAY checks go in `<system-out>` and          |
|              | `<properties>` (name "non-strict")                                     |
| unsupported  | `<skipped message="unsupported: ...">`                                 |
| skip         | `<skipped message="skip: ...">`                                        |
| error        | `<error>` with the harness traceback                                   |

With a baseline (`run --baseline FILE`) the CI counts follow the run's exit status: a `fail` or
`error` the baseline records is `<skipped message="known deviation (baseline): ...">` (details in
`<system-out>`); a verdict that got worse is a `<failure>` (or `<error>`) whose message starts
"regression (baseline OLD -> NEW", even where the new verdict alone would pass (pass -> skip,
pass -> non-strict: `type="regression"`). Properties `baseline`, `baseline.verdict` and
`baseline.comment` carry the comparison.

Text from MTAs may hold any character; those XML 1.0 forbids (and bidi controls) are replaced
visibly ("\\x01", "\\u202e").
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from .json_writer import atomic_write_bytes
from .model import CheckResult, Outcome, RunResult, ScenarioResult

# Characters XML 1.0 does not allow (§2.2 Char), including lone surrogates (which also cannot be
# encoded as UTF-8; undecodable bytes reach the model as U+DC80..U+DCFF via "surrogateescape").
# Also escaped, though XML allows them, because a CI page would hide them or reorder text around
# them: DEL, C1 controls, and bidi / zero-width format characters.
_XML_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
    "\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)

MESSAGE_MAX = 300  # characters in a failure/error/skipped `message` attribute


def _escape_char(m: re.Match[str]) -> str:
    cp = ord(m.group())
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if 0xDC80 <= cp <= 0xDCFF:  # a surrogate-escaped byte: show the byte
        return f"\\x{cp - 0xDC00:02x}"
    return f"\\u{cp:04x}"


def xml_text(value: object) -> str:
    """VALUE as a string XML 1.0 can carry: forbidden characters replaced visibly."""
    text = "" if value is None else str(value)
    return _XML_UNSAFE.sub(_escape_char, text)


def _short(text: str, limit: int = MESSAGE_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def _check_line(c: CheckResult) -> str:
    return f"{c.requirement} {c.level}: {c.message}"


def _check_block(c: CheckResult) -> str:
    lines = [f"{c.requirement} ({c.level}) {c.verdict.upper()} — check {c.check}",
             f"  {c.message}"]
    if c.expected is not None:
        lines.append(f"  expected: {c.expected}")
    if c.actual is not None:
        lines.append(f"  actual:   {c.actual}")
    return "\n".join(lines)


def _testcase(suite: ET.Element, s: ScenarioResult) -> str:
    """Add S as a testcase to SUITE; return its JUnit status: pass|failure|error|skipped."""
    attrs = {"classname": f"{s.target}.{s.feature}", "name": s.id, "time": f"{s.duration_s:.3f}"}
    if s.source:
        attrs["file"] = s.source
    case = _sub(suite, "testcase", **attrs)

    verdict = s.verdict
    must_failed = [c for c in s.checks if c.outcome is Outcome.FAIL and c.level == "MUST"]
    non_strict = [c for c in s.checks if c.outcome is Outcome.FAIL and c.level != "MUST"]

    props = _sub(case, "properties")
    _sub(props, "property", name="verdict", value=verdict)
    if s.title:
        _sub(props, "property", name="title", value=s.title)
    if s.requirements:
        _sub(props, "property", name="requirements", value=" ".join(s.requirements))
    for c in non_strict:
        _sub(props, "property", name="non-strict", value=_check_line(c))
    mark = s.baseline
    if mark is not None:
        _sub(props, "property", name="baseline", value=mark.status)
        _sub(props, "property", name="baseline.verdict", value=mark.verdict or "(not in the baseline)")
        if mark.comment:
            _sub(props, "property", name="baseline.comment", value=mark.comment)
    out: list[str] = []

    status = "pass"
    if mark is not None and mark.status == "known" and verdict in ("fail", "error"):
        # The baseline records this deviation: not a CI failure, but not hidden either.
        status = "skipped"
        failing = [c for c in s.checks if c.outcome in (Outcome.FAIL, Outcome.ERROR)]
        head = "; ".join(_check_line(c) for c in failing) or s.reason or verdict
        _sub(case, "skipped", message=_short(f"known deviation (baseline): {verdict}: {head}"))
        out.append(f"Known deviation (baseline {mark.verdict}): {verdict}"
                   + (f"\nComment: {mark.comment}" if mark.comment else ""))
        out += [s.reason] if s.reason else []
        out += [_check_block(c) for c in failing]
        out += [s.traceback] if s.traceback else []
    elif mark is not None and mark.status == "worse" and verdict not in ("fail", "error"):
        # Worse than the baseline though not a failure on its own (pass -> skip, -> non-strict):
        # it fails a run with --baseline, so it is a failure here too.
        status = "failure"
        text = _regression(s)
        _sub(case, "failure", "\n\n".join([text, *([s.reason] if s.reason else []),
                                             *(_check_block(c) for c in non_strict)]),
             message=_short(text), type="regression")
    elif verdict == "error":
        status = "error"
        error_checks = [c for c in s.checks if c.outcome is Outcome.ERROR]
        head = s.reason or (error_checks[0].message if error_checks else "harness error")
        body = [s.reason or "harness error"]
        body += [_check_block(c) for c in error_checks]
        if s.traceback:
            body.append(s.traceback)
        if mark is not None and mark.status == "worse":
            head = f"{_regression(s)}: {head}"
        _sub(case, "error", "\n\n".join(body), message=_short(head), type="harness-error")
    elif verdict == "fail":
        status = "failure"
        head = "; ".join(_check_line(c) for c in must_failed) or s.reason or "failed"
        if mark is not None and mark.status == "worse":
            head = f"{_regression(s)}: {head}"
        body = [_check_block(c) for c in must_failed]
        if s.reason:
            body.insert(0, s.reason)
        body.append(f"Evidence: index.html, scenario {s.id}")
        _sub(case, "failure", "\n\n".join(body), message=_short(head), type="MUST")
    elif verdict in ("unsupported", "skip"):
        status = "skipped"
        _sub(case, "skipped", message=_short(f"{verdict}: {s.reason or 'no reason given'}"))

    if non_strict:
        out.append("Non-strict: SHOULD/MAY-level checks failed (not a test failure):")
        out += [_check_block(c) for c in non_strict]
    if out:
        _sub(case, "system-out", "\n\n".join(out))
    return status


def _regression(s: ScenarioResult) -> str:
    """"regression (baseline OLD -> NEW …)" for a scenario whose verdict or checks got worse."""
    mark = s.baseline
    old = mark.verdict if mark and mark.verdict else "not in the baseline"
    worse = [c for c in s.checks if c.baseline is not None and c.baseline.status == "worse"]
    what = "; ".join(f"{c.requirement} {c.check} {c.baseline.verdict or 'new'} -> {c.verdict}"
                     for c in worse if c.baseline is not None)
    return f"regression (baseline {old} -> {s.verdict}{': ' + what if what else ''})"


def build_junit(result: RunResult) -> ET.ElementTree:
    """The JUnit XML tree for RESULT."""
    targets = {t.name: t for t in result.targets}
    order = list(targets)
    order += [n for n in dict.fromkeys(s.target for s in result.scenarios) if n not in targets]

    root = ET.Element("testsuites", {"name": xml_text(result.tool.get("name", "mtaconform"))})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for name in order:
        scenarios = [s for s in result.scenarios if s.target == name]
        suite = _sub(root, "testsuite", name=name, timestamp=result.started)
        props = _sub(suite, "properties")
        _sub(props, "property", name="tool", value=f"{result.tool.get('name', '')} "
                                                      f"{result.tool.get('version', '')}".strip())
        t = targets.get(name)
        if t is not None:
            _sub(props, "property", name="target.kind", value=t.kind)
            if t.version:
                _sub(props, "property", name="target.version", value=t.version)
            _sub(props, "property", name="target.restarts", value=t.restarts)
            for key, value in t.capabilities.items():
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                _sub(props, "property", name=f"capability.{key}", value=text)
        if result.stopped_early:
            _sub(props, "property", name="stopped_early", value=result.stopped_early)

        counts = {"pass": 0, "failure": 0, "error": 0, "skipped": 0}
        for s in scenarios:
            counts[_testcase(suite, s)] += 1
        time = sum(s.duration_s for s in scenarios)
        suite_counts = {"tests": len(scenarios), "failures": counts["failure"],
                        "errors": counts["error"], "skipped": counts["skipped"]}
        for key, value in suite_counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{time:.3f}")
        total_time += time
        if result.stopped_early:
            _sub(suite, "system-err", f"Run stopped early: {result.stopped_early}")

    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def dumps(result: RunResult) -> bytes:
    """The bytes of `junit.xml` for RESULT."""
    return ET.tostring(build_junit(result).getroot(), encoding="utf-8", xml_declaration=True)


def write_junit(result: RunResult, path: Path) -> None:
    """Write RESULT to PATH as JUnit XML (atomically)."""
    atomic_write_bytes(Path(path), dumps(result))
