"""Baseline files: the verdicts a target is known to get, for `mtaconform run --baseline FILE`.

A baseline is YAML, one line per scenario that passed (or was skipped or unsupported) and a
block per scenario that deviates, so a change of verdict is a one-line diff in review:

    mtaconform-baseline: 1
    tool: mtaconform 0.1.0
    created: '2025-11-25T11:32:05+00:00'
    from: reports/latest/results.json (run started 2025-11-25T11:30:00+00:00)
    targets:
      exim:
        prdr-server-ehlo-keyword: pass
        prdr-server-final-all-deferred:
          verdict: fail
          comment: Exim answers 250 when every recipient was deferred.
          checks:
            final_reply_class PRDR-11: fail

A short entry `ID: VERDICT` means every check of the scenario had that verdict. `comment` is for
people (why a deviation is accepted); `baseline save` keeps the comments of the file it replaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ..engine import yamlsrc
from ..engine.yamlsrc import InputError
from .compare import (
    VERDICTS,
    CheckKey,
    Comparison,
    ScenarioVerdicts,
    Table,
    check_keys,
    compare,
    table_from_results,
    table_from_run,
)
from .json_writer import ResultsFileError, atomic_write_bytes, load_json
from .model import BaselineSummary, RunResult

FORMAT = 1
FORMAT_KEY = "mtaconform-baseline"
#: Verdicts whose scenarios are written as one line (`ID: VERDICT`) when every check agrees.
SHORT_FORM = frozenset({"pass", "unsupported", "skip"})
_CHECK_LABEL = re.compile(r"^(\S+) ([A-Z][A-Z0-9]*-[0-9]+)(?: \(([1-9][0-9]*)\))?$")

HEADER = """\
# mtaconform baseline: the verdicts each target is known to get.
# `mtaconform run --baseline THIS_FILE` exits 1 only when a verdict got worse than the one
# recorded here (pass < unsupported = skip < non-strict < fail < error), and marks the
# deviations recorded here as known. Refresh it with `mtaconform baseline save THIS_FILE`
# (comments are kept). Add `comment:` to a scenario's entry to say why a deviation is accepted.
"""


@dataclass
class Baseline:
    path: Path
    table: Table
    tool: str = ""
    created: str = ""
    source: str = ""
    targets: list[str] = field(default_factory=list)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --- reading ---------------------------------------------------------------------------------

def load(path: Path) -> Baseline:
    """Read and check a baseline file; InputError (FILE:LINE: what) when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "no such baseline file")
    doc = yamlsrc.load(path)
    loc = yamlsrc.Located(path, doc)
    if not isinstance(doc, dict):
        raise InputError(path, 1, f"not a baseline file (a YAML mapping starting with "
                                  f"'{FORMAT_KEY}: {FORMAT}'; `mtaconform baseline save` writes one)")
    unknown = [k for k in doc if k not in (FORMAT_KEY, "tool", "created", "from", "targets")]
    if unknown:
        raise loc.error([unknown[0]], f"unknown field {unknown[0]!r} (known: {FORMAT_KEY}, tool, "
                                      f"created, from, targets)")
    if doc.get(FORMAT_KEY) != FORMAT:
        raise loc.error([FORMAT_KEY] if FORMAT_KEY in doc else [],
                        f"not a baseline file of format {FORMAT} (expected '{FORMAT_KEY}: "
                        f"{FORMAT}', found {doc.get(FORMAT_KEY)!r})")
    targets = doc.get("targets")
    if not isinstance(targets, dict):
        raise loc.error(["targets"] if "targets" in doc else [],
                        "targets: a mapping of target name to its scenarios")
    table: Table = {}
    for target, scenarios in targets.items():
        if not isinstance(scenarios, dict):
            raise loc.error(["targets", target], f"targets/{target}: a mapping of scenario id "
                                                 f"to verdict")
        for sid, entry in scenarios.items():
            table[(str(target), str(sid))] = _entry(loc, ["targets", target, sid], entry)
    return Baseline(path, table, str(doc.get("tool", "")), str(doc.get("created", "")),
                    str(doc.get("from", "")), [str(t) for t in targets])


def _verdict(loc: yamlsrc.Located, where: list[Any], value: Any) -> str:
    if value not in VERDICTS:
        raise loc.error(where, f"{'/'.join(map(str, where))}: {value!r} is not a verdict "
                               f"({', '.join(VERDICTS)})")
    return value


