"""Every check of every prdr-client-* scenario, failed on purpose against the real Exim.

Project rule: a check that cannot fail is a defect. In the prdr-client-* scenarios Exim is the SMTP
client and the fake MX `mx` the server, so a fault is either a deliberately wrong peer (its script
changed: Exim then does something the check must object to) or a deliberately wrong Exim (a
`target:` knob of fixtures/targets/exim/exim.yaml). FAULTS lists, per fault, the checks it must
trip: a MUST check's verdict becomes `fail`, a SHOULD/MAY check's `non-strict`, and the message (or
the "actual" it shows) says what went wrong.

One check cannot be tripped this way: prdr-client-not-offered's `peer_mail_param(present: false)`,
because Exim never sends PRDR to a server that did not offer it. A deliberately wrong client (the
project's own SessionRunner sending `MAIL FROM:<…> PRDR` to a FakeMX without PRDR) makes it fail
in tests/unit/test_prdr_client_checks.py::
test_peer_mail_param_absent_fails_for_a_client_that_sends_prdr_unoffered; UNIT_COVERED names it.

Some faults break a scenario's premise rather than Exim (a peer that refuses what the scenario
has it accept): Exim then behaves correctly and the check still has to say no. Two clauses cannot
be tripped with Exim at all and are tripped in unit tests instead: see UNIT_COVERED and
test_exim_success_dsn_text_is_fixed. The 30-second pauses of prdr-client-patience are never
played as written (too slow for this file), and the slow lane (prdr-client-patience-slow) is
left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.scenario import Scenario
from harness.report.model import STRENGTH, CheckResult, ScenarioResult
from support.harness import SCENARIOS, check_result, scenario, with_peer, missing_unit_tests

INTRO = "353 PRDR content analysis beginning"
OK1, OK2, OK3 = "250 2.1.5 r1 ok", "250 2.1.5 r2 ok", "250 2.1.5 r3 ok"
FINAL = "250 2.0.0 final: accepted"
REFUSE_ALL = {"default": "550 5.1.1 no such user WRONGPEER"}
R1 = "r1@d.test"

# prdr-client-patience with its three 30-second pauses replaced by one 3-second pause before the
# final reply: long enough to outlast a 1-second final_timeout, short enough for this file.
SLOW_FINAL = [INTRO, OK1, OK2, {"reply": FINAL, "delay": 3}]

UNIT_COVERED = {
    ("prdr-client-not-offered", "peer_mail_param", "MUST"):
        "tests/unit/test_prdr_client_checks.py::"
        "test_peer_mail_param_absent_fails_for_a_client_that_sends_prdr_unoffered",
}


def peer(**script: Any) -> dict[str, Any]:
    """A fault in the fake MX `mx`: these script fields replace the scenario's."""
    return {"peer": script}


def knobs(**settings: Any) -> dict[str, Any]:
    """A fault in Exim's configuration: these knobs are added to the scenario's `target:`."""
    return {"knobs": settings}


def wrong(sid: str, fault: dict[str, Any]) -> Scenario:
    """Scenario SID with FAULT applied (peer script fields and/or target knobs)."""
    sc = scenario(sid)
    if "peer" in fault:
        sc = with_peer(sc, "mx", **fault["peer"])
    if "knobs" in fault:
        sc = dataclasses.replace(sc, knobs={**sc.knobs, **fault["knobs"]})
    return sc


def seen(c: CheckResult) -> str:
    """What a reader of the report sees of a check: its message and the value it shows."""
    return f"{c.message} | {c.actual or ''}".lower()


def expect(check: str, says: str, level: str = "MUST") -> tuple[str, str, str]:
    return check, level, says


PER_RCPT = "prdr-client-per-recipient"
R2_REFUSED, R3_DEFERRED = "550 5.7.1 r2 refused by content policy PRDR16", "450 4.2.0 r3 mailbox busy"


def first_session(*block: str) -> dict[str, Any]:
    """prdr-client-per-recipient's peer with this PRDR block on the first connection (the
    retry, as in the scenario, gets the well-formed block accepting everything)."""
    return peer(sessions=[{"prdr": [INTRO, *block, FINAL]}, {}])


