"""`index.html`: the run as one self-contained page for people.

The page is rendered from Jinja2 templates in `templates/` (autoescape on); this module only
prepares the data the templates show. Nothing on the page is loaded from elsewhere: CSS and the
few lines of JS (filters, expand/collapse) are inline, and every link is a `#fragment`.

Every string from the run passes through `visible()` on its way into the page (the Jinja
`finalize` hook), so control characters, bidi controls and surrogate-escaped bytes show up as
`\\x01`, `\\u202e`, `\\xff` instead of vanishing or breaking the page.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .json_writer import atomic_write_bytes
from .model import SCHEMA_VERSION, Evidence, Outcome, RunResult, ScenarioResult

TEMPLATES = Path(__file__).parent / "templates"

#: Verdicts in display order, with the text label and symbol that identify them without colour.
VERDICTS: tuple[str, ...] = ("pass", "fail", "non-strict", "unsupported", "skip", "error")
VERDICT_LABEL = {"pass": "PASS", "fail": "FAIL", "non-strict": "NON-STRICT",
                 "unsupported": "UNSUPPORTED", "skip": "SKIP", "error": "ERROR"}
VERDICT_SYMBOL = {"pass": "✓", "fail": "✗", "non-strict": "!", "unsupported": "∅",
                  "skip": "»", "error": "⚠"}
VERDICT_MEANING = {
    "pass": "every check held",
    "fail": "a MUST-level requirement is violated",
    "non-strict": "only SHOULD/MAY-level checks failed",
    "unsupported": "the target lacks the feature (not a failure)",
    "skip": "this target or lab cannot run the scenario",
    "error": "the harness itself broke",
}
_VERDICT_SEVERITY = {"error": 5, "fail": 4, "non-strict": 3, "unsupported": 2, "skip": 1,
                     "pass": 0}

EXIT_MEANING = {
    0: "no MUST-level requirement failed",
    1: "at least one MUST-level requirement failed",
    2: "usage or input error",
    3: "the harness itself failed (an error outcome) or the run stopped early",
}
#: The same with a baseline (`run --baseline`): the exit status says what got worse.
EXIT_MEANING_BASELINE = {
    0: "no verdict got worse than the baseline",
    1: "a verdict got worse than the baseline",
    3: "a verdict became a harness error, or the run stopped early",
}

#: The lists of the baseline section, in order: a change kind and its heading.
BASELINE_GROUPS = (("worse", "Regressions: worse than the baseline (these fail the run)"),
                   ("better", "Improvements"), ("changed", "Other changes"),
                   ("added", "Not in the baseline"), ("removed", "In the baseline, not in this run"))

#: Baseline status of a verdict: the tag shown beside it, and what it means.
BASELINE_TAG = {"worse": "▼ worse", "known": "known", "better": "▲ better", "new": "new",
                "changed": "changed"}
BASELINE_MEANING = {
    "same": "unchanged",
    "known": "a known deviation: the baseline records it, so it does not fail the run",
    "worse": "worse than the baseline: this fails the run",
    "better": "better than the baseline",
    "changed": "changed, neither better nor worse",
    "new": "not in the baseline",
}

DIRECTION = {"C": ("C→S", "client → server"), "S": ("S→C", "server → client"),
             "note": ("note", "note from the harness")}

#: Defaults for how much of one piece of evidence the page shows (results.json has it all).
MAX_EVIDENCE_CHARS = 200_000
MAX_TRANSCRIPT_EVENTS = 5_000

# Characters that would vanish, reorder text or break the page: C0/C1 controls except TAB and
# LF, DEL, soft hyphen, zero-width and bidi controls, BOM, specials, and lone surrogates
# (undecodable bytes carried by "surrogateescape" as U+DC80..U+DCFF).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\ufffe\uffff\ud800-\udfff]"
)


def _escape_char(m: re.Match[str]) -> str:
    cp = ord(m.group())
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if 0xDC80 <= cp <= 0xDCFF:
        return f"\\x{cp - 0xDC00:02x}"
    return f"\\u{cp:04x}"


def visible(text: str) -> str:
    """TEXT with invisible and unencodable characters written as escapes; TAB and LF are kept."""
    return _INVISIBLE.sub(_escape_char, text)


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):  # template-made markup (macros, includes), not data
        return value
    if value is None:
        return ""
    return visible(str(value))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


class _Anchors:
    """Unique, readable element ids."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def new(self, text: str) -> str:
        base = _slug(text)
        anchor, n = base, 2
        while anchor in self.used:
            anchor, n = f"{base}-{n}", n + 1
        self.used.add(anchor)
        return anchor


