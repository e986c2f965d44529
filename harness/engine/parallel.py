"""Running with several workers: each worker is a process with its own lab and target."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import queue as queue_mod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..report.model import RunResult, ScenarioResult
from ..targets.spec import TargetSpec
from .catalogue import Catalogue
from .checks.base import CheckDef
from .runner import RunOptions, Runner
from .scenario import Scenario


def partition(scenarios: Sequence[Scenario], workers: int) -> list[list[Scenario]]:
    """Contiguous runs of the knob-sorted scenarios, one per worker.

    Sorting by knobs first keeps each worker's restarts as few as in a single run, plus at most
    one where a knob group is split between two workers; slow scenarios are spread first.
    """
    ordered = sorted(scenarios, key=lambda s: (s.knob_key(), s.id))
    workers = max(1, min(workers, len(ordered)))
    size, extra = divmod(len(ordered), workers)
    parts, start = [], 0
    for i in range(workers):
        end = start + size + (1 if i < extra else 0)
        parts.append(ordered[start:end])
        start = end
    return [p for p in parts if p]


def _worker(index: int, scenarios: list[Scenario], targets: list[TargetSpec], out_dir: Path,
            slow: bool, reply_timeout: float | None, events: Any) -> None:
    from .catalogue import load_catalogue
    from .checks import all_checks

    def started(sc: Scenario, target: str) -> None:
        events.put(("start", sc.id, target))

    def finished(res: ScenarioResult) -> None:
        events.put(("result", res, None))

    try:
        options = RunOptions(out_dir=out_dir, slow=slow, workdir=None,
                             reply_timeout=reply_timeout, on_start=started, on_result=finished)
        result = Runner(scenarios, targets, load_catalogue(), all_checks(), options).run()
        events.put(("done", index, result))
    except KeyboardInterrupt:
        events.put(("interrupted", index, None))
    except BaseException as exc:  # report, don't vanish: the parent turns it into a harness error
        import traceback
        events.put(("crashed", index, traceback.format_exc()))
        raise SystemExit(3) from exc


def run_parallel(scenarios: Sequence[Scenario], targets: Sequence[TargetSpec], catalogue: Catalogue,
                 checks: Mapping[str, CheckDef], *, out_dir: Path, workers: int = 1, slow: bool = False,
                 reply_timeout: float | None = None,
                 on_start: Callable[[Scenario, str], None] | None = None,
                 on_result: Callable[[ScenarioResult], None] | None = None) -> RunResult:
    if workers <= 1:
        options = RunOptions(out_dir=out_dir, slow=slow, reply_timeout=reply_timeout,
                             on_start=on_start, on_result=on_result)
        return Runner(scenarios, targets, catalogue, checks, options).run()

    by_id = {s.id: s for s in scenarios}
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    parts = partition(scenarios, workers)
    procs = [ctx.Process(target=_worker, args=(i, part, list(targets), out_dir, slow, reply_timeout, events),
                         daemon=False) for i, part in enumerate(parts)]
    for p in procs:
        p.start()
    results: list[RunResult] = []
    crashes: list[str] = []
    interrupted = False
    pending = len(procs)
    try:
        while pending:
            try:
                kind, a, b = events.get(timeout=1.0)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if kind == "start" and on_start:
                on_start(by_id[a], b)
            elif kind == "result" and on_result:
                on_result(a)
            elif kind == "done":
                results.append(b)
                pending -= 1
            elif kind == "interrupted":
                interrupted = True
                pending -= 1
            elif kind == "crashed":
                crashes.append(b)
                pending -= 1
    except KeyboardInterrupt:
        interrupted = True  # the workers got the same SIGINT and are cleaning up their labs
    finally:
        _stop_workers(procs)
    return merge(results, interrupted, crashes)


def _stop_workers(procs: list[Any]) -> None:
    """Let workers finish cleaning up their labs; interrupt, then kill, any that linger."""
    deadline = time.monotonic() + 30
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGINT)  # a worker removes its lab on KeyboardInterrupt
            p.join(10)
        if p.is_alive():
            p.kill()
            p.join(5)


def merge(results: list[RunResult], interrupted: bool, crashes: list[str]) -> RunResult:
    base = results[0] if results else None
    from .. import __version__
    from .runner import _now
    merged = RunResult(tool={"name": "mtaconform", "version": __version__},
                       started=min((r.started for r in results), default=_now()),
                       finished=max((r.finished for r in results), default=_now()),
                       targets=[], scenarios=[], requirements=base.requirements if base else [])
    for r in results:
        for t in r.targets:
            known = next((x for x in merged.targets if x.name == t.name), None)
            if known is None:
                merged.targets.append(t)
            else:
                known.restarts += t.restarts
                # A worker whose scenarios were all skipped never started (nor probed) the
                # target: take the version and probe results from one that did.
                known.version = known.version or t.version
                for key, value in t.capabilities.items():
                    if value and not known.capabilities.get(key):
                        known.capabilities[key] = value
        merged.scenarios.extend(r.scenarios)
    merged.scenarios.sort(key=lambda s: (s.target, s.feature, s.id))
    if interrupted:
        merged.stopped_early = "interrupted"
    if crashes:
        merged.stopped_early = "a worker crashed:\n" + "\n".join(crashes)
    return merged
