"""The TLS pieces of OCSP: the probe client (tls_probe.py) and the scripted flight (tls_flight.py),
against a FakeMX on 127.0.0.1 (no lab needed).

The probe must see what a server really sent (staple, ServerHello echo, message order) in TLS 1.2
and 1.3; the scripted flight must send what no TLS library sends (an unsolicited
CertificateStatus, a CertificateStatus without the echo), and a real client (OpenSSL) must object.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from harness.pki.ca import PKI, Leaf
from harness.pki.ocsp import build_response
from harness.smtp.client import SMTPClient
from harness.smtp.peer import FakeMX
from harness.smtp.peer_script import script_from_data
from harness.smtp.tls_flight import parse_client_hello
from harness.smtp.tls_probe import TLSRecordError, handshake_view, parse_records, probe_handshake
from harness.smtp.transcript import Transcript


@pytest.fixture(scope="module")
def leaf() -> Leaf:
    return PKI("tls test").issue(["mx.d.test"])


def tls_config(leaf: Leaf, **extra: Any) -> dict[str, Any]:
    return {"cert_pem": leaf.chain_pem.encode(), "key_pem": leaf.key_pem.encode(), **extra}


def raw_flight(leaf: Leaf, unsolicited: bool, staple: bytes | None = None) -> dict[str, Any]:
    return {"chain": [c.public_bytes(Encoding.DER) for c in (leaf.cert, *leaf.intermediates)],
            "key_pem": leaf.key_pem.encode(), "unsolicited": unsolicited,
            "staple": build_response(leaf, {}) if staple is None else staple}


@pytest.fixture()
def mx_factory() -> Iterator[Any]:
    started: list[FakeMX] = []

    def make(tls: dict[str, Any]) -> FakeMX:
        mx = FakeMX("mx", "127.0.0.1", 0, script_from_data({"ehlo": ["STARTTLS"]}),
                    socket_factory=socket.socket, tls=tls)
        mx.start()
        started.append(mx)
        return mx

    yield make
    for mx in started:
        mx.stop()


def starttls(mx: FakeMX, **options: Any) -> tuple[Any, dict[str, Any]]:
    sock = socket.create_connection(("127.0.0.1", mx.port), timeout=5)
    client = SMTPClient(sock, Transcript("t"), reply_timeout=5)
    assert client.read_reply().code == 220
    assert client.command("EHLO client.test").code == 250
    assert client.command("STARTTLS").code == 220
    probe, info = probe_handshake(sock, None, 5.0, options)
    if probe is not None:
        client.sock = probe  # type: ignore[assignment]
        client.parser = type(client.parser)()
        assert client.command("EHLO again.test").code == 250
        client.quit()
    client.close()
    return probe, info


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_probe_receives_the_staple(version: str, leaf: Leaf, mx_factory: Any) -> None:
    staple = build_response(leaf, {"status": "unknown"})
    mx = mx_factory(tls_config(leaf, ocsp_staple=staple))
    opts = {"request_ocsp": True, "max_version" if version == "TLSv1.2" else "min_version": version}
    probe, info = starttls(mx, **opts)
    assert probe is not None and info["version"] == version
    assert info["ocsp_staple"] == staple and info["ocsp_requested"]
    view = info["handshake"]
    if version == "TLSv1.2":
        assert view["messages"][:3] == ["server_hello", "certificate", "certificate_status"]
        assert view["server_hello"]["status_request"] == ""
        assert view["certificate_status"] == [{"status_type": 1, "length": len(staple), "complete": True}]
    else:
        assert view["messages"] == ["server_hello"] and view["server_hello"]["selected_version"] == "0304"
    assert info["chain"][0]["dns_names"] == ["mx.d.test"]


def test_probe_without_request_gets_no_staple(leaf: Leaf, mx_factory: Any) -> None:
    mx = mx_factory(tls_config(leaf, ocsp_staple=build_response(leaf, {})))
    probe, info = starttls(mx, request_ocsp=False, max_version="TLSv1.2")
    assert probe is not None and info["ocsp_staple"] is None
    assert "certificate_status" not in info["handshake"]["messages"]
    assert "status_request" not in info["handshake"]["server_hello"]
    (session,) = mx.sessions_seen
    assert session.tls["ocsp_requested"] is False


@pytest.mark.parametrize("request_ocsp", [False, True])
def test_unsolicited_status_is_seen_and_refused_by_openssl(request_ocsp: bool, leaf: Leaf,
                                                           mx_factory: Any) -> None:
    mx = mx_factory(tls_config(leaf, raw_flight=raw_flight(leaf, unsolicited=True)))
    probe, info = starttls(mx, request_ocsp=request_ocsp, max_version="TLSv1.2")
    assert probe is None and info["handshake_ok"] is False
    view = info["handshake"]
    assert view["messages"] == ["server_hello", "certificate", "certificate_status",
                                "server_key_exchange", "server_hello_done"]
    assert "status_request" not in view["server_hello"]
    assert mx.wait_idle(5)
    (session,) = mx.sessions_seen
    assert session.tls["unsolicited_status_sent"] and session.tls["ocsp_requested"] is request_ocsp
    # OpenSSL rejects the CertificateStatus it did not ask for (or whose request was not echoed).
    assert session.tls["alerts_received"][:1] == [10], session.tls  # unexpected_message


@pytest.mark.parametrize(("spec", "key"), [({"serial": "other"}, "ec"), ({"signer": "unrelated"}, "rsa")])
def test_scripted_server_completes_and_staples_any_bytes(spec: dict[str, Any], key: str,
                                                         mx_factory: Any) -> None:
    """What OpenSSL's server would drop, the scripted one staples, and SMTP goes on over it."""
    leaf = PKI("scripted").issue(["mx.d.test"], key_type=key)  # type: ignore[arg-type]
    staple = build_response(leaf, spec)
    mx = mx_factory(tls_config(leaf, raw_flight=raw_flight(leaf, unsolicited=False, staple=staple)))
    probe, info = starttls(mx, request_ocsp=True, max_version="TLSv1.2")
    assert probe is not None and info["version"] == "TLSv1.2", info
    assert info["ocsp_staple"] == staple
    assert info["handshake"]["server_hello"]["status_request"] == ""
    assert mx.wait_idle(5)
    (session,) = mx.sessions_seen
    assert session.tls["handshake_ok"] and session.tls["ocsp_stapled"]
    assert [c.verb for c in session.commands] == ["EHLO", "STARTTLS", "EHLO", "QUIT"]
    assert session.closed_by == "client"