def _entry(loc: yamlsrc.Located, where: list[Any], entry: Any) -> ScenarioVerdicts:
    if not isinstance(entry, dict):
        return ScenarioVerdicts(_verdict(loc, where, entry))
    name = "/".join(map(str, where))
    unknown = [k for k in entry if k not in ("verdict", "checks", "comment", "title")]
    if unknown:
        raise loc.error([*where, unknown[0]], f"{name}: unknown field {unknown[0]!r} "
                                              f"(known: verdict, checks, comment, title)")
    if "verdict" not in entry:
        raise loc.error(where, f"{name}: no verdict")
    verdict = _verdict(loc, [*where, "verdict"], entry["verdict"])
    comment = entry.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise loc.error([*where, "comment"], f"{name}/comment: text")
    checks = None
    if "checks" in entry:
        raw = entry["checks"]
        if not isinstance(raw, dict):
            raise loc.error([*where, "checks"], f"{name}/checks: a mapping of 'CHECK REQUIREMENT' "
                                                f"to verdict")
        checks = {}
        for label, value in raw.items():
            m = _CHECK_LABEL.match(str(label))
            if not m:
                raise loc.error([*where, "checks", label],
                                f"{name}/checks: {label!r} is not 'CHECK REQUIREMENT' "
                                f"(e.g. 'prdr_intro_line PRDR-06', '… (2)' for its second use)")
            key = CheckKey(m[1], m[2], int(m[3] or 1))
            checks[key] = _verdict(loc, [*where, "checks", label], value)
    return ScenarioVerdicts(verdict, checks, str(entry.get("title", "")), comment)


# --- writing ---------------------------------------------------------------------------------

def _document(table: Table, *, tool: str, created: str, source: str) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {}
    for target in dict.fromkeys(t for t, _ in table):
        targets[target] = {}
        for sid in sorted(s for t, s in table if t == target):
            v = table[(target, sid)]
            checks = v.checks or {}
            short = v.verdict in SHORT_FORM and all(c == v.verdict for c in checks.values())
            if short and not v.comment:
                targets[target][sid] = v.verdict
                continue
            entry: dict[str, Any] = {"verdict": v.verdict}
            if v.comment:
                entry["comment"] = v.comment
            if not short:
                entry["checks"] = {k.label: c for k, c in checks.items()}
            targets[target][sid] = entry
    return {FORMAT_KEY: FORMAT, "tool": tool, "created": created, "from": source,
            "targets": targets}


def dumps(table: Table, *, tool: str, created: str, source: str) -> str:
    doc = _document(table, tool=tool, created=created, source=source)
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=False)
    return HEADER + body


def keep_comments(table: Table, old: Baseline) -> int:
    """Copy the comments of OLD's entries onto TABLE's entries for the same scenario; return how
    many were kept."""
    kept = 0
    for key, entry in old.table.items():
        if entry.comment and key in table:
            table[key].comment = entry.comment
            kept += 1
    return kept


def save(path: Path, table: Table, *, tool: str, source: str) -> int:
    """Write TABLE as a baseline file to PATH (atomically), keeping the comments of the baseline
    PATH holds, if any; return the number of comments kept."""
    path = Path(path)
    kept = 0
    if path.exists():
        try:
            kept = keep_comments(table, load(path))
        except InputError as exc:
            raise InputError(exc.file, exc.line, f"{exc.message} (the file to be replaced: "
                                                 f"its comments would be kept; fix it or remove it)"
                             ) from None
    text = dumps(table, tool=tool, created=_now(), source=source)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return kept


# --- a run against its baseline ----------------------------------------------------------------

def apply(result: RunResult, baseline: Baseline) -> Comparison:
    """Compare RESULT with BASELINE (only the targets RESULT ran) and record the outcome in
    RESULT: `result.baseline`, and a mark on every scenario and check, which the writers show."""
    ran_targets = {s.target for s in result.scenarios} | {t.name for t in result.targets}
    old = {k: v for k, v in baseline.table.items() if k[0] in ran_targets}
    new = table_from_run(result)
    comparison = compare(old, new, only_ran=True)
    for s in result.scenarios:
        s.baseline = comparison.scenario_marks.get((s.target, s.id))
        for key, c in zip(check_keys((c.check, c.requirement) for c in s.checks), s.checks):
            c.baseline = comparison.check_marks.get((s.target, s.id, key))
    result.baseline = BaselineSummary(
        file=str(baseline.path), created=baseline.created, tool=baseline.tool,
        changes=comparison.changes, known=comparison.known,
        not_compared=comparison.not_compared)
    return comparison


def check_targets(baseline: Baseline, names: list[str]) -> None:
    """A baseline that knows none of the targets about to run is the wrong file: say so before
    the run rather than report every scenario as new."""
    if names and not set(names) & set(baseline.targets):
        raise InputError(baseline.path, None,
                         f"no verdicts for target {', '.join(names)} (it has: "
                         f"{', '.join(baseline.targets) or 'none'}); save one with "
                         f"`mtaconform baseline save`")


def load_verdicts(path: Path) -> Table:
    """The verdict table of PATH: a `results.json` (by its `.json` suffix) or a baseline file.
    InputError names the file when it is neither."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return load(path).table
    if not path.is_file():
        raise InputError(path, None, "no such results file")
    try:
        data = load_json(path)
    except ResultsFileError as exc:
        raise InputError(path, None, f"{exc.where}: {exc.message}" if exc.where else exc.message
                         ) from None
    return table_from_results(data)
