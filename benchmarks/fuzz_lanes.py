#!/usr/bin/env python3
"""Benchmark the inbound fuzz lanes against a bare raw-socket loop on the same target.

    sudo .venv/bin/python benchmarks/fuzz_lanes.py                    # proxy and smtp, 30 s each
    sudo .venv/bin/python benchmarks/fuzz_lanes.py --seconds 60 --lanes proxy

For each lane: a campaign of SECONDS (generation, oracles, banner probes, shrinking included),
then, in the same lab and against the same running target, two loops of plain sockets with as
many sessions as the campaign ran executions:
  - "fixed": each session a fixed, valid session of the lane's kind (a PROXY header then
    EHLO/QUIT; a short SMTP transaction), reading every reply — the target's cheapest work;
  - "same bytes": the very byte scripts the campaign sent, step by step, reading as many reply
    lines as the lane did — the target's work on the fuzzed input, without the harness.
It prints executions per second for each and the ratios: lane vs "same bytes" is what the
harness's generation and oracles cost; "same bytes" vs "fixed" is what the inputs cost the MTA.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.fuzz.campaign import Budget, Campaign  # noqa: E402
from harness.fuzz.lanes import make_lane  # noqa: E402
from harness.fuzz.lanes.base import Context  # noqa: E402
from harness.fuzz.script import Script  # noqa: E402
from harness.fuzz.target import FuzzTarget, open_fuzz_target  # noqa: E402
from harness.targets.spec import resolve  # noqa: E402

SESSIONS = {
    # source, what to send, replies to read
    "proxy": ("listed", [b"PROXY TCP4 203.0.113.7 192.0.2.25 40000 25\r\n", b"EHLO bench.test\r\n",
                         b"QUIT\r\n"], 3),
    "smtp": ("client", [b"EHLO bench.test\r\n", b"MAIL FROM:<b@bench.test>\r\n",
                        b"RCPT TO:<accept-1@target.test>\r\n", b"RSET\r\n", b"QUIT\r\n"], 6),
}


def raw_loop(ft: FuzzTarget, lane: str, sessions: int) -> float:
    """SESSIONS plain sessions, one after the other; seconds taken."""
    source, lines, replies = SESSIONS[lane]
    start = time.monotonic()
    for _ in range(sessions):
        sock = ft.connect(source)
        try:
            for line in lines:
                sock.sendall(line)
            sock.shutdown(socket.SHUT_WR)  # after QUIT, as the lanes do
            got = b""
            while got.count(b"\r\n") < replies:  # roughly: the replies' last lines
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        finally:
            sock.close()
    return time.monotonic() - start


def replay_raw(ft: FuzzTarget, scripts: list[Script], timeout: float) -> float:
    """The campaign's own byte scripts over plain sockets; seconds taken."""
    start = time.monotonic()
    for script in scripts:
        try:
            sock = ft.connect(script.source)
        except OSError:
            continue
        sock.settimeout(timeout)
        buf = b""
        try:
            for step in script.steps:
                if step.delay:
                    time.sleep(step.delay)
                if step.send:
                    sock.sendall(step.send)
                if step.shut:
                    sock.shutdown(socket.SHUT_WR)
                want = step.read
                while want > 0:
                    lines = buf.split(b"\r\n")
                    done = [ln for ln in lines[:-1] if len(ln) >= 4 and ln[3:4] != b"-"]
                    if len(done) >= want:
                        buf = b"\r\n".join(lines[len(lines) - 1:])
                        want = 0
                        break
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise OSError("closed")
                    buf += chunk
        except OSError:
            pass
        finally:
            sock.close()
    return time.monotonic() - start


class Recording:
    """Keeps the byte script of every execution (Context.finish sees each one, both lanes)."""

    def __init__(self) -> None:
        self.scripts: list[Script] = []
        self._inner = Context.finish

    def __enter__(self) -> Recording:
        inner, scripts = self._inner, self.scripts

        def finish(ctx: Context, case_json: Any, ex: Any, mark: Any) -> None:
            scripts.append(Script.from_json(case_json))
            inner(ctx, case_json, ex, mark)

        Context.finish = finish  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Context.finish = self._inner  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="exim")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--lanes", nargs="+", default=["proxy", "smtp"], choices=sorted(SESSIONS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shrink-seconds", type=float, default=5.0)
    args = parser.parse_args()
    spec = resolve(args.target)
    rows = []
    for name in args.lanes:
        lane = make_lane(name)
        with tempfile.TemporaryDirectory() as tmp, open_fuzz_target(spec, knobs=lane.knobs, out_dir=Path(tmp)) as ft:
            with Recording() as recording:
                result = Campaign(lane, ft, seed=args.seed, budget=Budget(seconds=args.seconds),
                                  out_dir=Path(tmp), shrink_seconds=args.shrink_seconds).run()
            stats = result.stats
            fixed_s = raw_loop(ft, name, stats.executions)
            scripts = recording.scripts
            same_s = replay_raw(ft, scripts, ft.reply_timeout) if scripts else 0.0
        fixed = stats.executions / fixed_s if fixed_s else 0.0
        same = len(scripts) / same_s if same_s else 0.0
        rows.append((name, stats.executions, stats.per_second, same, fixed, len(result.findings), len(stats.states)))
    print(f"target {spec.name}, seed {args.seed}, {args.seconds:g} s per lane")
    print(f"{'lane':6} {'execs':>6} {'lane/s':>8} {'same bytes/s':>13} {'fixed/s':>8} "
          f"{'same÷lane':>10} {'fixed÷lane':>11} {'states':>7} {'findings':>9}")
    for name, n, lane_rate, same, fixed, found, states in rows:
        r1 = same / lane_rate if lane_rate else float("inf")
        r2 = fixed / lane_rate if lane_rate else float("inf")
        same_text = f"{same:13.1f}" if same else f"{'n/a':>13}"
        print(f"{name:6} {n:6d} {lane_rate:8.1f} {same_text} {fixed:8.1f} {r1:10.2f} {r2:11.2f} {states:7d} {found:9d}")
    return 0



if __name__ == "__main__":
    sys.exit(main())