def scenario_anchors(result: RunResult) -> list[str]:
    """The element id of each scenario's section, in `result.scenarios` order: the scenario id
    when it is unique in the run, else "TARGET--ID"."""
    anchors = _Anchors()
    ids = [s.id for s in result.scenarios]
    dup = {i for i in ids if ids.count(i) > 1} if len(set(ids)) != len(ids) else set()
    return [anchors.new(f"{s.target}--{s.id}" if s.id in dup else s.id)
            for s in result.scenarios]


def requirement_verdict(s: ScenarioResult, requirement: str) -> str:
    """What scenario S says about REQUIREMENT: the worst verdict of its checks tied to that
    requirement, or the scenario's verdict when it has none or did not run to a judgement
    (unsupported, skip, error)."""
    checks = [c for c in s.checks if c.requirement == requirement]
    if not checks or s.outcome in (Outcome.ERROR, Outcome.SKIP, Outcome.UNSUPPORTED):
        return s.verdict
    return max((c.verdict for c in checks), key=lambda v: _VERDICT_SEVERITY.get(v, 0))


def requirement_mark(s: ScenarioResult, requirement: str) -> str | None:
    """The baseline status of what scenario S says about REQUIREMENT (the worst status of the
    checks tied to it, or the scenario's), or None when there is no baseline or nothing changed."""
    if s.baseline is None:
        return None
    checks = [c.baseline.status for c in s.checks
              if c.requirement == requirement and c.baseline is not None]
    if not checks or s.outcome in (Outcome.ERROR, Outcome.SKIP, Outcome.UNSUPPORTED):
        checks = [s.baseline.status]
    return next((m for m in BASELINE_TAG if m in checks), None)


# ------------------------------------------------------------------------------------------------
# What the templates get


@dataclass
class EvidenceView:
    label: str
    kind: str  # transcript | log | text | bytes | table | json
    text: str = ""  # log, text, bytes, json
    rows: list[dict[str, str]] = field(default_factory=list)  # transcript
    columns: list[str] = field(default_factory=list)  # table
    cells: list[list[str]] = field(default_factory=list)  # table
    truncated: str = ""  # note shown when not everything is shown
    anchor: str | None = None  # set when a later duplicate refers to this one
    ref: EvidenceView | None = None  # the first copy, when this one is a duplicate


@dataclass
class Chip:
    anchor: str
    scenario: str
    title: str
    verdict: str
    target: str = ""
    mark: str | None = None  # baseline status worth showing: worse | known | better | new | changed


@dataclass
class RequirementRow:
    anchor: str
    id: str
    title: str
    level: str
    strength: str
    citation: str
    feature: str
    catalogued: bool
    cells: list[list[Chip]]  # one list per target column

    @property
    def covered(self) -> bool:
        return any(self.cells)

    @property
    def agree(self) -> bool:
        """Every target that ran a scenario for it got the same verdicts here (always true for
        one target)."""
        return len({tuple(sorted(ch.verdict for ch in cell)) for cell in self.cells if cell}) <= 1


def _cut(text: str, limit: int) -> tuple[str, str]:
    if len(text) <= limit:
        return text, ""
    return text[:limit], (f"Showing the first {limit:,} of {len(text):,} characters; "
                          f"results.json has all of it.")


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_transcript(content: Any) -> bool:
    return isinstance(content, list) and all(
        isinstance(e, dict) and isinstance(e.get("data"), str) and "dir" in e for e in content)


