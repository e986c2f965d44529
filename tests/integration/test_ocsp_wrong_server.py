"""Every check of every ocsp-server-* scenario, failed on purpose.

Project rule: a check that cannot fail is a defect. A fault is either a deliberately wrong Exim
configuration (its `target:` knobs: a response file Exim staples although a client must reject
it, or no response file at all), or a deliberately wrong server: a FakeMX on 127.0.0.1 used as an
external target, which staples another certificate's response, a revoked one, or — with a
scripted TLS 1.2 flight (harness/smtp/tls_flight.py) — a CertificateStatus nobody asked for, or
one without the ServerHello echo. FAULTS lists, per fault, the checks it must trip: a MUST check's
verdict becomes `fail`, a SHOULD/MAY check's `non-strict`.

Checks that Exim already fails in tests/integration/test_ocsp_exim.py are covered there. One
cannot be tripped by any server the lab can play: no_unsolicited_staple in TLS 1.3, where the
status would travel encrypted in the CertificateEntry (the scripted server speaks TLS 1.2 only);
a recorded session fails it in UNIT_COVERED.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from harness.engine.catalogue import load_catalogue
from harness.engine.scenario import Scenario
from harness.engine.tls_world import openssl_would_staple
from harness.pki.ca import PKI, Leaf
from harness.pki.ocsp import build_response
from harness.report.model import STRENGTH, CheckResult, ScenarioResult
from harness.smtp.peer import FakeMX
from harness.smtp.peer_script import script_from_data
from harness.targets.spec import external_spec
from support.harness import SCENARIOS, check_result, run, scenario, missing_unit_tests
from test_ocsp_exim import EXPECTED

pytestmark = pytest.mark.integration


# -- a deliberately wrong server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI("wrong server")


def server_tls(leaf: Leaf, fault: dict[str, Any]) -> dict[str, Any]:
    """The FakeMX's TLS: LEAF, and the staple (or scripted flight) the fault asks for."""
    tls: dict[str, Any] = {"cert_pem": leaf.chain_pem.encode(), "key_pem": leaf.key_pem.encode()}
    chain = [c.public_bytes(Encoding.DER) for c in (leaf.cert, *leaf.intermediates)]
    if "staple" in fault:
        tls["ocsp_staple"] = build_response(leaf, fault["staple"], about=fault.get("about"))
        if not openssl_would_staple(tls["ocsp_staple"], leaf):  # another certificate's response
            tls["raw_flight"] = {"chain": chain, "key_pem": leaf.key_pem.encode(),
                                 "staple": tls["ocsp_staple"], "unsolicited": False}
    if "flight" in fault:
        tls["raw_flight"] = {"chain": chain, "key_pem": leaf.key_pem.encode(),
                             "staple": build_response(leaf, {}),
                             "unsolicited": fault["flight"]["unsolicited"]}
    return tls


def play_wrong_server(sid: str, fault: dict[str, Any], pki: PKI, out: Path) -> ScenarioResult:
    """Scenario SID against a FakeMX that behaves as FAULT says (knobs and `managed` dropped: the
    fake server is what the knobs would have configured)."""
    leaf = pki.issue(["mta.target.test"], must_staple=bool(fault.get("must_staple")))
    if fault.get("about") == "other":
        fault = {**fault, "about": pki.issue(["other.target.test"])}
    peer = FakeMX("wrong", "127.0.0.1", 0, script_from_data({"ehlo": ["STARTTLS", "PIPELINING"]}),
                  socket_factory=socket.socket, tls=server_tls(leaf, fault), hostname="wrong.test")
    peer.start()
    try:
        sc = dataclasses.replace(scenario(sid), knobs={}, requires={})
        spec = dataclasses.replace(external_spec(f"smtp://127.0.0.1:{peer.port}"), reply_timeout=2.0)
        return run([sc], spec, out)[sid]
    finally:
        peer.stop()


def knobs(**settings: Any) -> dict[str, Any]:
    return {"knobs": settings}


def server(**behaviour: Any) -> dict[str, Any]:
    return {"server": behaviour}


def seen(c: CheckResult) -> str:
    return f"{c.message} | {c.actual or ''}".lower()


def expect(check: str, says: str, level: str = "MUST") -> tuple[str, str, str]:
    return check, level, says


UNIT_COVERED = {
    ("ocsp-server-no-request-tls13", "no_unsolicited_staple", "MUST"):
        "tests/unit/test_ocsp_server_checks.py::test_no_unsolicited_staple_in_tls13",
}

NOT_LOGGED = expect("target_logged", "no log line matches", "SHOULD")
TLS_REFUSED = expect("starttls_available", "not available", "MAY")
STAPLED_BAD = expect("bad_staple_withheld", "stapled a response a client must reject", "SHOULD")
BAD = ("ocsp-server-bad-revoked", "ocsp-server-bad-expired", "ocsp-server-bad-other-cert")

