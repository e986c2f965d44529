"""The client-side OCSP checks, against deliberately wrong clients of our own (no MTA, no lab).

A FakeMX on 127.0.0.1 staples a revoked response; the harness's own TLS probe plays the client:
one that "accepts any staple" and sends MAIL anyway (staple_rejected must fail), one that hangs up
after the handshake (it must pass), one that never asks for status (client_requested_ocsp must
fail). What cannot be played with OpenSSL — a client that goes on past an unsolicited
CertificateStatus — is a recorded session.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from harness.engine.checks import all_checks
from harness.engine.observations import Observations
from harness.pki.ca import PKI
from harness.pki.ocsp import build_response
from harness.report.model import Outcome
from harness.smtp.client import SMTPClient
from harness.smtp.codec import Command
from harness.smtp.peer import FakeMX, PeerSession
from harness.smtp.peer_script import script_from_data
from harness.smtp.tls_probe import probe_handshake
from harness.smtp.transcript import Transcript

CHECKS = all_checks()


def run(name: str, obs: Observations, params: Mapping[str, Any]) -> Any:
    assert CHECKS[name].validate_params(params) is None
    return CHECKS[name](obs, params)


def observe(sessions: list[PeerSession], **extra: Any) -> Observations:
    obs = Observations("t", "exim")
    obs.peers = {"mx": sessions}
    for k, v in extra.items():
        setattr(obs, k, v)
    return obs


@pytest.fixture(scope="module")
def revoked_mx() -> Iterator[FakeMX]:
    leaf = PKI("checks").issue(["mx.d.test"])
    tls = {"cert_pem": leaf.chain_pem.encode(), "key_pem": leaf.key_pem.encode(),
           "ocsp_staple": build_response(leaf, {"status": "revoked"})}
    mx = FakeMX("mx", "127.0.0.1", 0, script_from_data({"ehlo": ["STARTTLS"]}),
                socket_factory=socket.socket, tls=tls)
    mx.start()
    yield mx
    mx.stop()


def client_session(mx: FakeMX, *, request_ocsp: bool, send_mail: bool) -> PeerSession:
    """One connection of our own client: STARTTLS (asking for status or not), then MAIL or QUIT."""
    before = len(mx.sessions_seen)
    sock = socket.create_connection(("127.0.0.1", mx.port), timeout=5)
    client = SMTPClient(sock, Transcript("wrong client"), reply_timeout=5)
    client.read_reply()
    client.command("EHLO client.test")
    client.command("STARTTLS")
    probe, info = probe_handshake(sock, None, 5.0, {"request_ocsp": request_ocsp,
                                                    "max_version": "TLSv1.2"})
    assert probe is not None
    client.sock = probe  # type: ignore[assignment]
    client.parser = type(client.parser)()
    client.command("EHLO client.test")
    if send_mail:  # accepts any staple: the revoked one it just got is ignored
        assert info["ocsp_staple"] is not None or not request_ocsp
        client.command("MAIL FROM:<a@client.test>")
    client.quit()
    client.close()
    assert mx.wait_idle(5)
    return mx.sessions_seen[before]


def test_staple_rejected_fails_for_a_client_that_accepts_any_staple(revoked_mx: FakeMX) -> None:
    s = client_session(revoked_mx, request_ocsp=True, send_mail=True)
    v = run("staple_rejected", observe([s], staples={"peer mx": b"x"}), {"peer": "mx"})
    assert v.outcome is Outcome.FAIL, v
    assert v.message == "the client sent mail over TLS despite the unsatisfactory status"
    assert "MAIL sent over TLS" in v.actual


def test_staple_rejected_passes_for_a_client_that_hangs_up(revoked_mx: FakeMX) -> None:
    s = client_session(revoked_mx, request_ocsp=True, send_mail=False)
    v = run("staple_rejected", observe([s]), {"peer": "mx"})
    assert v.outcome is Outcome.PASS and "without MAIL" in v.actual, v
    # The same client as seen by staple_accepted: it did not go on.
    assert run("staple_accepted", observe([s]), {"peer": "mx"}).outcome is Outcome.FAIL


def test_staple_rejected_skips_when_the_client_never_asked(revoked_mx: FakeMX) -> None:
    s = client_session(revoked_mx, request_ocsp=False, send_mail=True)
    assert run("staple_rejected", observe([s]), {"peer": "mx"}).outcome is Outcome.SKIP
    v = run("client_requested_ocsp", observe([s]), {"peer": "mx"})
    assert v.outcome is Outcome.FAIL and v.actual.endswith(": not requested")
    assert run("client_requested_ocsp", observe([s]), {"expected": False}).outcome is Outcome.PASS


def test_client_requested_ocsp_without_tls_fails() -> None:
    s = PeerSession(0, "mx", ("192.0.2.25", 1), Transcript("x"))
    v = run("client_requested_ocsp", observe([s]), {})
    assert v.outcome is Outcome.FAIL and v.actual == "no STARTTLS"


def recorded(**tls: Any) -> PeerSession:
    s = PeerSession(0, "mx", ("192.0.2.25", 1), Transcript("x"))
    s.tls = {"ocsp_requested": False, "ocsp_stapled": True, "handshake_ok": False,
             "alerts_received": [], **tls}
    s.commands = [Command("EHLO", "x", b""), Command("STARTTLS", "", b"")]
    return s


def test_unsolicited_status_rejected() -> None:
    ok = recorded(unsolicited_status_sent=True, alerts_received=[10])
    assert run("unsolicited_status_rejected", observe([ok]), {}).outcome is Outcome.PASS
    # Went past the CertificateStatus and failed only on the signature (decrypt_error).
    past = recorded(unsolicited_status_sent=True, alerts_received=[51], client_continued=True)
    v = run("unsolicited_status_rejected", observe([past]), {})
    assert v.outcome is Outcome.FAIL and "first alert decrypt_error" in v.actual
    assert run("unsolicited_status_rejected", observe([recorded()]), {}).outcome is Outcome.SKIP
    asked = recorded(unsolicited_status_sent=True, ocsp_requested=True, alerts_received=[10])
    assert "not acknowledged" in run("unsolicited_status_rejected", observe([asked]), {}).actual


def test_alert_sent() -> None:
    good = recorded(alerts_received=[113])
    assert run("alert_sent", observe([good]), {"alert": 113}).outcome is Outcome.PASS
    v = run("alert_sent", observe([recorded()]), {"alert": 113})
    assert v.outcome is Outcome.FAIL and v.expected == "bad_certificate_status_response"


def test_target_logged() -> None:
    obs = Observations("t", "exim")
    obs.logs = {"main": ["… TLS error (gnutls_certificate_set_ocsp_status_request_file2) …"]}
    assert run("target_logged", obs, {"pattern": "ocsp"}).outcome is Outcome.PASS
    assert run("target_logged", obs, {"pattern": "ocsp", "absent": True}).outcome is Outcome.FAIL
    assert run("target_logged", obs, {"pattern": "must.?staple"}).outcome is Outcome.FAIL
    assert run("target_logged", obs, {"patterns": {"postfix": "x"}}).outcome is Outcome.SKIP
    assert run("target_logged", obs, {"patterns": {"exim": "status_request"}}).outcome is Outcome.PASS
