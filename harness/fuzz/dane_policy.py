"""What a DNS world — zones plus raw reply mutations — tells a DANE SMTP client about each MX
address: TLS required, no delivery at all, or nothing (RFC 7672 §2).

The judgement is made from the bytes the lab's DNS would send to a stub that asks with AD and DO
set (as Exim does with ``dns_dnssec_ok`` and glibc's ``trust-ad``), computed offline with the
same sans-I/O responder and mutator the server uses. So it is a property of the case alone: a
target that never looks TLSA up (DANE off) is judged the same as one that does.

Each reply is classified as a stub would read it; anything a stub may read in more than one way
(truncated with TC over TCP too, trailing bytes, counts that lie, a wrong ID, records of another type in the
answer, an unusual RCODE) is *ambiguous*, and then no requirement is derived from it:

- secure: NOERROR, AD, the records asked for (possibly after CNAMEs) and nothing else;
- insecure: the same without AD;
- denial-secure / denial-insecure: NXDOMAIN or NODATA, with or without AD;
- failure: SERVFAIL, or no reply at all (the stub times out) — RFC 7672 §2.1.1 "indeterminate";
- ambiguous: everything else.

An address a lenient reader finds in an ambiguous address reply counts as reached through that
host too (no requirement for it then), and one no reader can parse leaves every address free.

Requirements, per MX host H of a *secure* MX RRset (RFC 7672 §2.2.1: an insecure MX RRset leaves
DANE optional) whose *secure* A RRset (§2.2.2; no CNAME, where §2.2.3 would change the TLSA base
name) holds an address:
- a secure, non-empty TLSA RRset at _25._tcp.H: TLS is required (§2.2: usable records mean
  authenticated TLS; if every record is unusable, §3.1.3 and RFC 7671 §9, the connection "MUST be
  made via TLS, but authentication is not required" — never cleartext either way);
- a TLSA lookup that fails: the host is unusable, no delivery through it (§2.1.2, DANE-15).
An address reached through several hosts gets a requirement only if every host agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dnslib import EDNS0, QTYPE, RCODE, RD, TLSA, DNSBuffer, DNSHeader, DNSQuestion, DNSRecord, RR
from dnslib.dns import RDMAP

from ..dns import names, rdata
from ..dns.mutate import RawReplies
from ..dns.responder import respond
from ..dns.zone import World

QUERY_ID = 0x4D54
EDNS_PAYLOAD = 1200  # what glibc asks for with RES_USE_DNSSEC
USABLE_USAGES = (2, 3)  # RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) "MAY" be treated as unusable
DIGEST_LENGTHS = {1: 32, 2: 64}  # RFC 6698 §2.1.3 SHA2-256, SHA2-512; 0 (Full): any length


@dataclass(frozen=True)
class Answer:
    """One lookup as a stub would read it."""

    kind: str  # secure | insecure | denial-secure | denial-insecure | failure | ambiguous
    records: tuple[RR, ...] = ()  # the RRs of the type asked for
    cname: bool = False  # the answer went through a CNAME
    note: str = ""
    # Ambiguous replies: the addresses a lenient reader could still find in them (a target may
    # connect there), None when even that fails.
    maybe: tuple[str, ...] | None = ()

    def describe(self) -> str:
        shown = "; ".join(f"{rr.rname} {rdata.type_name(rr.rtype)} {rr.rdata.toZone()}" for rr in self.records)
        return f"{self.kind}{' via CNAME' if self.cname else ''}{': ' + shown if shown else ''}" \
               f"{' (' + self.note + ')' if self.note else ''}"


def _parse_rr(buf: DNSBuffer) -> RR:
    """One RR; unlike dnslib's own parser, its RDATA must fill RDLENGTH exactly."""
    rname = buf.decode_name()
    rtype, rclass, ttl, rdlength = buf.unpack("!HHIH")
    start = buf.offset
    if rtype == QTYPE.OPT:  # EDNS (RFC 6891): its options play no part in the judgement
        buf.get(rdlength)
        return RR(rname, rtype, rclass, ttl, [])
    if rtype == QTYPE.TLSA and rdlength < 3:  # RFC 6698 §2.1: usage, selector, matching type
        raise ValueError("TLSA RDATA shorter than 3 octets")
    rd = RDMAP.get(QTYPE.get(rtype), RD).parse(buf, rdlength)
    if buf.offset != start + rdlength:
        raise ValueError("RDATA does not fill RDLENGTH")
    return RR(rname, rtype, rclass, ttl, rd)


