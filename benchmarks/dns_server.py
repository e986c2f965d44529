#!/usr/bin/env python3
"""The fake DNS server's reply time over UDP (it answers every lookup an MTA makes in a run).

    .venv/bin/python benchmarks/dns_server.py [--queries 2000]

Prints the median and 99th percentile per query on 127.0.0.1 (no lab needed). Was a timed unit
test; timing belongs here, where a loaded machine does not make it fail.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dnslib import DNSRecord  # noqa: E402

from harness.dns import DNSServer, World  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    world = World.from_data({"zones": [{"name": "d.test", "records": [
        {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"}]}]})
    srv = DNSServer(socket.socket, "127.0.0.1", 0, world=world)
    srv.start()
    q = DNSRecord.question("mx.d.test", "A").pack()
    times = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            for _ in range(args.queries):
                start = time.perf_counter()
                s.sendto(q, ("127.0.0.1", srv.port))
                s.recv(512)
                times.append(time.perf_counter() - start)
    finally:
        srv.stop()
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"{args.queries} UDP queries: median {statistics.median(times) * 1e3:.3f} ms, "
          f"p99 {p99 * 1e3:.3f} ms, {len(times) / sum(times):.0f} queries/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
