"""What a lane is: a source of cases (a Hypothesis strategy or a stateful machine) and the way
to run one case against the target and judge it.

Lanes are small classes registered in ``harness.fuzz.lanes.LANES``; the campaign
(``harness.fuzz.campaign``) drives any of them with a seed and a budget, shrinks what an oracle
caught, and saves it as a replay file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from hypothesis.strategies import SearchStrategy

from ..model import Execution, Finding, Stats, found_type
from ..target import FuzzTarget

if TYPE_CHECKING:
    from hypothesis.stateful import RuleBasedStateMachine


@dataclass
class Context:
    """What an execution needs: the target, the statistics, and when to probe the target."""

    lane: Lane
    target: FuzzTarget | None
    stats: Stats
    probe_every: int = 25  # a banner probe every N executions (and after a suspicious one)
    reply_timeout: float = 2.0
    # Findings already made, by their oracles: met again, they are counted, not shrunk again.
    known: dict[tuple[str, ...], Finding] = field(default_factory=dict)
    since_probe: int = field(default=0, init=False)

    def new_example(self) -> None:
        """Hypothesis generated (or is shrinking) one more case."""
        self.stats.examples += 1

    def run_case(self, case: Any) -> Execution:
        """Run CASE, judge it, count it; raise Found when an oracle fired (Hypothesis shrinks)."""
        mark = self.target.mark() if self.target else None
        ex = self.lane.execute(self, case)
        self.finish(self.lane.case_json(case), ex, mark)
        return ex

    def finish(self, case_json: Any, ex: Execution, mark: Any) -> None:
        """The target-level oracles after an execution, then the verdict."""
        if self.target is not None:
            self.since_probe += 1
            probe = ex.suspicious or self.since_probe >= self.probe_every or bool(ex.violations)
            if probe:
                self.since_probe = 0
            ex.violations.extend(self.target.health(mark, probe=probe))
            if ex.violations:
                ex.evidence.extend(self.target.logs_since(mark))
        self.stats.record(ex)
        if ex.violations:
            if self.target is not None:  # a hung target is restarted, a dead one too
                self.target.recover(restart=any(v.oracle == "no-banner" for v in ex.violations))
            signature = tuple(sorted({v.oracle for v in ex.violations}))
            if signature in self.known:  # met again: counted, and kept if it is smaller
                self.known[signature].met_again(case_json, ex)
                return
            raise found_type(signature)(self.lane.name, case_json, ex)


class Lane:
    name: ClassVar[str]
    description: ClassVar[str]
    needs_target: ClassVar[bool] = True  # False: in-process (the `self` lane)
    needs_managed: ClassVar[bool] = False  # outbound lanes inject mail into the target
    knobs: ClassVar[Mapping[str, Any]] = {}  # over the spec's fuzz knobs
    batch: ClassVar[int] = 25  # examples per Hypothesis run (the budget is checked between runs)
    stateful: ClassVar[bool] = False

    def setup(self, ctx: Context) -> None:
        """Before the first case (a lane with a world of its own builds it here)."""

    def teardown(self, ctx: Context) -> None:
        """After the last case, also on Ctrl-C."""

    def strategy(self) -> SearchStrategy[Any]:
        raise NotImplementedError

    def machine(self, ctx: Context) -> type[RuleBasedStateMachine]:
        raise NotImplementedError

    def execute(self, ctx: Context, case: Any) -> Execution:
        raise NotImplementedError

    def case_json(self, case: Any) -> Any:
        return case

    def case_from_json(self, data: Any) -> Any:
        return data

    def describe_case(self, case_json: Any) -> str:
        """One line for the report's list of findings."""
        return str(case_json)[:200]
