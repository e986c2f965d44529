"""Compare verdicts: a run against its baseline, or two results files (`mtaconform diff`).

Pure functions over *verdict tables*: for each (target, scenario id), the scenario's verdict and
the verdict of each of its checks, keyed by (check name, requirement, occurrence). A table comes
from a `RunResult`, a `results.json` document or a baseline file (`baseline.py`).

Which verdict is worse — what a CI user wants to hear about (README, "Baselines and CI"):

    pass  <  unsupported = skip  <  non-strict  <  fail  <  error

- A verdict that moves right is a regression (`worse`): a new MUST failure, a new SHOULD-level
  deviation, a feature that disappeared (pass → unsupported), coverage that was lost
  (pass → skip), a harness error.
- One that moves left is an improvement (`better`); unsupported ↔ skip is only `changed`.
- A scenario or check the baseline does not know (a new scenario after upgrading mtaconform, a
  new target) counts as it would without a baseline: `fail` or `error` is a regression, anything
  else is `added`. A scenario of the baseline that is not in the new results is `removed`.
- A deviation (non-strict, fail, error) that is no worse than the baseline's is `known`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import BaselineChange, BaselineMark, ChangeList, RunResult

VERDICT_RANK = {"pass": 0, "unsupported": 1, "skip": 1, "non-strict": 2, "fail": 3, "error": 4}
VERDICTS = tuple(VERDICT_RANK)
#: Verdicts that say the target deviates from a requirement (or the harness broke).
DEVIATIONS = frozenset({"non-strict", "fail", "error"})
#: Verdicts that fail a run without a baseline; a new scenario with one of them is a regression.
FAILING = frozenset({"fail", "error"})


@dataclass(frozen=True, order=True)
class CheckKey:
    """A check within a scenario: its name, its requirement, and which use of that pair it is
    (a scenario may apply one check to one requirement twice, with other parameters)."""

    check: str
    requirement: str
    occurrence: int = 1

    @property
    def name(self) -> str:
        """The check name, with " (N)" from its second use on."""
        return self.check if self.occurrence == 1 else f"{self.check} ({self.occurrence})"

    @property
    def label(self) -> str:
        """"check REQUIREMENT" (with " (N)"), the key of a check in a baseline file."""
        suffix = "" if self.occurrence == 1 else f" ({self.occurrence})"
        return f"{self.check} {self.requirement}{suffix}"


@dataclass
class ScenarioVerdicts:
    """What one scenario found on one target.

    `checks` None means "not recorded" (the short form of a baseline entry, `scenario-id: pass`):
    with `pass`, every check passed; with `skip` or `unsupported`, the scenario was not judged
    check by check."""

    verdict: str
    checks: dict[CheckKey, str] | None = None
    title: str = ""
    comment: str | None = None  # a baseline entry's comment


#: (target, scenario id) -> what it found, in run order.
Table = dict[tuple[str, str], ScenarioVerdicts]


def check_keys(pairs: Iterable[tuple[str, str]]) -> list[CheckKey]:
    """Keys for a scenario's (check, requirement) pairs in order, numbering repeated pairs."""
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for check, requirement in pairs:
        n = seen[(check, requirement)] = seen.get((check, requirement), 0) + 1
        keys.append(CheckKey(check, requirement, n))
    return keys


def table_from_run(result: RunResult) -> Table:
    table: Table = {}
    for s in result.scenarios:
        keys = check_keys((c.check, c.requirement) for c in s.checks)
        table[(s.target, s.id)] = ScenarioVerdicts(
            s.verdict, {k: c.verdict for k, c in zip(keys, s.checks)}, s.title)
    return table


def table_from_results(data: Mapping[str, Any]) -> Table:
    """The verdict table of a `results.json` document (already validated by `load_json`)."""
    table: Table = {}
    for s in data["scenarios"]:
        keys = check_keys((c["check"], c["requirement"]) for c in s["checks"])
        table[(s["target"], s["id"])] = ScenarioVerdicts(
            s["verdict"], {k: c["verdict"] for k, c in zip(keys, s["checks"])}, s.get("title", ""))
    return table