def _evidence_view(ev: Evidence, max_chars: int, max_events: int) -> EvidenceView:
    kind, content = ev.kind, ev.content
    if isinstance(content, bytes | bytearray):
        content = "".join(chr(b) if 0x20 <= b < 0x7F or b in (9, 10) else f"\\x{b:02x}"
                          for b in content)
        kind = "bytes" if kind not in ("log", "text") else kind
    view = EvidenceView(label=ev.label, kind=kind)
    if kind == "transcript" and _is_transcript(content):
        events = content[:max_events]
        if len(content) > max_events:
            view.truncated = (f"Showing the first {max_events:,} of {len(content):,} events; "
                              f"results.json has all of them.")
        for e in events:
            d = str(e.get("dir"))
            marker, meaning = DIRECTION.get(d, (d, d))
            t = e.get("t")
            data = e["data"]
            if len(data) > max_chars:
                data = data[:max_chars] + " […]"
                view.truncated = view.truncated or (
                    "Long events are cut short; results.json has all of them.")
            view.rows.append({"t": f"{t:.3f}" if isinstance(t, int | float) else str(t),
                              "dir": d if d in DIRECTION else "other", "marker": marker,
                              "meaning": meaning,
                              "data": data[:-1] if data.endswith("\n") else data})
    elif kind in ("log", "text", "bytes") and isinstance(content, str):
        text = content.replace("\r\n", "\n") if kind == "log" else content
        view.text, view.truncated = _cut(text, max_chars)
    elif kind == "table" and isinstance(content, list) and all(
            isinstance(row, dict) for row in content):
        view.columns = list(dict.fromkeys(k for row in content for k in row))
        view.cells = [[_cell(row[c]) if c in row else "" for c in view.columns] for row in content]
    else:
        if kind != "json":
            view.label = f"{ev.label} ({kind}, shown as JSON)"
        view.kind = "json"
        text = json.dumps(content, indent=2, ensure_ascii=False, default=str)
        view.text, view.truncated = _cut(text, max_chars)
    return view


def _evidence_key(ev: Evidence) -> str:
    return ev.kind + "\0" + json.dumps(ev.content, sort_keys=True, ensure_ascii=False, default=str)


class _EvidenceBook:
    """Evidence views of one scenario; a piece shown once is referred to, not repeated."""

    def __init__(self, anchors: _Anchors, scenario_anchor: str, max_chars: int, max_events: int):
        self.anchors = anchors
        self.prefix = f"{scenario_anchor}--ev"
        self.seen: dict[str, EvidenceView] = {}
        self.max_chars, self.max_events = max_chars, max_events

    def views(self, evidence: Iterable[Evidence]) -> list[EvidenceView]:
        out = []
        for ev in evidence:
            key = _evidence_key(ev)
            first = self.seen.get(key)
            if first is None:
                view = _evidence_view(ev, self.max_chars, self.max_events)
                self.seen[key] = view
            else:
                if first.anchor is None:
                    first.anchor = self.anchors.new(self.prefix)
                view = EvidenceView(label=ev.label, kind=first.kind, ref=first)
            out.append(view)
        return out


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _wall_time(started: str, finished: str) -> str | None:
    try:
        a = datetime.fromisoformat(started.replace("Z", "+00:00"))
        b = datetime.fromisoformat(finished.replace("Z", "+00:00"))
        return _duration((b - a).total_seconds())
    except (ValueError, TypeError):
        return None


