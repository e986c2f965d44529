"""`mtaconform coverage run|fuzz|report`: Exim's coverage after a conformance run or a campaign.

`run` and `fuzz` take the arguments of `mtaconform run` and `mtaconform fuzz`; the wrapped command
is parsed by the same parser and run by the same function as on its own, against the coverage
target (exim-coverage unless --target names another spec whose env takes GCOV_PREFIX from
$MTACONFORM_GCOV_PREFIX), with a fresh counters folder: nothing counted before is included.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..targets import spec as target_spec
from ..targets.spec import TargetSpec
from . import gcov, report
from .summary import merge

DEFAULT_TARGET = "exim-coverage"
EXIT_USAGE, EXIT_HARNESS = 2, 3

Command = Callable[[argparse.Namespace], int]


def add_parser(sub: Any) -> None:
    cov = sub.add_parser(
        "coverage", help="Exim's line and branch coverage after a run or a fuzz campaign",
        description="Run `mtaconform run ...` or `mtaconform fuzz LANE ...` against the exim-coverage\n"
                    "target (Exim built with gcc --coverage), counting from zero, and report Exim's\n"
                    "line and branch coverage: overall, per feature (the code inside its #if guards)\n"
                    "and per file. Writes coverage.json and coverage/index.html into the --out folder.",
        epilog="examples:\n"
               "  mtaconform coverage run --feature prdr --out reports/cov-prdr\n"
               "  mtaconform coverage fuzz proxy --seconds 60\n"
               "  mtaconform coverage report            counters of plain runs of exim-coverage\n\n"
               "The target is built by MTACONFORM_BUILD_COVERAGE=1 scripts/setup.sh "
               "(or scripts/build-exim-coverage.sh).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    cov.add_argument("what", choices=["run", "fuzz", "report"], metavar="run|fuzz|report",
                     help="the command to measure, or `report` for the counters plain runs left")
    cov.add_argument("rest", nargs=argparse.REMAINDER, metavar="ARGS",
                     help="its arguments (see mtaconform run --help, mtaconform fuzz --help)")


def _report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mtaconform coverage report",
                                description="Summarise a counters folder: by default the one plain "
                                            "runs of the target add to.")
    p.add_argument("--target", "-t", default=DEFAULT_TARGET, metavar="T")
    p.add_argument("--counters", type=Path, default=None, metavar="DIR",
                   help="counters folder (default: the target's GCOV_PREFIX)")
    p.add_argument("--out", "-o", type=Path, default=Path("reports/coverage"), metavar="DIR")
    p.add_argument("--reset", action="store_true", help="zero the counters after reporting")
    return p


def _has_target(argv: Sequence[str]) -> bool:
    for arg in argv:
        if arg in ("-t", "--target") or arg.startswith("--target="):
            return True
        if arg.startswith("-t") and not arg.startswith("--"):  # -tNAME
            return True
    return False


def _targets(inner: argparse.Namespace) -> list[str]:
    value = getattr(inner, "target", None)
    return list(value) if isinstance(value, list) else [value] if value else []


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """NAME=VALUE for the wrapped command and the processes it starts (parallel workers)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _build(spec: TargetSpec) -> gcov.Build:
    try:
        return gcov.build_for(spec)
    except gcov.BuildMissing as exc:
        hint = spec.install_hint or "scripts/build-exim-coverage.sh"
        raise gcov.BuildMissing(f"{spec.name} is not built ({exc}): {hint}") from None


def measure(build: gcov.Build, folder: Path, spec: TargetSpec, command: Sequence[str] = (),
            exit_status: int | None = None) -> report.Coverage:
    docs = gcov.read_counters(build, folder)
    return report.Coverage(files=merge(docs, gcov.resolver(build)), source_root=build.source_root,
                           target=spec.name, version=build.version, command=list(command),
                           exit_status=exit_status,
                           objects_counted=len(gcov.counted_objects(build, folder)),
                           objects_total=len(build.objects))


def _show(cov: report.Coverage, out: Path) -> None:
    print(report.text(cov))
    if not cov.objects_counted:
        print("  no Exim process wrote counters: did the command run anything against the target?")
    paths = report.write(cov, out)
    print(f"coverage: {paths['html']}  summary: {paths['json']}")


def run_wrapped(what: str, rest: Sequence[str], parser: argparse.ArgumentParser,
                commands: Mapping[str, Command]) -> int:
    argv = [what, *rest]
    if not _has_target(rest):
        argv += ["--target", DEFAULT_TARGET]
    inner = parser.parse_args(argv)
    names = _targets(inner)
    if len(names) != 1:
        print("mtaconform: coverage measures one target (default exim-coverage)", file=sys.stderr)
        return EXIT_USAGE
    spec = target_spec.resolve(names[0])
    build = _build(spec)
    if os.geteuid() != 0:
        print("mtaconform: coverage runs a managed target in a network namespace: run as root",
              file=sys.stderr)
        return EXIT_USAGE
    if getattr(inner, "out", None) is None:  # mtaconform fuzz's own default
        inner.out = Path("reports/fuzz") / str(getattr(inner, "lane", what))
    folder = gcov.new_counters_folder(build, spec.config.get("owner"))
    try:
        with _environ(gcov.PREFIX_VARIABLE, str(folder)):
            status = commands[what](inner)
        cov = measure(build, folder, spec, ["mtaconform", *argv], status)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _show(cov, inner.out)
    return status


def report_counters(rest: Sequence[str]) -> int:
    args = _report_parser().parse_args(list(rest))
    spec = target_spec.resolve(args.target)
    build = _build(spec)
    folder = args.counters or Path(spec.environment(os.environ).get("GCOV_PREFIX", ""))
    if not folder.is_dir():
        print(f"mtaconform: no counters folder {folder}", file=sys.stderr)
        return EXIT_USAGE
    cov = measure(build, folder, spec)
    cov.label = f"from the counters in {folder}"
    _show(cov, args.out)
    if args.reset:
        gcov.reset_counters(folder)
        print(f"counters in {folder} zeroed")
    return 0


def main(args: argparse.Namespace, parser: argparse.ArgumentParser,
         commands: Mapping[str, Command]) -> int:
    try:
        if args.what == "report":
            return report_counters(args.rest)
        return run_wrapped(args.what, args.rest, parser, commands)
    except gcov.UnusableTarget as exc:
        print(f"mtaconform: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except gcov.CoverageError as exc:
        print(f"mtaconform: reading coverage counters: {exc}", file=sys.stderr)
        return EXIT_HARNESS
