"""The server-side OCSP checks over recorded STARTTLS handshakes (SessionRecord.tls), including what
no server in the lab can be made to do (an unrequested status in a TLS 1.3 CertificateEntry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from harness.engine.checks import all_checks
from harness.engine.observations import Observations, SessionRecord
from harness.pki.ca import PKI
from harness.pki.ocsp import build_response
from harness.report.model import Outcome
from harness.smtp.codec import Reply
from harness.smtp.esmtp import parse_ehlo
from harness.smtp.transcript import Transcript

CHECKS = all_checks()
PKI_ = PKI("server checks")
LEAF = PKI_.issue(["mta.target.test"])
MUST = PKI_.issue(["mta.target.test"], must_staple=True)


def observe(tls: Mapping[str, Any], staples: Mapping[str, bytes] | None = None) -> Observations:
    s = SessionRecord(Transcript("t"))
    reply = Reply(250, ("mta.target.test", "STARTTLS"), b"", None)
    s.ehlo_reply, s.ehlo = reply, parse_ehlo(reply)
    s.tls = dict(tls)
    obs = Observations("t", "exim")
    obs.sessions.append(s)
    obs.staples = dict(staples or {})
    return obs


def handshake(leaf: Any = LEAF, **extra: Any) -> dict[str, Any]:
    chain = [c.public_bytes(Encoding.PEM).decode() for c in (leaf.cert, *leaf.intermediates)]
    base = {"reply": 220, "handshake_ok": True, "version": "TLSv1.2", "chain_pem": chain, "chain": [],
            "ocsp_requested": True, "ocsp_staple": None, "alerts_sent": [], "alerts_received": [],
            "handshake": {"messages": ["server_hello", "certificate", "server_key_exchange",
                                       "server_hello_done"],
                          "server_hello": {"legacy_version": "0303", "extensions": []},
                          "certificate_status": [], "error": None}}
    base.update(extra)
    return base


def run(name: str, obs: Observations, params: Mapping[str, Any] | None = None) -> Any:
    return CHECKS[name](obs, params or {})


def test_no_unsolicited_staple_in_tls13() -> None:
    ok = handshake(version="TLSv1.3", ocsp_requested=False)
    assert run("no_unsolicited_staple", observe(ok)).outcome is Outcome.PASS
    refused = handshake(version=None, handshake_ok=False, ocsp_requested=False, alerts_sent=[110],
                        error="Error: unsolicited extension",
                        handshake={"messages": ["server_hello"], "error": None,
                                   "server_hello": {"legacy_version": "0303", "selected_version": "0304",
                                                    "extensions": []}})
    v = run("no_unsolicited_staple", observe(refused))
    assert v.outcome is Outcome.FAIL and "unsupported_extension" in v.message and "TLSv1.3" in v.actual


def test_no_unsolicited_staple_in_tls12() -> None:
    flight = handshake(ocsp_requested=False)
    flight["handshake"]["messages"] = ["server_hello", "certificate", "certificate_status"]
    assert run("no_unsolicited_staple", observe(flight)).outcome is Outcome.FAIL
    assert run("no_unsolicited_staple", observe(handshake())).outcome is Outcome.SKIP  # asked


def test_status_request_echoed() -> None:
    good = handshake()
    good["handshake"] = {"messages": ["server_hello", "certificate", "certificate_status",
                                      "server_key_exchange", "server_hello_done"],
                         "server_hello": {"legacy_version": "0303", "status_request": "", "extensions": []},
                         "certificate_status": [{"status_type": 1, "length": 9, "complete": True}],
                         "error": None}
    assert run("status_request_echoed", observe(good)).outcome is Outcome.PASS
    wrong_order = {**good, "handshake": {**good["handshake"], "messages": [
        "server_hello", "certificate_status", "certificate", "server_hello_done"]}}
    assert "does not follow" in run("status_request_echoed", observe(wrong_order)).message
    with_data = {**good, "handshake": {**good["handshake"], "server_hello": {
        "legacy_version": "0303", "status_request": "00", "extensions": []}}}
    assert "carries data" in run("status_request_echoed", observe(with_data)).message
    cut = {**good, "handshake": {**good["handshake"], "certificate_status": [
        {"status_type": 1, "length": 99, "complete": False}]}}
    assert "not one complete" in run("status_request_echoed", observe(cut)).message


def test_staple_valid_and_withheld() -> None:
    good = build_response(LEAF, {})
    assert run("staple_valid", observe(handshake(ocsp_staple=good))).outcome is Outcome.PASS
    revoked = build_response(LEAF, {"status": "revoked"})
    v = run("staple_valid", observe(handshake(ocsp_staple=revoked)))
    assert v.outcome is Outcome.FAIL and "revoked" in v.actual
    assert run("staple_valid", observe(handshake(ocsp_staple=revoked)), {"allow_status": ["revoked"]}
               ).outcome is Outcome.PASS
    v = run("bad_staple_withheld", observe(handshake(ocsp_staple=revoked), {"target (x)": revoked}))
    assert v.outcome is Outcome.FAIL and "revoked" in v.actual
    refused = {"reply": 454, "handshake_ok": False}
    assert run("bad_staple_withheld", observe(refused)).outcome is Outcome.PASS
    assert run("starttls_available", observe(refused)).outcome is Outcome.FAIL


def test_must_staple_satisfied() -> None:
    assert run("must_staple_satisfied", observe(handshake(MUST))).outcome is Outcome.FAIL
    stapled = handshake(MUST, ocsp_staple=build_response(MUST, {}))
    assert run("must_staple_satisfied", observe(stapled)).outcome is Outcome.PASS
    assert run("must_staple_satisfied", observe(handshake(LEAF))).outcome is Outcome.SKIP
