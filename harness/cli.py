"""`mtaconform`: run conformance scenarios against an MTA and write reports.

Exit status: 0 no MUST-level requirement failed; 1 one did; 2 usage or input error (a bad
scenario or target file); 3 the harness itself failed; 130 interrupted. With `run --baseline`:
0 no verdict got worse than the baseline's, 1 one did (3 if it became a harness error).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from . import __version__
from .engine.catalogue import CatalogueError, load_catalogue
from .engine.yamlsrc import InputError
from .targets import spec as target_spec

if TYPE_CHECKING:
    from .report.compare import Comparison

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIOS = PROJECT / "scenarios"
DEFAULT_OUT = Path("reports/latest")

EXIT_OK, EXIT_MUST_FAILED, EXIT_USAGE, EXIT_HARNESS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EPILOG = textwrap.dedent("""\
    examples:
      mtaconform run                                   every scenario against the sandboxed Exim
      mtaconform run --feature prdr --out reports/prdr PRDR scenarios only
      mtaconform run --target smtp://127.0.0.1:2525 \\
          --recipient accept=user@example.test          inbound scenarios against your own server
      mtaconform run --target my-exim/exim.yaml        a copy of the Exim spec with your config
      mtaconform list --feature prdr                   what would run
      mtaconform requirements --feature prdr           the requirement catalogue
      mtaconform baseline save baseline.yaml           record reports/latest's verdicts
      mtaconform run --baseline baseline.yaml          fail only on a verdict that got worse
      mtaconform diff old/results.json new/results.json

    exit status: 0 no MUST-level failure, 1 a MUST failed, 2 bad input, 3 harness error,
    130 interrupted. With --baseline: 0 nothing got worse, 1 a verdict got worse.
    Reports: index.html, results.json, junit.xml in --out.
    """)

BASELINE_EPILOG = textwrap.dedent("""\
    Verdicts from best to worst: pass < unsupported = skip < non-strict < fail < error.
    With --baseline a run exits 1 when a verdict got worse than the baseline's (or a scenario
    the baseline does not know fails), 3 when one became an error, 0 otherwise: known failures
    do not fail the run, and the reports mark them as known.

    examples:
      mtaconform run --target my-exim/exim.yaml; mtaconform baseline save baseline.yaml
      mtaconform baseline save baseline.yaml --from reports/nightly/results.json
      mtaconform run --target my-exim/exim.yaml --baseline baseline.yaml
      mtaconform diff baseline.yaml reports/latest/results.json
    """)


FUZZ_EPILOG = textwrap.dedent("""\
    examples:
      mtaconform fuzz proxy --seconds 60               PROXY headers against the sandboxed Exim
      mtaconform fuzz smtp --examples 500 --seed 7     SMTP command sequences, reproducibly
      mtaconform fuzz self --seconds 30                the harness's own parsers, in-process
      mtaconform replay reports/fuzz/proxy/findings/proxy-001-proxy-identity.json

    exit status: 0 no finding, 1 findings, 2 bad input or target unavailable, 3 harness
    error, 130 interrupted. Output: index.html, stats.json, findings/*.json in --out.
    """)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtaconform",
        description="Conformance test harness for mail transfer agents: PRDR, DANE, OCSP "
                    "stapling, PROXY protocol, DSN. Runs a real MTA in a sealed lab and reports, "
                    "requirement by requirement, where it follows the specifications.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mtaconform {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--feature", "-f", action="append", default=[], metavar="F",
                       help="only scenarios of feature F (prdr, dane, ocsp, proxy, dsn); repeatable")
        p.add_argument("--scenario", "-s", action="append", default=[], metavar="ID",
                       help="only scenario ID (a prefix ending in * selects several); repeatable")
        p.add_argument("--scenarios", type=Path, action="append", default=[], metavar="PATH",
                       help=f"scenario files or folders (default: {DEFAULT_SCENARIOS.relative_to(PROJECT)}/)")

    run = sub.add_parser("run", help="run scenarios and write reports",
                         description="Run scenarios against one or more targets and write "
                                     "index.html, results.json and junit.xml.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--target", "-t", action="append", default=[], metavar="T",
                     help="exim (default), a target spec file, or smtp://HOST:PORT; repeatable")
    selection(run)
    run.add_argument("--out", "-o", type=Path, default=DEFAULT_OUT, metavar="DIR",
                     help=f"report folder (default: {DEFAULT_OUT})")
    run.add_argument("-n", "--workers", type=int, default=1, metavar="N",
                     help="parallel workers, each with its own lab (default: 1)")
    run.add_argument("--slow", action="store_true",
                     help="also run slow lanes (e.g. PRDR-21's ten-minute patience test)")
    run.add_argument("--recipient", action="append", default=[], metavar="ROLE=ADDR",
                     help="address for a recipient role on an external target "
                          f"({', '.join(target_spec.ROLES)}); {{n}} in ADDR numbers them")
    run.add_argument("--reply-timeout", type=float, default=None, metavar="S",
                     help="seconds to wait for each SMTP reply (default: the target spec's, 10)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    run.add_argument("--baseline", type=Path, default=None, metavar="FILE",
                     help="compare with a baseline file (mtaconform baseline save): exit 1 only "
                          "when a verdict got worse; known deviations are marked in the reports")

    lst = sub.add_parser("list", help="list scenarios")
    selection(lst)
    req = sub.add_parser("requirements", help="list the requirement catalogue")
    req.add_argument("--feature", "-f", action="append", default=[], metavar="F")
    sub.add_parser("targets", help="list built-in targets")
    baseline = sub.add_parser("baseline", help="save the verdicts of a run as a baseline file",
                              epilog=BASELINE_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    baseline_sub = baseline.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    save = baseline_sub.add_parser("save", help="write a baseline file from a run's results.json",
                                   epilog=BASELINE_EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    save.add_argument("file", type=Path, metavar="FILE", help="the baseline file to write (YAML)")
    save.add_argument("--from", dest="source", type=Path, default=DEFAULT_OUT / "results.json",
                      metavar="RESULTS", help=f"results of the run to record (default: "
                                              f"{DEFAULT_OUT / 'results.json'})")
    diff = sub.add_parser("diff", help="compare two results.json (or baseline) files",
                          description="Compare the verdicts of two runs: regressions, "
                                      "improvements, new and removed scenarios. Exit 1 when a "
                                      "verdict got worse, 0 otherwise, 2 for a bad file.",
                          epilog=BASELINE_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    diff.add_argument("old", type=Path, metavar="OLD", help="results.json (or a baseline file)")
    diff.add_argument("new", type=Path, metavar="NEW", help="results.json (or a baseline file)")
    from .fuzz.cli_args import add_parsers as add_fuzz_parsers  # issue #8: fuzz and replay

    add_fuzz_parsers(sub, FUZZ_EPILOG)
    from .coverage.command import add_parser as add_coverage_parser  # issue #8: coverage

    add_coverage_parser(sub)
    return parser


def parse_recipients(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        role, sep, addr = value.partition("=")
        if not sep or role not in target_spec.ROLES or "@" not in addr:
            raise InputError("--recipient", None,
                             f"{value!r}: expected ROLE=ADDRESS with ROLE one of {', '.join(target_spec.ROLES)}")
        out[role] = addr
    return out


def select(scenarios: list, features: Sequence[str], ids: Sequence[str]) -> list:
    if features:
        scenarios = [s for s in scenarios if s.feature in features]
    if ids:
        def wanted(sid: str) -> bool:
            return any(sid == i or (i.endswith("*") and sid.startswith(i[:-1])) for i in ids)
        unknown = [i for i in ids if not i.endswith("*") and i not in {s.id for s in scenarios}]
        if unknown:
            raise InputError("--scenario", None, f"no scenario {', '.join(unknown)}")
        scenarios = [s for s in scenarios if wanted(s.id)]
    return scenarios


def load_selection(args: argparse.Namespace):  # -> tuple[Catalogue, checks, scenarios]
    from .engine.actions import VALIDATORS
    from .engine.checks import all_checks
    from .engine.scenario import load_scenarios

    catalogue = load_catalogue()
    checks = all_checks()
    roots = args.scenarios or [DEFAULT_SCENARIOS]
    scenarios = load_scenarios(roots, catalogue, checks, VALIDATORS)
    return catalogue, checks, select(scenarios, args.feature, args.scenario)


def cmd_list(args: argparse.Namespace) -> int:
    _, _, scenarios = load_selection(args)
    for s in sorted(scenarios, key=lambda s: (s.feature, s.id)):
        slow = " (slow)" if s.slow else ""
        print(f"{s.id:44} {s.feature:6} {s.side:6} {','.join(s.requirements):16} {s.title}{slow}")
    print(f"{len(scenarios)} scenarios")
    return EXIT_OK


def cmd_requirements(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    for r in catalogue:
        if args.feature and r.feature not in args.feature:
            continue
        print(f"{r.id:9} {r.level:9} {r.side:9} {r.citation:28} {r.title}")
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    for name in target_spec.builtin_names():
        spec = target_spec.resolve(name)
        print(f"{spec.name:14} {spec.kind:8} {', '.join(spec.features):28} {spec.description}")
    print("smtp://HOST:PORT external  (inbound scenarios)       an SMTP server you run yourself")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .engine.parallel import run_parallel
    from .engine.progress import Progress
    from .report import baseline
    from .report.write import write_reports

    if args.workers < 1:
        raise InputError("-n", None, "the number of workers is at least 1")
    recipients = parse_recipients(args.recipient)
    targets = [target_spec.resolve(t, recipients) for t in (args.target or ["exim"])]
    known = None
    if args.baseline is not None:  # a bad baseline file is found before the run, not after it
        known = baseline.load(args.baseline)
        baseline.check_targets(known, [t.name for t in targets])
    catalogue, checks, scenarios = load_selection(args)
    if not scenarios:
        raise InputError("--feature/--scenario", None, "the selection contains no scenario")
    if any(t.managed for t in targets) and os.geteuid() != 0:
        print("mtaconform: managed targets run in a network namespace: run as root", file=sys.stderr)
        return EXIT_USAGE
    args.out.mkdir(parents=True, exist_ok=True)
    progress = Progress(total=len(scenarios) * len(targets), enabled=not args.quiet)
    with progress:
        result = run_parallel(scenarios, targets, catalogue, checks, out_dir=args.out,
                              workers=args.workers, slow=args.slow, reply_timeout=args.reply_timeout,
                              on_start=progress.started, on_result=progress.finished)
    comparison = baseline.apply(result, known) if known is not None else None
    paths = write_reports(result, args.out)
    progress.summary(result, paths)
    if comparison is not None:
        print_comparison(comparison, f"baseline {args.baseline}", limit=20,
                         where_all=f" (all of them: {paths['html']}, {paths['json']})")
    if result.stopped_early:
        return EXIT_INTERRUPTED
    return result.exit_status()


def print_comparison(comparison: Comparison, what: str, limit: int | None = None,
                     where_all: str = "") -> None:
    """The changes (regressions first), then one summary line; LIMIT cuts the lists other than
    the regressions short."""
    from .report.compare import format_changes, summary_line

    for line in format_changes(comparison, limit=limit, where_all=where_all):
        print(line)
    print(f"{what}: {summary_line(comparison)}")


def cmd_baseline(args: argparse.Namespace) -> int:
    from .report import baseline
    from .report.compare import table_from_results
    from .report.json_writer import ResultsFileError, load_json

    if not args.source.is_file():
        raise InputError(args.source, None, "no such results file (run `mtaconform run` first, "
                                            "or name one with --from)")
    try:
        data = load_json(args.source)
    except ResultsFileError as exc:
        raise InputError(args.source, None, str(exc).removeprefix(f"{exc.path}: ")) from None
    if data["stopped_early"]:
        raise InputError(args.source, None, f"the run stopped early ({data['stopped_early']}): "
                                            f"a baseline needs a complete run")
    table = table_from_results(data)
    tool = f"{data['tool'].get('name', 'mtaconform')} {data['tool'].get('version', '')}".strip()
    kept = baseline.save(args.file, table, tool=tool,
                         source=f"{args.source} (run started {data['started']})")
    counts: dict[str, int] = {}
    for v in table.values():
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    targets = len({t for t, _ in table})
    print(f"{args.file}: {len(table)} scenario verdict(s) of {targets} target(s) "
          f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})"
          + (f"; {kept} comment(s) kept" if kept else ""))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from .report.baseline import load_verdicts
    from .report.compare import compare

    comparison = compare(load_verdicts(args.old), load_verdicts(args.new))
    print_comparison(comparison, f"{args.old} -> {args.new}")
    return EXIT_MUST_FAILED if comparison.regressions else EXIT_OK


def cmd_fuzz(args: argparse.Namespace) -> int:
    from .fuzz.run import cmd_fuzz as run_fuzz

    return run_fuzz(args)


def cmd_replay(args: argparse.Namespace) -> int:
    from .fuzz.run import cmd_replay as run_replay

    return run_replay(args)


def cmd_coverage(args: argparse.Namespace) -> int:
    from .coverage.command import main as coverage_main

    return coverage_main(args, build_parser(), COMMANDS)


COMMANDS = {"run": cmd_run, "list": cmd_list, "requirements": cmd_requirements, "targets": cmd_targets,
            "fuzz": cmd_fuzz, "replay": cmd_replay, "baseline": cmd_baseline, "diff": cmd_diff,
            "coverage": cmd_coverage}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return COMMANDS[args.command](args)
    except (InputError, CatalogueError) as exc:
        print(f"mtaconform: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mtaconform: interrupted; the lab was removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mtaconform requirements | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:  # our own bug: show it whole, exit 3 (the lab was removed on the way out)
        import traceback

        traceback.print_exc()
        print("mtaconform: internal error (a bug in mtaconform, not in the target)", file=sys.stderr)
        return EXIT_HARNESS


if __name__ == "__main__":
    sys.exit(main())
