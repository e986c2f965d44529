"""Every check of every ocsp-client-* scenario, failed on purpose against the real Exim.

Project rule: a check that cannot fail is a defect. In the ocsp-client-* scenarios Exim is the
SMTP client and the fake MX `mx` the server, so a fault is a deliberately wrong Exim configuration
(`target:` knobs of fixtures/targets/exim/exim.yaml — typically "OCSP required" taken away, so that
Exim goes on over TLS after a bad staple), or a deliberately wrong peer (another staple, another
certificate). FAULTS lists, per fault, the checks it must trip: a MUST check's verdict becomes
`fail`, a SHOULD/MAY check's `non-strict`, and the message (or the "actual" it shows) says what
went wrong.

Checks that Exim already fails in tests/integration/test_ocsp_exim.py are covered there (the pinned
verdict is the failure, with its evidence). One check cannot be tripped by Exim at all:
`unsolicited_status_rejected`, because Exim (GnuTLS) always rejects the unsolicited
CertificateStatus, and `client_requested_ocsp` (required), because GnuTLS always asks; clients of
our own fail them in UNIT_COVERED.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.scenario import Scenario
from harness.report.model import STRENGTH, CheckResult, ScenarioResult
from support.harness import SCENARIOS, check_result, scenario, missing_unit_tests
from test_ocsp_exim import EXPECTED

UNIT_COVERED = {
    ("ocsp-client-unsolicited-status", "unsolicited_status_rejected", "MUST"):
        "tests/unit/test_ocsp_checks.py::test_unsolicited_status_rejected",
    # GnuTLS puts status_request in every ClientHello, whatever hosts_request_ocsp says: a client
    # of our own that does not ask fails the check instead.
    ("ocsp-client-requests", "client_requested_ocsp", "MUST"):
        "tests/unit/test_ocsp_checks.py::test_staple_rejected_skips_when_the_client_never_asked",
}

NOT_REQUIRED = {"ocsp_client_require": "", "ocsp_client_tls": "opportunistic"}
REQUIRED = {"ocsp_client_require": "*", "ocsp_client_tls": "required"}


def knobs(**settings: Any) -> dict[str, Any]:
    return {"knobs": settings}


def staple(spec: Any) -> dict[str, Any]:
    """The fake MX `mx` staples SPEC instead."""
    return {"tls": {"staple": spec}}


def cert(**fields: Any) -> dict[str, Any]:
    """The certificate `mx` of world.pki with FIELDS changed."""
    return {"pki": fields}


def wrong(sid: str, *faults: dict[str, Any]) -> Scenario:
    sc = scenario(sid)
    world = copy.deepcopy(dict(sc.world))
    knob_set = dict(sc.knobs)
    for fault in faults:
        knob_set.update(fault.get("knobs", {}))
        for peer in world.get("peers", []):
            if peer["name"] == "mx":
                peer.update(fault.get("peer", {}))
                peer["tls"] = {**peer.get("tls", {}), **fault.get("tls", {})}
        if "pki" in fault:
            world["pki"]["mx"] = {**world["pki"]["mx"], **fault["pki"]}
    return dataclasses.replace(sc, world=world, knobs=knob_set)


def seen(c: CheckResult) -> str:
    return f"{c.message} | {c.actual or ''}".lower()


def expect(check: str, says: str, level: str = "MUST") -> tuple[str, str, str]:
    return check, level, says


SENT_MAIL = expect("staple_rejected", "sent mail over tls despite")
DELIVERED = expect("queued", "is not queued any more (delivered)")

# (scenario, faults, [(check, level, words in message/actual)], id)
FAULTS = [
    # OCSP-06/07/12: without "OCSP required", Exim goes on over TLS after a bad staple.
    *[pytest.param(sid, [knobs(**NOT_REQUIRED)], [SENT_MAIL, DELIVERED], id=f"{sid[12:]}-not-required")
      for sid in ("ocsp-client-revoked-required-tls", "ocsp-client-wrong-serial",
                  "ocsp-client-wrong-certificate", "ocsp-client-bad-signature",
                  "ocsp-client-unrelated-signer", "ocsp-client-delegated-no-eku",
                  "ocsp-client-delegated-other-ca", "ocsp-client-next-update-past",
                  "ocsp-client-malformed", "ocsp-client-truncated", "ocsp-client-tls13-revoked",
                  "ocsp-client-tls13-bad-signature", "ocsp-client-tls13-unrelated-signer",
                  "ocsp-client-tls13-next-update-past")],
    pytest.param("ocsp-client-revoked-required", [knobs(ocsp_client_require="")], [SENT_MAIL],
                 id="revoked-required-not-required"),
    # OCSP-07 control: a responder without id-kp-OCSPSigning instead of the authorised one.
    pytest.param("ocsp-client-delegated-good", [staple({"signer": "delegated_no_eku"})],
                 [expect("staple_accepted", "did not continue over tls", "SHOULD"),
                  expect("delivered", "still queued", "SHOULD")], id="delegated-good-no-eku"),
    # OCSP-08: "unknown" replaced by "revoked".
    pytest.param("ocsp-client-unknown", [staple({"status": "revoked"})],
                 [expect("staple_accepted", "did not continue over tls", "MAY")], id="unknown-revoked"),
    # OCSP-09: a route that wrongly requires OCSP of a server that staples nothing.
    pytest.param("ocsp-client-no-staple-opportunistic", [knobs(**REQUIRED)],
                 [expect("staple_accepted", "did not continue over tls"),
                  expect("delivered", "still queued")], id="no-staple-opportunistic-required"),
    pytest.param("ocsp-client-no-staple-required-tls", [staple({})],
                 [DELIVERED], id="no-staple-required-tls-peer-staples"),
    # OCSP-10: the same must-staple certificate on an opportunistic route; and, for the log
    # check, a certificate without TLS Feature and a good staple (Exim then logs CV=yes).
    pytest.param("ocsp-client-must-staple-verified", [knobs(ocsp_client_tls="opportunistic")],
                 [SENT_MAIL, DELIVERED], id="must-staple-verified-opportunistic"),
    pytest.param("ocsp-client-must-staple-opportunistic", [knobs(ocsp_client_tls="verified")],
                 [expect("delivered", "still queued", "MAY")], id="must-staple-opportunistic-verified"),
    pytest.param("ocsp-client-must-staple-opportunistic", [cert(must_staple=False), staple({})],
                 [expect("target_logged", "no log line matches")], id="must-staple-opportunistic-valid-cert"),
    # OCSP-12: a TLS 1.3 peer that staples "revoked".
    pytest.param("ocsp-client-tls13-good", [staple({"status": "revoked"})],
                 [expect("staple_accepted", "did not continue over tls"), expect("delivered", "still queued")],
                 id="tls13-good-revoked"),
    # OCSP-13: a peer that refuses the recipient (Exim cannot be told not to ask: see UNIT_COVERED).
    pytest.param("ocsp-client-requests", [{"peer": {"rcpt": {"default": "550 5.1.1 no such user WRONGPEER"}}}],
                 [expect("delivered", "bounced")], id="requests-peer-refuses"),
    # OCSP-14: OCSP and TLS required on the DANE-EE route: now delivery depends on the staple.
    pytest.param("ocsp-client-dane-ee-no-staple", [knobs(**REQUIRED)],
                 [expect("delivered", "still queued", "MAY")], id="dane-ee-no-staple-ocsp-required"),
    pytest.param("ocsp-client-dane-ee-revoked-staple", [knobs(**REQUIRED)],
                 [expect("delivered", "still queued", "MAY")], id="dane-ee-revoked-ocsp-required"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("sid", "faults", "expected"), FAULTS)
def test_wrong_config_or_peer_fails_the_check(sid: str, faults: list[dict[str, Any]],
                                              expected: list[tuple[str, str, str]],
                                              exim: Callable[[Scenario], ScenarioResult]) -> None:
    res = exim(wrong(sid, *faults))
    detail = [(c.check, c.requirement, c.level, c.verdict, c.message, c.actual) for c in res.checks]
    assert res.outcome.value not in ("error", "skip"), (res.reason, res.traceback, detail)
    for check, level, says in expected:
        c = check_result(res, check, level=level)
        assert c.verdict == ("fail" if level == "MUST" else "non-strict"), detail
        assert says in seen(c), (check, c.message, c.actual)


def client_scenario_ids() -> list[str]:
    return sorted(p.stem for p in (SCENARIOS / "ocsp").glob("ocsp-client-*.yaml"))


def pinned_failures(prefix: str) -> set[tuple[str, str, str]]:
    """(scenario, check, level) that Exim itself fails in test_ocsp_exim.py."""
    return {(sid, check, level) for sid, (_, bad) in EXPECTED.items() if sid.startswith(prefix)
            for (check, _, level), verdict in bad.items() if verdict in ("fail", "non-strict")}


def test_every_check_has_a_fault_that_trips_it() -> None:
    catalogue = load_catalogue()
    wanted = {(sid, c.check, STRENGTH[c.level or catalogue[c.requirement].strength])
              for sid in client_scenario_ids() for c in scenario(sid).checks}
    covered = {(p.values[0], check, level) for p in FAULTS for check, level, _ in p.values[2]}
    assert wanted - covered - pinned_failures("ocsp-client-") - set(UNIT_COVERED) == set()
    assert set(UNIT_COVERED) <= wanted


def test_unit_covered_tests_exist() -> None:
    assert missing_unit_tests(UNIT_COVERED) == []
