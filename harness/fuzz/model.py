"""What a fuzz campaign produces: violations of oracles, findings, statistics.

A *case* is one input of a lane (a PROXY header with its fragmentation, an SMTP command script,
a mutated PRDR reply block…), always expressible as JSON so that a finding is a self-contained
replay file. An *execution* runs one case against the target and judges it with the oracles.
"""

from __future__ import annotations

import base64
import functools
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..engine.yamlsrc import InputError
from ..report.model import Evidence

FINDING_FORMAT = "mtaconform-fuzz-finding/1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class Violation:
    """An oracle that fired: which one, what it saw, and the requirement it stands for."""

    oracle: str
    message: str
    cite: str = ""  # the requirement the oracle checks (RFC and section)
    evidence: tuple[Evidence, ...] = ()


@dataclass
class Execution:
    """What one case did: the oracles that fired, and what it reached (for the statistics)."""

    violations: list[Violation] = field(default_factory=list)
    reply_classes: set[str] = field(default_factory=set)  # e.g. "250", "503", "closed"
    states: set[str] = field(default_factory=set)  # protocol states reached, lane-defined
    evidence: list[Evidence] = field(default_factory=list)
    suspicious: bool = False  # a time-out or an abrupt close: worth a liveness probe


class Found(Exception):
    """Raised inside a Hypothesis example when an oracle fires, so that Hypothesis shrinks it.

    Carries the case as JSON: the last one raised is the shrunk one."""

    def __init__(self, lane: str, case: Any, execution: Execution) -> None:
        self.lane = lane
        self.case = case
        self.execution = execution
        first = execution.violations[0]
        super().__init__(f"{first.oracle}: {first.message}")

    @property
    def signature(self) -> tuple[str, ...]:
        return tuple(sorted({v.oracle for v in self.execution.violations}))


@functools.cache
def found_type(signature: tuple[str, ...]) -> type[Found]:
    """A Found subclass per set of oracles: Hypothesis tells failures apart by exception type,
    so each kind is shrunk on its own and a shrink cannot drift from one oracle to another."""
    return type(f"Found[{','.join(signature)}]", (Found,), {})


@dataclass
class Finding:
    lane: str
    oracles: list[str]
    message: str
    case: Any  # the lane's JSON form of the (shrunk) case
    violations: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    target: dict[str, Any]  # name, source (spec file or smtp:// URL), knobs
    seed: int
    found: str  # ISO time
    hits: int = 1  # how often the campaign ran into it (unshrunk)
    file: str = ""  # where it was saved, relative to the campaign folder

    def met_again(self, case: Any, execution: Execution) -> None:
        """The same oracles fired on another case: a smaller one (a later batch may find what a
        time-limited shrink did not) replaces the case and its evidence."""
        self.hits += 1
        if len(json.dumps(case, default=str)) < len(json.dumps(self.case, default=str)):
            self.case = case
            self.message = "; ".join(f"{v.oracle}: {v.message}" for v in execution.violations)
            self.violations = [violation_json(v) for v in execution.violations]
            self.evidence = [evidence_json(e) for e in execution.evidence]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("file")
        return {"format": FINDING_FORMAT, **data}

    @classmethod
    def from_file(cls, path: Path) -> Finding:
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise InputError(path, None, f"cannot read the finding: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            raise InputError(path, line, f"not a finding file (JSON): {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FINDING_FORMAT:
            raise InputError(path, 1, f"not a finding file: expected \"format\": \"{FINDING_FORMAT}\"")
        try:
            return cls(lane=str(data["lane"]), oracles=list(data["oracles"]), message=str(data["message"]),
                       case=data["case"], violations=list(data.get("violations", [])),
                       evidence=list(data.get("evidence", [])), target=dict(data["target"]),
                       seed=int(data.get("seed", 0)), found=str(data.get("found", "")),
                       hits=int(data.get("hits", 1)), file=str(path))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, None, f"incomplete finding file: {exc!r}") from None


@dataclass
class Stats:
    lane: str
    target: str
    seed: int
    executions: int = 0  # every case run against the target, shrinking included
    examples: int = 0  # cases Hypothesis generated (not counting shrinking)
    elapsed_s: float = 0.0
    reply_classes: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    oracle_hits: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    flaky_batches: int = 0  # Hypothesis runs abandoned because the target answered differently
    stopped: str = ""  # why the campaign ended: "time", "examples", "interrupted"

    @property
    def per_second(self) -> float:
        return self.executions / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def record(self, ex: Execution) -> None:
        self.executions += 1
        self.reply_classes.update(ex.reply_classes)
        self.states.update(ex.states)
        self.oracle_hits.update(v.oracle for v in ex.violations)

    def to_json(self) -> dict[str, Any]:
        return {"lane": self.lane, "target": self.target, "seed": self.seed,
                "executions": self.executions, "examples": self.examples,
                "elapsed_s": round(self.elapsed_s, 3), "executions_per_second": round(self.per_second, 1),
                "distinct_reply_classes": len(self.reply_classes), "reply_classes": dict(self.reply_classes),
                "distinct_states": len(self.states), "states": dict(self.states),
                "oracle_hits": dict(self.oracle_hits), "restarts": self.restarts, "flaky_batches": self.flaky_batches,
                "stopped": self.stopped}


def evidence_json(ev: Evidence) -> dict[str, Any]:
    return {"label": ev.label, "kind": ev.kind, "content": ev.content}


def violation_json(v: Violation) -> dict[str, Any]:
    return {"oracle": v.oracle, "message": v.message, "cite": v.cite,
            "evidence": [evidence_json(e) for e in v.evidence]}
