"""Hand-built RunResults for the reporter tests: every outcome, a SHOULD-level failure, evidence
of every kind, and nasty bytes in the places MTA output ends up."""

from __future__ import annotations

from harness.report.model import (
    CheckResult,
    Evidence,
    Outcome,
    RequirementInfo,
    RunResult,
    ScenarioResult,
    TargetInfo,
)

#: Text an MTA might send back: NUL, ESC, a fake closing script tag, a bidi override, DEL, and
#: two undecodable bytes carried as surrogate escapes
#: (b"\xff\x80".decode(errors="surrogateescape")).
NASTY = "250 ok\x00\x1b[31m</script><script>alert(1)</script>\u202eevil\x7f" + \
    b"\xff\x80".decode("utf-8", "surrogateescape")

EXIM = "exim"
EXTERNAL = "smtp://127.0.0.1:2525"

REQUIREMENTS = [
    RequirementInfo("PRDR-01", "EHLO keyword", "MUST", "MUST", "draft-hall-prdr-00 §4 (b)(c)",
                    "prdr", "server"),
    RequirementInfo("PRDR-05", "No PRDR replies unless requested", "MUST NOT", "MUST",
                    "draft-hall-prdr-00 §4.5", "prdr", "server"),
    RequirementInfo("PRDR-06", "The 353 line", "MUST", "MUST", "draft-hall-prdr-00 §4.5.1",
                    "prdr", "server"),
    RequirementInfo("PRDR-07", "One reply per accepted recipient, in RCPT order", "MUST", "MUST",
                    "draft-hall-prdr-00 §4.5.2", "prdr", "server"),
    RequirementInfo("PROXY-04", "v1 TCP4", "MUST", "MUST",
                    "haproxy proxy-protocol.txt §2.1 (L203–258)", "proxy", "server"),
    RequirementInfo("PROXY-06", "v1 UNKNOWN", "SHOULD", "SHOULD",
                    "haproxy proxy-protocol.txt L215–226", "proxy", "server"),
    RequirementInfo("DANE-01", "Usable TLSA ⇒ TLS and authentication required", "MUST", "MUST",
                    "RFC 7672 §2.2 (first bullet)", "dane", "client"),
    RequirementInfo("DANE-11", "PKIX usages are not usable for SMTP", "MUST", "MUST",
                    "RFC 7672 §3.1.3", "dane", "client"),
    RequirementInfo("OCSP-10", "Must-staple on the client side", "MUST", "MUST",
                    "draft-hallambaker-tlsfeature-10 §3.3.3", "ocsp", "client"),
    RequirementInfo("DSN-12", "multipart/report structure", "MUST", "MUST", "RFC 3461 §6.2",
                    "dsn", "generator"),
    RequirementInfo("DSN-14", "Reporting-MTA", "MUST", "MUST", "RFC 3464 §2.2.2", "dsn",
                    "generator"),
    RequirementInfo("DSN-25", "Field order within a group", "SHOULD", "SHOULD", "RFC 3464 §2.1",
                    "dsn", "generator"),
]

#: In no scenario of `sample_run()`.
UNCOVERED = ["PRDR-05", "DANE-01"]
#: Cited by a scenario of `sample_run()` but not in its requirement list.
UNCATALOGUED = "DSN-99"

#: Appears in evidence that a check and its scenario share; the page should show it once.
SHARED_MARKER = "SHARED-EVIDENCE-MARKER-7f3a"


def prdr_transcript() -> Evidence:
    return Evidence("inbound session", "transcript", [
        {"dir": "note", "t": 0.0, "data": "connected to 192.0.2.10:25"},
        {"dir": "S", "t": 0.004, "data": "220 mx.example.test ESMTP Exim 4.98\\r\\n\n"},
        {"dir": "C", "t": 0.005, "data": "EHLO client.test\\r\\n\n"},
        {"dir": "S", "t": 0.006, "data": "250-mx.example.test Hello\\r\\n\n250-PIPELINING\\r\\n\n"
                                          "250-PRDR\\r\\n\n250 HELP\\r\\n\n"},
        {"dir": "C", "t": 0.007, "data": "MAIL FROM:<a@client.test> PRDR\\r\\n\n"},
        {"dir": "S", "t": 0.008, "data": "250 OK\\r\\n\n"},
        {"dir": "C", "t": 0.009, "data": "RCPT TO:<b@example.test>\\r\\n\nRCPT TO:<c@example.test>"
                                          "\\r\\n\nDATA\\r\\n\n"},
        {"dir": "S", "t": 0.010, "data": "250 Accepted\\r\\n\n250 Accepted\\r\\n\n354 Enter message"
                                          "\\r\\n\n"},
        {"dir": "C", "t": 0.011, "data": "Subject: t\\r\\n\n\\r\\n\nbody " + "x" * 300
                                          + "\\r\\n\n.\\r\\n\n"},
        {"dir": "S", "t": 0.020, "data": NASTY + "\\r\\n\n"},
        {"dir": "note", "t": 0.021, "data": "server closed the connection"},
    ])


