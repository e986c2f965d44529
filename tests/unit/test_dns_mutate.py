"""Raw reply mutations (harness/dns/mutate.py) and the DNS server's mutator hook."""

from __future__ import annotations

import socket

import pytest
from dnslib import QTYPE, DNSRecord

from harness.dns import DNSServer, World
from harness.dns.mutate import MutationError, RawReplies, apply, check_ops, describe
from harness.dns.responder import respond

WORLD = World.from_data({"zones": [{"name": "d.test", "records": [
    {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"},
    {"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": "3 1 1 " + "ab" * 32},
    {"name": "slow.d.test", "type": "A", "state": "timeout"},
]}]})


def reply_for(name: str, qtype: str = "A") -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.ad = 1
    wire, _ = respond(WORLD, q.pack())
    assert wire is not None
    return wire


def test_header_operations() -> None:
    good = reply_for("mx.d.test")
    out = apply(good, check_ops([{"op": "id", "delta": 1}, {"op": "flags", "set": 0x0200, "clear": 0x0020},
                                 {"op": "count", "section": "an", "value": 7}]))
    assert out is not None and len(out) == len(good)
    assert int.from_bytes(out[:2], "big") == (int.from_bytes(good[:2], "big") + 1) & 0xFFFF
    flags = int.from_bytes(out[2:4], "big")
    assert flags & 0x0200 and not flags & 0x0020  # TC set, AD cleared (RFC 1035 §4.1.1, RFC 4035)
    assert int.from_bytes(out[6:8], "big") == 7
    assert out[8:] == good[8:]


def test_byte_operations_and_drop() -> None:
    good = reply_for("mx.d.test")
    assert apply(good, [{"op": "truncate", "length": 5}]) == good[:5]
    assert apply(good, [{"op": "append", "hex": "dead"}]) == good + b"\xde\xad"
    flipped = apply(good, [{"op": "xor", "offset": len(good) + 2, "mask": 0xFF}])
    assert flipped is not None and flipped[2] == good[2] ^ 0xFF  # offset taken modulo the length
    assert apply(good, [{"op": "drop"}]) is None
    assert apply(good, [{"op": "replace", "hex": "00ff"}, {"op": "append", "hex": "01"}]) == b"\x00\xff\x01"
    assert apply(None, [{"op": "truncate", "length": 3}]) is None  # nothing to mutate
    assert apply(None, [{"op": "replace", "hex": "01"}]) == b"\x01"  # a reply where none was due


def test_rr_adds_a_record_of_any_type() -> None:
    good = reply_for("_25._tcp.mx.d.test", "TLSA")
    out = apply(good, check_ops([{"op": "rr", "section": "answer", "name": "@", "type": "A",
                                  "rdata_hex": "c6336401"}]))
    parsed = DNSRecord.parse(out)
    assert [QTYPE.get(rr.rtype) for rr in parsed.rr] == ["TLSA", "A"]
    assert str(parsed.rr[1].rname) == "_25._tcp.mx.d.test."
    # Garbage is left alone by a structural operation.
    assert apply(b"\x01\x02", [{"op": "rr", "type": 1, "rdata_hex": ""}]) == b"\x01\x02"


@pytest.mark.parametrize("ops, where", [
    ("nope", "ops"),
    ([{"op": "explode"}], "ops[0]"),
    ([{"op": "xor", "offset": 1, "mask": 0}], "ops[0].mask"),
    ([{"op": "count", "section": "zz", "value": 1}], "ops[0].section"),
    ([{"op": "replace", "hex": "abc"}], "ops[0].hex"),
    ([{"op": "truncate", "length": 3, "extra": 1}], "ops[0]"),
    ([{"op": "rr", "type": "NOPE"}], "ops[0].type"),
])
def test_bad_operations_name_their_place(ops: object, where: str) -> None:
    with pytest.raises(MutationError) as err:
        check_ops(ops)
    assert err.value.path == where


def test_describe() -> None:
    assert describe([{"op": "flags", "set": 0x0200, "clear": 0}, {"op": "truncate", "length": 40}]) == \
        "flags set=0x0200 clear=0x0000; truncate length=40"


def test_rules_from_data_and_udp_only() -> None:
    rules = RawReplies.rules_from_data([{"name": "MX.d.test.", "type": "a", "ops": [{"op": "drop"}],
                                         "udp_only": True}])
    raw = RawReplies(rules)
    assert raw.rule_for("mx.d.test", "A", "udp") is not None
    assert raw.rule_for("mx.d.test", "A", "tcp") is None
    assert raw.rule_for("mx.d.test", "AAAA", "udp") is None
    with pytest.raises(MutationError, match=r"mutations\[0\]"):
        RawReplies.rules_from_data([{"name": "x.test", "type": "A"}])


@pytest.fixture
def server():
    srv = DNSServer(socket.socket, "127.0.0.1", 0, world=WORLD)
    srv.start()
    yield srv
    srv.stop()


def ask(srv: DNSServer, name: str, qtype: str = "A", timeout: float = 0.5) -> bytes | None:
    q = DNSRecord.question(name, qtype)
    q.header.ad = 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q.pack(), ("127.0.0.1", srv.port))
        try:
            return s.recv(65535)
        except TimeoutError:
            return None


def test_server_mutator_hook(server: DNSServer) -> None:
    raw = RawReplies(RawReplies.rules_from_data([
        {"name": "mx.d.test", "type": "A", "ops": [{"op": "replace", "hex": "0badbeef"}]},
        {"name": "slow.d.test", "type": "A", "ops": [{"op": "replace", "hex": "00"}]},
    ]))
    server.set_mutator(raw)
    assert ask(server, "mx.d.test") == b"\x0b\xad\xbe\xef"
    assert ask(server, "slow.d.test") == b"\x00"  # a reply where the world sends none
    untouched = ask(server, "_25._tcp.mx.d.test", "TLSA")
    assert untouched is not None and DNSRecord.parse(untouched).rr
    log = server.log
    assert [r.mutation for r in log] == ["replace hex=0badbeef", "replace hex=00", None]
    assert log[0].rcode == "NOERROR" and log[0].size == 4  # the reply before it, the size sent
    server.set_mutator(None)
    good = ask(server, "mx.d.test")
    assert good is not None and DNSRecord.parse(good).rr


def test_a_failing_mutator_is_logged_and_the_reply_sent(server: DNSServer) -> None:
    def broken(query: bytes, reply: bytes | None, record: object) -> tuple[bytes | None, str | None]:
        raise RuntimeError("boom")

    server.set_mutator(broken)
    got = ask(server, "mx.d.test")
    assert got is not None and DNSRecord.parse(got).rr
    assert "mutator failed: RuntimeError: boom" in (server.log[0].error or "")
