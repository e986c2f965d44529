"""Every check of every DANE scenario, failed on purpose against the real Exim.

Project rule: a check that cannot fail is a defect — and a DANE check that passes for an MTA that
ignores DANE is a broken one. So most faults here are a deliberately wrong client: the same Exim
with DANE switched off (knob `dane: off`, which is what the exim-nodane target forces), often
together with a fake MX that does not offer STARTTLS (the client then goes to cleartext, which only
DANE forbids). Where DANE-off Exim happens to behave correctly — a check that something must *not*
happen — the fault breaks the scenario's premise instead (the world made secure, a record that
matches, a peer that refuses): Exim then rightly does what the check must object to. For the MTA as
TLS server the fault is a deliberately wrong server configuration (`tls_require_sni`, a chain
without its root). NONE marks checks that Exim itself already fails in tests/integration/
test_dane_exim.py, with the reason pinned there.

FAULTS lists, per fault, the checks it must trip: a MUST check's verdict becomes `fail`, a
SHOULD/MAY check's `non-strict`, and the message (or the value it shows) says what went wrong.
test_every_check_has_a_fault_that_trips_it makes sure no (scenario, check, level) is left out; the
one that no Exim configuration can trip is in UNIT_COVERED.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.scenario import Scenario
from harness.report.model import STRENGTH, CheckResult, ScenarioResult
from support.harness import SCENARIOS, missing_unit_tests
from support.harness import scenario as load

scenario = functools.cache(load)  # each file is read once

PLAIN_EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"]
REFUSE = {"default": "550 5.1.1 no such user WRONGPEER"}

UNIT_COVERED = {
    # Exim never looks up TLSA for an address literal; a client that does is played in
    # tests/unit/test_dane_checks.py::test_dns_query.
    ("dane-30a-address-literal", "dns_query", "MUST"): "tests/unit/test_dane_checks.py::test_dns_query",
    # Exim cannot refuse a client that sends no SNI: without SNI it serves its first certificate
    # (with `tls_require_sni` a self-signed one it makes up); a FakeMX that has no certificate
    # without SNI is the wrong server there.
    ("dane-31a-server-no-sni", "server_tls_handshake", "MUST"):
        "tests/unit/test_dane_checks.py::test_server_tls_handshake_fails_for_a_server_that_requires_sni",
}

Edit = Callable[[dict[str, Any]], None]


def knobs(**settings: Any) -> dict[str, Any]:
    """A fault in Exim's configuration: these knobs are added to the scenario's `target:`."""
    return {"knobs": settings}


def peer(name: str = "mx", **script: Any) -> dict[str, Any]:
    """A fault in a fake MX: these script fields replace the scenario's."""
    return {"peers": {name: script}}


def world(*edits: Edit) -> dict[str, Any]:
    """A change to the scenario's DNS or certificates (its premise)."""
    return {"world": edits}


