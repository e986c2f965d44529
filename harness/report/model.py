"""The result model: what a run found, independent of how it is written out.

`results.json` is this model serialised with `to_dict`; its schema is documented in
`docs/results-schema.md` and versioned by SCHEMA_VERSION.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

SCHEMA_VERSION = 1


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    UNSUPPORTED = "unsupported"
    SKIP = "skip"
    ERROR = "error"


# Worst first: the scenario's outcome is the worst of its checks' outcomes.
OUTCOME_SEVERITY = {
    Outcome.ERROR: 4,
    Outcome.FAIL: 3,
    Outcome.UNSUPPORTED: 2,
    Outcome.SKIP: 1,
    Outcome.PASS: 0,
}


def worst(outcomes: list[Outcome], default: Outcome = Outcome.PASS) -> Outcome:
    return max(outcomes, key=OUTCOME_SEVERITY.__getitem__, default=default)


@dataclass
class Evidence:
    """One piece of evidence: a transcript, log excerpt, DNS log, bytes, or decoded object.

    `kind` tells a writer how to show it: "transcript" (content is a list of
    {"dir": "C"|"S"|"note", "t": seconds, "data": str}), "log" (str, one line per log line),
    "text" (str), "bytes" (str: repr-escaped), "table" (list of dicts), "json" (any JSON).
    """

    label: str
    kind: str
    content: Any


@dataclass
class BaselineMark:
    """How a verdict compares with the baseline of `mtaconform run --baseline FILE`."""

    verdict: str | None  # the baseline's verdict; None: not in the baseline
    status: str  # same | known | worse | better | changed | new (see harness/report/compare.py)
    comment: str | None = None  # the baseline entry's comment (why the deviation is accepted)


@dataclass
class BaselineChange:
    """One verdict that differs between a baseline (or older results) and this run."""

    kind: str  # worse | better | changed | added | removed
    target: str
    scenario: str
    check: str | None  # check name ("name (2)" for its second use in the scenario); None: the scenario
    requirement: str | None
    old: str | None  # None: not in the baseline
    new: str | None  # None: did not run


class ChangeList:
    """Regressions and improvements among `changes` (a baseline summary, a comparison)."""

    changes: list[BaselineChange]

    @property
    def regressions(self) -> list[BaselineChange]:
        return [c for c in self.changes if c.kind == "worse"]

    @property
    def improvements(self) -> list[BaselineChange]:
        return [c for c in self.changes if c.kind == "better"]


@dataclass
class BaselineSummary(ChangeList):
    """The comparison of a run with its baseline file (`mtaconform run --baseline FILE`)."""

    file: str
    created: str
    tool: str
    changes: list[BaselineChange] = field(default_factory=list)
    known: int = 0  # scenarios whose deviation the baseline records (not worse)
    not_compared: int = 0  # baseline scenarios of this run's targets that did not run


STRENGTH = {"MUST": "MUST", "MUST NOT": "MUST", "SHALL": "MUST", "SHALL NOT": "MUST", "REQUIRED": "MUST",
            "SHOULD": "SHOULD", "SHOULD NOT": "SHOULD", "RECOMMENDED": "SHOULD",
            "MAY": "MAY", "OPTIONAL": "MAY", "INFO": "MAY"}


@dataclass
class CheckResult:
    check: str  # name of the check function, e.g. "prdr_intro_line"
    requirement: str  # requirement ID, e.g. "PRDR-06"
    level: str  # the requirement's strength: "MUST", "SHOULD" or "MAY"
    outcome: Outcome
    message: str  # one sentence: what was found
    expected: str | None = None  # what was allowed
    actual: str | None = None  # what arrived
    evidence: list[Evidence] = field(default_factory=list)
    baseline: BaselineMark | None = None  # set by `run --baseline`

    def __post_init__(self) -> None:
        # Levels are kept as strengths, so "MUST NOT" can never pass for a non-strict failure.
        if self.level not in STRENGTH:
            raise ValueError(f"unknown requirement level {self.level!r}")
        self.level = STRENGTH[self.level]

    @property
    def verdict(self) -> str:
        """Graded verdict: a failed SHOULD/MAY check is "non-strict", not a failure."""
        if self.outcome is Outcome.FAIL and self.level != "MUST":
            return "non-strict"
        return self.outcome.value


@dataclass
class ScenarioResult:
    id: str
    title: str
    feature: str
    side: str  # "server" (MTA receives from the harness) or "client" (MTA delivers to fake MX)
    target: str
    requirements: list[str]
    outcome: Outcome
    checks: list[CheckResult] = field(default_factory=list)
    duration_s: float = 0.0
    description: str = ""
    expectation: str = ""
    reason: str | None = None  # why skip / unsupported / error
    traceback: str | None = None  # for harness errors
    evidence: list[Evidence] = field(default_factory=list)  # scenario-wide: transcripts, logs
    artifacts: list[str] = field(default_factory=list)  # paths relative to the report folder
    source: str = ""  # scenario file, relative to the project
    baseline: BaselineMark | None = None  # set by `run --baseline`

    @property
    def verdict(self) -> str:
        """pass | fail | non-strict | unsupported | skip | error."""
        failing = [c for c in self.checks if c.outcome is Outcome.FAIL]
        if self.outcome is Outcome.FAIL and failing and all(c.level != "MUST" for c in failing):
            return "non-strict"
        return self.outcome.value

    @property
    def must_failed(self) -> bool:
        """A MUST-level check failed, or the scenario failed without any check saying why."""
        if self.outcome is not Outcome.FAIL:
            return False
        failing = [c for c in self.checks if c.outcome is Outcome.FAIL]
        return not failing or any(c.level == "MUST" for c in failing)


@dataclass
class TargetInfo:
    name: str
    kind: str  # "managed" or "external"
    version: str | None = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0


@dataclass
class RequirementInfo:
    id: str
    title: str
    level: str
    strength: str
    citation: str
    feature: str
    side: str


@dataclass
class RunResult:
    tool: dict[str, str]
    started: str  # ISO 8601 UTC
    finished: str
    targets: list[TargetInfo]
    scenarios: list[ScenarioResult]
    requirements: list[RequirementInfo] = field(default_factory=list)
    stopped_early: str | None = None  # e.g. "interrupted (SIGINT)"
    baseline: BaselineSummary | None = None  # set by `run --baseline`

    def summary(self) -> dict[str, Any]:
        counts = {o.value: 0 for o in Outcome}
        verdicts: dict[str, int] = {}
        for s in self.scenarios:
            counts[s.outcome.value] += 1
            verdicts[s.verdict] = verdicts.get(s.verdict, 0) + 1
        covered = sorted({r for s in self.scenarios for r in s.requirements})
        return {
            "scenarios": len(self.scenarios),
            "outcomes": counts,
            "verdicts": verdicts,
            "must_failures": sum(1 for s in self.scenarios if s.must_failed),
            "requirements_covered": len(covered),
            "duration_s": round(sum(s.duration_s for s in self.scenarios), 3),
        }

    def exit_status(self) -> int:
        """0: no MUST failed; 1: a MUST failed; 3: the harness itself broke (error outcome).

        With a baseline: 0 when no verdict got worse than the baseline's (known failures
        included); 1 when one did; 3 when one got worse by becoming `error`, or the run stopped
        early."""
        if self.stopped_early:
            return 3
        if self.baseline is not None:
            worse = self.baseline.regressions
            if any(c.new == Outcome.ERROR.value for c in worse):
                return 3
            return 1 if worse else 0
        if any(s.outcome is Outcome.ERROR for s in self.scenarios):
            return 3
        return 1 if any(s.must_failed for s in self.scenarios) else 0

    def to_dict(self) -> dict[str, Any]:
        def conv(obj: Any) -> Any:
            if isinstance(obj, Enum):
                return obj.value
            if isinstance(obj, dict):
                return {k: conv(v) for k, v in obj.items()}
            if isinstance(obj, list | tuple):
                return [conv(v) for v in obj]
            return obj

        scenarios = []
        for s in self.scenarios:
            d = conv(asdict(s))
            d["verdict"] = s.verdict
            for c, cd in zip(s.checks, d["checks"]):
                cd["verdict"] = c.verdict
            scenarios.append(d)
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": self.tool,
            "started": self.started,
            "finished": self.finished,
            "stopped_early": self.stopped_early,
            "targets": [conv(asdict(t)) for t in self.targets],
            "requirements": [asdict(r) for r in self.requirements],
            "scenarios": scenarios,
            "summary": self.summary(),
            "baseline": None if self.baseline is None else {
                **conv(asdict(self.baseline)),
                "regressions": len(self.baseline.regressions),
                "improvements": len(self.baseline.improvements),
            },
        }