def _strict_parse(wire: bytes) -> DNSRecord | str:
    """The message in WIRE, or why a stub could read it in more than one way."""
    buf = DNSBuffer(wire)
    try:
        header = DNSHeader.parse(buf)
        questions = [DNSQuestion.parse(buf) for _ in range(header.q)]
        sections = [[_parse_rr(buf) for _ in range(count)] for count in (header.a, header.auth, header.ar)]
    except Exception as exc:  # dnslib raises many kinds on malformed input
        return f"does not parse: {type(exc).__name__}: {exc}"
    if buf.remaining():
        return f"{buf.remaining()} octet(s) after the message"
    return DNSRecord(header, questions, sections[0], auth=sections[1], ar=sections[2])


def _lenient(wire: bytes, qtype: int) -> tuple[str, ...] | None:
    try:
        return tuple(str(rr.rdata) for rr in DNSRecord.parse(wire).rr if rr.rtype == qtype)
    except Exception:  # dnslib raises many kinds on malformed input
        return None


def classify(wire: bytes | None, qname: str, qtype: int) -> Answer:
    answer = _classify(wire, qname, qtype)
    if answer.kind == "ambiguous" and wire is not None:
        answer = Answer(answer.kind, note=answer.note, maybe=_lenient(wire, qtype))
    return answer


def _classify(wire: bytes | None, qname: str, qtype: int) -> Answer:
    if wire is None:
        return Answer("failure", note="no reply")
    msg = _strict_parse(wire)
    if isinstance(msg, str):
        return Answer("ambiguous", note=msg)
    h = msg.header
    if h.id != QUERY_ID or not h.qr or h.opcode != 0:
        return Answer("ambiguous", note="wrong ID, QR or opcode")
    if h.tc:
        return Answer("ambiguous", note="truncated (TC)")
    if len(msg.questions) != 1 or names.canonical_label(msg.questions[0].qname) != qname \
            or msg.questions[0].qtype != qtype:
        return Answer("ambiguous", note="the question section does not match")
    if h.rcode == RCODE.SERVFAIL:
        return Answer("failure", note="SERVFAIL")
    if h.rcode == RCODE.NXDOMAIN:
        return Answer(f"denial-{'secure' if h.ad else 'insecure'}", note="NXDOMAIN")
    if h.rcode != RCODE.NOERROR:
        return Answer("ambiguous", note=f"RCODE {h.rcode}")
    owners, cname = {qname}, False
    for rr in msg.rr:  # CNAMEs in chain order (RFC 1034 §4.3.2, as the responder sends them)
        owner = names.canonical_label(rr.rname)
        if rr.rtype == QTYPE.CNAME and owner in owners:
            owners.add(names.canonical_label(rr.rdata.label))
            cname = True
    wanted = tuple(rr for rr in msg.rr if rr.rtype == qtype and names.canonical_label(rr.rname) in owners)
    if len(wanted) + sum(rr.rtype == QTYPE.CNAME for rr in msg.rr) != len(msg.rr):
        return Answer("ambiguous", note="records of another type or owner in the answer")
    if not wanted:
        return Answer(f"denial-{'secure' if h.ad else 'insecure'}", cname=cname, note="NODATA")
    return Answer("secure" if h.ad else "insecure", wanted, cname)


def _ask(world: World, mutator: RawReplies | None, query: bytes, transport: str) -> bytes | None:
    wire, record = respond(world, query, transport=transport)
    if mutator is not None:
        wire, _ = mutator(query, wire, record)
    return wire


def lookup(world: World, mutator: RawReplies | None, name: str, qtype: int) -> Answer:
    """What the lab's DNS answers a stub's question (AD and DO set, like Exim's), judged: over
    UDP, and over TCP when the UDP reply is truncated (RFC 1035 §4.2.1, RFC 7766), as glibc does."""
    q = DNSRecord.question(names.display(name), rdata.type_name(qtype))
    q.header.id, q.header.ad, q.header.rd = QUERY_ID, 1, 1
    q.add_ar(EDNS0(udp_len=EDNS_PAYLOAD, flags="do"))
    query = q.pack()
    answer = classify(_ask(world, mutator, query, "udp"), name, qtype)
    if answer.kind == "ambiguous" and answer.note.startswith("truncated"):
        answer = classify(_ask(world, mutator, query, "tcp"), name, qtype)
    return answer