def _exim_scenarios() -> list[ScenarioResult]:
    shared = Evidence("exim mainlog", "log",
                      f"2025-11-25 11:30:00 {SHARED_MARKER} <= a@client.test H=(client.test)\r\n"
                      "2025-11-25 11:30:00 Completed\n")
    return [
        ScenarioResult(
            id="prdr-ehlo-keyword", title="PRDR is advertised in EHLO", feature="prdr",
            side="server", target=EXIM, requirements=["PRDR-01"], outcome=Outcome.PASS,
            checks=[CheckResult("ehlo_has_keyword", "PRDR-01", "MUST", Outcome.PASS,
                                "EHLO lists PRDR.", expected="PRDR in the EHLO reply",
                                actual="250-PRDR")],
            duration_s=0.041, description="Send EHLO and look for the PRDR keyword.",
            expectation="The EHLO reply lists PRDR without a parameter.",
            evidence=[prdr_transcript()], source="scenarios/prdr/ehlo-keyword.yaml"),
        ScenarioResult(
            id="prdr-353-intro", title="Per-recipient replies start with 353 <b>bold</b>",
            feature="prdr", side="server", target=EXIM, requirements=["PRDR-06", "PRDR-07"],
            outcome=Outcome.FAIL,
            checks=[
                CheckResult("prdr_intro_line", "PRDR-06", "MUST", Outcome.FAIL,
                            "After DATA the server replied " + NASTY + " instead of 353.",
                            expected="353 (the PRDR intro line)", actual=NASTY,
                            evidence=[shared, Evidence("reply bytes", "bytes",
                                                       "250 ok\\x00\\x1b[31m\\r\\n")]),
                CheckResult("prdr_reply_count", "PRDR-07", "MUST", Outcome.PASS,
                            "Two per-recipient replies for two recipients."),
                CheckResult("prdr_reply_order", "PRDR-07", "SHOULD", Outcome.FAIL,
                            "Replies are not in RCPT order.", expected="b@, c@",
                            actual="c@, b@"),
            ],
            duration_s=0.120,
            description="Two recipients, PRDR requested.\nThe server must answer the end of "
                        "data with a 353 line, then one reply per recipient.",
            expectation="353, then 250/550 per recipient in RCPT order, then the final reply.",
            evidence=[prdr_transcript(), shared], artifacts=["artifacts/prdr-353-intro/mainlog"],
            source="scenarios/prdr/353-intro.yaml"),
        ScenarioResult(
            id="proxy-v1-unknown", title="PROXY v1 UNKNOWN is accepted", feature="proxy",
            side="server", target=EXIM, requirements=["PROXY-04", "PROXY-06"],
            outcome=Outcome.FAIL,
            checks=[
                CheckResult("proxy_v1_parsed", "PROXY-04", "MUST", Outcome.PASS,
                            "The TCP4 header was accepted."),
                CheckResult("proxy_unknown_accepted", "PROXY-06", "SHOULD", Outcome.FAIL,
                            "The server dropped the connection after PROXY UNKNOWN.",
                            expected="220 greeting", actual="connection closed",
                            evidence=[Evidence("header sent", "bytes",
                                               "PROXY UNKNOWN\\r\\n")]),
            ],
            duration_s=0.052, source="scenarios/proxy/v1-unknown.yaml"),
        ScenarioResult(
            id="dane-pkix-ta", title="PKIX-TA TLSA records are unusable", feature="dane",
            side="client", target=EXIM, requirements=["DANE-11"],
            outcome=Outcome.UNSUPPORTED, reason="the target was built without DANE support",
            duration_s=0.002),
        ScenarioResult(
            id="ocsp-client-must-staple", title="Client enforces must-staple", feature="ocsp",
            side="client", target=EXIM, requirements=["OCSP-10"], outcome=Outcome.SKIP,
            reason="the lab's OpenSSL cannot build must-staple certificates"),
        ScenarioResult(
            id="dsn-structure", title="Bounce is a multipart/report", feature="dsn",
            side="client", target=EXIM, requirements=["DSN-12", UNCATALOGUED],
            outcome=Outcome.ERROR, reason="the fake MX crashed: " + NASTY,
            traceback='Traceback (most recent call last):\n  File "harness/smtp/peer.py", '
                      'line 10, in serve\n    raise RuntimeError("boom \\x00")\n'
                      "RuntimeError: boom \x00\x1b" + "\n",
            duration_s=1.5),
        ScenarioResult(
            id="dsn-fields", title="Reporting-MTA and field order", feature="dsn",
            side="client", target=EXIM, requirements=["DSN-14", "DSN-25"], outcome=Outcome.PASS,
            checks=[CheckResult("dsn_reporting_mta", "DSN-14", "MUST", Outcome.PASS,
                                "Reporting-MTA: dns; mx.example.test",
                                evidence=[Evidence("per-message fields", "table", [
                                    {"field": "Reporting-MTA", "value": "dns; mx.example.test"},
                                    {"field": "Arrival-Date", "value": "Tue, 25 Nov 2025",
                                     "note": None}])]),
                    CheckResult("dsn_field_order", "DSN-25", "SHOULD", Outcome.PASS,
                                "Fields are in the recommended order.")],
            duration_s=0.3,
            evidence=[Evidence("parsed DSN", "json", {"action": "failed", "status": "5.1.1",
                                                      "nested": {"list": [1, 2, 3]}}),
                      Evidence("bounce text", "text", "This is a bounce.\nLine two\ttabbed.")]),
    ]