@pytest.mark.parametrize("corrupt", ["truncated", "der"])
def test_scripted_server_staples_garbage_and_openssl_objects(corrupt: str, leaf: Leaf,
                                                             mx_factory: Any) -> None:
    """A staple that is not an OCSPResponse reaches the client, which answers
    bad_certificate_status_response(113) (RFC 6066 §8) — seen by the fake MX."""
    staple = build_response(leaf, {"corrupt": corrupt})
    mx = mx_factory(tls_config(leaf, raw_flight=raw_flight(leaf, unsolicited=False, staple=staple)))
    probe, info = starttls(mx, request_ocsp=True, max_version="TLSv1.2")
    assert probe is None and "certificate_status" in info["handshake"]["messages"]
    assert mx.wait_idle(5)
    (session,) = mx.sessions_seen
    assert session.tls["alerts_received"] == [113] and not session.tls["handshake_ok"]


def test_scripted_server_without_a_request_sends_no_status(leaf: Leaf, mx_factory: Any) -> None:
    mx = mx_factory(tls_config(leaf, raw_flight=raw_flight(leaf, unsolicited=False)))
    probe, info = starttls(mx, request_ocsp=False, max_version="TLSv1.2")
    assert probe is not None and info["ocsp_staple"] is None
    assert "certificate_status" not in info["handshake"]["messages"]


def test_client_hello_parsing_and_record_framing() -> None:
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\xc0\x2b" + b"\x01\x00" + b"\x00\x00"
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    hello = b"\x16\x03\x01" + len(message).to_bytes(2, "big") + message
    parsed = parse_client_hello(hello)
    assert parsed is not None and parsed["suites"] == [0xC02B] and not parsed["status_request"]
    assert parse_client_hello(hello[:20]) is None
    stream = hello * 3
    # Fed whole, a byte at a time, and with trailing bytes: the same records.
    whole, rest = parse_records(stream)
    assert rest == b"" and len(whole) == 3 and parse_records(stream + b"\x16\x03")[1] == b"\x16\x03"
    acc, pieces = b"", []
    for i in range(len(stream)):
        acc += stream[i : i + 1]
        got, acc = parse_records(acc)
        pieces += got
    assert pieces == whole


def test_handshake_view_reports_garbage() -> None:
    assert handshake_view(b"GET / HTTP/1.0\r\n")["error"]
    with pytest.raises(TLSRecordError):
        parse_records(b"\x99\x03\x03\x00\x01\x00")