# (scenario, fault, [(check, level, words in message/actual)], id)
FAULTS = [
    # OCSP-01: a CertificateStatus nobody asked for (scripted TLS 1.2 flight).
    pytest.param("ocsp-server-no-request-tls12", server(flight={"unsolicited": True}),
                 [expect("no_unsolicited_staple", "although the clienthello had no status_request")],
                 id="unsolicited-status-tls12"),
    # OCSP-02: CertificateStatus without the ServerHello echo.
    pytest.param("ocsp-server-staple-tls12", server(flight={"unsolicited": True}),
                 [expect("status_request_echoed", "without status_request in the serverhello")],
                 id="status-without-echo"),
    # OCSP-03: a target configured to staple what clients reject, and a server that staples
    # another certificate's response (Exim refuses that file).
    pytest.param("ocsp-server-staple-tls12", knobs(ocsp_staple={"corrupt": "signature"}),
                 [expect("staple_valid", "signature does not verify")], id="staple-tls12-bad-signature"),
    pytest.param("ocsp-server-staple-tls12", server(staple={}, about="other"),
                 [expect("staple_valid", "certid serial")], id="staple-tls12-other-certificate"),
    pytest.param("ocsp-server-staple-tls13", knobs(ocsp_staple={"this_update": "+1d", "next_update": "+8d"}),
                 [expect("staple_valid", "in the future")], id="staple-tls13-from-the-future"),
    pytest.param("ocsp-server-staple-tls13", server(staple={"status": "revoked"}),
                 [expect("staple_valid", "certificate status revoked")], id="staple-tls13-revoked"),
    pytest.param("ocsp-server-staple-delegated", knobs(ocsp_staple={"signer": "delegated_no_eku"}),
                 [expect("staple_valid", "lacks id-kp-ocspsigning")], id="staple-delegated-no-eku"),
    pytest.param("ocsp-server-staple-unknown", knobs(ocsp_staple={"status": "unknown", "corrupt": "signature"}),
                 [expect("staple_valid", "signature does not verify")], id="staple-unknown-bad-signature"),
    pytest.param("ocsp-server-staple-unknown", server(),
                 [expect("staple_valid", "no staple")], id="staple-unknown-none"),
    # OCSP-04: a server that staples the bad response; Exim with a bad file it does not notice
    # (nothing logged); Exim with a file it refuses (TLS gone).
    *[pytest.param(sid, server(staple=spec), [STAPLED_BAD], id=f"{sid[12:]}-stapled")
      for sid, spec in zip(BAD, ({"status": "revoked"}, {"this_update": "-2d", "next_update": "-1h"},
                                 {"corrupt": "signature"}))],
    *[pytest.param(sid, knobs(ocsp_staple={"corrupt": "signature"}), [NOT_LOGGED], id=f"{sid[12:]}-unnoticed")
      for sid in BAD],
    *[pytest.param(sid, knobs(ocsp_staple={"status": "revoked"}), [TLS_REFUSED], id=f"{sid[12:]}-revoked-file")
      for sid in ("ocsp-server-bad-signature", "ocsp-server-bad-future")],
    # OCSP-05: the must-staple certificate without its file; with a badly signed one.
    pytest.param("ocsp-server-must-staple", knobs(ocsp_staple=None),
                 [expect("must_staple_satisfied", "without a staple")], id="must-staple-no-file"),
    pytest.param("ocsp-server-must-staple", knobs(ocsp_staple={"corrupt": "signature"}),
                 [expect("staple_valid", "signature does not verify")], id="must-staple-bad-signature"),
]


def apply_knobs(sid: str, settings: dict[str, Any]) -> Scenario:
    sc = scenario(sid)
    merged = {**sc.knobs, **settings}
    return dataclasses.replace(sc, knobs={k: v for k, v in merged.items() if v is not None})


@pytest.mark.parametrize(("sid", "fault", "expected"), FAULTS)
def test_wrong_server_or_config_fails_the_check(sid: str, fault: dict[str, Any],
                                                expected: list[tuple[str, str, str]],
                                                request: pytest.FixtureRequest, pki: PKI,
                                                tmp_path: Path) -> None:
    if "knobs" in fault:
        exim: Callable[[Scenario], ScenarioResult] = request.getfixturevalue("exim")
        res = exim(apply_knobs(sid, fault["knobs"]))
    else:
        res = play_wrong_server(sid, fault["server"], pki, tmp_path)
    detail = [(c.check, c.requirement, c.level, c.verdict, c.message, c.actual) for c in res.checks]
    assert res.outcome.value not in ("error", "skip"), (res.reason, res.traceback, detail)
    for check, level, says in expected:
        c = check_result(res, check, level=level)
        assert c.verdict == ("fail" if level == "MUST" else "non-strict"), detail
        assert says in seen(c), (check, c.message, c.actual)


def test_a_correct_fake_server_passes(pki: PKI, tmp_path: Path) -> None:
    """Control: the same harness path with a server that staples a good response passes OCSP-02/03
    — so the faults above fail because of the fault, not because of the fake server."""
    res = play_wrong_server("ocsp-server-staple-tls12", {"staple": {}}, pki, tmp_path)
    assert [(c.check, c.verdict) for c in res.checks] == [("status_request_echoed", "pass"),
                                                           ("staple_valid", "pass")], res.checks


def test_every_check_has_a_fault_that_trips_it() -> None:
    catalogue = load_catalogue()
    ids = sorted(p.stem for p in (SCENARIOS / "ocsp").glob("ocsp-server-*.yaml"))
    wanted = {(sid, c.check, STRENGTH[c.level or catalogue[c.requirement].strength])
              for sid in ids for c in scenario(sid).checks}
    covered = {(p.values[0], check, level) for p in FAULTS for check, level, _ in p.values[2]}
    pinned = {(sid, check, level) for sid, (_, bad) in EXPECTED.items() if sid.startswith("ocsp-server-")
              for (check, _, level), verdict in bad.items() if verdict in ("fail", "non-strict")}
    assert wanted - covered - pinned - set(UNIT_COVERED) == set()
    assert set(UNIT_COVERED) <= wanted


def test_unit_covered_tests_exist() -> None:
    assert missing_unit_tests(UNIT_COVERED) == []
