"""The PROXY scenarios against the real Exim 4.96 of Debian's exim4-daemon-heavy.

Exim runs with `hosts_proxy = 192.0.2.11` and `proxy_protocol_timeout = 3s` (its default); the
harness connects from 192.0.2.11 (listed) or 192.0.2.12 (not listed). Every scenario's verdict is
pinned, with each check that does not pass. Read from Exim's smtp_in.c and confirmed here:

- A rejected header is never an abort: Exim sends its banner, then "503 Command refused, required
  Proxy negotiation failed" to every command but QUIT (LAB-NOTES). Every scenario that expects a
  rejection therefore fails proxy_aborted (PROXY-10, L289–292) while passing proxy_rejected.
- It reads 14 bytes with one recv(), then the rest: fragmented headers fail, and for v2 it answers
  before the header is complete.
- v1 fields are parsed with isspace()/strtol() and an address check that ignores the family.
- v2 headers over 232 bytes are refused; a v2 header cut by FIN leaves a child spinning.

An unexpected pass or a new failure makes this test fail: then Exim (or a check) has changed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.engine.catalogue import load_catalogue
from harness.report.model import ScenarioResult
from support.harness import SCENARIOS, scenario

Pin = tuple[str, dict[tuple[str, str, str], str]]

EXPECTED: dict[str, Pin] = {
    # scenario: (verdict, {(check, requirement, level): verdict} for the checks that do not pass)
    # A header that is not there or not valid: banner + 503 instead of an abort (see above).
    "proxy-ehlo-before-header": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-listed-without-header": ("pass", {}),
    # Silence: after exactly proxy_protocol_timeout (3 s) Exim sends its banner and goes on, 503ing
    # every command, instead of aborting (L175–177: abort; a MAY, so non-strict).
    "proxy-no-header-timeout": ("non-strict", {('proxy_timeout', 'PROXY-02', 'MAY'): 'non-strict'}),
    "proxy-policy-refused-range": ("pass", {}),
    "proxy-policy-relay-allowed": ("pass", {}),
    "proxy-silence-then-header": ("pass", {}),
    "proxy-space-before-header": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-tls-before-header": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-unlisted-source": ("pass", {}),
    # 4,096 bytes without CRLF: Exim stops reading at 108 bytes (at once: good), then banner + 503.
    "proxy-v1-4096-bytes": ("fail", {('proxy_aborted', 'PROXY-07', 'SHOULD'): 'non-strict', ('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-bare-cr": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-bare-lf": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-ehlo-same-segment": ("pass", {}),
    # One byte per segment: Exim reads the header with one recv() of 14 bytes, so a partial first
    # read is "wrong protocol" (L157–170 recommends tolerance: SHOULD).
    "proxy-v1-fragmented": ("non-strict", {('proxy_accepted', 'PROXY-20', 'SHOULD'): 'non-strict', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-leading-zero-octet": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    # Ports are read with strtol(): "0025", "+25" and 65536 pass, as does a second space before
    # the destination port; the PROXY keyword may be followed by any isspace() (a TAB); TCP4/TCP6
    # do not constrain the address family (L210–258, L289–290). The identity does come from the
    # bytes sent (proxy_identity passes): accepted, not misparsed.
    "proxy-v1-leading-zero-port": ("fail", {('proxy_rejected', 'PROXY-09', 'MUST'): 'fail', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    "proxy-v1-lowercase": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    # 136-byte UNKNOWN line: Exim reads 108 bytes, finds "PROXY UNKNOWN" and accepts with the real
    # address (the rest of the line is then an SMTP command); L281–284 says should reject.
    "proxy-v1-no-crlf-in-107": ("non-strict", {('proxy_rejected', 'PROXY-07', 'SHOULD'): 'non-strict', ('proxy_aborted', 'PROXY-07', 'SHOULD'): 'skip', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    "proxy-v1-plus-port": ("fail", {('proxy_rejected', 'PROXY-09', 'MUST'): 'fail', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    "proxy-v1-port-65536": ("fail", {('proxy_rejected', 'PROXY-09', 'MUST'): 'fail', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    # Port 0 is refused (strtol result 0 is taken as an error), though [0..65535] is valid.
    "proxy-v1-port-zero": ("fail", {('proxy_accepted', 'PROXY-09', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-prefix-silent": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-tab": ("fail", {('proxy_rejected', 'PROXY-09', 'MUST'): 'fail', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    "proxy-v1-tcp4": ("pass", {}),
    "proxy-v1-tcp4-ipv6": ("fail", {('proxy_rejected', 'PROXY-09', 'MUST'): 'fail', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    "proxy-v1-tcp6-compressed": ("pass", {}),
    "proxy-v1-tcp6-expanded": ("pass", {}),
    "proxy-v1-tcp6-ipv4": ("fail", {('proxy_rejected', 'PROXY-09', 'MUST'): 'fail', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    "proxy-v1-then-v2-signature": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-two-spaces": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v1-two-spaces-ports": ("fail", {('proxy_rejected', 'PROXY-09', 'MUST'): 'fail', ('proxy_aborted', 'PROXY-10', 'MUST'): 'skip'}),
    "proxy-v1-unknown": ("pass", {}),
    "proxy-v1-unknown-longest": ("pass", {}),
    # fe80::7%lo passes Exim's address check, then the session fails: banner "421 Unexpected
    # failure" (not accepted, but not a silent abort either).
    "proxy-v1-zone-id": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-command-15": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-command-2": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    # CRC32C is not verified (allowed: the MUST applies only to receivers that support it).
    "proxy-v2-crc32c-invalid": ("pass", {('proxy_crc32c', 'PROXY-19', 'SHOULD'): 'unsupported'}),
    "proxy-v2-crc32c-valid": ("pass", {}),
    "proxy-v2-cut-12-fin": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-cut-12-silent": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    # A v2 header cut inside its address block, then FIN: Exim's read loop does not stop at end of
    # file; the child stays busy until the harness kills it (PROXY-25: hang).
    "proxy-v2-cut-27-fin": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_survives', 'PROXY-25', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-cut-27-silent": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-ehlo-same-segment": ("pass", {}),
    "proxy-v2-family-03": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-family-13": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-family-41": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-family-ff": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    # …and for v2 it answers after the first byte, 0.06 s into a header that is still arriving
    # (L172–174: MUST NOT start processing before a complete header).
    "proxy-v2-fragmented": ("fail", {('proxy_accepted', 'PROXY-20', 'SHOULD'): 'non-strict', ('proxy_no_early_reply', 'PROXY-01', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    # 65,535 bytes: refused at once (see len-300); the rest is read as SMTP; Exim keeps running.
    "proxy-v2-len-65535": ("pass", {('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-len-65535-missing": ("pass", {('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-local-addresses": ("pass", {}),
    "proxy-v2-local-empty": ("pass", {}),
    # LOCAL is accepted whatever its family/transport byte (the letter of L391–392 says reject;
    # graded NON-STRICT for LOCAL by the catalogue).
    "proxy-v2-local-family-03": ("non-strict", {('proxy_rejected', 'PROXY-14', 'SHOULD'): 'non-strict'}),
    "proxy-v2-local-family-13": ("non-strict", {('proxy_rejected', 'PROXY-14', 'SHOULD'): 'non-strict'}),
    "proxy-v2-local-family-41": ("non-strict", {('proxy_rejected', 'PROXY-14', 'SHOULD'): 'non-strict'}),
    "proxy-v2-local-family-ff": ("non-strict", {('proxy_rejected', 'PROXY-14', 'SHOULD'): 'non-strict'}),
    "proxy-v2-local-tlvs": ("pass", {}),
    "proxy-v2-prefix-silent": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-signature-flipped": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tcp4": ("pass", {}),
    "proxy-v2-tcp4-len-0": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tcp4-len-11": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tcp4-len-4": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tcp6": ("pass", {}),
    "proxy-v2-tcp6-len-12": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tcp6-len-35": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tlv-alpn-authority": ("pass", {}),
    "proxy-v2-tlv-custom-experimental": ("pass", {}),
    # Headers longer than 232 bytes (16 + the largest address block) are refused:
    # "PROXYv2 header size unreasonably large" — but len must always be honoured (L449–452).
    "proxy-v2-tlv-len-1000": ("fail", {('proxy_accepted', 'PROXY-18', 'MUST'): 'fail', ('proxy_session_bytes', 'PROXY-18', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tlv-len-200": ("pass", {}),
    "proxy-v2-tlv-len-300": ("fail", {('proxy_accepted', 'PROXY-18', 'MUST'): 'fail', ('proxy_session_bytes', 'PROXY-18', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-tlv-netns": ("pass", {}),
    "proxy-v2-tlv-noop": ("pass", {}),
    "proxy-v2-tlv-ssl": ("pass", {}),
    "proxy-v2-tlv-unique-id": ("pass", {}),
    # UDP, UNIX and UNSPEC are refused (allowed: L444–447).
    "proxy-v2-udp4": ("pass", {('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-udp6": ("pass", {('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-unix-dgram": ("pass", {('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-unix-stream": ("pass", {('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-unspec": ("pass", {('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-version-1": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-version-15": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    "proxy-v2-version-3": ("fail", {('proxy_aborted', 'PROXY-10', 'MUST'): 'fail', ('proxy_identity', 'PROXY-25', 'MUST'): 'skip'}),
    # Needs a TLS-on-connect listener, which the Exim spec has no knob for.
    "proxy-v2-tls-on-connect": ("skip", {}),
}


def test_every_proxy_scenario_is_pinned() -> None:
    assert {p.stem for p in (SCENARIOS / "proxy").glob("*.yaml")} == set(EXPECTED)


def test_every_proxy_requirement_has_a_scenario() -> None:
    covered = {r for sid in EXPECTED for r in scenario(sid).requirements}
    assert covered == {r.id for r in load_catalogue().by_feature("proxy")}


@pytest.mark.integration
@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_proxy_scenario_on_exim(sid: str, exim: Callable[..., ScenarioResult]) -> None:
    verdict, not_passing = EXPECTED[sid]
    res = exim(scenario(sid))
    detail = [(c.check, c.requirement, c.level, c.verdict, c.message) for c in res.checks]
    assert res.verdict == verdict, (res.reason, res.traceback, detail)
    got = {(c.check, c.requirement, c.level): c.verdict for c in res.checks if c.verdict != "pass"}
    if verdict != "skip":
        assert got == not_passing, detail
        assert res.evidence, "every run scenario shows its evidence"
        # Every check shows the bytes sent next to what the MTA made of them.
        labels = {e.label for c in res.checks for e in c.evidence}
        assert "PROXY header sent" in labels and "identity the MTA used" in labels, labels


@pytest.mark.integration
def test_exim_misparse_evidence_is_side_by_side(exim: Callable[..., ScenarioResult]) -> None:
    """An accepted invalid header: the report shows the bytes and the identity Exim logged."""
    res = exim(scenario("proxy-v1-tcp4-ipv6"))
    c = next(c for c in res.checks if c.check == "proxy_rejected")
    assert c.verdict == "fail" and "2001:db8::7" in c.message
    ev = {e.label: e for e in c.evidence}
    assert "PROXY TCP4 2001:db8::7" in ev["PROXY header sent"].content
    rows = ev["identity the MTA used"].content
    assert any(r["where"] == "log" and "[2001:db8::7]:40123" in r["line"] for r in rows), rows