def both(*faults: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in faults:
        for key, value in f.items():
            out[key] = {**out[key], **value} if key in out and isinstance(value, dict) else value
    return out


def record(name: str, rtype: str, **changes: Any) -> Edit:
    """Change the records NAME/RTYPE (a value of None removes that key)."""
    def edit(w: dict[str, Any]) -> None:
        hits = [r for z in w["dns"]["zones"] for r in z.get("records", []) if (r["name"], r["type"]) == (name, rtype)]
        assert hits, (name, rtype)
        for r in hits:
            for key, value in changes.items():
                if value is None:
                    r.pop(key, None)
                else:
                    r[key] = value
    return edit


def add_record(zone: str, rec: dict[str, Any]) -> Edit:
    def edit(w: dict[str, Any]) -> None:
        [z] = [z for z in w["dns"]["zones"] if z["name"] == zone]
        z["records"].append(rec)
    return edit


def zone_state(zone: str, state: str) -> Edit:
    def edit(w: dict[str, Any]) -> None:
        [z] = [z for z in w["dns"]["zones"] if z["name"] == zone]
        z["state"] = state
    return edit


def cert(name: str, **changes: Any) -> Edit:
    def edit(w: dict[str, Any]) -> None:
        w["pki"][name].update(changes)
    return edit


def tlsa(owner: str, cert_name: str, **extra: Any) -> dict[str, Any]:
    return {"name": owner, "type": "TLSA",
            "value": {"tlsa": {"cert": cert_name, "usage": 3, "selector": 1, "mtype": 1, **extra}}}


def wrong(sid: str, fault: dict[str, Any]) -> Scenario:
    """Scenario SID with FAULT applied (target knobs, peer scripts, world edits)."""
    sc = scenario(sid)
    w = copy.deepcopy(dict(sc.world))
    for name, script in fault.get("peers", {}).items():
        [p] = [p for p in w["peers"] if p["name"] == name]
        p.update(script)
    for edit in fault.get("world", ()):
        edit(w)
    return dataclasses.replace(sc, world=w, knobs={**sc.knobs, **fault.get("knobs", {})})


def seen(c: CheckResult) -> str:
    """What a reader of the report sees of a check: its message and the value it shows."""
    return f"{c.message} | {c.actual or ''}".lower()


def expect(check: str, says: str, level: str = "MUST") -> tuple[str, str, str]:
    return check, level, says


NONE: dict[str, Any] = {}  # Exim as it is (its own deviation, pinned in test_dane_exim.py)
NO_DANE = knobs(dane="off")
# DANE off and no STARTTLS on offer: a client that ignores TLSA goes to cleartext.
CLEAR = both(NO_DANE, peer(ehlo=PLAIN_EHLO))
CLEAR_CHECKS = [expect("delivered_over_tls", "delivered in clear"),
                expect("dane_authenticated", "no dane-authenticated delivery logged")]
REFUSED = [expect("no_mail_via", "mail reached mx"), expect("deferred_not_bounced", "was delivered")]
SECURE_MX = record("d.test", "MX", state=None)


def refused(sid: str) -> Any:
    """A scenario that must keep the message from this MX, against Exim with DANE off."""
    return pytest.param(sid, NO_DANE, REFUSED, id=f"{sid}-dane-off")


def authenticated(sid: str, level: str = "MUST") -> Any:
    """A scenario that must deliver DANE-authenticated, against Exim with DANE off and no TLS."""
    return pytest.param(sid, CLEAR, [expect(c, s, level) for c, _, s in CLEAR_CHECKS], id=f"{sid}-dane-off-clear")


# (scenario, fault, [(check, level, words in message/actual)], id); verdict: MUST → fail, else non-strict.
FAULTS = [
    # DANE-01, -03..-05, -07..-08, -10, -13, -14, -26: DANE-authenticated deliveries.
    pytest.param("dane-01-usable-tlsa", CLEAR,
                 [*CLEAR_CHECKS, expect("no_cleartext_mail", "mail reached mx in clear")], id="01-dane-off-clear"),
    authenticated("dane-03-ee-ignores-names-dates"),
    authenticated("dane-04-ee-3-0-1"),
    authenticated("dane-04-ee-3-1-1"),
    authenticated("dane-04-ee-3-1-2", "SHOULD"),
    authenticated("dane-04-ee-3-1-0", "SHOULD"),
    authenticated("dane-05-ta-happy-path"),
    authenticated("dane-07a-ta-next-hop-name"),
    authenticated("dane-07b-ta-cname-next-hop-name"),
    authenticated("dane-08a-wildcard"),
    authenticated("dane-08d-cn-only", "MAY"),
    authenticated("dane-10-ta-2-0-0-root-in-dns"),
    authenticated("dane-13-mixed-rrset"),
    authenticated("dane-14a-sha512-matches", "SHOULD"),
    authenticated("dane-26a-tlsa-cname"),
    # DANE-02, -06, -08, -09, -14, -21, -26: no delivery via a host that fails authentication.
    refused("dane-02-mismatch-deferred"),
    refused("dane-06-ta-name-mismatch"),
    refused("dane-06-ta-name-mismatch-trusted-root"),
    refused("dane-08b-partial-wildcard"),
    refused("dane-08c-cn-ignored"),
    refused("dane-09-ta-expired-leaf"),
    refused("dane-21a-required-insecure-mx"),
    refused("dane-21b-required-tlsa-denied"),
    refused("dane-26b-tlsa-cname-target-name"),
    pytest.param("dane-14b-only-sha256-matches", NO_DANE,
                 [expect(c, s, "SHOULD") for c, _, s in REFUSED], id="14b-dane-off"),
    pytest.param("dane-02-mismatch-next-mx", NO_DANE,
                 [expect("no_mail_via", "mail reached mx1"), expect("delivered_via", "mx2 did not get"),
                  expect("dane_authenticated", "no dane-authenticated")], id="02-next-mx-dane-off"),
    # DANE-07(c): a leaf naming only d.test must not authenticate with an insecure MX; made secure and
    # naming the MX host, it does — the check has to see the claim.
    pytest.param("dane-07c-insecure-mx-next-hop-name", world(SECURE_MX, cert("mx", names=["mx.d.test"])),
                 [expect("dane_authenticated", "claims a dane-authenticated delivery")], id="07c-secure-mx"),
    # DANE-11, -12: unusable records still forbid cleartext and authenticate nothing.
    pytest.param("dane-11-pkix-usages", CLEAR, [CLEAR_CHECKS[0]], id="11-dane-off-clear"),
    pytest.param("dane-11-pkix-usages", world(add_record("d.test", tlsa("_25._tcp.mx.d.test", "mx"))),
                 [expect("dane_authenticated", "claims a dane-authenticated delivery", "MAY")], id="11-usable-record"),
    pytest.param("dane-12-unusable-records", CLEAR, [CLEAR_CHECKS[0]], id="12-dane-off-clear"),
    pytest.param("dane-12-unusable-records", world(add_record("d.test", tlsa("_25._tcp.mx.d.test", "own"))),
                 [expect("dane_authenticated", "claims a dane-authenticated delivery")], id="12-usable-record"),
    *[pytest.param(sid, NO_DANE, [expect("no_cleartext_mail", "mail reached mx in clear"),
                                  expect("deferred_not_bounced", "was delivered")], id=f"{sid[5:]}-dane-off")
      for sid in ("dane-11-pkix-usages-no-starttls", "dane-12-unusable-records-no-starttls",
                  "dane-29a-starttls-not-offered", "dane-29b-starttls-454", "dane-29c-handshake-dropped")],
    # DANE-15, -16: a failed TLSA lookup makes the host unreachable.
    *[pytest.param(sid, NO_DANE, [expect("no_mail_via", "the target connected to mx"),
                                  expect("deferred_not_bounced", "was delivered")], id=f"{sid[5:]}-dane-off")
      for sid in ("dane-15-tlsa-servfail", "dane-15-tlsa-timeout", "dane-16-all-tlsa-servfail")],
    pytest.param("dane-15-tlsa-servfail-next-mx", NO_DANE,
                 [expect("no_mail_via", "the target connected to mx1"), expect("delivered_via", "mx2 did not get")],
                 id="15-next-mx-dane-off"),
    # DANE-17: with the MX lookup secure after all, Exim delivers — as the checks must notice.
    pytest.param("dane-17-mx-servfail", world(SECURE_MX),
                 [expect("no_mail_via", "the target connected to mx"), expect("deferred_not_bounced", "was delivered")],
                 id="17-mx-secure"),
    # DANE-18: MX 20's record no longer matches, so nothing goes via MX 20.
    pytest.param("dane-18-mx-address-servfail",
                 world(record("_25._tcp.mx2.d.test", "TLSA", value=tlsa("", "mx2", mismatch=True)["value"])),
                 [expect("delivered_via", "mx2 did not get", "MAY")], id="18-mx2-mismatch"),
    # DANE-19: cleartext where TLS was on offer is no pre-DANE opportunistic TLS; a usable record
    # makes Exim claim DANE, which the absent-claim check must see.
    pytest.param("dane-19a-tlsa-secure-denial", peer(ehlo=PLAIN_EHLO),
                 [expect("delivered_over_tls", "delivered in clear", "SHOULD")], id="19a-no-starttls"),
    pytest.param("dane-19a-tlsa-secure-denial", world(add_record("d.test", tlsa("_25._tcp.mx.d.test", "mx"))),
                 [expect("dane_authenticated", "claims a dane-authenticated delivery", "SHOULD")], id="19a-usable-record"),
    pytest.param("dane-19b-tlsa-insecure", peer(ehlo=PLAIN_EHLO),
                 [expect("delivered_over_tls", "delivered in clear", "SHOULD")], id="19b-no-starttls"),
    pytest.param("dane-19b-tlsa-insecure", world(record("_25._tcp.mx.d.test", "TLSA", state=None)),
                 [expect("dane_authenticated", "claims a dane-authenticated delivery", "SHOULD")], id="19b-secure-record"),
    pytest.param("dane-19c-no-tlsa-cleartext", peer(rcpt=REFUSE),
                 [expect("delivered", "bounced", "MAY")], id="19c-peer-refuses"),
    # DANE-20: with a secure MX RRset Exim marks the host DS — the claim the check looks for.
    pytest.param("dane-20-insecure-mx", world(SECURE_MX),
                 [expect("no_dnssec_claim", "as dnssec-secure")], id="20-secure-mx"),
    pytest.param("dane-20-insecure-mx", peer(rcpt=REFUSE), [expect("delivered", "bounced", "MAY")],
                 id="20-peer-refuses"),
    pytest.param("dane-20b-log-unexpanded-mx-name", NONE,
                 [expect("log_names_host", "the log names real.p.test", "SHOULD")], id="20b-exim"),
    pytest.param("dane-20b-log-unexpanded-mx-name", peer(rcpt=REFUSE), [expect("delivered", "bounced", "MAY")],
                 id="20b-peer-refuses"),
    # DANE-22: MX 10 unreachable (address lookup bogus): the first connection goes to MX 20.
    pytest.param("dane-22-mx-preference", world(record("mx1.d.test", "A", state="bogus")),
                 [expect("first_connection", "went to mx2"), expect("delivered_via", "mx1 did not get")],
                 id="22-mx1-unreachable"),
    # DANE-23: no TLSA lookup at all without DANE; a TLSA lookup once the addresses are secure.
    pytest.param("dane-23a-address-before-tlsa", NO_DANE,
                 [expect("dns_order", "no query for _25._tcp.mx.d.test tlsa")], id="23a-dane-off"),
    pytest.param("dane-23b-insecure-address-no-tlsa",
                 world(record("mx.d.test", "A", state="secure"), record("mx.d.test", "AAAA", state="secure")),
                 [expect("dns_query", "asked for _25._tcp.mx.d.test tlsa", "SHOULD")], id="23b-secure-addresses"),
    # DANE-24: SNI, TLSA order and authentication need DANE.
    pytest.param("dane-24a-cname-tlsa-at-target", CLEAR,
                 [*CLEAR_CHECKS, expect("peer_sni", "no tls handshake reached the peer")], id="24a-dane-off-clear"),
    pytest.param("dane-24b-cname-tlsa-at-original", NO_DANE,
                 [expect("dns_order", "no query for _25._tcp.real.p.test tlsa"),
                  expect("peer_sni", "sent sni none"), expect("dane_authenticated", "no dane-authenticated")],
                 id="24b-dane-off"),
    # DANE-25: with u.test secure the expansion is secure: Exim asks for TLSA there and names it in SNI.
    pytest.param("dane-25-insecure-cname", world(zone_state("u.test", "secure")),
                 [expect("dns_query", "asked for _25._tcp.real.u.test tlsa"),
                  expect("peer_sni", "sent sni 'real.u.test'")], id="25-secure-expansion"),
    pytest.param("dane-25-insecure-cname", CLEAR, [CLEAR_CHECKS[0]], id="25-dane-off-clear"),
    pytest.param("dane-25-insecure-cname", NONE,
                 [expect("dane_authenticated", "no dane-authenticated", "MAY")], id="25-exim"),
    # DANE-27: DANE off asks for no TLSA at all; the route on port 25 asks for the wrong one.
    pytest.param("dane-27-port", NO_DANE,
                 [expect("dns_query", "no query for _2525._tcp.mx.d.test tlsa"),
                  expect("dane_authenticated", "no dane-authenticated")], id="27-dane-off"),
    pytest.param("dane-27-port", knobs(client_port=25),
                 [expect("dns_query", "asked for _25._tcp.mx.d.test tlsa")], id="27-port-25"),
    # DANE-28: no SNI without DANE.
    pytest.param("dane-28-sni", NO_DANE, [expect("peer_sni", "sent sni none")], id="28-dane-off"),
    # DANE-30: Exim's own deviations (a TLSA lookup for an address; a crash); a refusing peer.
    pytest.param("dane-30a-address-literal", NONE, [expect("delivered", "still queued", "MAY")], id="30a-exim"),
    pytest.param("dane-30b-mx-address-string", NONE,
                 [expect("dns_query", "asked for _25._tcp.198.51.100.1 tlsa")], id="30b-exim"),
    pytest.param("dane-30b-mx-address-string", peer(rcpt=REFUSE), [expect("delivered", "bounced", "MAY")],
                 id="30b-peer-refuses"),
    # DANE-31, -32: a server that wants the SNI to name it; a chain without its root.
    pytest.param("dane-31b-server-unknown-sni", knobs(tls_require_sni=True),
                 [expect("server_tls_handshake", "did not complete")], id="31b-sni-required"),
    pytest.param("dane-32-server-full-chain", knobs(tls_chain="intermediate"),
                 [expect("server_chain_has_ta", "presented 2 certificate(s)")], id="32-no-root"),
]


def _knob_key(param: Any) -> str:
    sid, fault, _ = param.values
    return json.dumps(wrong(sid, fault).knobs, sort_keys=True)


# Grouped by the target configuration they need, so that Exim restarts as seldom as it can.
FAULTS.sort(key=_knob_key)


@pytest.mark.integration
@pytest.mark.parametrize(("sid", "fault", "expected"), FAULTS)
def test_wrong_client_or_config_fails_the_check(sid: str, fault: dict[str, Any],
                                                expected: list[tuple[str, str, str]],
                                                exim: Callable[[Scenario], ScenarioResult]) -> None:
    res = exim(wrong(sid, fault))
    detail = [(c.check, c.requirement, c.level, c.verdict, c.message, c.actual) for c in res.checks]
    assert res.outcome.value not in ("error", "skip", "unsupported"), (res.reason, res.traceback, detail)
    for check, level, says in expected:
        found = [c for c in res.checks if c.check == check and c.level == level]
        assert found, (check, level, detail)
        tripped = [c for c in found if c.verdict == ("fail" if level == "MUST" else "non-strict")
                   and says in seen(c)]
        assert tripped, (check, level, says, detail)


def dane_scenario_ids() -> list[str]:
    return sorted(p.stem for p in (SCENARIOS / "dane").glob("*.yaml"))


def test_every_check_has_a_fault_that_trips_it() -> None:
    """Each (scenario, check, level) of every DANE scenario appears in FAULTS or UNIT_COVERED."""
    catalogue = load_catalogue()
    wanted = {(sid, c.check, STRENGTH[c.level or catalogue[c.requirement].strength])
              for sid in dane_scenario_ids() for c in scenario(sid).checks}
    covered = {(p.values[0], check, level) for p in FAULTS if not p.marks
               for check, level, _ in p.values[2]}
    assert wanted - covered - set(UNIT_COVERED) == set()
    assert covered <= wanted, covered - wanted
    assert set(UNIT_COVERED) <= wanted


def test_unit_covered_tests_exist() -> None:
    assert missing_unit_tests(UNIT_COVERED) == []


def test_faults_apply() -> None:
    """The fault helpers change what they say (and the scenario files stay untouched)."""
    sc = wrong("dane-07c-insecure-mx-next-hop-name", world(SECURE_MX, cert("mx", names=["mx.d.test"])))
    mx = [r for z in sc.world["dns"]["zones"] for r in z["records"] if r["type"] == "MX"]
    assert "state" not in mx[0] and sc.world["pki"]["mx"]["names"] == ["mx.d.test"]
    assert scenario("dane-07c-insecure-mx-next-hop-name").world["dns"]["zones"][0]["records"][0]["state"] == "insecure"
    sc = wrong("dane-01-usable-tlsa", CLEAR)
    assert sc.knobs == {"dane": "off"} and sc.world["peers"][0]["ehlo"] == PLAIN_EHLO
