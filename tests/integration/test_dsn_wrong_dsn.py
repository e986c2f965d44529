"""Every check of every DSN scenario, failed on purpose.

Project rule: a check that cannot fail is a defect. For the scenarios where Exim generates DSNs,
each scenario runs once on the real Exim and its observations are kept (RunOptions.on_observations);
then a deliberately wrong DSN replaces what arrived at the sink — a field changed, added or
removed, another envelope, a DSN that should not exist — and the check, given the scenario's own
parameters, must say `fail` and what is wrong. Everything else in the observations (the fake MX's
transcript, the submission, the queue) is what really happened.

Where Exim already gets a check wrong, CONTROLS repairs the DSN and the same check must pass: the
check tells a right DSN from a wrong one.

For the server-side scenarios a deliberately wrong SMTP server (a FakeMX as external target) takes
Exim's place. The DSN_INFO scenarios need exim-dsninfo; dsn_info is also failed in a unit test
(UNIT_COVERED) so that it stays covered where that build is missing.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.observations import Observations
from harness.engine.scenario import CheckSpec
from harness.report.model import STRENGTH, Outcome
from support.dsn import SharedTarget, clone, replace_sink, sample, shared_target, sink
from support.harness import SCENARIOS, FaultyServer, run, scenario, missing_unit_tests

CHECKS = all_checks()
Fault = Callable[[Observations], Observations]

UNIT_COVERED = {
    ("dsn-info-rcpt", "dsn_info", "MAY"): "tests/unit/test_dsn_checks.py::test_dsn_info_fails_for_wrong_fields",
    ("dsn-info-data", "dsn_info", "MAY"): "tests/unit/test_dsn_checks.py::test_dsn_info_fails_for_wrong_fields",
    ("dsn-info-port", "dsn_info", "MAY"): "tests/unit/test_dsn_checks.py::test_dsn_info_fails_for_wrong_fields",
    ("dsn-info-banner-refused", "dsn_info", "MAY"):
        "tests/unit/test_dsn_checks.py::test_dsn_info_fails_when_a_helo_field_appears_without_ehlo",
}


# -- faults ------------------------------------------------------------------------------------

def sub(old: str, new: str, count: int = 1) -> Fault:
    """Every DSN at the sink with OLD replaced by NEW (which must be there: a fault that changes
    nothing would prove nothing)."""
    o, n = old.encode(), new.encode()

    def change(msg: bytes) -> bytes:
        assert o in msg, f"{old!r} is not in the DSN"
        return msg.replace(o, n, count)

    return lambda obs: replace_sink(obs, change)


def resub(pattern: str, new: str) -> Fault:
    rx = re.compile(pattern.encode(), re.M)

    def change(msg: bytes) -> bytes:
        out, n = rx.subn(new.encode(), msg, count=1)
        assert n, f"{pattern!r} does not match the DSN"
        return out

    return lambda obs: replace_sink(obs, change)


def after(field: str, line: str) -> Fault:
    """LINE added after the (first) line starting with FIELD."""
    return resub(rf"^({re.escape(field)}[^\r\n]*\r\n)", r"\g<1>" + line.replace("\\", "\\\\") + "\r\n")


def drop(field: str) -> Fault:
    return resub(rf"^{re.escape(field)}[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", "")


def no_dsn(obs: Observations) -> Observations:
    return replace_sink(obs, lambda msg: None)


def plus(name: str, *swaps: tuple[str, str]) -> Fault:
    """A DSN from fixtures/dsn arrives too (with SWAPS applied), correctly enveloped."""
    data = sample(name)
    for old, new in swaps:
        data = data.replace(old.encode(), new.encode())

    def fault(obs: Observations) -> Observations:
        new_obs = copy.copy(obs)
        new_obs.sink = list(obs.sink) + sink(data, rcpt=obs.sender or "sender@sender.test")
        return new_obs

    return fault


def twice(obs: Observations) -> Observations:
    new = copy.copy(obs)
    new.sink = list(obs.sink) + [clone(s) for s in obs.sink]
    return new


def envelope(reverse_path: str | None = None, rcpt: str | None = None) -> Fault:
    def fault(obs: Observations) -> Observations:
        new = copy.copy(obs)
        new.sink = [clone(s) for s in obs.sink]
        for s in new.sink:
            for t in s.transactions:
                if reverse_path is not None:
                    t.reverse_path = reverse_path
                if rcpt is not None:
                    t.rcpts = [(rcpt, p, c) for _, p, c in t.rcpts]
        return new

    return fault


def peer_mail_param(key: str, value: str) -> Fault:
    """The fake MX saw another value for a MAIL parameter (a target that changed it)."""
    def fault(obs: Observations) -> Observations:
        new = copy.copy(obs)
        new.peers = {name: [clone(s) for s in sessions] for name, sessions in obs.peers.items()}
        for sessions in new.peers.values():
            for s in sessions:
                for t in s.transactions:
                    t.mail_params = {**t.mail_params, key: value}
        return new

    return fault


def reply(kind: str, index: int, text: str) -> Fault:
    """The inbound session's reply to the INDEX-th KIND step replaced by TEXT (a wrong server)."""
    from harness.smtp.codec import ReplyParser

    def fault(obs: Observations) -> Observations:
        new = copy.copy(obs)
        session = copy.copy(obs.sessions[0])
        session.steps = [copy.copy(st) for st in session.steps]
        step = [st for st in session.steps if st.kind == kind][index]
        parser = ReplyParser()
        parser.feed(text.encode() + b"\r\n")
        step.replies = [parser.next_event()]  # type: ignore[list-item]
        new.sessions = [session]
        return new

    return fault