def _capability(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def build_context(result: RunResult, *, max_evidence_chars: int = MAX_EVIDENCE_CHARS,
                  max_transcript_events: int = MAX_TRANSCRIPT_EVENTS) -> dict[str, Any]:
    """Everything the template shows, prepared from RESULT."""
    anchors = _Anchors()
    s_anchors = scenario_anchors(result)
    anchors.used.update(s_anchors)

    target_names = [t.name for t in result.targets]
    target_names += [n for n in dict.fromkeys(s.target for s in result.scenarios)
                     if n not in target_names]

    # requirement -> target -> chips
    coverage: dict[str, dict[str, list[Chip]]] = defaultdict(lambda: defaultdict(list))
    for s, anchor in zip(result.scenarios, s_anchors):
        for rid in dict.fromkeys([*s.requirements, *(c.requirement for c in s.checks)]):
            coverage[rid][s.target].append(Chip(anchor, s.id, s.title, requirement_verdict(s, rid),
                                                s.target, requirement_mark(s, rid)))

    rows: list[RequirementRow] = []
    for r in result.requirements:
        rows.append(RequirementRow(
            anchors.new(f"req-{r.id}"), r.id, r.title, r.level, r.strength, r.citation,
            r.feature, True, [coverage.get(r.id, {}).get(t, []) for t in target_names]))
    known = {r.id for r in result.requirements}
    for rid in coverage:
        if rid not in known:
            rows.append(RequirementRow(
                anchors.new(f"req-{rid}"), rid, "(not in the requirement catalogue)", "", "", "",
                rid.split("-")[0].lower(), False, [coverage[rid].get(t, []) for t in target_names]))
    req_anchor = {row.id: row.anchor for row in rows}
    req_by_id = {r.id: r for r in result.requirements}

    scenarios = []
    for s, anchor in zip(result.scenarios, s_anchors):
        book = _EvidenceBook(anchors, anchor, max_evidence_chars, max_transcript_events)
        checks = [{"c": c, "verdict": c.verdict, "req_anchor": req_anchor.get(c.requirement),
                   "evidence": book.views(c.evidence)} for c in s.checks]
        verdict = s.verdict
        scenarios.append({
            "s": s, "anchor": anchor, "verdict": verdict,
            # Known deviations stay closed: what a baseline run asks a person to look at is new.
            "open": (verdict in ("fail", "error") and not (s.baseline and s.baseline.status == "known"))
                    or bool(s.baseline and s.baseline.status == "worse"),
            "requirements": [(rid, req_anchor.get(rid), req_by_id.get(rid))
                             for rid in s.requirements],
            "checks": checks,
            "evidence": book.views(s.evidence),
            "duration": f"{s.duration_s:.3f} s",
        })

    summary = result.summary()
    verdict_counts = {v: summary["verdicts"].get(v, 0) for v in VERDICTS}
    features = list(dict.fromkeys([*(r.feature for r in result.requirements),
                                   *(s.feature for s in result.scenarios)]))
    scenario_features = {s.feature for s in result.scenarios}
    by_feature = []
    for f in features:
        if f not in scenario_features:
            continue
        counts = {v: 0 for v in VERDICTS}
        for s in result.scenarios:
            if s.feature == f:
                counts[s.verdict] = counts.get(s.verdict, 0) + 1
        by_feature.append((f, counts, sum(counts.values())))
    by_target = []
    for t in target_names:
        counts = {v: 0 for v in VERDICTS}
        for s in result.scenarios:
            if s.target == t:
                counts[s.verdict] = counts.get(s.verdict, 0) + 1
        by_target.append((t, counts, sum(counts.values())))

    catalogued_covered = sum(1 for row in rows if row.catalogued and row.covered)
    status = result.exit_status()
    baseline = None
    if result.baseline is not None:
        where = {(s.target, s.id): a for s, a in zip(result.scenarios, s_anchors)}
        changes = [(c, where.get((c.target, c.scenario))) for c in result.baseline.changes]
        baseline = {"b": result.baseline,
                    "groups": [(kind, title, [(c, a) for c, a in changes if c.kind == kind])
                               for kind, title in BASELINE_GROUPS],
                    "regressions": len(result.baseline.regressions),
                    "improvements": len(result.baseline.improvements)}
    return {
        "result": result,
        "tool_name": result.tool.get("name", "mtaconform"),
        "tool_version": result.tool.get("version", ""),
        "schema_version": SCHEMA_VERSION,
        "wall_time": _wall_time(result.started, result.finished),
        "scenario_time": _duration(summary["duration_s"]),
        "targets": [{"t": t, "caps": [(k, _capability(v)) for k, v in t.capabilities.items()]}
                    for t in result.targets],
        "target_names": target_names,
        "exit_status": status,
        "exit_meaning": (EXIT_MEANING_BASELINE if baseline else EXIT_MEANING).get(status, ""),
        "baseline": baseline,
        "summary": summary,
        "verdicts": VERDICTS,
        "verdict_counts": verdict_counts,
        "by_feature": by_feature,
        "by_target": by_target,
        "features": [f for f in features if f in scenario_features],
        "requirement_rows": rows,
        "requirements_total": len(result.requirements),
        "requirements_covered": catalogued_covered,
        "uncatalogued": sum(1 for row in rows if not row.catalogued),
        "scenarios": scenarios,
    }


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(verdict_label=VERDICT_LABEL, verdict_symbol=VERDICT_SYMBOL,
                       verdict_meaning=VERDICT_MEANING, baseline_tag=BASELINE_TAG,
                       baseline_meaning=BASELINE_MEANING)
    return env


def render_html(result: RunResult, **limits: int) -> str:
    """The report page for RESULT as a string. LIMITS: max_evidence_chars,
    max_transcript_events (how much of one piece of evidence the page shows)."""
    return environment().get_template("index.html.j2").render(build_context(result, **limits))


def write_html(result: RunResult, path: Path, **limits: int) -> None:
    """Write the report page for RESULT to PATH (atomically)."""
    # Every data string passed through visible(); "backslashreplace" only guards template text.
    data = render_html(result, **limits).encode("utf-8", errors="backslashreplace")
    atomic_write_bytes(Path(path), data)