# (scenario, fault, [(check, level, words in message/actual)], id); verdict: MUST → fail, else non-strict.
FAULTS = [
    # PRDR-14: PRDR requested when offered (MAY); delivered at all.
    pytest.param("prdr-client-offered", knobs(client_prdr=""),
                 [expect("peer_mail_param", "mail lacks prdr", "MAY")], id="offered-exim-prdr-off"),
    pytest.param("prdr-client-offered", peer(rcpt=REFUSE_ALL),
                 [expect("delivered", "bounced")], id="offered-peer-refuses-every-rcpt"),
    pytest.param("prdr-client-not-offered", peer(rcpt=REFUSE_ALL),
                 [expect("delivered", "bounced")], id="not-offered-peer-refuses-every-rcpt"),
    # PRDR-15: the single-reply model.
    pytest.param("prdr-client-traditional-reply", knobs(client_prdr=""),
                 [expect("peer_mail_param", "mail lacks prdr", "MAY")], id="traditional-exim-prdr-off"),
    pytest.param("prdr-client-traditional-reply", peer(prdr=["554 5.7.1 refused for all WRONGPEER"]),
                 [expect("delivered", "bounced"), expect("no_failure_dsn", "wrongpeer")],
                 id="traditional-single-554"),
    # PRDR-16: per-recipient outcomes, and the retry of the deferred recipient alone.
    pytest.param(PER_RCPT, first_session(OK1, R2_REFUSED, OK3),
                 [expect("queued", "<r3@d.test> is not queued any more (delivered)"),
                  expect("peer_rcpts", "only 1 delivery attempt")], id="per-recipient-r3-accepted"),
    pytest.param(PER_RCPT, first_session(OK1, "550 5.7.1 r2 refused for another reason", R3_DEFERRED),
                 [expect("failure_dsn", "does not carry 'refused by content policy prdr16'")],
                 id="per-recipient-other-refusal-text"),
    pytest.param(PER_RCPT, first_session(OK1, OK2, R3_DEFERRED),
                 [expect("failure_dsn", "no failure dsn for <r2@d.test>")], id="per-recipient-r2-accepted"),
    pytest.param(PER_RCPT, first_session(OK1, R2_REFUSED, "550 5.2.1 r3 refused WRONGPEER"),
                 [expect("no_failure_dsn", "a failure dsn for <r3@d.test>"),
                  expect("queued", "<r3@d.test> was bounced"),
                  expect("delivered", "<r3@d.test> was bounced")], id="per-recipient-r3-refused"),
    pytest.param(PER_RCPT, first_session(OK1, "450 4.2.0 r2 busy too", R3_DEFERRED),
                 [expect("peer_rcpts", "attempt 2 offered r2@d.test, r3@d.test")],
                 id="per-recipient-r2-deferred"),
    pytest.param(PER_RCPT, peer(sessions=[{"prdr": [INTRO, OK1, R2_REFUSED, R3_DEFERRED, FINAL]},
                                          {"rcpt": REFUSE_ALL}]),
                 [expect("delivered", "<r3@d.test> was bounced")], id="per-recipient-retry-refused"),
    # PRDR-17: the final reply governs.
    pytest.param("prdr-client-final-temporary", peer(prdr=None),
                 [expect("queued", "is not queued any more (delivered)")], id="final-temporary-final-250"),
    pytest.param("prdr-client-final-temporary", peer(prdr=[INTRO, OK1, OK2, "554 5.7.0 final WRONGPEER"]),
                 [expect("no_failure_dsn", "wrongpeer"), expect("queued", "was bounced")],
                 id="final-temporary-final-554"),
    pytest.param("prdr-client-final-permanent",
                 peer(prdr=[INTRO, OK1, "550 5.7.1 r2 per-recipient refusal PRDR17B",
                            "554 5.7.0 no entry PRDR17B"]),
                 [expect("failure_dsn", "does not carry 'final refusal'")], id="final-permanent-other-text"),
    pytest.param("prdr-client-final-permanent",
                 peer(prdr=[INTRO, OK1, "550 5.7.1 r2 per-recipient refusal PRDR17B",
                            "554 5.7.0 final refusal after a per-recipient refusal PRDR17B"]),
                 [expect("failure_dsn", "carries 'per-recipient refusal'")],
                 id="final-permanent-text-quotes-550"),
    pytest.param("prdr-client-final-permanent", peer(prdr=None),
                 [expect("failure_dsn", "no failure dsn for <r1@d.test>")], id="final-permanent-accepted"),
    # PRDR-18: each failed recipient's own code. A peer that accepts r2 is no fault: the check
    # skips a recipient no peer refused. A temporary refusal is one: r2 gets no group at all.
    pytest.param("prdr-client-dsn-codes",
                 peer(prdr=[INTRO, OK1, "452 4.2.2 r2 mailbox full, try later",
                            "550 5.7.1 r3 refused by policy", FINAL]),
                 [expect("dsn_codes_kept", "no per-recipient group for <r2@d.test>")],
                 id="dsn-codes-r2-deferred"),
    pytest.param("prdr-client-dsn-codes",
                 peer(prdr=[INTRO, OK1, "552 5.2.2 r2 mailbox full", "550 5.7.1 r3 refused by policy",
                            "554 5.7.0 final refusal"]),
                 [expect("dsn_codes_kept", "does not carry its own code 552"),
                  expect("delivered", "bounced")],
                 id="dsn-codes-final-554"),
    # PRDR-19: success notification from the final reply.
    pytest.param("prdr-client-success-dsn",
                 peer(ehlo=["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR", "8BITMIME", "DSN"]),
                 [expect("success_dsn", "no success dsn for <r1@d.test>")], id="success-dsn-peer-offers-dsn"),
    pytest.param("prdr-client-success-dsn",
                 peer(prdr=[INTRO, "250 2.1.5 r1 per-recipient ok PERRCPT19",
                            "550 5.7.1 r2 refused elsewhere", "250 2.0.0 final reply FINAL19"]),
                 [expect("failure_dsn", "does not carry 'refused prdr19'")],
                 id="success-dsn-other-refusal-text"),
    # PRDR-20: ownership until a positive final reply.
    pytest.param("prdr-client-close-mid-block", peer(prdr=None),
                 [expect("queued", "is not queued any more (delivered)")], id="close-mid-block-full-block"),
    pytest.param("prdr-client-close-mid-block", peer(rcpt={R1: "550 5.1.1 r1 unknown WRONGPEER"}),
                 [expect("no_failure_dsn", "wrongpeer")], id="close-mid-block-r1-refused"),
    pytest.param("prdr-client-no-final-reply", peer(prdr=None),
                 [expect("queued", "is not queued any more (delivered)")], id="no-final-reply-final-sent"),
    pytest.param("prdr-client-no-final-reply", peer(prdr=[INTRO, OK1, OK2, "554 5.7.0 final WRONGPEER"]),
                 [expect("no_failure_dsn", "wrongpeer")], id="no-final-reply-final-554"),
    # PRDR-21: patience (the 30-second pauses become one of 3 s).
    pytest.param("prdr-client-patience",
                 {**peer(prdr=SLOW_FINAL), **knobs(final_timeout="1s")},
                 [expect("delivered", "still queued"), expect("setting_at_least", "final_timeout is 1 s")],
                 id="patience-exim-final-timeout-1s"),
    # PRDR-22: no recipient decided on a misaligned line.
    pytest.param("prdr-client-malformed-3xx", peer(prdr=[INTRO, OK1, OK2, FINAL]),
                 [expect("recipient_states", "<r1@d.test> was delivered")], id="3xx-replaced-by-250"),
    pytest.param("prdr-client-malformed-extra-line", peer(prdr=None),
                 [expect("recipient_states", "<r1@d.test> was delivered")], id="extra-line-well-formed-250"),
    pytest.param("prdr-client-malformed-too-few", peer(prdr=None),
                 [expect("recipient_states", "<r1@d.test> was delivered")], id="too-few-well-formed-250"),
    pytest.param("prdr-client-malformed-intro-esc",
                 peer(prdr=["353 2.0.0 PRDR content analysis beginning", "550 5.7.1 r1 refused", OK2, FINAL]),
                 [expect("recipient_states", "<r1@d.test> was bounced")], id="intro-esc-r1-refused"),
    pytest.param("prdr-client-malformed-intro-multiline",
                 peer(prdr=["353-PRDR content analysis\n353 beginning", "550 5.7.1 r1 refused", OK2, FINAL]),
                 [expect("recipient_states", "<r1@d.test> was bounced")], id="intro-multiline-r1-refused"),
    # PRDR-23: pipelining.
    pytest.param("prdr-client-pipelining", knobs(client_pipelining=False),
                 [expect("pipelined", "waited for the mail reply")], id="pipelining-exim-avoids-it"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("sid", "fault", "expected"), FAULTS)
def test_wrong_peer_or_config_fails_the_check(sid: str, fault: dict[str, Any],
                                              expected: list[tuple[str, str, str]],
                                              exim: Callable[[Scenario], ScenarioResult]) -> None:
    res = exim(wrong(sid, fault))
    detail = [(c.check, c.requirement, c.level, c.verdict, c.message, c.actual) for c in res.checks]
    assert res.outcome.value not in ("error", "skip"), (res.reason, res.traceback, detail)
    for check, level, says in expected:
        c = check_result(res, check, level=level)
        assert c.verdict == ("fail" if level == "MUST" else "non-strict"), detail
        assert says in seen(c), (check, c.message, c.actual)


@pytest.mark.integration
def test_exim_success_dsn_text_is_fixed(exim: Callable[[Scenario], ScenarioResult]) -> None:
    """success_dsn's `excludes` clause cannot be tripped by a peer against Exim: its success DSN
    says "Diagnostic-Code: smtp; 250 Ok" whatever the peer answered, so even a final reply that
    quotes the per-recipient marker leaves the check passing. (A client that quotes the
    per-recipient reply fails the clause in tests/unit/test_delivery_checks.py::
    test_success_dsn_fails; the `success_dsn` row is covered above by a peer offering DSN.)"""
    res = exim(wrong("prdr-client-success-dsn", peer(prdr=[
        INTRO, "250 2.1.5 r1 per-recipient ok PERRCPT19", "550 5.7.1 r2 refused PRDR19",
        "250 2.0.0 final reply FINAL19 PERRCPT19"])))
    c = check_result(res, "success_dsn")
    groups = [g for ev in c.evidence if ev.kind == "json" for g in ev.content["recipients"]
              if g.get("action") == "delivered"]
    assert (c.verdict, [g.get("diagnostic-code") for g in groups]) == ("pass", ["smtp; 250 Ok"]), groups


@pytest.mark.integration
def test_patience_fault_is_the_timeout_not_the_pause(exim: Callable[[Scenario], ScenarioResult]) -> None:
    """Control for the patience fault: the same 3-second pause with Exim's own final_timeout
    (10m) is waited out, so it is the 1-second final_timeout that makes `delivered` fail."""
    res = exim(wrong("prdr-client-patience", peer(prdr=SLOW_FINAL)))
    got = [(c.check, c.verdict) for c in res.checks]
    assert got == [("delivered", "pass"), ("setting_at_least", "pass")], [
        (c.check, c.verdict, c.message) for c in res.checks]


def client_scenario_ids() -> list[str]:
    """The prdr-client-* scenarios this file covers: all but the slow lane."""
    ids = sorted(p.stem for p in (SCENARIOS / "prdr").glob("prdr-client-*.yaml"))
    return [sid for sid in ids if not scenario(sid).slow]


def test_every_check_has_a_fault_that_trips_it() -> None:
    """Each (scenario, check, level) of every prdr-client-* scenario appears in FAULTS (not as xfail)
    or, for the one Exim cannot be made to get wrong, in UNIT_COVERED."""
    catalogue = load_catalogue()
    wanted = {(sid, c.check, STRENGTH[c.level or catalogue[c.requirement].strength])
              for sid in client_scenario_ids() for c in scenario(sid).checks}
    covered = {(p.values[0], check, level) for p in FAULTS if not p.marks
               for check, level, _ in p.values[2]}
    assert wanted - covered - set(UNIT_COVERED) == set()
    assert set(UNIT_COVERED) <= wanted


def test_unit_covered_tests_exist() -> None:
    assert missing_unit_tests(UNIT_COVERED) == []


def test_the_slow_lane_is_left_out() -> None:
    """prdr-client-patience-slow has the same checks as the fast lane, covered there."""
    slow, fast = scenario("prdr-client-patience-slow"), scenario("prdr-client-patience")
    assert slow.slow and "prdr-client-patience-slow" not in client_scenario_ids()
    assert [(c.check, c.requirement) for c in slow.checks] == [(c.check, c.requirement) for c in fast.checks]