def _external_scenarios() -> list[ScenarioResult]:
    return [
        ScenarioResult(
            id="prdr-ehlo-keyword", title="PRDR is advertised in EHLO", feature="prdr",
            side="server", target=EXTERNAL, requirements=["PRDR-01"], outcome=Outcome.PASS,
            checks=[CheckResult("ehlo_has_keyword", "PRDR-01", "MUST", Outcome.PASS,
                                "EHLO lists PRDR.")], duration_s=0.03),
        ScenarioResult(
            id="prdr-353-intro", title="Per-recipient replies start with 353", feature="prdr",
            side="server", target=EXTERNAL, requirements=["PRDR-06"], outcome=Outcome.FAIL,
            checks=[CheckResult("prdr_intro_line", "PRDR-06", "MUST", Outcome.FAIL,
                                "No 353 line.", expected="353", actual="250 OK")],
            duration_s=0.05),
        ScenarioResult(
            id="dsn-fields", title="Reporting-MTA and field order", feature="dsn",
            side="client", target=EXTERNAL, requirements=["DSN-25"], outcome=Outcome.FAIL,
            checks=[CheckResult("dsn_field_order", "DSN-25", "MAY", Outcome.FAIL,
                                "Fields out of order.")], duration_s=0.1),
        ScenarioResult(
            id="ocsp-client-must-staple", title="Client enforces must-staple", feature="ocsp",
            side="client", target=EXTERNAL, requirements=["OCSP-10"], outcome=Outcome.SKIP,
            reason="outbound scenarios need a managed target"),
    ]


#: (tests, failures, errors, skipped) per JUnit suite of `sample_run()`.
EXPECTED_COUNTS = {EXIM: (7, 1, 1, 2), EXTERNAL: (4, 1, 0, 1)}


def sample_run(*, stopped_early: str | None = None) -> RunResult:
    return RunResult(
        tool={"name": "mtaconform", "version": "0.1.0"},
        started="2025-11-25T11:30:00+00:00",
        finished="2025-11-25T11:32:05.5+00:00",
        targets=[
            TargetInfo(EXIM, "managed", "4.98.1",
                       {"prdr": True, "dsn": True, "dane": False, "tls": "OpenSSL 3.0.15",
                        "proxy": ["v1", "v2"]}, restarts=1),
            TargetInfo(EXTERNAL, "external", None, {"prdr": True}),
        ],
        scenarios=_exim_scenarios() + _external_scenarios(),
        requirements=list(REQUIREMENTS),
        stopped_early=stopped_early,
    )


def large_run(n: int = 160) -> RunResult:
    """N scenarios with typical evidence, for size checks."""
    scenarios = []
    for i in range(n):
        outcome = [Outcome.PASS, Outcome.PASS, Outcome.PASS, Outcome.FAIL, Outcome.SKIP][i % 5]
        req = REQUIREMENTS[i % len(REQUIREMENTS)]
        transcript = prdr_transcript()
        scenarios.append(ScenarioResult(
            id=f"{req.feature}-case-{i:03d}", title=f"Case {i}", feature=req.feature,
            side="server", target=EXIM, requirements=[req.id], outcome=outcome,
            checks=[CheckResult("some_check", req.id, "MUST", outcome if outcome is not
                                Outcome.SKIP else Outcome.PASS, "What was found.",
                                expected="x", actual="y", evidence=[transcript])],
            duration_s=0.05, description="A typical scenario description of one sentence.",
            expectation="The expected behaviour.", evidence=[transcript]))
    return RunResult(tool={"name": "mtaconform", "version": "0.1.0"},
                     started="2025-11-25T11:30:00Z", finished="2025-11-25T11:40:00Z",
                     targets=[TargetInfo(EXIM, "managed", "4.98.1")], scenarios=scenarios,
                     requirements=list(REQUIREMENTS))
