"""DNSServer I/O on the host loopback (no lab needed): UDP, TCP framing, TC fallback, log, stop."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from dnslib import DNSRecord

from harness.dns import DNSServer, World

WORLD = World.from_data({"zones": [{"name": "d.test", "records": [
    {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"},
    {"name": "slow.d.test", "type": "A", "value": "198.51.100.3", "state": "timeout"},
    *({"name": "big.d.test", "type": "TXT", "value": f"{i:02d}" + "x" * 60} for i in range(30)),
]}]})
OTHER = World.from_data({"zones": [{"name": "d.test", "state": "insecure", "records": [
    {"name": "mx.d.test", "type": "A", "value": "198.51.100.9"}]}]})


@pytest.fixture
def server():
    srv = DNSServer(socket.socket, "127.0.0.1", 0, world=WORLD)
    srv.start()
    yield srv
    srv.stop()


def query(name: str, qtype: str = "A") -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    q.header.ad = 1
    return q


def udp(srv: DNSServer, q: DNSRecord, timeout: float = 2.0) -> DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q.pack(), ("127.0.0.1", srv.port))
        return DNSRecord.parse(s.recv(65535))


def recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def test_udp_answer_and_log(server: DNSServer) -> None:
    reply = udp(server, query("mx.d.test"))
    assert reply.header.ad == 1 and str(reply.rr[0].rdata) == "198.51.100.1"
    [rec] = server.log
    assert (rec.transport, rec.client, rec.qname, rec.state, rec.ad) == \
        ("udp", "127.0.0.1", "mx.d.test", "secure", True)
    assert rec.wall.endswith("+00:00")


def test_tcp_pipelined_and_truncation_fallback(server: DNSServer) -> None:
    reply = udp(server, query("big.d.test", "TXT"))
    assert reply.header.tc == 1 and reply.rr == []
    qs = [query("big.d.test", "TXT"), query("mx.d.test")]
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
        # Both queries in one segment, the second split across two writes.
        wires = [q.pack() for q in qs]
        stream = b"".join(struct.pack("!H", len(w)) + w for w in wires)
        s.sendall(stream[:-3])
        time.sleep(0.02)
        s.sendall(stream[-3:])
        replies = []
        for _ in qs:
            (length,) = struct.unpack("!H", recv_exact(s, 2))
            replies.append(DNSRecord.parse(recv_exact(s, length)))
    assert replies[0].header.tc == 0 and len(replies[0].rr) == 30
    assert [r.header.id for r in replies] == [q.header.id for q in qs]
    assert [(r.transport, r.tc) for r in server.log] == [("udp", True), ("tcp", False),
                                                         ("tcp", False)]


def test_timeout_state_sends_nothing(server: DNSServer) -> None:
    with pytest.raises(socket.timeout):
        udp(server, query("slow.d.test"), timeout=0.3)
    assert server.log[-1].state == "timeout" and server.log[-1].rcode is None
    assert udp(server, query("mx.d.test")).header.rcode == 0  # still serving


def test_malformed_packets_do_not_stop_the_server(server: DNSServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\xff" * 3, b"\x00\x00\x01\x00\x00\x01" + b"\x00" * 6 + b"\xc0"):
            s.sendto(junk, ("127.0.0.1", server.port))
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
        s.sendall(b"\x00\x05hello")
    assert server.query_log.wait_for(lambda rs: len(rs) >= 4, timeout=2)
    assert udp(server, query("mx.d.test")).header.rcode == 0
    states = [r.state for r in server.log]
    assert states[:4] == ["malformed"] * 4 and states[-1] == "secure"


def test_set_world_and_clear_log(server: DNSServer) -> None:
    assert udp(server, query("mx.d.test")).header.ad == 1
    server.set_world(OTHER)
    server.clear_log()
    reply = udp(server, query("mx.d.test"))
    assert reply.header.ad == 0 and str(reply.rr[0].rdata) == "198.51.100.9"
    assert [r.state for r in server.log] == ["insecure"]
    assert server.query_log.matching("MX.D.TEST.", "A") == server.log


def test_log_is_ordered_under_concurrency(server: DNSServer) -> None:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
    try:
        for s in socks:
            s.sendto(query("mx.d.test").pack(), ("127.0.0.1", server.port))
        for s in socks:
            s.settimeout(2)
            s.recv(512)
    finally:
        for s in socks:
            s.close()
    stamps = [r.monotonic for r in server.log]
    assert len(stamps) == 20 and stamps == sorted(stamps)


def test_stop_is_quick_and_idempotent() -> None:
    srv = DNSServer(socket.socket, "127.0.0.1", 0, world=WORLD)
    srv.start()
    conn = socket.create_connection(("127.0.0.1", srv.port), timeout=2)  # an idle TCP client
    try:
        assert srv.running
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 0.5 and not srv.running
        srv.stop()
        assert conn.recv(10) == b""  # the server closed it
    finally:
        conn.close()
    with pytest.raises(OSError):
        udp(srv, query("mx.d.test"), timeout=0.2)
