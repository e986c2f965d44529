"""OCSP stapling checks: RFC 6066 §8, RFC 6960 §2.2/§3.2/§4.2.2, RFC 7633, RFC 8446 §4.4.2.1.

Server side (the target staples its own response) — over `SessionRecord.tls`, recorded by the
`starttls` step with `request_ocsp`/`min_version`/`max_version` (harness/smtp/tls_probe.py keeps
the server's plaintext handshake flight): `no_unsolicited_staple`, `status_request_echoed`,
`staple_valid`, `bad_staple_withheld`, `starttls_available`, `must_staple_satisfied`.

Client side (the target checks the staple of the MX it delivers to) — over the fake MX's
`PeerSession.tls` (ocsp_requested, ocsp_stapled, handshake_ok, alerts) and the commands it saw:
`client_requested_ocsp`, `staple_rejected`, `staple_accepted`, `alert_sent`,
`unsolicited_status_rejected`. `target_logged` reads the target's own log.

Every verdict carries the decoded OCSP response (status, times, signer, serial) as evidence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from cryptography import x509

from ...pki.ocsp import assess_response, decode_response
from ...report.model import Evidence
from ...smtp.tls_probe import ALERT_NAMES
from ..observations import Observations, SessionRecord
from .base import Verdict, check, failed, passed, skipped

_peer = {"type": "string", "description": "the fake MX (default: every peer)"}


# -- evidence ------------------------------------------------------------------------------------


def ocsp_evidence(obs: Observations) -> list[Evidence]:
    """Scenario-wide evidence: every OCSP response set up to be stapled, and every one received."""
    ev: list[Evidence] = []
    for label, der in obs.staples.items():
        ev.append(Evidence(f"OCSP response configured: {label}", "json", decode_response(der)))
    for i, s in enumerate(obs.sessions, start=1):
        tls: Any = s.tls
        if tls and "ocsp_requested" in tls:
            suffix = f" #{i}" if len(obs.sessions) > 1 else ""
            ev.append(Evidence(f"TLS handshake with the target{suffix}", "json", _tls_summary(tls)))
            if tls.get("ocsp_staple") is not None or tls.get("ocsp_requested"):
                ev.append(Evidence(f"OCSP staple received from the target{suffix}", "json",
                                   _received(tls)))
    return ev


def _tls_summary(tls: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tls.get(k) for k in ("reply", "version", "cipher", "handshake_ok", "error",
                                    "ocsp_requested", "min_version", "max_version")} | {
        "alerts_received": [ALERT_NAMES.get(a, str(a)) for a in tls.get("alerts_received", [])],
        "chain": [c.get("subject") for c in tls.get("chain", [])],
        "handshake": tls.get("handshake")}


def _received(tls: Mapping[str, Any]) -> dict[str, Any]:
    """The staple the target sent, decoded, with what a client would conclude (RFC 6960 §3.2)."""
    der = tls.get("ocsp_staple")
    chain = _served_chain(tls)
    if der is None or len(chain) < 2:
        return decode_response(der)
    a = assess_response(der, chain[0], chain[1])
    return {**a.decoded, "signer": a.signer or a.decoded.get("signer"),
            "acceptable": a.acceptable, "problems": a.problems}


def _decoded(label: str, der: bytes | None) -> Evidence:
    return Evidence(label, "json", decode_response(der))


# -- server side ---------------------------------------------------------------------------------


def _server_tls(obs: Observations) -> tuple[SessionRecord | None, Mapping[str, Any] | None]:
    for s in obs.sessions:
        if s.tls is not None:
            return s, s.tls
    return None, None


def _served_chain(tls: Mapping[str, Any]) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(p.encode()) for p in tls.get("chain_pem", [])]


def _no_handshake(tls: Mapping[str, Any] | None) -> Verdict | None:
    if tls is None:
        return skipped("the session has no STARTTLS step")
    if tls.get("reply") != 220:
        return skipped(f"STARTTLS was answered {tls.get('reply')}: no TLS handshake to judge")
    if not tls.get("handshake_ok"):
        return skipped(f"the TLS handshake failed: {tls.get('error')}")
    return None


def _version(tls: Mapping[str, Any]) -> str | None:
    """The negotiated version, or the one the ServerHello chose when the handshake failed."""
    if tls.get("version"):
        return tls["version"]
    sh = (tls.get("handshake") or {}).get("server_hello") or {}
    if sh.get("selected_version") == "0304":
        return "TLSv1.3"
    return "TLSv1.2" if sh.get("legacy_version") == "0303" else None


@check()
def no_unsolicited_staple(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """No staple without status_request: no CertificateStatus (1.2), no status in the 1.3
    CertificateEntry (RFC 6066 §8 "servers MUST NOT send the CertificateStatus message unless it
    received a status_request extension")."""
    _, tls = _server_tls(obs)
    if tls is None:
        return skipped("the session has no STARTTLS step")
    if tls.get("reply") != 220:
        return skipped(f"STARTTLS was answered {tls.get('reply')}: no TLS handshake to judge")
    if tls.get("ocsp_requested"):
        return skipped("the client asked for a staple: nothing unsolicited to judge")
    view = tls.get("handshake") or {}
    ev = [Evidence("server handshake (plaintext part)", "json", view)]
    version = _version(tls)
    sh = view.get("server_hello") or {}
    # Judged from the server's own bytes, also when our client then aborted the handshake.
    if "certificate_status" in view.get("messages", []) or "status_request" in sh:
        return failed("the server sent OCSP status although the ClientHello had no status_request",
                      expected="no CertificateStatus, no status_request in the ServerHello",
                      actual=" → ".join(view.get("messages", [])), evidence=ev)
    if not tls.get("handshake_ok"):
        if 110 in tls.get("alerts_sent", []):
            # TLS 1.3: the status travels encrypted in the CertificateEntry; our client (OpenSSL)
            # answers an extension it did not offer with unsupported_extension (RFC 8446 §4.2).
            return failed("the client had to refuse an extension it did not offer "
                          "(unsupported_extension): an unrequested status_request",
                          expected="no status_request in the CertificateEntry",
                          actual=f"{version}: {tls.get('error')}", evidence=ev)
        return skipped(f"the TLS handshake failed: {tls.get('error')}", evidence=ev)
    if version == "TLSv1.2":
        how = "no CertificateStatus: " + " → ".join(view.get("messages", []))
    else:
        # RFC 8446 §4.2: a client aborts on an extension it did not offer; OpenSSL does, so a
        # completed 1.3 handshake means no status_request in the CertificateEntry.
        how = "TLS 1.3 handshake completed without an unrequested status_request"
    return passed(how, expected="no staple", actual=f"{version}: none", evidence=ev)


@check()
def status_request_echoed(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """TLS 1.2: a server that sends CertificateStatus put an empty status_request in its
    ServerHello, and sent it right after Certificate (RFC 6066 §8)."""
    _, tls = _server_tls(obs)
    if tls is None:
        return skipped("the session has no STARTTLS step")
    if tls.get("reply") != 220:
        return skipped(f"STARTTLS was answered {tls.get('reply')}: no TLS handshake to judge")
    view = tls.get("handshake") or {}
    ev = [Evidence("server handshake (plaintext part)", "json", view),
          _decoded("OCSP staple received", tls.get("ocsp_staple"))]
    version = _version(tls)
    if version != "TLSv1.2":
        return skipped(f"negotiated {version}: the echo is a TLS 1.2 rule (1.3 carries "
                       "the status in the CertificateEntry)")
    if view.get("error"):
        return failed(f"the server's handshake does not parse: {view['error']}",
                      expected="well-formed handshake messages", actual=view["error"], evidence=ev)
    messages = view.get("messages", [])
    if "certificate_status" not in messages:
        return skipped("the server sent no CertificateStatus: nothing to echo")
    sh = view.get("server_hello") or {}
    if "status_request" not in sh:
        return failed("CertificateStatus sent without status_request in the ServerHello",
                      expected="ServerHello with an empty status_request extension",
                      actual=f"ServerHello extensions {[e['type'] for e in sh.get('extensions', [])]}",
                      evidence=ev)
    if sh["status_request"] != "":
        return failed("the ServerHello's status_request carries data",
                      expected="empty extension_data", actual=sh["status_request"], evidence=ev)
    i = messages.index("certificate_status")
    if i == 0 or messages[i - 1] != "certificate":
        return failed("CertificateStatus does not follow Certificate",
                      expected="Certificate → CertificateStatus → ServerKeyExchange",
                      actual=" → ".join(messages), evidence=ev)
    if messages.count("certificate_status") != 1:
        return failed("more than one CertificateStatus",
                      expected="one CertificateStatus", actual=" → ".join(messages), evidence=ev)
    statuses = view.get("certificate_status", [])
    if statuses and (statuses[0]["status_type"] != 1 or not statuses[0]["complete"]):
        return failed("CertificateStatus is not one complete ocsp(1) response",
                      expected="status_type 1 and a length that matches", actual=str(statuses[0]),
                      evidence=ev)
    return passed("empty status_request in the ServerHello; " + " → ".join(messages),
                  expected="status_request echoed, Certificate → CertificateStatus",
                  actual=" → ".join(messages), evidence=ev)


@check(params={"allow_status": {"type": "array", "minItems": 1,
                                "items": {"enum": ["good", "unknown", "revoked"]},
                                "description": "certificate statuses accepted (default: good)"}})
def staple_valid(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The staple is present and is what a client accepts: one complete DER OCSPResponse
    (successful, basic) for the served leaf (RFC 6066 §8, RFC 8446 §4.4.2.1), signed by its issuer
    or a responder the issuer authorised, current (RFC 6960 §3.2, §4.2.2.2)."""
    _, tls = _server_tls(obs)
    if (problem := _no_handshake(tls)) is not None:
        return problem
    assert tls is not None
    if not tls.get("ocsp_requested"):
        return skipped("the client did not ask for a staple")
    der = tls.get("ocsp_staple")
    ev = [_decoded("OCSP staple received", der)]
    allowed = list(p.get("allow_status", ["good"]))
    expected = f"a verifiable response for the served certificate, status {' or '.join(allowed)}"
    if der is None:
        return failed(f"no staple in {tls.get('version')}", expected=expected, actual="no staple",
                      evidence=ev)
    chain = _served_chain(tls)
    if len(chain) < 2:
        return failed("the server sent no issuer certificate to check the staple against",
                      expected="leaf and issuer in the chain", actual=f"{len(chain)} certificate(s)",
                      evidence=ev)
    a = assess_response(der, chain[0], chain[1], now=datetime.now(timezone.utc))
    problems = [x for x in a.problems if not x.startswith("the certificate is revoked")]
    status = a.cert_status
    if status is not None and status not in allowed:
        problems.append(f"certificate status {status}")
    actual = (f"{tls.get('version')}: {status or 'no status'}, signed by {a.signer or 'nobody known'}"
              + (f"; {'; '.join(problems)}" if problems else ""))
    if problems:
        return failed(f"the staple would be rejected: {problems[0]}", expected=expected, actual=actual,
                      evidence=ev)
    return passed(f"valid staple in {tls.get('version')}: {status}, signed by {a.signer}",
                  expected=expected, actual=actual, evidence=ev)


@check()
def bad_staple_withheld(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A server configured with a response clients must reject (revoked, expired, for another
    certificate, badly signed) does not staple it (RFC 7633 §3.3.2 (draft) SHOULD; what a client
    rejects: RFC 6960 §3.2)."""
    configured = next((d for label, d in obs.staples.items() if label.startswith("target")), None)
    _, tls = _server_tls(obs)
    ev = [_decoded("OCSP response configured", configured)]
    if tls is None:
        return skipped("the session has no STARTTLS step")
    if tls.get("reply") != 220:
        return passed(f"not stapled: STARTTLS was refused ({tls.get('reply')})",
                      expected="the bad response not stapled", actual=f"STARTTLS {tls.get('reply')}",
                      evidence=ev)
    if not tls.get("handshake_ok"):
        return passed(f"not stapled: the handshake failed ({tls.get('error')})",
                      expected="the bad response not stapled", actual="no TLS", evidence=ev)
    der = tls.get("ocsp_staple")
    ev.append(_decoded("OCSP staple received", der))
    if der is None:
        return passed("the handshake completed without a staple", expected="the bad response not stapled",
                      actual="no staple", evidence=ev)
    chain = _served_chain(tls)
    if len(chain) < 2:
        return skipped("no issuer certificate in the chain to judge the staple with")
    a = assess_response(der, chain[0], chain[1])
    if a.problems:
        return failed(f"stapled a response a client must reject: {a.problems[0]}",
                      expected="the bad response not stapled", actual="; ".join(a.problems), evidence=ev)
    return passed("the staple sent is acceptable", expected="the bad response not stapled",
                  actual=f"{a.cert_status}, signed by {a.signer}", evidence=ev)


@check()
def starttls_available(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """STARTTLS still works (220 and a completed handshake) whatever the OCSP configuration:
    a bad response file should cost the staple, not TLS (RFC 7633 §3.3.2 (draft), INFO)."""
    s, tls = _server_tls(obs)
    if tls is None or s is None:
        return skipped("the session has no STARTTLS step")
    offered = bool(s.ehlo and "STARTTLS" in s.ehlo.keywords)
    actual = f"STARTTLS {'advertised' if offered else 'not advertised'}, answered {tls.get('reply')}" + (
        f", handshake {'completed' if tls.get('handshake_ok') else 'failed: ' + str(tls.get('error'))}"
        if tls.get("reply") == 220 else "")
    if tls.get("reply") != 220 or not tls.get("handshake_ok"):
        return failed("TLS is not available to clients with this OCSP configuration",
                      expected="220 and a completed handshake", actual=actual)
    return passed("TLS completed", expected="220 and a completed handshake", actual=actual)


def _has_tls_feature(cert: x509.Certificate) -> bool:
    try:
        feature = cert.extensions.get_extension_for_class(x509.TLSFeature).value
    except x509.ExtensionNotFound:
        return False
    return x509.TLSFeatureType.status_request in feature


@check()
def must_staple_satisfied(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A server whose certificate carries TLS Feature status_request staples when asked
    (RFC 7633 §2, §3.1 (draft): it "MUST satisfy a client request for the specified feature")."""
    _, tls = _server_tls(obs)
    if (problem := _no_handshake(tls)) is not None:
        return problem
    assert tls is not None
    chain = _served_chain(tls)
    if not chain or not _has_tls_feature(chain[0]):
        return skipped("the served certificate has no TLS Feature status_request")
    if not tls.get("ocsp_requested"):
        return skipped("the client did not ask for a staple")
    der = tls.get("ocsp_staple")
    ev = [_decoded("OCSP staple received", der)]
    expected = "a staple (the certificate promises status_request)"
    if der is None:
        return failed(f"must-staple certificate served without a staple ({tls.get('version')})",
                      expected=expected, actual="no staple", evidence=ev)
    return passed(f"stapled ({len(der)} octets, {tls.get('version')})", expected=expected,
                  actual="staple present", evidence=ev)


# -- client side ---------------------------------------------------------------------------------


def _tls_sessions(obs: Observations, peer: str | None) -> list[Any]:
    return [s for s in obs.peer_sessions(peer) if s.tls is not None]


def _mail_after_starttls(session: Any) -> bool:
    seen_starttls = False
    for cmd in session.commands:
        if cmd.verb == "STARTTLS":
            seen_starttls = True
        elif cmd.verb == "MAIL" and seen_starttls:
            return True
    return False


def _how_ended(session: Any) -> str:
    tls = session.tls
    alerts = [ALERT_NAMES.get(a, str(a)) for a in tls.get("alerts_received", [])]
    if not tls.get("handshake_ok"):
        return f"handshake aborted{' with alert ' + ', '.join(alerts) if alerts else ''}"
    after = [c.verb for c in session.commands[[c.verb for c in session.commands].index("STARTTLS") + 1:]] \
        if any(c.verb == "STARTTLS" for c in session.commands) else []
    if "MAIL" in after:
        return f"MAIL sent over TLS (commands after STARTTLS: {' '.join(after)})"
    note = f" (alert {', '.join(alerts)})" if alerts else ""
    return (f"handshake completed, then {' '.join(after) or 'the connection closed'} "
            f"without MAIL{note}")


def _session_rows(obs: Observations, peer: str | None) -> Evidence:
    rows = []
    for s in obs.peer_sessions(peer):
        tls = s.tls or {}
        rows.append({"peer": s.peer, "connection": s.index + 1,
                     "tls": tls.get("tls_version") or ("failed" if s.tls else "no TLS"),
                     "status_request": tls.get("ocsp_requested"), "stapled": tls.get("ocsp_stapled"),
                     "alerts from client": ", ".join(ALERT_NAMES.get(a, str(a))
                                                     for a in tls.get("alerts_received", [])),
                     "commands": " ".join(c.verb for c in s.commands)})
    return Evidence("fake MX connections", "table", rows)


def _peer_staples(obs: Observations, peer: str | None) -> list[Evidence]:
    return [_decoded(f"OCSP response stapled by {label}", der) for label, der in obs.staples.items()
            if label.startswith("peer") and (peer is None or label == f"peer {peer}")]


@check(params={"peer": _peer, "expected": {"type": "boolean", "description": "default true"}})
def client_requested_ocsp(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every TLS handshake the peer saw carried (or, with expected: false, lacked) a well-formed
    status_request of type ocsp (RFC 6066 §8; OpenSSL parses it before reporting it)."""
    want = p.get("expected", True)
    sessions = _tls_sessions(obs, p.get("peer"))
    ev = [_session_rows(obs, p.get("peer"))]
    expected = "status_request (ocsp) in the ClientHello" if want else "no status_request"
    if not sessions:
        return failed("the client never started TLS with the peer", expected=expected,
                      actual="no STARTTLS", evidence=ev)
    got = [bool(s.tls.get("ocsp_requested")) for s in sessions]
    actual = ", ".join(f"connection {s.index + 1}: {'requested' if g else 'not requested'}"
                       for s, g in zip(sessions, got))
    if any(g != want for g in got):
        return failed("status_request " + ("missing" if want else "sent although not configured"),
                      expected=expected, actual=actual, evidence=ev)
    return passed(actual, expected=expected, actual=actual, evidence=ev)


@check(params={"peer": _peer,
               "stapled": {"type": "boolean",
                           "description": "judge only connections in which the peer stapled "
                                          "(default true; false for a must-staple certificate "
                                          "with no staple)"}})
def staple_rejected(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """No mail went over a TLS session whose certificate status was unsatisfactory: the client
    aborted (RFC 6066 §8 "MUST check the OCSP response and abort the handshake"; RFC 6960 §3.2;
    RFC 7633 §3.3.3 (draft) for a must-staple certificate without a staple)."""
    peer = p.get("peer")
    want_stapled = p.get("stapled", True)
    sessions = [s for s in _tls_sessions(obs, peer)
                if bool(s.tls.get("ocsp_stapled")) == want_stapled
                and (not want_stapled or s.tls.get("ocsp_requested"))]
    ev = [_session_rows(obs, peer), *_peer_staples(obs, peer)]
    expected = "handshake aborted, or closed before MAIL"
    if not sessions:
        what = "stapled" if want_stapled else "served the certificate without a staple"
        return skipped(f"no TLS connection in which the peer {what}: the client never asked "
                       "for the status", evidence=ev)
    ends = [f"connection {s.index + 1}: {_how_ended(s)}" for s in sessions]
    bad = [s for s in sessions if _mail_after_starttls(s)]
    if bad:
        return failed("the client sent mail over TLS despite the unsatisfactory status",
                      expected=expected, actual="; ".join(ends), evidence=ev)
    return passed("; ".join(ends), expected=expected, actual="; ".join(ends), evidence=ev)


@check(params={"peer": _peer})
def staple_accepted(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The client went on over TLS (MAIL after the handshake) with this peer's status."""
    peer = p.get("peer")
    sessions = _tls_sessions(obs, peer)
    ev = [_session_rows(obs, peer), *_peer_staples(obs, peer)]
    expected = "MAIL over the TLS session"
    if not sessions:
        return failed("the client never started TLS with the peer", expected=expected,
                      actual="no STARTTLS", evidence=ev)
    ends = "; ".join(f"connection {s.index + 1}: {_how_ended(s)}" for s in sessions)
    if not any(_mail_after_starttls(s) for s in sessions):
        return failed("the client did not continue over TLS", expected=expected, actual=ends,
                      evidence=ev)
    return passed(ends, expected=expected, actual=ends, evidence=ev)


@check(params={"peer": _peer, "alert": {"type": "integer", "minimum": 0, "maximum": 255}},
       required=("alert",))
def alert_sent(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The client ended the handshake with this fatal alert (RFC 6066 §8:
    bad_certificate_status_response(113) for an unsatisfactory OCSP response)."""
    peer = p.get("peer")
    sessions = [s for s in _tls_sessions(obs, peer) if s.tls.get("ocsp_stapled")]
    want = ALERT_NAMES.get(p["alert"], str(p["alert"]))
    ev = [_session_rows(obs, peer)]
    if not sessions:
        return skipped("no TLS connection in which the peer stapled", evidence=ev)
    got = sorted({ALERT_NAMES.get(a, str(a)) for s in sessions for a in s.tls.get("alerts_received", [])})
    actual = ", ".join(got) or "no alert (" + "; ".join(_how_ended(s) for s in sessions) + ")"
    if want not in got:
        return failed(f"the client did not send {want}", expected=want, actual=actual, evidence=ev)
    return passed(f"alert {want}", expected=want, actual=actual, evidence=ev)


@check(params={"peer": _peer})
def unsolicited_status_rejected(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A client aborts at once when a TLS 1.2 server sends a CertificateStatus it did not ask for,
    or did not acknowledge with status_request in the ServerHello (RFC 6066 §8: servers MUST NOT
    send it unless…, and MUST have echoed the extension; RFC 5246 §7.4: unexpected_message)."""
    peer = p.get("peer")
    sessions = _tls_sessions(obs, peer)
    sent = [s for s in sessions if s.tls.get("unsolicited_status_sent")]
    ev = [_session_rows(obs, peer)]
    if not sent:
        return skipped("the peer sent no unsolicited CertificateStatus (it needs tls: "
                       "{unsolicited_status: true})", evidence=ev)
    rows, bad = [], []
    for s in sent:
        alerts = s.tls.get("alerts_received", [])
        first = ALERT_NAMES.get(alerts[0], str(alerts[0])) if alerts else None
        went_on = bool(s.tls.get("client_continued")) or s.tls.get("handshake_ok")
        why = "not acknowledged in the ServerHello" if s.tls.get("ocsp_requested") else "not asked for"
        what = (f"connection {s.index + 1} (status {why}): first alert {first or 'none'}"
                + (", then ClientKeyExchange" if s.tls.get("client_continued") else ""))
        rows.append(what)
        if went_on or (first is not None and first != "unexpected_message"):
            bad.append(what)
    actual = "; ".join(rows)
    expected = "unexpected_message (or a close) right after the CertificateStatus"
    if bad:
        return failed("the client went past the unsolicited CertificateStatus", expected=expected,
                      actual=actual, evidence=ev)
    return passed(actual, expected=expected, actual=actual, evidence=ev)


@check(params={"pattern": {"type": "string", "description": "regex for any target"},
               "patterns": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "regex per target spec name (overrides pattern)"},
               "absent": {"type": "boolean", "description": "the pattern must not appear"},
               "log": {"type": "string", "description": "which log (default: all)"}})
def target_logged(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The target's own log (since the scenario began) shows — or with absent: true, does not
    show — a line matching the pattern for this target."""
    pattern = (p.get("patterns") or {}).get(obs.target, p.get("pattern"))
    if pattern is None:
        return skipped(f"no log pattern for target {obs.target}")
    logs = {k: v for k, v in obs.logs.items() if p.get("log") in (None, k)}
    if not logs:
        return skipped("the target's logs cannot be read")
    rx = re.compile(pattern)
    hits = [f"{name}: {line}" for name, lines in logs.items() for line in lines if rx.search(line)]
    ev = [Evidence("matching log lines", "log", "\n".join(hits) or "(none)")]
    absent = bool(p.get("absent"))
    expected = f"{'no ' if absent else ''}log line matching /{pattern}/"
    if absent and hits:
        return failed(f"the target logged {hits[0][:200]}", expected=expected, actual=hits[0], evidence=ev)
    if not absent and not hits:
        return failed(f"no log line matches /{pattern}/", expected=expected,
                      actual=f"{sum(len(v) for v in logs.values())} line(s), none matching", evidence=ev)
    return passed(hits[0][:300] if hits else "no such line", expected=expected,
                  actual=hits[0] if hits else "none", evidence=ev)
