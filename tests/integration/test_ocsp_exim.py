"""The OCSP scenarios against the real Exim 4.96 (GnuTLS) of Debian's exim4-daemon-heavy.

Every scenario's verdict is pinned. A verdict other than `pass` is a known deviation of this Exim,
with the evidence that shows it (transcripts, Exim's log lines, the decoded OCSP responses); if
Exim changes (or a check does), this test says which.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.engine.catalogue import load_catalogue
from harness.report.model import ScenarioResult
from support.harness import SCENARIOS, scenario

BAD_FILE_REFUSED = {("starttls_available", "OCSP-04", "MAY"): "non-strict"}
BAD_FILE_STAPLED = {("bad_staple_withheld", "OCSP-04", "SHOULD"): "non-strict",
                    ("target_logged", "OCSP-04", "SHOULD"): "non-strict"}

EXPECTED: dict[str, tuple[str, dict[tuple[str, str, str], str]]] = {
    # scenario: (verdict, {(check, requirement, level): verdict} for the checks that do not pass)
    # -- server side: Exim staples its tls_ocsp_file ----------------------------------------
    "ocsp-server-no-request-tls12": ("pass", {}),
    "ocsp-server-no-request-tls13": ("pass", {}),
    "ocsp-server-staple-tls12": ("pass", {}),
    "ocsp-server-staple-tls13": ("pass", {}),
    "ocsp-server-staple-delegated": ("pass", {}),
    "ocsp-server-staple-unknown": ("pass", {}),
    # Revoked, expired or other-certificate file: GnuTLS refuses to load it at each STARTTLS and
    # Exim answers "454 TLS currently unavailable" while EHLO still offers STARTTLS; its log says
    # "TLS error … (gnutls_certificate_set_ocsp_status_request_file2): The session or certificate
    # has expired." / "The OCSP response provided doesn't match the available certificates".
    # The bad staple is withheld, but at the price of TLS for every client.
    "ocsp-server-bad-revoked": ("non-strict", BAD_FILE_REFUSED),
    "ocsp-server-bad-expired": ("non-strict", BAD_FILE_REFUSED),
    "ocsp-server-bad-other-cert": ("non-strict", BAD_FILE_REFUSED),
    # A file with a broken signature, or with thisUpdate tomorrow, is stapled as it is (GnuTLS
    # checks neither when loading) and nothing is logged.
    "ocsp-server-bad-signature": ("non-strict", BAD_FILE_STAPLED),
    "ocsp-server-bad-future": ("non-strict", BAD_FILE_STAPLED),
    "ocsp-server-must-staple": ("pass", {}),
    # A must-staple certificate and no tls_ocsp_file: Exim starts and serves it without a staple
    # (TLS 1.3, status requested) and logs no warning.
    "ocsp-server-must-staple-no-file": ("fail", {("must_staple_satisfied", "OCSP-05", "MUST"): "fail",
                                                 ("target_logged", "OCSP-05", "SHOULD"): "non-strict"}),
    # -- client side: Exim checks the staple of the MX it delivers to ----------------------
    # Exim requests OCSP by default (hosts_request_ocsp = *) but, without hosts_require_ocsp, a
    # revoked staple only marks the certificate unverified ($tls_out_ocsp = 3, "CV=no"): the
    # message goes out over that very TLS session (RFC 6066 §8: MUST abort the handshake).
    "ocsp-client-revoked-requested": ("fail", {("staple_rejected", "OCSP-06", "MUST"): "fail"}),
    # hosts_require_ocsp: Exim closes the TLS session without MAIL and without an alert, then logs
    # "TLS session: (certificate status check failed): delivering unencrypted to H=mx.d.test
    # [198.51.100.1] (not in hosts_require_tls)" and delivers in clear to the same host.
    "ocsp-client-revoked-required": ("fail", {("alert_sent", "OCSP-06", "MAY"): "non-strict",
                                              ("queued", "OCSP-06", "MUST"): "fail"}),
    "ocsp-client-revoked-required-tls": ("pass", {}),
    "ocsp-client-wrong-serial": ("pass", {}),
    "ocsp-client-wrong-certificate": ("pass", {}),
    "ocsp-client-bad-signature": ("pass", {}),
    "ocsp-client-unrelated-signer": ("pass", {}),
    "ocsp-client-delegated-no-eku": ("pass", {}),
    "ocsp-client-delegated-other-ca": ("pass", {}),
    # A responder certificate with id-kp-OCSPSigning issued by the lab root — trusted, but not
    # the intermediate that issued the MX's certificate — is accepted ($tls_out_ocsp = 4,
    # "CV=yes") and the message delivered over TLS (RFC 6960 §4.2.2.2: the responder must be
    # issued by the CA that issued the certificate in question; `openssl ocsp` rejects it).
    "ocsp-client-delegated-by-root": ("fail", {("staple_rejected", "OCSP-07", "MUST"): "fail",
                                               ("queued", "OCSP-07", "MUST"): "fail"}),
    "ocsp-client-next-update-past": ("pass", {}),
    # thisUpdate a day ahead is accepted ($tls_out_ocsp = 4); RFC 6960 §4.2.2.1: SHOULD be
    # considered unreliable.
    "ocsp-client-this-update-future": ("non-strict", {("staple_rejected", "OCSP-07", "SHOULD"): "non-strict",
                                                      ("queued", "OCSP-07", "SHOULD"): "non-strict"}),
    "ocsp-client-malformed": ("pass", {}),
    "ocsp-client-truncated": ("pass", {}),
    # Found by the ocsp fuzz lane: a staple that is only a SEQUENCE header (30 82), and one whose
    # responseStatus is internalError (no certificate status at all), are accepted with OCSP and
    # TLS required, and the message is delivered over TLS; a staple cut by a third is refused.
    "ocsp-client-stub": ("fail", {("staple_rejected", "OCSP-06", "MUST"): "fail",
                                  ("queued", "OCSP-06", "MUST"): "fail"}),
    "ocsp-client-unsuccessful": ("fail", {("staple_rejected", "OCSP-06", "MUST"): "fail",
                                          ("queued", "OCSP-06", "MUST"): "fail"}),
    "ocsp-client-delegated-good": ("pass", {}),
    "ocsp-client-unknown": ("pass", {}),
    "ocsp-client-no-staple-opportunistic": ("pass", {}),
    # hosts_require_ocsp and no staple: "certificate status check failed", then the same
    # clear-text retry as above: delivered unencrypted.
    "ocsp-client-no-staple-required": ("fail", {("queued", "OCSP-09", "MUST"): "fail"}),
    "ocsp-client-no-staple-required-tls": ("pass", {}),
    "ocsp-client-must-staple-verified": ("pass", {}),
    "ocsp-client-must-staple-opportunistic": ("pass", {}),
    # Exim (GnuTLS) sends status_request even with hosts_request_ocsp empty, so the scripted
    # CertificateStatus is "asked for but never acknowledged" (no echo in the ServerHello): GnuTLS
    # stops there ("An unexpected TLS handshake packet was received") and hangs up.
    "ocsp-client-unsolicited-status": ("pass", {}),
    "ocsp-client-tls13-revoked": ("pass", {}),
    "ocsp-client-tls13-bad-signature": ("pass", {}),
    "ocsp-client-tls13-unrelated-signer": ("pass", {}),
    "ocsp-client-tls13-next-update-past": ("pass", {}),
    "ocsp-client-tls13-good": ("pass", {}),
    "ocsp-client-requests": ("pass", {}),
    "ocsp-client-dane-ee-no-staple": ("pass", {}),
    # On a DANE-EE route Exim still sends status_request (Exim's spec says its default
    # hosts_request_ocsp skips OCSP when only DANE-EE is in use; GnuTLS sends the extension
    # whatever hosts_request_ocsp says); the revoked staple it gets is ignored and the delivery is
    # DANE-authenticated ("CV=dane").
    "ocsp-client-dane-ee-revoked-staple": ("non-strict", {("client_requested_ocsp", "OCSP-14", "MAY"): "non-strict"}),
}


def test_every_ocsp_scenario_is_pinned() -> None:
    files = {p.stem for p in (SCENARIOS / "ocsp").glob("*.yaml")}
    assert files == set(EXPECTED)


def test_every_ocsp_requirement_has_a_scenario_on_its_side() -> None:
    catalogue = load_catalogue()
    loaded = [scenario(sid) for sid in EXPECTED]
    covered = {(r, sc.side) for sc in loaded for r in sc.requirements}
    wanted = {(r.id, r.side) for r in catalogue.by_feature("ocsp")}
    assert wanted <= covered, wanted - covered


@pytest.mark.integration
@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_ocsp_scenario_on_exim(sid: str, exim: Callable[..., ScenarioResult]) -> None:
    verdict, not_passing = EXPECTED[sid]
    res = exim(scenario(sid))
    detail = [(c.check, c.requirement, c.verdict, c.message) for c in res.checks]
    assert res.verdict == verdict, (res.reason, res.traceback, detail)
    got = {(c.check, c.requirement, c.level): c.verdict for c in res.checks if c.verdict != "pass"}
    assert got == not_passing, detail
    labels = [e.label for e in res.evidence]
    # The report shows the decoded OCSP response(s) next to the verdict.
    assert any(label.startswith("OCSP ") for label in labels) or sid in NO_STAPLE, labels


# Scenarios in which nothing is stapled or configured to be (so no decoded response to show).
NO_STAPLE = {"ocsp-server-must-staple-no-file", "ocsp-client-no-staple-opportunistic",
             "ocsp-client-no-staple-required", "ocsp-client-no-staple-required-tls",
             "ocsp-client-must-staple-verified", "ocsp-client-must-staple-opportunistic",
             "ocsp-client-dane-ee-no-staple"}