def classify(old: str | None, new: str | None) -> str:
    """same | worse | better | changed | added | removed, for one verdict (see the module doc)."""
    if old is None and new is None:
        return "same"
    if old is None:
        return "worse" if new in FAILING else "added"
    if new is None:
        return "removed"
    if old == new:
        return "same"
    diff = VERDICT_RANK[new] - VERDICT_RANK[old]
    return "worse" if diff > 0 else "better" if diff < 0 else "changed"


def mark_status(kind: str, new: str | None) -> str:
    """The status a report shows beside a verdict: the change, or `known` for a deviation the
    baseline records, or `new` for one it does not know."""
    if kind == "worse":
        return "worse"
    if kind == "added":
        return "new"
    if new in DEVIATIONS:
        return "known"
    return kind


@dataclass
class Comparison(ChangeList):
    changes: list[BaselineChange] = field(default_factory=list)
    #: (target, scenario) -> mark; (target, scenario, CheckKey) -> mark. Only for new entries.
    scenario_marks: dict[tuple[str, str], BaselineMark] = field(default_factory=dict)
    check_marks: dict[tuple[str, str, CheckKey], BaselineMark] = field(default_factory=dict)
    unchanged: int = 0  # scenarios found in both with no change at all
    not_compared: int = 0  # old scenarios left out (see `compare(only_ran=…)`)
    old_targets: list[str] = field(default_factory=list)
    new_targets: list[str] = field(default_factory=list)

    @property
    def known(self) -> int:
        return sum(1 for m in self.scenario_marks.values() if m.status == "known")


def _old_checks(old: ScenarioVerdicts, new: ScenarioVerdicts) -> dict[CheckKey, str]:
    if old.checks is not None:
        return old.checks
    if old.verdict == "pass":  # the short form `id: pass`: every check passed
        return {k: "pass" for k in (new.checks or {})}
    return {}  # `id: skip` / `id: unsupported`: the scenario was not judged check by check


_PRECEDENCE = ("worse", "known", "better", "changed", "new", "same")


def compare(old: Table, new: Table, *, only_ran: bool = False) -> Comparison:
    """What changed from OLD to NEW. With ONLY_RAN (a run against its baseline), old scenarios
    that are not in NEW are counted in `not_compared` instead of being reported `removed`: a run
    may select a part of the suite."""
    out = Comparison(old_targets=list(dict.fromkeys(t for t, _ in old)),
                     new_targets=list(dict.fromkeys(t for t, _ in new)))
    for (target, sid), n in new.items():
        o = old.get((target, sid))
        if o is None:
            kind = classify(None, n.verdict)
            out.changes.append(BaselineChange(kind, target, sid, None, None, None, n.verdict))
            out.scenario_marks[(target, sid)] = BaselineMark(None, mark_status(kind, n.verdict))
            for k, v in (n.checks or {}).items():
                out.check_marks[(target, sid, k)] = BaselineMark(None, mark_status(
                    classify(None, v), v))
            continue
        changes: list[BaselineChange] = []
        old_checks = _old_checks(o, n)
        new_checks = n.checks or {}
        if old_checks and new_checks:
            for k in [*new_checks, *(k for k in old_checks if k not in new_checks)]:
                ov, nv = old_checks.get(k), new_checks.get(k)
                kind = classify(ov, nv)
                if kind != "same":
                    changes.append(BaselineChange(kind, target, sid, k.name, k.requirement, ov, nv))
                if nv is not None:
                    out.check_marks[(target, sid, k)] = BaselineMark(ov, mark_status(kind, nv))
        else:  # one side has no checks: the scenario's verdict stands for them
            for k, v in new_checks.items():
                out.check_marks[(target, sid, k)] = BaselineMark(o.verdict, mark_status(
                    classify(o.verdict, v), v))
        # The scenario's own verdict, unless its checks already tell the same story.
        kind = classify(o.verdict, n.verdict)
        if kind != "same" and not any(c.kind == kind for c in changes):
            changes.insert(0, BaselineChange(kind, target, sid, None, None, o.verdict, n.verdict))
        kinds = {c.kind for c in changes if c.kind != "removed"}
        if n.verdict in DEVIATIONS and "worse" not in kinds:
            status = "known"
        else:
            status = next((s for s in _PRECEDENCE if s in kinds), "same")
            status = "new" if status == "added" else status
        out.scenario_marks[(target, sid)] = BaselineMark(o.verdict, status, o.comment)
        out.changes.extend(changes)
        out.unchanged += not changes
    for (target, sid), o in old.items():
        if (target, sid) in new:
            continue
        if only_ran:
            out.not_compared += 1
        else:
            out.changes.append(BaselineChange("removed", target, sid, None, None, o.verdict, None))
    return out


