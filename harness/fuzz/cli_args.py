"""The `fuzz` and `replay` command lines: cheap to import (every `mtaconform` call builds them),
the work itself is in harness.fuzz.run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .lanes import lane_names

DEFAULT_SHRINK_SECONDS = 20.0


def add_parsers(sub: Any, epilog: str) -> None:
    fuzz = sub.add_parser("fuzz", help="run a fuzz campaign against a target",
                          description="Run a Hypothesis-driven fuzz campaign on one lane; findings are "
                                      "shrunk and saved as replay files with an HTML report.",
                          epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    fuzz.add_argument("lane", metavar="LANE", help=f"one of: {', '.join(lane_names())}")
    fuzz.add_argument("--target", "-t", default="exim", metavar="T",
                      help="exim (default), a target spec file, or smtp://HOST:PORT (inbound lanes)")
    budget = fuzz.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, default=None, metavar="S",
                        help="time budget (default: 60 s when no --examples)")
    budget.add_argument("--examples", type=int, default=None, metavar="N", help="cases to generate")
    fuzz.add_argument("--seed", type=int, default=0, metavar="X", help="campaign seed (default 0)")
    fuzz.add_argument("--out", "-o", type=Path, default=None, metavar="DIR",
                      help="output folder (default: reports/fuzz/LANE)")
    fuzz.add_argument("--reply-timeout", type=float, default=2.0, metavar="S",
                      help="seconds to wait for each reply (default 2)")
    fuzz.add_argument("--shrink-seconds", type=float, default=DEFAULT_SHRINK_SECONDS, metavar="S",
                      help=f"at most this long shrinking one finding (default {DEFAULT_SHRINK_SECONDS:g})")
    fuzz.add_argument("--quiet", "-q", action="store_true", help="no progress display")

    replay = sub.add_parser("replay", help="re-run a saved fuzz finding",
                            description="Re-run one finding file against its target (or --target) "
                                        "with the same oracles. Exit 1 when it still reproduces, 0 "
                                        "when no oracle fires.")
    replay.add_argument("file", type=Path, metavar="FILE", help="a findings/*.json file")
    replay.add_argument("--target", "-t", default=None, metavar="T",
                        help="another target than the one recorded in the file")
    replay.add_argument("--out", "-o", type=Path, default=None, metavar="DIR",
                        help="working folder (default: reports/replay)")
    replay.add_argument("--reply-timeout", type=float, default=2.0, metavar="S")
