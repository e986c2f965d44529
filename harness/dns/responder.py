"""Sans-I/O DNS responder: query bytes in, reply bytes (or silence) and a QueryRecord out.

Header policy: RA is always set (we play a recursive resolver); AA is set on answers the world
gives (NOERROR/NXDOMAIN) and clear on SERVFAIL, REFUSED and errors; RD and CD are copied from
the query. AD is set on authentic answers only when the query asked for it with AD or DO,
as validating resolvers do (RFC 6840 §5.8); ``ad_only_if_requested=False`` sets it regardless.
glibc with ``options trust-ad`` sets AD in its queries; a stub that asks for neither is told
"insecure", which is what it would be told in the real world.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from dnslib import EDNS0, QTYPE, RCODE, RR, DNSHeader, DNSQuestion, DNSRecord

from . import names, rdata
from .querylog import QueryRecord
from .resolver import resolve
from .zone import World

SERVER_UDP_PAYLOAD = 1232  # what we advertise in OPT (the DNS Flag Day 2020 value)
PLAIN_UDP_LIMIT = 512  # RFC 1035 §4.2.1; also the floor for EDNS payloads (RFC 6891 §6.2.5)
BADVERS = 16  # RFC 6891 §6.1.3, an extended RCODE: upper 8 bits go in the OPT TTL
_CLASS_IN = 1
_ZONE_TRANSFERS = (251, 252)  # IXFR, AXFR: not something a resolver does for a stub


def now() -> tuple[float, str]:
    return time.monotonic(), datetime.now(timezone.utc).isoformat(timespec="microseconds")


def summary(rr: RR) -> str:
    return f"{rr.rname} {rdata.type_name(rr.rtype)} {rr.rdata.toZone()}"


def respond(world: World, data: bytes, *, transport: str = "udp",
            client: tuple[str, int] = ("", 0), received: tuple[float, str] | None = None,
            ad_only_if_requested: bool = True) -> tuple[bytes | None, QueryRecord]:
    """The reply to DATA (None: send nothing) and the log record of this exchange."""
    mono, wall = received or now()
    base: dict[str, Any] = dict(monotonic=mono, wall=wall, transport=transport, client=client[0],
                client_port=client[1])
    try:
        query = DNSRecord.parse(data)
    except Exception as exc:  # hostile bytes: whatever dnslib raises, it is not a query
        return None, QueryRecord(**base, state="malformed", error=f"{type(exc).__name__}: {exc}")
    if query.header.qr:
        return None, QueryRecord(**base, state="malformed", id=query.header.id,
                                 error="QR set: a response, not a query")
    try:
        return _answer(world, query, base, transport, ad_only_if_requested)
    except Exception as exc:  # a harness bug: log it, keep serving
        return None, QueryRecord(**base, state="error", id=query.header.id,
                                 error=f"{type(exc).__name__}: {exc}")


def _answer(world: World, query: DNSRecord, base: dict[str, Any], transport: str,
            ad_only_if_requested: bool) -> tuple[bytes | None, QueryRecord]:
    header = query.header
    opts = [rr for rr in query.ar if rr.rtype == QTYPE.OPT]
    edns = opts[0] if opts else None
    do = bool(edns is not None and edns.edns_do)
    facts = dict(base, id=header.id, rd=bool(header.rd), cd=bool(header.cd),
                 ad_requested=bool(header.ad), do=do, edns=edns is not None,
                 edns_payload=edns.edns_len if edns is not None else None)
    question = query.questions[0] if len(query.questions) == 1 else None
    if question is not None:
        facts.update(qname=names.canonical_label(question.qname) or ".",
                     qtype=rdata.type_name(question.qtype))

    reply = DNSRecord(DNSHeader(id=header.id, qr=1, opcode=header.opcode, rd=header.rd, ra=1,
                                cd=header.cd), questions=list(query.questions))
    if edns is not None:
        # RFC 3225 §3: the DO bit is copied into the response.
        reply.add_ar(EDNS0(udp_len=SERVER_UDP_PAYLOAD, flags="do" if do else ""))

    problem = _unsupported(header.opcode, len(opts), question, edns)
    if problem is not None:
        rcode, why = problem
        if rcode == BADVERS:
            reply.ar[-1] = EDNS0(udp_len=SERVER_UDP_PAYLOAD, ext_rcode=BADVERS >> 4,
                                 flags="do" if do else "")
        else:
            reply.header.rcode = rcode
        return _send(reply, edns, transport, facts, "unsupported", error=why)

    assert question is not None
    res = resolve(world, names.canonical_label(question.qname), question.qtype,
                  cd=bool(header.cd))
    if res.silent:
        return None, QueryRecord(**facts, state=res.outcome.value)
    reply.header.rcode = res.rcode
    reply.header.aa = int(res.in_world)
    asked = bool(header.ad) or do or not ad_only_if_requested
    reply.header.ad = int(res.authentic and asked)
    reply.add_answer(*res.answer)
    reply.add_auth(*res.authority)
    return _send(reply, edns, transport, facts, res.outcome.value)


def _unsupported(opcode: int, n_opts: int, question: DNSQuestion | None,
                 edns: RR | None) -> tuple[int, str] | None:
    if opcode != 0:
        return RCODE.NOTIMP, f"opcode {opcode} is not QUERY"  # RFC 1035 §4.1.1
    if n_opts > 1:
        return RCODE.FORMERR, "more than one OPT record"  # RFC 6891 §6.1.1
    if question is None:
        return RCODE.FORMERR, "QDCOUNT is not 1"  # RFC 9619 §3
    if edns is not None and edns.edns_ver != 0:
        return BADVERS, f"EDNS version {edns.edns_ver}"  # RFC 6891 §6.1.3
    if question.qclass != _CLASS_IN:
        return RCODE.REFUSED, f"class {question.qclass} is not IN"
    if question.qtype in _ZONE_TRANSFERS:
        return RCODE.REFUSED, "zone transfers are not served"
    return None


def _send(reply: DNSRecord, edns: RR | None, transport: str, facts: dict[str, Any], state: str,
          error: str | None = None) -> tuple[bytes, QueryRecord]:
    wire = reply.pack()
    if transport == "udp":
        limit = PLAIN_UDP_LIMIT
        if edns is not None:
            limit = max(PLAIN_UDP_LIMIT, min(edns.edns_len, SERVER_UDP_PAYLOAD))
        if len(wire) > limit:
            # RFC 1035 §4.2.1, RFC 2181 §9: set TC and send what fits; the client retries
            # over TCP. We keep the question and the OPT record, drop every RRset.
            reply.rr, reply.auth = [], []
            reply.ar = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
            reply.header.tc = 1
            wire = reply.pack()
    header = reply.header
    opt = next((rr for rr in reply.ar if rr.rtype == QTYPE.OPT), None)
    rcode = header.rcode | ((opt.edns_rcode << 4) if opt is not None else 0)
    record = QueryRecord(
        **facts, state=state, rcode=_rcode_name(rcode), ad=bool(header.ad), aa=bool(header.aa),
        tc=bool(header.tc), answer=tuple(summary(rr) for rr in reply.rr),
        authority=tuple(summary(rr) for rr in reply.auth), size=len(wire), error=error)
    return wire, record


def _rcode_name(rcode: int) -> str:
    if rcode == BADVERS:
        return "BADVERS"
    return RCODE.forward.get(rcode) or str(rcode)
