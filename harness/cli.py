"""`mtaconform`: run conformance scenarios against an MTA and write reports.

Exit status: 0 no MUST-level requirement failed; 1 one did; 2 usage or input error (a bad
scenario or target file); 3 the harness itself failed; 130 interrupted.
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

from . import __version__
from .engine.catalogue import CatalogueError, load_catalogue
from .engine.yamlsrc import InputError
from .targets import spec as target_spec

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

    exit status: 0 no MUST-level failure, 1 a MUST failed, 2 bad input, 3 harness error,
    130 interrupted. Reports: index.html, results.json, junit.xml in --out.
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

    lst = sub.add_parser("list", help="list scenarios")
    selection(lst)
    req = sub.add_parser("requirements", help="list the requirement catalogue")
    req.add_argument("--feature", "-f", action="append", default=[], metavar="F")
    sub.add_parser("targets", help="list built-in targets")
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
    from .report.write import write_reports

    if args.workers < 1:
        raise InputError("-n", None, "the number of workers is at least 1")
    recipients = parse_recipients(args.recipient)
    targets = [target_spec.resolve(t, recipients) for t in (args.target or ["exim"])]
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
    paths = write_reports(result, args.out)
    progress.summary(result, paths)
    if result.stopped_early:
        return EXIT_INTERRUPTED
    return result.exit_status()


COMMANDS = {"run": cmd_run, "list": cmd_list, "requirements": cmd_requirements, "targets": cmd_targets}


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
