"""The fake DNS inside a real lab namespace, queried by glibc (getent), dig and dnslib."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import EDNS0, DNSRecord

from harness.dns import DNSServer, World
from harness.lab import addresses
from harness.lab.lab import Lab

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

WORLD = {
    "zones": [
        {"name": "d.test", "state": "secure", "records": [
            {"name": "d.test", "type": "MX", "value": "10 mx.d.test"},
            {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"},
            {"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": "3 1 1 " + "ab" * 32},
            {"name": "mx2.d.test", "type": "A", "value": "198.51.100.2", "state": "insecure"},
            {"name": "bad.d.test", "type": "A", "value": "198.51.100.3", "state": "bogus"},
            *({"name": "big.d.test", "type": "TXT", "value": f"{i:02d}" + "x" * 60}
              for i in range(20)),
        ]},
    ],
    "reverse": [{"address": "198.51.100.1", "ptr": "mx.d.test"}],
}


def netns_names() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def lab_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, DNSServer]]:
    with Lab(tmp_path_factory.mktemp("lab")) as lab:
        server = DNSServer(lab.socket, world=World.from_data(WORLD))
        server.start()
        try:
            yield lab, server
        finally:
            server.stop()


@pytest.fixture
def dns(lab_dns: tuple[Lab, DNSServer]) -> tuple[Lab, DNSServer]:
    lab_dns[1].clear_log()
    return lab_dns


def ask_udp(lab: Lab, name: str, qtype: str = "A", *, ad: bool = True) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    q.header.ad = int(ad)
    sock = lab.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(3)
        sock.sendto(q.pack(), (addresses.DNS_V4, 53))
        reply = DNSRecord.parse(sock.recv(65535))
    finally:
        sock.close()
    assert reply.header.id == q.header.id
    return reply


def ask_tcp(lab: Lab, name: str, qtype: str = "A") -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    q.header.ad = 1
    q.add_ar(EDNS0(flags="do", udp_len=1232))
    wire = q.pack()
    sock = lab.connect(addresses.DNS_V4, 53, timeout=3)
    try:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = sock.recv(65535)
            assert chunk
            data += chunk
    finally:
        sock.close()
    return DNSRecord.parse(data[2:])


def test_dnslib_client_udp_and_tcp_see_the_states(dns: tuple[Lab, DNSServer]) -> None:
    lab, server = dns
    secure = ask_udp(lab, "mx.d.test")
    assert (secure.header.ad, secure.header.aa, str(secure.rr[0].rdata)) == (1, 1, "198.51.100.1")
    assert ask_udp(lab, "mx2.d.test").header.ad == 0
    assert ask_udp(lab, "bad.d.test").header.rcode == 2  # SERVFAIL
    nx = ask_udp(lab, "nothing.d.test", "TLSA")
    assert (nx.header.rcode, nx.header.ad) == (3, 1)  # secure NXDOMAIN
    tlsa = ask_tcp(lab, "_25._tcp.mx.d.test", "TLSA")
    assert tlsa.header.ad == 1 and tlsa.rr[0].rdata.cert_data == bytes.fromhex("ab" * 32)
    assert [rr.edns_do for rr in tlsa.ar] == [1]
    assert ask_tcp(lab, "mx2.d.test").header.ad == 0

    log = server.log
    assert [(r.transport, r.qname, r.state, r.ad) for r in log] == [
        ("udp", "mx.d.test", "secure", True),
        ("udp", "mx2.d.test", "insecure", False),
        ("udp", "bad.d.test", "bogus", False),
        ("udp", "nothing.d.test", "secure", True),
        ("tcp", "_25._tcp.mx.d.test", "secure", True),
        ("tcp", "mx2.d.test", "insecure", False),
    ]
    # Queries come from inside the lab: from a lab address (lo carries them all).
    assert all(addresses.is_lab_address(r.client) for r in log)


def test_glibc_resolver_in_the_lab(dns: tuple[Lab, DNSServer]) -> None:
    lab, server = dns
    out = lab.run(["getent", "ahosts", "mx.d.test"], timeout=15)
    assert out.returncode == 0, out.stderr
    assert "198.51.100.1" in out.stdout.decode()
    [a] = server.query_log.matching("mx.d.test", "A")
    # trust-ad in the lab's resolv.conf makes glibc ask for AD, and keep it.
    assert a.ad_requested and a.ad and a.rcode == "NOERROR"

    ptr = lab.run(["getent", "hosts", "198.51.100.1"], timeout=15)
    assert ptr.returncode == 0 and "mx.d.test" in ptr.stdout.decode()
    missing = lab.run(["getent", "hosts", "198.51.100.40"], timeout=15)
    assert missing.returncode == 2
    assert server.query_log.matching("40.100.51.198.in-addr.arpa", "PTR")[0].rcode == "NXDOMAIN"

    outside = lab.run(["getent", "hosts", "www.example.com"], timeout=15)
    assert outside.returncode == 2
    assert {r.state for r in server.query_log.matching("www.example.com")} == {"outside"}


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed")
def test_dig_ad_bit_and_tcp_fallback(dns: tuple[Lab, DNSServer]) -> None:
    lab, server = dns
    out = lab.run(["dig", "+dnssec", "+time=2", "+tries=1", "mx.d.test", "A"], timeout=15)
    text = out.stdout.decode()
    assert out.returncode == 0 and "status: NOERROR" in text
    assert "flags: qr aa rd ra ad;" in text and "198.51.100.1" in text

    text = lab.run(["dig", "+tcp", "+time=2", "+tries=1", "mx2.d.test"],
                   timeout=15).stdout.decode()
    assert "flags: qr aa rd ra;" in text

    server.clear_log()
    text = lab.run(["dig", "+noedns", "+time=2", "+tries=1", "big.d.test", "TXT"],
                   timeout=15).stdout.decode()
    assert "ANSWER: 20," in text  # dig retried over TCP after TC
    assert [(r.transport, r.tc) for r in server.log] == [("udp", True), ("tcp", False)]


def test_lab_leaves_no_namespace_behind(tmp_path: Path) -> None:
    with Lab(tmp_path / "lab") as lab:
        name = lab.name
        assert name in netns_names()
        with DNSServer(lab.socket, world=World.from_data(WORLD)) as server:
            assert ask_udp(lab, "mx.d.test").header.ad == 1
            assert len(server.log) == 1
    assert name not in netns_names()
    assert not Path(f"/run/netns/{name}").exists()
