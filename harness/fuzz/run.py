"""`mtaconform fuzz` and `mtaconform replay`: the campaign and the replay of one finding."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from ..engine.yamlsrc import InputError
from ..targets import spec as target_spec
from ..targets.spec import TargetSpec
from .campaign import Budget, Campaign, CampaignResult
from .lanes import lane_names, make_lane
from .lanes.base import Context, Lane
from .model import Finding, Found, Stats
from .report import write_campaign_report
from .target import FuzzTarget, FuzzTargetError, open_fuzz_target

EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_HARNESS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class FuzzProgress:
    """A status line on a terminal; a line every 10 s in a log (CI)."""

    def __init__(self, enabled: bool) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self._last = 0.0
        self._seen = 0

    def tick(self, stats: Stats, findings: list[Finding]) -> None:
        if not self.enabled:
            return
        for f in findings[self._seen:]:
            self.console.print(f"[bold red]finding[/] {f.file}: {f.message[:300]}", soft_wrap=True, markup=True)
        self._seen = len(findings)
        now = time.monotonic()
        if not self.live and now - self._last < 10:
            return
        self._last = now
        line = (f"{stats.lane}: {stats.executions} executions, {stats.per_second:.1f}/s, "
                f"{len(stats.reply_classes)} reply classes, {len(stats.states)} states, "
                f"{len(findings)} finding(s), {stats.elapsed_s:.0f} s")
        if self.live:
            self.console.print(line, end="\r", soft_wrap=True)
        else:
            self.console.print(line, soft_wrap=True)


def _lane(name: str) -> Lane:
    if name not in lane_names():
        raise InputError("LANE", None, f"unknown lane {name!r} (lanes: {', '.join(lane_names())})")
    return make_lane(name)


def _needs_root(spec: TargetSpec | None) -> bool:
    return spec is not None and spec.managed and os.geteuid() != 0


@contextlib.contextmanager
def _target(lane: Lane, spec: TargetSpec | None, out: Path, reply_timeout: float,
            knobs: dict[str, Any] | None = None) -> Iterator[FuzzTarget | None]:
    if not lane.needs_target or spec is None:
        yield None
        return
    if lane.needs_managed and not spec.managed:
        raise InputError("--target", None, f"lane {lane.name} injects mail into the target: "
                                           f"it needs a managed target, not {spec.name}")
    with open_fuzz_target(spec, knobs={**lane.knobs, **(knobs or {})}, out_dir=out,
                          reply_timeout=reply_timeout) as ft:
        yield ft


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def summary_lines(result: CampaignResult) -> list[str]:
    s = result.stats
    lines = [f"{s.lane} on {s.target}: {s.executions} executions in {s.elapsed_s:.1f} s "
             f"({s.per_second:.1f}/s), {s.examples} examples, seed {s.seed}",
             f"  distinct reply classes: {len(s.reply_classes)} ({', '.join(sorted(s.reply_classes)[:12])}"
             f"{'…' if len(s.reply_classes) > 12 else ''})",
             f"  distinct protocol states: {len(s.states)}",
             f"  target restarts: {s.restarts}",
             f"  findings: {len(result.findings)}"]
    lines += [f"    {f.file}: {f.message[:300]}" for f in result.findings]
    return lines


def cmd_fuzz(args: argparse.Namespace) -> int:
    lane = _lane(args.lane)
    if args.seconds is not None and args.examples is not None:
        raise InputError("--seconds/--examples", None, "give one budget: --seconds or --examples")
    if (args.seconds is not None and args.seconds <= 0) or (args.examples is not None and args.examples < 1):
        raise InputError("--seconds/--examples", None, "the budget must be positive")
    spec = target_spec.resolve(args.target) if lane.needs_target else None
    if _needs_root(spec):
        print("mtaconform: managed targets run in a network namespace: run as root", file=sys.stderr)
        return EXIT_USAGE
    out: Path = args.out or Path("reports/fuzz") / lane.name
    out.mkdir(parents=True, exist_ok=True)
    for old in (out / "findings").glob("*.json") if (out / "findings").is_dir() else ():
        old.unlink()  # a campaign's folder holds that campaign's findings only
    progress = FuzzProgress(enabled=not args.quiet)
    started = _now()
    try:
        with _target(lane, spec, out, args.reply_timeout) as ft:
            campaign = Campaign(lane, ft, seed=args.seed, budget=Budget(args.seconds, args.examples),
                                out_dir=out, reply_timeout=args.reply_timeout,
                                shrink_seconds=args.shrink_seconds, on_tick=progress.tick)
            result = campaign.run()
            knobs = ft.knobs if ft else None
    except FuzzTargetError as exc:
        print(f"mtaconform: {exc}", file=sys.stderr)
        return EXIT_USAGE
    paths = write_campaign_report(result, lane, out, started, knobs)
    for line in summary_lines(result):
        print(line)
    print(f"report: {paths['html']}  statistics: {paths['stats']}")
    if result.stats.stopped == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FOUND if result.findings else EXIT_OK


def _replay_spec(finding: Finding, override: str | None) -> TargetSpec | None:
    if override:
        return target_spec.resolve(override)
    source = str(finding.target.get("source", ""))
    if source == "in-process":
        return None
    if source.lower().startswith("smtp://") or Path(source).is_file():
        return target_spec.resolve(source)
    return target_spec.resolve(str(finding.target.get("name", "")))


def replay_once(lane: Lane, ft: FuzzTarget | None, case_json: Any,
                reply_timeout: float) -> Found | None:
    """Run one case with the oracles; the Found it raised, or None when nothing fired."""
    ctx = Context(lane, ft, Stats(lane.name, ft.spec.name if ft else "harness", 0),
                  reply_timeout=reply_timeout, probe_every=1)
    lane.setup(ctx)
    try:
        ctx.run_case(lane.case_from_json(case_json))
    except Found as found:
        return found
    finally:
        lane.teardown(ctx)
    return None


def cmd_replay(args: argparse.Namespace) -> int:
    finding = Finding.from_file(args.file)
    lane = _lane(finding.lane)
    try:
        lane.case_from_json(finding.case)
    except InputError as exc:
        raise InputError(args.file, None, f"the case does not fit lane {lane.name}: {exc.message}") from None
    spec = _replay_spec(finding, args.target) if lane.needs_target else None
    if _needs_root(spec):
        print("mtaconform: managed targets run in a network namespace: run as root", file=sys.stderr)
        return EXIT_USAGE
    out: Path = args.out or Path("reports/replay")
    out.mkdir(parents=True, exist_ok=True)
    knobs = dict(finding.target.get("knobs") or {})
    print(f"replaying {args.file}: lane {lane.name}, recorded oracle(s) {', '.join(finding.oracles)}")
    try:
        with _target(lane, spec, out, args.reply_timeout, knobs) as ft:
            found = replay_once(lane, ft, finding.case, args.reply_timeout)
    except FuzzTargetError as exc:
        print(f"mtaconform: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if found is None:
        print("not reproduced: no oracle fired")
        return EXIT_OK
    same = set(found.signature) == set(finding.oracles)
    print(f"reproduced{'' if same else ' (other oracles)'}: {found}")
    for v in found.execution.violations:
        print(f"  {v.oracle}: {v.message}" + (f" [{v.cite}]" if v.cite else ""))
    return EXIT_FOUND
