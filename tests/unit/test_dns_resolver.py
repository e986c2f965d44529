"""World + question → Resolution, and through the responder → reply packets (no sockets)."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from harness.dns.resolver import Outcome, resolve
from harness.dns.responder import respond
from harness.dns.zone import World

TLSA_HEX = "ab" * 32

WORLD = World.from_data({
    "zones": [
        {"name": "d.test", "state": "secure", "records": [
            {"name": "d.test", "type": "MX", "value": "10 mx.d.test"},
            {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"},
            {"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": f"3 1 1 {TLSA_HEX}"},
            {"name": "mx2.d.test", "type": "A", "value": "198.51.100.2", "state": "insecure"},
            {"name": "slow.d.test", "type": "A", "value": "198.51.100.3", "state": "timeout"},
            {"name": "broken.d.test", "type": "A", "value": "198.51.100.4", "state": "bogus"},
            {"name": "gone.d.test", "type": "TLSA", "state": "insecure"},
            # CNAME chains across zones with mixed states
            {"name": "alias.d.test", "type": "CNAME", "value": "mx.d.test"},
            {"name": "to-insecure.d.test", "type": "CNAME", "value": "www.i.test"},
            {"name": "to-bogus.d.test", "type": "CNAME", "value": "www.b.test"},
            {"name": "to-nx.d.test", "type": "CNAME", "value": "nothing.d.test"},
            {"name": "to-outside.d.test", "type": "CNAME", "value": "mx.elsewhere.example"},
            {"name": "to-slow.d.test", "type": "CNAME", "value": "slow.d.test"},
            {"name": "loop1.d.test", "type": "CNAME", "value": "loop2.d.test"},
            {"name": "loop2.d.test", "type": "CNAME", "value": "loop1.d.test"},
            {"name": "bad-link.d.test", "type": "CNAME", "value": "mx.d.test",
             "state": "bogus"},
        ]},
        {"name": "i.test", "state": "insecure", "records": [
            {"name": "www.i.test", "type": "A", "value": "198.51.100.5"},
            {"name": "back.i.test", "type": "CNAME", "value": "mx.d.test"},
        ]},
        {"name": "b.test", "state": "bogus", "records": [
            {"name": "www.b.test", "type": "A", "value": "198.51.100.6"},
        ]},
        {"name": "t.test", "state": "timeout", "records": [
            {"name": "t.test", "type": "MX", "value": "10 mx.t.test"},
        ]},
        {"name": "ns.test", "ns_in_authority": True, "records": [
            {"name": "mx.ns.test", "type": "A", "value": "198.51.100.7"},
        ]},
    ],
    "reverse": [{"address": "198.51.100.1", "ptr": "mx.d.test"}],
})


def answers(res) -> list[str]:
    return [f"{rr.rname} {QTYPE[rr.rtype]} {rr.rdata.toZone()}" for rr in res.answer]


# -- resolve() --------------------------------------------------------------------------------

@pytest.mark.parametrize(("qname", "qtype", "rcode", "outcome", "answer"), [
    ("d.test", "MX", RCODE.NOERROR, Outcome.SECURE, ["d.test. MX 10 mx.d.test."]),
    ("MX.d.TEST", "A", RCODE.NOERROR, Outcome.SECURE, ["mx.d.test. A 198.51.100.1"]),
    ("_25._tcp.mx.d.test", "TLSA", RCODE.NOERROR, Outcome.SECURE,
     [f"_25._tcp.mx.d.test. TLSA 3 1 1 {TLSA_HEX.upper()}"]),
    ("mx2.d.test", "A", RCODE.NOERROR, Outcome.INSECURE, ["mx2.d.test. A 198.51.100.2"]),
    ("broken.d.test", "A", RCODE.SERVFAIL, Outcome.BOGUS, []),
    ("slow.d.test", "A", RCODE.SERVFAIL, Outcome.TIMEOUT, []),
    ("t.test", "MX", RCODE.SERVFAIL, Outcome.TIMEOUT, []),
    ("nothing.t.test", "A", RCODE.SERVFAIL, Outcome.TIMEOUT, []),
])
def test_positive_and_state_answers(qname, qtype, rcode, outcome, answer) -> None:
    res = resolve(WORLD, qname.lower(), getattr(QTYPE, qtype))
    assert (res.rcode, res.outcome, answers(res)) == (rcode, outcome, answer)
    assert res.authentic == (outcome is Outcome.SECURE)
    assert res.silent == (outcome is Outcome.TIMEOUT)


@pytest.mark.parametrize(("qname", "qtype", "rcode", "outcome"), [
    ("nothing.d.test", "A", RCODE.NXDOMAIN, Outcome.SECURE),  # secure NXDOMAIN
    ("mx.d.test", "AAAA", RCODE.NOERROR, Outcome.SECURE),  # secure NODATA
    ("_tcp.mx.d.test", "TLSA", RCODE.NOERROR, Outcome.SECURE),  # empty non-terminal: NODATA
    ("gone.d.test", "TLSA", RCODE.NXDOMAIN, Outcome.INSECURE),  # per-type state, no records
    ("gone.d.test", "A", RCODE.NXDOMAIN, Outcome.SECURE),
    ("nothing.i.test", "A", RCODE.NXDOMAIN, Outcome.INSECURE),
    ("www.i.test", "TLSA", RCODE.NOERROR, Outcome.INSECURE),
    ("nothing.b.test", "A", RCODE.SERVFAIL, Outcome.BOGUS),
])
def test_negative_answers_carry_the_zone_state(qname, qtype, rcode, outcome) -> None:
    res = resolve(WORLD, qname, getattr(QTYPE, qtype))
    assert (res.rcode, res.outcome) == (rcode, outcome)
    assert res.answer == ()
    if rcode != RCODE.SERVFAIL:  # RFC 2308 §3: the zone's SOA in AUTHORITY
        soa = [f"{rr.rname} {QTYPE[rr.rtype]}" for rr in res.authority]
        assert soa == [f"{WORLD.zone_for(qname).name}. SOA"]


def test_cname_chains() -> None:
    res = resolve(WORLD, "alias.d.test", QTYPE.A)
    assert answers(res) == ["alias.d.test. CNAME mx.d.test.", "mx.d.test. A 198.51.100.1"]
    assert res.outcome is Outcome.SECURE and res.authentic

    res = resolve(WORLD, "to-insecure.d.test", QTYPE.A)  # secure → insecure: no AD
    assert answers(res)[-1] == "www.i.test. A 198.51.100.5"
    assert res.outcome is Outcome.INSECURE and not res.authentic

    res = resolve(WORLD, "back.i.test", QTYPE.A)  # insecure → secure: no AD either
    assert len(res.answer) == 2 and not res.authentic

    res = resolve(WORLD, "to-bogus.d.test", QTYPE.A)  # a bogus link fails the whole answer
    assert (res.rcode, res.outcome, res.answer) == (RCODE.SERVFAIL, Outcome.BOGUS, ())

    res = resolve(WORLD, "bad-link.d.test", QTYPE.A)  # the CNAME itself is bogus
    assert (res.rcode, res.outcome) == (RCODE.SERVFAIL, Outcome.BOGUS)

    res = resolve(WORLD, "to-nx.d.test", QTYPE.A)  # RFC 6604: rcode of the last name
    assert res.rcode == RCODE.NXDOMAIN and answers(res) == ["to-nx.d.test. CNAME nothing.d.test."]
    assert res.authentic and [QTYPE[rr.rtype] for rr in res.authority] == ["SOA"]

    res = resolve(WORLD, "to-outside.d.test", QTYPE.A)  # leaves the world: CNAME only
    assert res.rcode == RCODE.NOERROR and len(res.answer) == 1

    assert resolve(WORLD, "to-slow.d.test", QTYPE.A).silent
    loop = resolve(WORLD, "loop1.d.test", QTYPE.A)
    assert (loop.rcode, loop.outcome) == (RCODE.SERVFAIL, Outcome.LOOP)

    res = resolve(WORLD, "alias.d.test", QTYPE.CNAME)  # asking for the CNAME: no chase
    assert answers(res) == ["alias.d.test. CNAME mx.d.test."]


def test_cd_bit_returns_bogus_data_unvalidated() -> None:
    res = resolve(WORLD, "to-bogus.d.test", QTYPE.A, cd=True)  # RFC 4035 §3.2.2
    assert res.rcode == RCODE.NOERROR and len(res.answer) == 2
    assert res.outcome is Outcome.BOGUS and not res.authentic


def test_outside_root_and_reverse() -> None:
    res = resolve(WORLD, "mx.elsewhere.example", QTYPE.A)
    assert (res.rcode, res.outcome, res.in_world) == (RCODE.REFUSED, Outcome.OUTSIDE, False)
    res = resolve(WORLD, "", QTYPE.NS)  # Postfix's dnssec_probe "ns:."
    assert res.authentic and answers(res) == [". NS a.root.test."]
    assert resolve(WORLD, "test", QTYPE.NS).outcome is Outcome.OUTSIDE
    ptr = resolve(WORLD, "1.100.51.198.in-addr.arpa", QTYPE.PTR)
    assert answers(ptr) == ["1.100.51.198.in-addr.arpa. PTR mx.d.test."]
    assert ptr.outcome is Outcome.INSECURE
    nx = resolve(WORLD, "10.2.0.192.in-addr.arpa", QTYPE.PTR)
    assert nx.rcode == RCODE.NXDOMAIN
    nx6 = resolve(WORLD, "1.0.0.0.ip6.arpa", QTYPE.PTR)
    assert nx6.rcode == RCODE.NXDOMAIN


def test_ns_in_authority_and_any() -> None:
    res = resolve(WORLD, "mx.ns.test", QTYPE.A)
    assert [f"{rr.rname} {QTYPE[rr.rtype]}" for rr in res.authority] == ["ns.test. NS"]
    assert resolve(WORLD, "mx.d.test", QTYPE.A).authority == ()
    res = resolve(WORLD, "d.test", QTYPE.ANY)
    assert {QTYPE[rr.rtype] for rr in res.answer} == {"MX", "SOA", "NS"}


# -- respond(): packets -----------------------------------------------------------------------

def ask(qname: str, qtype: str = "A", *, ad: bool = True, cd: bool = False,
        edns: bool = False, do: bool = False, payload: int = 1232, world: World = WORLD,
        transport: str = "udp", **kw):
    q = DNSRecord.question(qname, qtype)
    q.header.ad = int(ad)
    q.header.cd = int(cd)
    if edns or do:
        from dnslib import EDNS0
        q.add_ar(EDNS0(udp_len=payload, flags="do" if do else ""))
    wire, record = respond(world, q.pack(), transport=transport, client=("192.0.2.25", 4242),
                           **kw)
    return (DNSRecord.parse(wire) if wire is not None else None), record, q


def test_reply_header_secure_insecure_bogus_timeout() -> None:
    reply, rec, q = ask("mx.d.test")
    h = reply.header
    assert (h.id, h.qr, h.aa, h.ra, h.rd, h.ad, h.rcode) == (q.header.id, 1, 1, 1, 1, 1, 0)
    assert str(reply.q.qname) == "mx.d.test." and reply.ar == []
    assert (rec.state, rec.rcode, rec.ad, rec.aa, rec.qname, rec.qtype) == \
        ("secure", "NOERROR", True, True, "mx.d.test", "A")
    assert rec.answer == ("mx.d.test. A 198.51.100.1",)
    assert (rec.client, rec.client_port, rec.transport) == ("192.0.2.25", 4242, "udp")

    reply, rec, _ = ask("mx2.d.test")
    assert reply.header.ad == 0 and reply.header.rcode == RCODE.NOERROR
    assert rec.state == "insecure"

    reply, rec, _ = ask("broken.d.test")
    assert (reply.header.rcode, reply.header.ad, reply.header.aa) == (RCODE.SERVFAIL, 0, 0)
    assert rec.state == "bogus" and rec.rcode == "SERVFAIL"

    reply, rec, _ = ask("slow.d.test")
    assert reply is None and rec.state == "timeout" and rec.rcode is None and not rec.replied


def test_negative_replies_and_ad() -> None:
    reply, rec, _ = ask("nothing.d.test", "TLSA")
    assert (reply.header.rcode, reply.header.ad) == (RCODE.NXDOMAIN, 1)
    assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"] and rec.rcode == "NXDOMAIN"
    reply, _, _ = ask("nothing.i.test", "TLSA")
    assert (reply.header.rcode, reply.header.ad) == (RCODE.NXDOMAIN, 0)
    reply, _, _ = ask("mx.d.test", "AAAA")
    assert (reply.header.rcode, reply.header.ad, len(reply.rr)) == (RCODE.NOERROR, 1, 0)
    reply, rec, _ = ask("mx.elsewhere.example")
    assert (reply.header.rcode, reply.header.aa, rec.state) == (RCODE.REFUSED, 0, "outside")


def test_ad_only_when_requested() -> None:
    reply, rec, _ = ask("mx.d.test", ad=False)
    assert reply.header.ad == 0 and not rec.ad_requested
    reply, rec, _ = ask("mx.d.test", ad=False, do=True)  # DO also asks (RFC 6840 §5.8)
    assert reply.header.ad == 1 and rec.do
    reply, _, _ = ask("mx.d.test", ad=False, ad_only_if_requested=False)
    assert reply.header.ad == 1


def test_cd_is_copied_and_serves_bogus() -> None:
    reply, rec, _ = ask("broken.d.test", cd=True)
    assert (reply.header.rcode, reply.header.cd, reply.header.ad) == (RCODE.NOERROR, 1, 0)
    assert rec.cd and rec.state == "bogus"


def test_edns_is_echoed_with_do() -> None:
    reply, rec, _ = ask("mx.d.test", do=True, payload=4096)
    opts = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    assert len(opts) == 1 and opts[0].edns_do == 1 and opts[0].edns_len == 1232
    assert rec.edns and rec.edns_payload == 4096
    reply, rec, _ = ask("mx.d.test", edns=True)
    assert [rr.edns_do for rr in reply.ar] == [0] and not rec.do


def big_world(n: int = 40) -> World:
    return World.from_data({"zones": [{"name": "big.test", "records": [
        {"name": "big.test", "type": "TXT", "value": f"{i:03d}" + "x" * 60} for i in range(n)]}]})


def test_udp_truncation_without_and_with_edns() -> None:
    w = big_world()
    reply, rec, _ = ask("big.test", "TXT", world=w)
    assert reply.header.tc == 1 and reply.rr == [] and str(reply.q.qname) == "big.test."
    assert rec.tc and rec.size <= 512
    reply, rec, _ = ask("big.test", "TXT", world=w, edns=True, payload=4096)
    assert reply.header.tc == 1 and rec.size <= 1232  # our own payload limit applies
    assert [rr.rtype for rr in reply.ar] == [QTYPE.OPT]
    small = big_world(10)
    reply, rec, _ = ask("big.test", "TXT", world=small, edns=True, payload=1232)
    assert reply.header.tc == 0 and len(reply.rr) == 10 and rec.size > 512
    reply, rec, _ = ask("big.test", "TXT", world=small, edns=True, payload=100)  # floor 512
    assert reply.header.tc == 1
    reply, rec, _ = ask("big.test", "TXT", world=w, transport="tcp")
    assert reply.header.tc == 0 and len(reply.rr) == 40 and rec.transport == "tcp"


@pytest.mark.parametrize("data", [
    b"",
    b"\x00",
    b"\x12\x34\x01\x00\x00\x01",  # header cut short
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab",  # question cut short
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # ptr loop
    bytes(range(256)),
])
def test_malformed_queries_are_logged_and_ignored(data: bytes) -> None:
    wire, rec = respond(WORLD, data)
    assert wire is None and rec.state == "malformed" and rec.error


def test_responses_are_not_answered() -> None:
    q = DNSRecord.question("mx.d.test")
    q.header.qr = 1
    wire, rec = respond(WORLD, q.pack())
    assert wire is None and rec.state == "malformed"


def test_unsupported_queries_get_error_rcodes() -> None:
    q = DNSRecord.question("mx.d.test")
    q.header.opcode = 2
    wire, rec = respond(WORLD, q.pack())
    assert DNSRecord.parse(wire).header.rcode == RCODE.NOTIMP and rec.state == "unsupported"

    q = DNSRecord.question("mx.d.test")
    q.add_question(*DNSRecord.question("d.test", "MX").questions)
    wire, rec = respond(WORLD, q.pack())
    assert DNSRecord.parse(wire).header.rcode == RCODE.FORMERR

    q = DNSRecord.question("mx.d.test", qclass="CH")
    wire, rec = respond(WORLD, q.pack())
    assert DNSRecord.parse(wire).header.rcode == RCODE.REFUSED

    from dnslib import EDNS0
    q = DNSRecord.question("mx.d.test")
    q.add_ar(EDNS0(version=1))
    wire, rec = respond(WORLD, q.pack())
    reply = DNSRecord.parse(wire)
    assert reply.header.rcode == 0 and reply.ar[0].edns_rcode == 1 and rec.rcode == "BADVERS"
