"""A campaign: one lane, one target, a seed and a budget; findings shrunk and saved.

Hypothesis runs in batches of a few dozen examples, each batch seeded from the campaign's seed,
so a campaign is reproducible and the time budget is checked between batches. An oracle that
fires raises ``Found`` inside the example; Hypothesis shrinks the case, and the last ``Found`` it
raises carries the minimal one. A finding whose oracles were already found is counted, not
shrunk again, and the campaign goes on exploring.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import seed as hseed
from hypothesis.errors import Flaky, FlakyReplay, FlakyStrategyDefinition
from hypothesis.stateful import run_state_machine_as_test

from .cli_args import DEFAULT_SHRINK_SECONDS
from .lanes.base import Context, Lane
from .model import Finding, Found, Stats, evidence_json, violation_json
from .target import FuzzTarget

DEFAULT_SECONDS = 60.0


@contextlib.contextmanager
def shrink_limit(seconds: float) -> Iterator[None]:
    """Hypothesis shrinks for up to five minutes; against a live MTA (tens of milliseconds a case)
    a campaign wants its finding sooner. The limit is an internal of Hypothesis's engine: when it
    is gone, shrinking simply keeps Hypothesis's own limit."""
    try:
        from hypothesis.internal.conjecture import engine
    except ImportError:
        yield
        return
    if not hasattr(engine, "MAX_SHRINKING_SECONDS"):
        yield
        return
    with mock.patch.object(engine, "MAX_SHRINKING_SECONDS", seconds):
        yield


@dataclass
class Budget:
    seconds: float | None = None
    examples: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.examples is None:
            self.seconds = DEFAULT_SECONDS

    def left(self, stats: Stats, started: float) -> int:
        """Examples the next batch may generate (0: the budget is spent)."""
        if self.seconds is not None and time.monotonic() - started >= self.seconds:
            return 0
        if self.examples is not None:
            return max(0, self.examples - stats.examples)
        return 1 << 30


@dataclass
class CampaignResult:
    stats: Stats
    findings: list[Finding] = field(default_factory=list)
    out_dir: Path | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def founds_in(exc: BaseException) -> list[Found]:
    """The Founds inside what Hypothesis raised: one, a group of distinct ones (several bugs in
    one batch), or the originals inside a flaky failure."""
    if isinstance(exc, Found):
        return [exc]
    out: list[Found] = []
    for inner in getattr(exc, "exceptions", ()) or ():
        out.extend(founds_in(inner))
    cause = exc.__cause__ or exc.__context__
    if not out and cause is not None and cause is not exc:
        out = founds_in(cause)
    return out


class Campaign:
    def __init__(self, lane: Lane, target: FuzzTarget | None, *, seed: int, budget: Budget,
                 out_dir: Path, reply_timeout: float = 2.0, shrink_seconds: float = DEFAULT_SHRINK_SECONDS,
                 on_tick: Callable[[Stats, list[Finding]], None] | None = None) -> None:
        self.lane = lane
        self.target = target
        self.seed = seed
        self.budget = budget
        self.out_dir = out_dir
        self.on_tick = on_tick
        self.shrink_seconds = shrink_seconds
        name = target.spec.name if target else "harness (in-process)"
        self.stats = Stats(lane.name, name, seed)
        self.ctx = Context(lane, target, self.stats, reply_timeout=reply_timeout)
        self.findings: list[Finding] = []

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        started = time.monotonic()
        self.lane.setup(self.ctx)
        batch_no = 0
        try:
            while True:
                left = self.budget.left(self.stats, started)
                if left == 0:
                    self.stats.stopped = "time" if self.budget.seconds is not None else "examples"
                    break
                before = self.stats.executions
                self._batch(self.seed * 100_003 + batch_no, min(left, self.lane.batch))
                batch_no += 1
                self.stats.elapsed_s = time.monotonic() - started
                if self.on_tick:
                    self.on_tick(self.stats, self.findings)
                if self.stats.executions == before:  # the strategy has nothing more to give
                    self.stats.stopped = "exhausted"
                    break
        except KeyboardInterrupt:
            self.stats.stopped = "interrupted"
        finally:
            self.stats.elapsed_s = time.monotonic() - started
            if self.target is not None:
                self.stats.restarts = self.target.restarts
            self.lane.teardown(self.ctx)
            for finding in self.findings:  # hits counted, smaller cases met since
                self.save(finding)
        return CampaignResult(self.stats, self.findings, self.out_dir)

    def _settings(self, examples: int) -> settings:
        return settings(max_examples=examples, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                        report_multiple_bugs=True, print_blob=False, stateful_step_count=15)

    def _batch(self, batch_seed: int, examples: int) -> None:
        with shrink_limit(self.shrink_seconds):
            self._hypothesis(batch_seed, examples)

    def _hypothesis(self, batch_seed: int, examples: int) -> None:
        cfg = self._settings(examples)
        try:
            if self.lane.stateful:
                machine = self.lane.machine(self.ctx)
                hseed(batch_seed)(machine)
                run_state_machine_as_test(machine, settings=cfg)
            else:
                @hseed(batch_seed)
                @cfg
                @given(self.lane.strategy())
                def example(case: Any) -> None:
                    self.ctx.new_example()
                    self.ctx.run_case(case)

                example()
        except KeyboardInterrupt:
            raise
        except (FlakyStrategyDefinition, FlakyReplay):
            # The target answered differently when Hypothesis replayed a case (timing, state it
            # kept): that batch cannot shrink; the campaign goes on with the next one.
            self.stats.flaky_batches += 1
        except (Found, Flaky, BaseExceptionGroup) as exc:  # noqa: F821 - builtin on 3.11
            found = founds_in(exc)
            if not found:
                raise
            for one in found:
                self._record(one, flaky=isinstance(exc, Flaky))

    # -- findings -------------------------------------------------------------------------------

    def _record(self, found: Found, *, flaky: bool) -> None:
        sig = found.signature
        if sig in self.ctx.known:  # found again by a flaky path
            self.ctx.known[sig].hits += 1
            return
        ex = found.execution
        message = "; ".join(f"{v.oracle}: {v.message}" for v in ex.violations)
        if flaky:
            message += " (flaky: Hypothesis could not make it fail again while shrinking)"
        finding = Finding(
            lane=self.lane.name, oracles=list(sig), message=message, case=found.case,
            violations=[violation_json(v) for v in ex.violations],
            evidence=[evidence_json(e) for e in ex.evidence],
            target=self.target.describe if self.target else {"name": "harness", "source": "in-process"},
            seed=self.seed, found=_now())
        self.ctx.known[sig] = finding
        self.findings.append(finding)
        self.save(finding)

    def save(self, finding: Finding) -> None:
        folder = self.out_dir / "findings"
        folder.mkdir(parents=True, exist_ok=True)
        if not finding.file:
            n = self.findings.index(finding) + 1
            finding.file = f"findings/{finding.lane}-{n:03d}-{finding.oracles[0]}.json"
        (self.out_dir / finding.file).write_text(json.dumps(finding.to_json(), indent=2, default=str) + "\n")
