"""The DANE scenarios against the real Exim 4.96 of Debian's exim4-daemon-heavy (GnuTLS).

Every scenario's verdict is pinned. A verdict other than `pass` is a known deviation of this Exim,
with the evidence that shows it: EVIDENCE names a string that must appear in what the report shows
(a check's message or value, or the target's own log). If Exim changes (or a check does), this
test says which.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import pytest

from harness.engine.catalogue import load_catalogue
from harness.report.model import ScenarioResult
from support.harness import SCENARIOS
from support.harness import scenario as load

scenario = functools.cache(load)  # each file is read once

MUST, SHOULD, MAY = "MUST", "SHOULD", "MAY"

EXPECTED: dict[str, tuple[str, dict[tuple[str, str, str], str]]] = {
    # scenario: (verdict, {(check, requirement, level): verdict} for the checks that do not pass)
    "dane-01-usable-tlsa": ("pass", {}),
    "dane-02-mismatch-deferred": ("pass", {}),
    "dane-02-mismatch-next-mx": ("pass", {}),
    "dane-03-ee-ignores-names-dates": ("pass", {}),
    "dane-04-ee-3-0-1": ("pass", {}),
    "dane-04-ee-3-1-0": ("pass", {}),
    "dane-04-ee-3-1-1": ("pass", {}),
    "dane-04-ee-3-1-2": ("pass", {}),
    "dane-05-ta-happy-path": ("pass", {}),
    "dane-06-ta-name-mismatch": ("pass", {}),
    # The same name mismatch, but the "2 0 1" anchor is the lab root that Exim also trusts for PKIX
    # (tls_verify_certificates): Exim logs no DANE failure at all and delivers with "CV=yes"
    # ($tls_out_dane = no) to a host whose certificate names only other.test. With a private root
    # (dane-06-ta-name-mismatch) it refuses: the trust store turns a DANE-TA name failure into a
    # PKIX success without a name check.
    "dane-06-ta-name-mismatch-trusted-root": ("fail", {("no_mail_via", "DANE-06", MUST): "fail",
                                                       ("deferred_not_bounced", "DANE-06", MUST): "fail"}),
    # A DANE-TA leaf naming only the next-hop domain d.test (secure MX): "DANE attempt failed …
    # certificate invalid" and deferred. Exim checks the MX host name only.
    "dane-07a-ta-next-hop-name": ("fail", {("delivered_over_tls", "DANE-07", MUST): "fail",
                                           ("dane_authenticated", "DANE-07", MUST): "fail"}),
    # Likewise for the CNAME-expanded next-hop domain e.test.
    "dane-07b-ta-cname-next-hop-name": ("fail", {("delivered_over_tls", "DANE-07", MUST): "fail",
                                                 ("dane_authenticated", "DANE-07", MUST): "fail"}),
    "dane-07c-insecure-mx-next-hop-name": ("pass", {}),
    "dane-08a-wildcard": ("pass", {}),
    "dane-08b-partial-wildcard": ("pass", {}),
    "dane-08c-cn-ignored": ("pass", {}),
    "dane-08d-cn-only": ("pass", {}),  # informational (MAY): Exim matches the CN of a SAN-less leaf
    "dane-09-ta-expired-leaf": ("pass", {}),
    # "2 0 0" with the root only in DNS: GnuTLS answers "Verification failed. CA constrains were
    # violated." and Exim defers. OpenSSL's DANE verifier accepts the same chain and record
    # (measured with `openssl s_client -dane_tlsa_rrdata`).
    "dane-10-ta-2-0-0-root-in-dns": ("fail", {("delivered_over_tls", "DANE-10", MUST): "fail",
                                              ("dane_authenticated", "DANE-10", MUST): "fail"}),
    "dane-11-pkix-usages": ("pass", {}),
    "dane-11-pkix-usages-no-starttls": ("pass", {}),
    "dane-12-unusable-records": ("pass", {}),
    "dane-12-unusable-records-no-starttls": ("pass", {}),
    "dane-13-mixed-rrset": ("pass", {}),
    "dane-14a-sha512-matches": ("pass", {}),
    # Any matching record authenticates: a key matching only "3 1 1" beside a non-matching
    # "3 1 2" is delivered with CV=dane (RFC 7671 §9 digest agility, a SHOULD).
    "dane-14b-only-sha256-matches": ("non-strict", {("no_mail_via", "DANE-14", SHOULD): "non-strict",
                                                    ("deferred_not_bounced", "DANE-14", SHOULD): "non-strict"}),
    "dane-15-tlsa-servfail": ("pass", {}),
    "dane-15-tlsa-servfail-next-mx": ("pass", {}),
    "dane-15-tlsa-timeout": ("pass", {}),
    "dane-16-all-tlsa-servfail": ("pass", {}),
    "dane-17-mx-servfail": ("pass", {}),
    "dane-18-mx-address-servfail": ("pass", {}),
    "dane-19a-tlsa-secure-denial": ("pass", {}),
    "dane-19b-tlsa-insecure": ("pass", {}),
    "dane-19c-no-tlsa-cleartext": ("pass", {}),
    "dane-20-insecure-mx": ("pass", {}),
    # Exim logs the CNAME target: "H=real.p.test", not the MX name mx.d.test (a SHOULD).
    "dane-20b-log-unexpanded-mx-name": ("non-strict", {("log_names_host", "DANE-20", SHOULD): "non-strict"}),
    # hosts_require_dane with an insecure MX RRset: "** r1@d.test … DANE error: mx.d.test lookup
    # not DNSSEC" — a bounce where RFC 7672 §2.2.1 requires delay.
    "dane-21a-required-insecure-mx": ("fail", {("deferred_not_bounced", "DANE-21", MUST): "fail"}),
    # hosts_require_dane with a securely denied TLSA record: "** … DANE error: tlsa lookup FAIL".
    "dane-21b-required-tlsa-denied": ("fail", {("deferred_not_bounced", "DANE-21", MUST): "fail"}),
    "dane-22-mx-preference": ("pass", {}),
    "dane-23a-address-before-tlsa": ("pass", {}),
    "dane-23b-insecure-address-no-tlsa": ("pass", {}),
    "dane-24a-cname-tlsa-at-target": ("pass", {}),
    # No TLSA record at the CNAME target real.p.test (secure NXDOMAIN): Exim never asks for
    # _25._tcp.mx.d.test, sends no SNI and delivers without DANE (CV=no).
    "dane-24b-cname-tlsa-at-original": ("fail", {("dns_order", "DANE-24", MUST): "fail",
                                                 ("peer_sni", "DANE-24", MUST): "fail",
                                                 ("dane_authenticated", "DANE-24", MUST): "fail"}),
    # Informational: after the insecure CNAME Exim does no DANE at all, also not with the secure
    # record at the original name (CV=yes, $tls_out_dane = no).
    "dane-25-insecure-cname": ("non-strict", {("dane_authenticated", "DANE-25", MAY): "non-strict"}),
    "dane-26a-tlsa-cname": ("pass", {}),
    "dane-26b-tlsa-cname-target-name": ("pass", {}),
    "dane-27-port": ("pass", {}),
    "dane-28-sni": ("pass", {}),
    "dane-29a-starttls-not-offered": ("pass", {}),
    "dane-29b-starttls-454": ("pass", {}),
    "dane-29c-handshake-dropped": ("pass", {}),
    # No TLSA lookup, as required; but the smtp transport dies with signal 11 during the TLS
    # handshake to [198.51.100.1] and the message is frozen — DANE on or off. Measured: with
    # `tls_verify_cert_hostnames =` (instead of its default `*`) the same delivery succeeds.
    "dane-30a-address-literal": ("non-strict", {("delivered", "DANE-30", MAY): "non-strict"}),
    # An MX exchange written as an address: Exim looks up _25._tcp.198.51.100.1 TLSA.
    "dane-30b-mx-address-string": ("fail", {("dns_query", "DANE-30", MUST): "fail"}),
    "dane-31a-server-no-sni": ("pass", {}),
    "dane-31b-server-unknown-sni": ("pass", {}),
    "dane-32-server-full-chain": ("pass", {}),
}

# What the report must show for each deviation: a string in a check's message or value, or in
# the evidence (the target's log, the DNS queries, the peers' transcripts).
EVIDENCE: dict[str, list[str]] = {
    "dane-06-ta-name-mismatch-trusted-root": ["CV=yes", "dane=no"],
    "dane-07a-ta-next-hop-name": ["DANE attempt failed", "certificate invalid"],
    "dane-07b-ta-cname-next-hop-name": ["DANE attempt failed", "certificate invalid"],
    "dane-10-ta-2-0-0-root-in-dns": ["CA constrains were violated"],
    "dane-14b-only-sha256-matches": ["CV=dane"],
    "dane-20b-log-unexpanded-mx-name": ["H=real.p.test"],
    "dane-21a-required-insecure-mx": ["** r1@d.test", "DANE error: mx.d.test lookup not DNSSEC"],
    "dane-21b-required-tlsa-denied": ["** r1@d.test", "DANE error: tlsa lookup FAIL"],
    "dane-24b-cname-tlsa-at-original": ["no query for _25._tcp.mx.d.test TLSA", "CV=no"],
    "dane-25-insecure-cname": ["CV=yes"],
    "dane-30a-address-literal": ["terminated by signal 11", "Frozen"],
    "dane-30b-mx-address-string": ["_25._tcp.198.51.100.1 TLSA"],
}


def shown(res: ScenarioResult) -> str:
    """Everything the report shows of a scenario, as text."""
    parts = [f"{c.message} {c.actual or ''}" for c in res.checks]
    parts += [str(e.content) for c in res.checks for e in c.evidence]
    parts += [str(e.content) for e in res.evidence]
    return "\n".join(parts)


def test_every_dane_scenario_is_pinned() -> None:
    files = {p.stem for p in (SCENARIOS / "dane").glob("*.yaml")}
    assert files == set(EXPECTED)
    deviations = {sid for sid, (verdict, _) in EXPECTED.items() if verdict != "pass"}
    assert deviations == set(EVIDENCE)


def test_every_dane_requirement_has_a_scenario() -> None:
    covered = {r for sid in EXPECTED for r in scenario(sid).requirements}
    assert covered == {r.id for r in load_catalogue().by_feature("dane")}


@pytest.mark.integration
# Grouped by the target configuration they need, so that Exim restarts as seldom as it can.
@pytest.mark.parametrize("sid", sorted(EXPECTED, key=lambda sid: (json.dumps(scenario(sid).knobs, sort_keys=True), sid)))
def test_dane_scenario_on_exim(sid: str, exim: Callable[..., ScenarioResult]) -> None:
    verdict, not_passing = EXPECTED[sid]
    res = exim(scenario(sid))
    detail = [(c.check, c.requirement, c.verdict, c.message, c.actual) for c in res.checks]
    assert res.verdict == verdict, (res.reason, res.traceback, detail)
    got = {(c.check, c.requirement, c.level): c.verdict for c in res.checks if c.verdict != "pass"}
    assert got == not_passing, detail
    assert res.evidence, "every run scenario shows its evidence"
    text = shown(res)
    for needle in EVIDENCE.get(sid, []):
        assert needle in text, (needle, detail)
