"""The fake DNS's query log: one record per query received, in the order they were handled.

``state`` says how the query was handled: secure, insecure, bogus, timeout (no reply sent),
outside (REFUSED: the name is in no zone), loop (CNAME loop: SERVFAIL), unsupported (FORMERR,
NOTIMP, REFUSED for a non-IN class, or BADVERS), malformed (not a DNS query: ignored), error (the
harness failed while answering: a harness bug, reported rather than raised).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueryRecord:
    monotonic: float  # time.monotonic() when the query arrived
    wall: str  # the same instant, ISO 8601 UTC
    transport: str  # "udp" | "tcp"
    client: str
    client_port: int
    state: str
    id: int | None = None
    qname: str | None = None  # canonical: lower case, no trailing dot; "." for the root
    qtype: str | None = None  # "A", "TLSA", "TYPE65534"
    rd: bool = False
    cd: bool = False
    ad_requested: bool = False  # AD set in the query (RFC 6840 §5.7)
    do: bool = False  # EDNS DO bit (RFC 3225)
    edns: bool = False
    edns_payload: int | None = None
    rcode: str | None = None  # None: no reply was sent
    ad: bool = False
    aa: bool = False
    tc: bool = False
    answer: tuple[str, ...] = ()  # "mx.d.test. A 198.51.100.1", as sent
    authority: tuple[str, ...] = ()
    size: int = 0  # reply length in octets
    error: str | None = None
    # What a reply mutator (DNSServer.set_mutator, harness/dns/mutate.py) did to the reply; the
    # fields above describe the reply before it. `size` is then what was sent, 0 for nothing.
    mutation: str | None = None

    @property
    def replied(self) -> bool:
        return self.rcode is not None


class QueryLog:
    """Thread-safe, append-only (until cleared) list of QueryRecords."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[QueryRecord] = []

    def append(self, record: QueryRecord) -> None:
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._records.clear()

    def snapshot(self) -> list[QueryRecord]:
        with self._cond:
            return list(self._records)

    def __len__(self) -> int:
        with self._cond:
            return len(self._records)

    def matching(self, qname: str | None = None, qtype: str | None = None) -> list[QueryRecord]:
        """Records for QNAME (any case, trailing dot optional) and/or QTYPE."""
        want = (qname.lower().rstrip(".") or ".") if qname is not None else None
        return [r for r in self.snapshot()
                if (want is None or r.qname == want) and (qtype is None or r.qtype == qtype)]

    def wait_for(self, predicate: Callable[[list[QueryRecord]], bool], timeout: float) -> bool:
        """Block until PREDICATE(records) holds or TIMEOUT seconds pass; return whether it held."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self._records)), timeout)