def usable(rr: RR) -> bool:
    """RFC 7672 §3.1.3 / RFC 7671 §9 / RFC 6698 §2.1: a DANE-TA or DANE-EE record with a known
    selector and matching type and a digest of the right length."""
    t = rr.rdata
    if not isinstance(t, TLSA):
        return False
    if t.cert_usage not in USABLE_USAGES or t.selector not in (0, 1) or t.matching_type not in (0, 1, 2):
        return False
    want = DIGEST_LENGTHS.get(t.matching_type)
    return len(t.cert_data) == want if want else len(t.cert_data) > 0


@dataclass
class HostView:
    host: str
    address: Answer  # A
    other: Answer  # AAAA
    tlsa: Answer | None = None
    require: str = "none"  # "tls" | "no-delivery" | "none"
    why: str = ""


@dataclass
class Policy:
    """What the world requires of deliveries to each address."""

    mx: Answer
    hosts: list[HostView] = field(default_factory=list)
    by_address: dict[str, str] = field(default_factory=dict)  # address → "tls" | "no-delivery"
    note: str = ""

    def describe(self) -> str:
        lines = [f"MX {self.mx.describe()}"]
        for h in self.hosts:
            lines.append(f"  {h.host}: A {h.address.describe()}; AAAA {h.other.describe()}")
            if h.tlsa is not None:
                lines.append(f"    _25._tcp.{h.host} TLSA {h.tlsa.describe()}")
            lines.append(f"    → {h.require}{': ' + h.why if h.why else ''}")
        shown = ", ".join(f"{a} {r}" for a, r in self.by_address.items()) or "none"
        lines.append(f"requirements by address: {shown}{' (' + self.note + ')' if self.note else ''}")
        return "\n".join(lines)


def _address(rr: RR) -> str:
    return str(rr.rdata)


def policy(world: World, mutator: RawReplies | None, domain: str) -> Policy:
    mx = lookup(world, mutator, domain, QTYPE.MX)
    out = Policy(mx)
    if mx.kind != "secure" or mx.cname:
        return out
    seen: dict[str, set[str]] = {}
    unknown = False  # a host's addresses cannot be told: it may lead anywhere
    hosts = dict.fromkeys(names.canonical_label(rr.rdata.label) for rr in mx.records)
    for host in hosts:
        if not host:  # the null MX of RFC 7505
            continue
        address = lookup(world, mutator, host, QTYPE.A)
        # The other family must not make the host insecure either (RFC 7672 §2.2.2).
        other = lookup(world, mutator, host, QTYPE.AAAA)
        view = HostView(host, address, other)
        out.hosts.append(view)
        addrs = [_address(a) for a in address.records]
        if address.kind == "ambiguous":
            unknown = unknown or address.maybe is None
            addrs = list(address.maybe or ())
        if address.kind != "secure" or other.kind not in ("secure", "denial-secure"):
            view.why = "the address lookups are not all secure (RFC 7672 §2.2.2)"
        elif address.cname or other.cname:
            view.why = "a CNAME changes the TLSA base name (RFC 7672 §2.2.3)"
        else:
            view.tlsa = lookup(world, mutator, f"_25._tcp.{host}", QTYPE.TLSA)
            if view.tlsa.kind == "secure":
                n = sum(usable(t) for t in view.tlsa.records)
                view.require = "tls"
                view.why = (f"{n} usable TLSA record(s): authenticated TLS (RFC 7672 §2.2)" if n else
                            "only unusable TLSA records: TLS without authentication, never cleartext "
                            "(RFC 7672 §2.2, §3.1.3; RFC 7671 §9)")
            elif view.tlsa.kind == "failure":
                view.require = "no-delivery"
                view.why = "the TLSA lookup failed: the host is unusable (RFC 7672 §2.1.2)"
            elif view.tlsa.kind == "ambiguous":
                view.why = "no requirement is derived from an ambiguous TLSA reply"
            else:
                view.why = f"TLSA {view.tlsa.kind}: pre-DANE opportunistic TLS (RFC 7672 §2.2)"
        for a in addrs:
            seen.setdefault(a, set()).add(view.require)
    if unknown:
        out.note = "an address reply no reader can parse: any address may have been reached that way"
        return out
    for a, reqs in seen.items():
        if len(reqs) == 1 and "none" not in reqs:
            out.by_address[a] = next(iter(reqs))
    return out


__all__ = ["Answer", "HostView", "Policy", "classify", "lookup", "policy", "usable"]