# --- text for people ---------------------------------------------------------------------------

_HEADINGS = {"worse": "regressions", "better": "improvements", "changed": "other changes",
             "added": "new", "removed": "removed"}


def change_line(c: BaselineChange) -> str:
    """`TARGET SCENARIO [CHECK REQUIREMENT]: OLD -> NEW`, with (new) / (not run) for a side
    that has no verdict."""
    what = f" {c.check} {c.requirement}" if c.check else ""
    old = c.old or "(new)"
    new = c.new or "(not run)"
    return f"{c.target} {c.scenario}{what}: {old} -> {new}"


def format_changes(comparison: Comparison, *, limit: int | None = None, where_all: str = "",
                   kinds: Iterable[str] = ("worse", "better", "changed", "added", "removed")
                   ) -> list[str]:
    """Lines listing the changes of COMPARISON by kind, regressions first. Only regressions are
    always listed in full; LIMIT cuts the other lists short (saying WHERE_ALL are listed)."""
    lines: list[str] = []
    # A target only one side has: one line for it, not one per scenario (its regressions stay).
    whole = {"added": set(comparison.new_targets) - set(comparison.old_targets),
             "removed": set(comparison.old_targets) - set(comparison.new_targets)}
    for kind in kinds:
        items = [c for c in comparison.changes if c.kind == kind]
        if not items:
            continue
        lines.append(f"{_HEADINGS[kind]} ({len(items)}):")
        targets = whole.get(kind, set())
        for target in sorted(targets):
            n = sum(1 for c in items if c.target == target)
            if n:
                side = "the new results only" if kind == "added" else "the old results only"
                lines.append(f"  {target}: {n} scenario(s) (a target of {side})")
        items = [c for c in items if c.target not in targets]
        shown = items if limit is None or kind == "worse" else items[:limit]
        lines += [f"  {change_line(c)}" for c in shown]
        if len(shown) < len(items):
            lines.append(f"  … and {len(items) - len(shown)} more{where_all}")
    return lines


def summary_line(comparison: Comparison) -> str:
    counts = {k: sum(1 for c in comparison.changes if c.kind == k) for k in _HEADINGS}
    parts = [f"{counts['worse']} regression{'s' if counts['worse'] != 1 else ''}",
             f"{counts['better']} improvement{'s' if counts['better'] != 1 else ''}"]
    if counts["changed"]:
        parts.append(f"{counts['changed']} other change(s)")
    if comparison.known:
        parts.append(f"{comparison.known} known deviation(s)")
    if counts["added"]:
        parts.append(f"{counts['added']} new")
    if counts["removed"]:
        parts.append(f"{counts['removed']} removed")
    if comparison.not_compared:
        parts.append(f"{comparison.not_compared} baseline scenario(s) not run")
    parts.append(f"{comparison.unchanged} unchanged")
    return ", ".join(parts)
