#!/usr/bin/env python3
"""Benchmark the conformance suite: wall time, scenarios per second, target restarts.

    sudo .venv/bin/python benchmarks/suite.py                 # every scenario, one worker
    sudo .venv/bin/python benchmarks/suite.py -n 2 --repeat 3 # two workers, three rounds
    sudo .venv/bin/python benchmarks/suite.py --no-waits      # leave out scenarios that wait on purpose

Scenarios that wait on purpose (PRDR-21's pauses, time-outs) measure the target's patience, not
the harness: --no-waits leaves out every scenario whose world has a delay or hang of a second or
more, so the figures show the harness's own cost per scenario.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.cli import DEFAULT_SCENARIOS  # noqa: E402
from harness.engine.actions import VALIDATORS  # noqa: E402
from harness.engine.catalogue import load_catalogue  # noqa: E402
from harness.engine.checks import all_checks  # noqa: E402
from harness.engine.parallel import run_parallel  # noqa: E402
from harness.engine.scenario import Scenario, load_scenarios  # noqa: E402
from harness.targets.spec import resolve  # noqa: E402


def waits(sc: Scenario) -> bool:
    def walk(value: object) -> bool:
        if isinstance(value, dict):
            if value.get("hang") or float(value.get("delay", 0) or 0) >= 1:
                return True
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return False

    return walk(dict(sc.world)) or any("timeout" in k for k in sc.knobs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="exim")
    ap.add_argument("-n", "--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--feature", action="append", default=[])
    ap.add_argument("--no-waits", action="store_true", help="leave out scenarios that wait on purpose")
    args = ap.parse_args()

    catalogue, checks = load_catalogue(), all_checks()
    scenarios = [s for s in load_scenarios([DEFAULT_SCENARIOS], catalogue, checks, VALIDATORS)
                 if not s.slow and (not args.feature or s.feature in args.feature)]
    if args.no_waits:
        scenarios = [s for s in scenarios if not waits(s)]
    target = resolve(args.target)
    groups = len({s.knob_key() for s in scenarios})
    print(f"{len(scenarios)} scenarios in {groups} target configurations, target {target.name}, "
          f"{args.workers} worker(s), {args.repeat} round(s)")
    walls: list[float] = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="mtaconform-bench-") as out:
            start = time.perf_counter()
            result = run_parallel(scenarios, [target], catalogue, checks, out_dir=Path(out),
                                  workers=args.workers)
            wall = time.perf_counter() - start
        walls.append(wall)
        restarts = sum(t.restarts for t in result.targets)
        busy = sum(s.duration_s for s in result.scenarios)
        slowest = max(result.scenarios, key=lambda s: s.duration_s)
        print(f"round {i + 1}: wall {wall:.2f} s, {len(result.scenarios) / wall:.1f} scenarios/s, "
              f"target started {restarts} time(s), scenario time {busy:.2f} s, "
              f"slowest {slowest.id} {slowest.duration_s:.2f} s, verdicts {result.summary()['verdicts']}")
    if len(walls) > 1:
        print(f"wall time: median {statistics.median(walls):.2f} s, min {min(walls):.2f} s, "
              f"max {max(walls):.2f} s; {len(scenarios) / statistics.median(walls):.1f} scenarios/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