def both(*faults: Fault) -> Fault:
    def fault(obs: Observations) -> Observations:
        for f in faults:
            obs = f(obs)
        return obs

    return fault


LONG = "X-Padding: " + "x" * 1200
R1_FAILURE = ("exim-4.96-failure.eml", ("r2@d.test", "r1@d.test"))


def f(sid: str, check: str, level: str, fault: Fault, says: str, target: str = "exim") -> Any:
    return pytest.param(sid, check, level, fault, says, target, id=f"{sid}-{check}-{level}-{says[:24]}")


FAULTS = [
    # dsn-failure-rcpt: one failed group for r2, checked field by field.
    f("dsn-failure-rcpt", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed for <r2@d.test>"),
    f("dsn-failure-rcpt", "dsn_envelope", "MUST", envelope(reverse_path="postmaster@target.test"),
      "has reverse-path <postmaster@target.test>"),
    f("dsn-failure-rcpt", "dsn_structure", "MUST", sub("report-type=delivery-status; ", ""), "report-type"),
    f("dsn-failure-rcpt", "dsn_returned_content", "MUST",
      sub("Message-ID: <dsn-failure-rcpt@", "Message-ID: <another@"), "returns another message"),
    f("dsn-failure-rcpt", "dsn_reporting_mta", "MUST", sub("Reporting-MTA: dns; mta.target.test",
                                                           "Reporting-MTA: dns; relay.elsewhere.test"),
      "names reporting-mta: dns; relay.elsewhere.test"),
    f("dsn-failure-rcpt", "dsn_envelope_id", "MUST", after("Reporting-MTA:", "Original-Envelope-Id: made-up"),
      "original-envelope-id: made-up"),
    f("dsn-failure-rcpt", "dsn_final_recipient", "MUST", sub("rfc822;r2@d.test", "rfc822;R2@d.test"),
      "case changed"),
    f("dsn-failure-rcpt", "dsn_original_recipient", "SHOULD",
      after("Final-Recipient:", "Original-Recipient: rfc822;r2@d.test"), "although no orcpt was given"),
    f("dsn-failure-rcpt", "dsn_action", "MUST", sub("Action: failed", "Action: bounced"), "action-value"),
    f("dsn-failure-rcpt", "dsn_status", "MUST", sub("Status: 5.0.0", "Status: 2.0.0"), "contradicts action"),
    f("dsn-failure-rcpt", "dsn_remote_mta", "MUST", sub("Remote-MTA: dns; mx.d.test", "Remote-MTA: dns; mx.other.test"),
      "remote-mta: dns; mx.other.test"),
    f("dsn-failure-rcpt", "dsn_diagnostic_code", "SHOULD", resub(r"^(Diagnostic-Code: smtp; 550 5\.1\.1 <r2@d\.test>:) "
                                                                  r"no such user RCPT22", r"\1 mailbox unavailable"),
      "not what the peer said"),
    f("dsn-failure-rcpt", "dsn_line_length", "MUST", after("Status:", LONG), "1211 characters"),
    f("dsn-failure-rcpt", "dsn_groups", "MUST", after("Diagnostic-Code:", "\r\nFinal-Recipient: rfc822;r1@d.test"
                                                                         "\r\nAction: failed\r\nStatus: 5.0.0"),
      "groups for r2@d.test, r1@d.test"),
    f("dsn-failure-rcpt", "dsn_field_order", "SHOULD", resub(r"^(Status: 5\.0\.0\r\n)(Remote-MTA: [^\r\n]*\r\n)",
                                                            r"\2\1"), "comes after"),
    f("dsn-failure-rcpt", "dsn_extension_fields", "MAY", after("Status:", "Foo-Bar: baz"),
      "does not begin with x-"),
    # dsn-failure-data.
    f("dsn-failure-data", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-failure-data", "dsn_structure", "MUST", sub("Content-type: message/delivery-status",
                                                       "Content-type: text/plain"), "not-a-report"),
    f("dsn-failure-data", "dsn_action", "MUST", both(sub("Action: failed", "Action: failed"),
                                                    after("Action:", "Action: failed")), "appears 2 times"),
    f("dsn-failure-data", "dsn_status", "MUST", sub("Status: 5.0.0", "Status: 5.0.00"), "leading zero"),
    f("dsn-failure-data", "dsn_remote_mta", "MUST", drop("Remote-MTA:"), "no remote-mta for <r1@d.test>"),
    f("dsn-failure-data", "dsn_diagnostic_code", "SHOULD", drop("Diagnostic-Code:"), "no diagnostic-code"),
    # dsn-failure-prdr.
    f("dsn-failure-prdr", "dsn_prdr_groups", "MUST", resub(r"^Diagnostic-Code: smtp; 550 5\.7\.1 r2 refused by content "
                                                          r"policy PRDR28", "Diagnostic-Code: smtp; 550 5.7.1 refused"),
      "does not carry its own reply"),
    f("dsn-failure-prdr", "dsn_groups", "MUST", after("Diagnostic-Code:", "\r\nFinal-Recipient: rfc822;r1@d.test"
                                                                         "\r\nAction: failed\r\nStatus: 5.0.0"),
      "groups for r2@d.test, r1@d.test"),
    # DSNs that must not arrive.
    f("dsn-never", "dsn_none", "MUST", plus(*R1_FAILURE), "dsn for r1@d.test arrived"),
    f("dsn-notify-success-only", "dsn_none", "MUST", plus(*R1_FAILURE), "a failure dsn for r1@d.test arrived"),
    f("dsn-notify-failure-only-delay", "dsn_none", "MUST", plus("exim-4.96-delay.eml"),
      "a delay dsn for r1@d.test arrived"),
    f("dsn-bounce-of-bounce", "dsn_none", "MUST", plus(*R1_FAILURE), "action: failed for <r1@d.test>"),
    # A deliberately wrong server reply in Exim's real session (a FakeMX cannot accept a repeated
    # parameter: its own codec refuses it).
    f("dsn-server-notify-duplicate", "dsn_param_replies", "MUST", reply("rcpt", 0, "250 2.1.5 ok"), "given twice"),
    f("dsn-relay-dsn-capable", "dsn_none", "MUST", plus("exim-4.96-success.eml", ("accept-1@target.test", "r1@d.test")),
      "a success dsn for r1@d.test, r2@d.test arrived"),
    f("dsn-relay-dsn-capable", "dsn_params_relayed", "MUST", peer_mail_param("ENVID", "ab+c=d"),
      "mail envid: submitted ab+2bc+3dd, relayed ab+c=d"),
    # dsn-delay.
    f("dsn-delay", "dsn_arrived", "MUST", no_dsn, "no dsn with action: delayed"),
    f("dsn-delay", "dsn_dates", "MAY", after("Status:", "Will-Retry-Until: next week"), "date-syntax"),
    f("dsn-delay", "dsn_action", "MUST", sub("Action: delayed", "Action: postponed"), "action-value"),
    f("dsn-delay", "dsn_status", "MUST", sub("Status: 4.0.0", "Status: 5.0.0"), "contradicts action: delayed"),
    f("dsn-delay", "dsn_diagnostic_code", "SHOULD", sub("smtp; 451", "X-Exim; 451"), "not what the peer said"),
    # dsn-success-local.
    f("dsn-success-local", "dsn_arrived", "MUST", no_dsn, "no dsn with action: delivered"),
    f("dsn-success-local", "dsn_envelope", "MUST", envelope(rcpt="postmaster@sender.test"),
      "went to postmaster@sender.test"),
    f("dsn-success-local", "dsn_structure", "MUST", sub("Content-type: message/delivery-status",
                                                        "Content-type: application/octet-stream"), "not-a-report"),
    f("dsn-success-local", "dsn_returned_content", "SHOULD", sub("Content-type: text/rfc822-headers",
                                                                 "Content-type: message/rfc822"),
      "returns more than the headers"),
    f("dsn-success-local", "dsn_reporting_mta", "MUST", drop("Reporting-MTA:"), "reporting-mta"),
    f("dsn-success-local", "dsn_final_recipient", "MUST", sub("rfc822;accept-1@target.test", "rfc822;other@target.test"),
      "not an envelope recipient"),
    f("dsn-success-local", "dsn_status", "MUST", sub("Status: 2.0.0", "Status: 2.0"), "status-syntax"),
    f("dsn-success-local", "dsn_remote_mta", "MUST", after("Status:", "Remote-MTA: dns; mx.d.test"),
      "although no remote mta was involved"),
    # dsn-success-relayed (Exim says "delivered": CONTROLS shows "relayed" passes).
    f("dsn-success-relayed", "dsn_arrived", "SHOULD", no_dsn, "no dsn with action: relayed"),
    f("dsn-success-relayed", "dsn_status", "MUST", sub("Status: 2.0.0", "Status: 5.0.0"), "contradicts action"),
    # dsn-null-reverse-path.
    f("dsn-null-reverse-path", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-null-reverse-path", "dsn_envelope", "MUST", envelope(reverse_path="mailer-daemon@target.test"),
      "has reverse-path <mailer-daemon@target.test>"),
    # RET.
    f("dsn-ret-hdrs", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-ret-hdrs", "dsn_returned_content", "MUST", sub("Content-type: text/rfc822-headers",
                                                          "Content-type: message/rfc822"),
      "returns more than the headers (ret=hdrs)"),
    f("dsn-ret-full", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-ret-full", "dsn_returned_content", "MUST", sub("Content-type: message/rfc822",
                                                          "Content-type: text/rfc822-headers"),
      "does not return the whole message"),
    f("dsn-ret-full-large", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-ret-full-large", "dsn_returned_content", "SHOULD", resub(r"\r\n--[^\r\n]*\r\nContent-type: text/rfc822-headers"
                                                                    r"(?:.|\r|\n)*\Z", "\r\n"),
      "returns nothing although ret=full"),
    # ENVID (Exim prints it still encoded: CONTROLS decodes it).
    f("dsn-envid", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-envid", "dsn_envelope_id", "MUST", drop("Original-Envelope-ID:"), "no original-envelope-id"),
    f("dsn-received-from", "dsn_arrived", "SHOULD", no_dsn, "no dsn with action: failed"),
    f("dsn-received-from", "dsn_received_from", "SHOULD",
      after("Reporting-MTA:", "Received-From-MTA: dns; other.test (192.0.2.9)"), "the client said ehlo submitter.test"),
    # Final-Recipient and Original-Recipient.
    f("dsn-final-recipient-alias", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-final-recipient-alias", "dsn_final_recipient", "MUST",
      sub("rfc822;dsn-alias@target.test", "rfc822;someone@target.test"), "not an envelope recipient"),
    f("dsn-final-recipient-case", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-final-recipient-case", "dsn_final_recipient", "MUST", sub("rfc822;Mixed.Case", "rfc822;mixed.case"),
      "case changed"),
    f("dsn-original-recipient", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-original-recipient", "dsn_original_recipient", "MUST", drop("Original-Recipient:"),
      "no original-recipient"),
    f("dsn-original-recipient", "dsn_original_recipient", "SHOULD",
      resub(r"^(Final-Recipient: rfc822;r2@d\.test\r\n)", r"Original-Recipient: rfc822;r2@d.test\r\n\1"),
      "although no orcpt was given"),
    # Status.
    f("dsn-status-remote-code", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-status-remote-code", "dsn_status", "MUST", sub("Status: 5.0.0", "Status: 5.0"), "status-syntax"),
    f("dsn-status-remote-code", "dsn_status", "MAY", sub("Status: 5.0.0", "Status: 5.7.1"),
      "the remote said 5.1.1"),
    # Remote-MTA with no remote MTA.
    f("dsn-remote-mta-local", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-remote-mta-local", "dsn_remote_mta", "MUST", after("Status:", "Remote-MTA: dns; localhost.test"),
      "although no remote mta was involved"),
    f("dsn-remote-mta-local", "dsn_line_length", "MUST", after("Status:", LONG), "1211 characters"),
    # Diagnostic-Code.
    f("dsn-diagnostic-multiline", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-diagnostic-multiline", "dsn_diagnostic_code", "SHOULD", resub(r"^ 550-5\.1\.1 second line of three\r\n", ""),
      "not what the peer said"),
    f("dsn-diagnostic-multiline", "dsn_line_length", "MUST", after("Status:", LONG), "1211 characters"),
    f("dsn-diagnostic-long", "dsn_arrived", "MUST", no_dsn, "no dsn with action: failed"),
    f("dsn-diagnostic-long", "dsn_line_length", "MUST", sub("[truncated]", "word0101 " * 10 + "[truncated]"),
      "characters"),
    f("dsn-diagnostic-long", "dsn_diagnostic_code", "SHOULD", sub("LONG22", "SHORT22"), "not what the peer said"),
    # One DSN per event.
    f("dsn-one-per-event", "dsn_count", "MAY", twice, "2 failure dsn message(s)"),
    f("dsn-one-per-event", "dsn_groups", "MUST", resub(r"\r\n\r\n(?:Action|Final-Recipient): [^\r\n]*\r\n"
                                                       r"(?:[A-Za-z-]+: [^\r\n]*[^\r\n]*\r\n(?: [^\r\n]*\r\n)*)*?"
                                                       r"(?:[^\r\n]*EVENT29[^\r\n]*\r\n)(?=\r\n--)", "\r\n"),
      "groups for"),
    # DSN_INFO (exim-dsninfo only).
    f("dsn-info-rcpt", "dsn_arrived", "MAY", no_dsn, "no dsn with action: failed", "exim-dsninfo"),
    f("dsn-info-data", "dsn_arrived", "MAY", no_dsn, "no dsn with action: failed", "exim-dsninfo"),
    f("dsn-info-data", "dsn_info", "MAY", sub("X-str; 220 mx.d.test ESMTP fake DSN27 data", "X-str; 220 somebody else"),
      "differ from the transcript", "exim-dsninfo"),
    f("dsn-info-port", "dsn_arrived", "MAY", no_dsn, "no dsn with action: failed", "exim-dsninfo"),
    f("dsn-info-banner-refused", "dsn_arrived", "MAY", no_dsn, "no dsn with action: failed", "exim-dsninfo"),
    f("dsn-info-banner-refused", "dsn_info", "MAY", drop("X-Remote-MTA-smtp-greeting:"), "(absent)", "exim-dsninfo"),
]

# Checks Exim gets wrong already: the repaired DSN passes them.
CONTROLS = [
    pytest.param("dsn-success-relayed", "dsn_arrived", "SHOULD", sub("Action: delivered", "Action: relayed"),
                 id="relayed"),
    pytest.param("dsn-envid", "dsn_envelope_id", "MUST", sub("Original-Envelope-ID: ab+2Bc", "Original-Envelope-ID: ab+c"),
                 id="envid-decoded"),
    pytest.param("dsn-original-recipient", "dsn_original_recipient", "MUST",
                 sub("Original-Recipient: rfc822;orig+40d.test", "Original-Recipient: rfc822;orig@d.test"),
                 id="orcpt-decoded"),
    pytest.param("dsn-status-remote-code", "dsn_status", "MAY", sub("Status: 5.0.0", "Status: 5.1.1"), id="status-copied"),
    pytest.param("dsn-failure-rcpt", "dsn_field_order", "SHOULD",
                 resub(r"^(Action: failed\r\n)(Final-Recipient: [^\r\n]*\r\n)", r"\2\1"), id="field-order"),
    pytest.param("dsn-ret-full-large", "dsn_returned_content", "SHOULD",
                 lambda obs: replace_sink(obs, lambda m: m.replace(b"Content-type: text/rfc822-headers",
                                                                   b"Content-type: message/rfc822").replace(
                     b"\r\n\r\n\r\n--", b"\r\n\r\nTest message from mtaconform.\r\n\r\n--")), id="full-returned"),
]


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dsn_exim(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SharedTarget:
    return shared_target(request, tmp_path_factory, "exim")


@pytest.fixture(scope="session")
def dsn_exim_dsninfo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SharedTarget:
    return shared_target(request, tmp_path_factory, "exim-dsninfo")


def spec_of(sid: str, check: str, level: str) -> CheckSpec:
    catalogue = load_catalogue()
    found = [c for c in scenario(sid).checks if c.check == check
             and STRENGTH[c.level or catalogue[c.requirement].strength] == level]
    assert len(found) == 1, (sid, check, level, found)
    return found[0]


def _observations(request: pytest.FixtureRequest, target: str, sid: str) -> Observations:
    fixture = "dsn_exim" if target == "exim" else "dsn_exim_dsninfo"
    shared: SharedTarget = request.getfixturevalue(fixture)
    return shared.observe(sid)


@pytest.mark.integration
@pytest.mark.parametrize(("sid", "check", "level", "fault", "says", "target"), FAULTS)
def test_wrong_dsn_fails_the_check(sid: str, check: str, level: str, fault: Fault, says: str, target: str,
                                   request: pytest.FixtureRequest) -> None:
    spec = spec_of(sid, check, level)
    obs = _observations(request, target, sid)
    verdict = CHECKS[check](fault(obs), spec.params)
    shown = f"{verdict.message} | {verdict.actual or ''}".lower()
    assert verdict.outcome is Outcome.FAIL, (verdict.outcome, verdict.message, verdict.actual)
    assert says in shown, (says, shown)


@pytest.mark.integration
@pytest.mark.parametrize(("sid", "check", "level", "fix"), CONTROLS)
def test_repaired_dsn_passes_the_check(sid: str, check: str, level: str, fix: Fault, dsn_exim: SharedTarget) -> None:
    spec = spec_of(sid, check, level)
    obs = dsn_exim.observe(sid)
    assert CHECKS[check](obs, spec.params).outcome is Outcome.FAIL  # what Exim sent
    repaired = CHECKS[check](fix(obs), spec.params)
    assert repaired.outcome is Outcome.PASS, (repaired.message, repaired.actual)


# -- the server side: deliberately wrong SMTP servers --------------------------------------------

DSN_EHLO = ["PIPELINING", "8BITMIME", "DSN"]
REFUSE_ALL = {"ehlo": DSN_EHLO, "mail": "501 5.5.4 refused WRONG", "rcpt": {"default": "501 5.5.4 refused WRONG"}}
ACCEPT_ALL = {"ehlo": DSN_EHLO}

SERVER_FAULTS = [
    # (scenario, server script, what the check must say)
    pytest.param("dsn-server-ehlo-keyword", {"ehlo": ["PIPELINING", "DSN RET"]}, "dsn is advertised with parameters",
                 id="ehlo-keyword-with-params"),
    pytest.param("dsn-server-not-advertised", {"ehlo": ["PIPELINING", "8BITMIME"]}, "dsn was not advertised",
                 id="not-advertised-accepts"),
    pytest.param("dsn-server-notify-valid", REFUSE_ALL, "expected 2xx", id="notify-valid-refused"),
    pytest.param("dsn-server-notify-invalid", ACCEPT_ALL, "notify", id="notify-invalid-accepted"),
    pytest.param("dsn-server-orcpt-valid", REFUSE_ALL, "expected 2xx", id="orcpt-valid-refused"),
    pytest.param("dsn-server-orcpt-bad-xtext", ACCEPT_ALL, "not xtext", id="orcpt-bad-xtext-accepted"),
    pytest.param("dsn-server-orcpt-no-type", ACCEPT_ALL, "no ';'", id="orcpt-no-type-accepted"),
    pytest.param("dsn-server-ret-envid-valid", REFUSE_ALL, "expected 2xx", id="ret-envid-valid-refused"),
    pytest.param("dsn-server-ret-invalid", ACCEPT_ALL, "neither full nor hdrs", id="ret-invalid-accepted"),
    pytest.param("dsn-server-envid-invalid", ACCEPT_ALL, "101 characters", id="envid-invalid-accepted"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("sid", "script", "says"), SERVER_FAULTS)
def test_wrong_server_fails_the_check(sid: str, script: dict[str, Any], says: str, tmp_path: Any) -> None:
    sc = scenario(sid)
    # The server plays the target itself: no knobs to set, no managed target needed.
    sc = dataclasses.replace(sc, knobs={}, requires={k: v for k, v in sc.requires.items() if k != "managed"})
    with FaultyServer(script) as server:
        res = run([sc], server.spec, tmp_path)[sid]
    [c] = res.checks
    assert c.verdict == "fail", (res.outcome, res.reason, c.message, c.actual)
    assert says in f"{c.message} | {c.actual}".lower(), (c.message, c.actual)


# -- coverage ------------------------------------------------------------------------------------

def test_every_check_of_every_dsn_scenario_has_a_fault() -> None:
    catalogue = load_catalogue()
    wanted = {(p.stem, c.check, STRENGTH[c.level or catalogue[c.requirement].strength])
              for p in (SCENARIOS / "dsn").glob("*.yaml") for c in scenario(p.stem).checks}
    covered = {(p.values[0], p.values[1], p.values[2]) for p in FAULTS}
    covered |= {(p.values[0], c.check, STRENGTH[c.level or catalogue[c.requirement].strength])
                for p in SERVER_FAULTS for c in scenario(p.values[0]).checks}
    assert wanted - covered - set(UNIT_COVERED) == set()
    assert set(UNIT_COVERED) <= wanted


def test_every_dsn_check_is_failed_somewhere() -> None:
    from harness.engine.checks import dsn

    defined = {name for name, value in vars(dsn).items() if hasattr(value, "func") and name.startswith("dsn_")}
    used = {p.values[1] for p in FAULTS} | {"dsn_param_replies"} | {k[1] for k in UNIT_COVERED}
    assert defined - used == set()


def test_unit_covered_tests_exist() -> None:
    assert missing_unit_tests(UNIT_COVERED) == []


def test_server_faults_are_judged_by_the_check_of_the_scenario() -> None:
    for p in SERVER_FAULTS:
        assert {c.check for c in scenario(p.values[0]).checks} <= {"dsn_param_replies", "ehlo_keyword"}
