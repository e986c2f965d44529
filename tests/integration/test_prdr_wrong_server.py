"""Every check of every prdr-server-* scenario, failed on purpose by a deliberately wrong server.

Project rule: a check that cannot fail is a defect. Each scenario runs against a FaultyServer
(a scripted fake SMTP server on 127.0.0.1, used as an external target) that is correct for that
scenario (GOOD), except for one fault. FAULTS lists, per fault, the checks it must trip: a MUST
check's verdict becomes `fail`, a SHOULD/MAY check's `non-strict`, and the message (or the
"actual" it shows) names the fault. LEGIT lists look-alikes that are allowed (the single-reply
model, a refusal for another reason, PRDR not offered) and must not fail. Known harness defects
are strict xfails: they flip to a failure once fixed, so the mark gets removed.

Recipients (tests/support/harness.py ROLE_ADDRESSES): the block scenario sends RCPT #1 accept,
#2 reject_rcpt (refused at RCPT), #3 reject_data, #4 defer_data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.engine.catalogue import load_catalogue
from harness.report.model import STRENGTH, CheckResult, ScenarioResult
from support.harness import SCENARIOS, FaultyServer, check_result, faulty_rcpt_replies, run, scenario

EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "PRDR", "CHUNKING"]
INTRO = "353 PRDR content analysis beginning"
OK, FINAL = "250 2.1.5 ok", "250 2.0.0 message accepted"
REFUSED, DEFERRED = "550 5.7.1 refused after DATA", "450 4.2.0 deferred after DATA"

# A correct server for each scenario: its per-recipient replies follow the recipient roles.
GOOD: dict[str, dict[str, Any]] = {
    "prdr-server-ehlo-keyword": {},
    "prdr-server-prerequisites": {},
    "prdr-server-mail-param": {},
    "prdr-server-mail-param-value": {"mail": "555 5.5.4 PRDR takes no value"},
    "prdr-server-line-length": {},
    "prdr-server-not-requested": {},
    "prdr-server-block": {"prdr": [INTRO, OK, REFUSED, DEFERRED, FINAL]},
    "prdr-server-final-all-refused": {"prdr": [INTRO, REFUSED, REFUSED, "550 5.7.1 refused for all"]},
    "prdr-server-final-all-deferred": {"prdr": [INTRO, DEFERRED, DEFERRED, "451 4.3.0 try later"]},
    "prdr-server-insufficient-storage": {"prdr": [INTRO, OK, "452 4.3.1 insufficient storage", FINAL]},
    "prdr-server-model-same-verdict": {},  # FakeMX's own well-formed block: 353, 250, 250, 250
    "prdr-server-model-single-recipient": {},
    "prdr-server-bdat": {"prdr": [INTRO, OK, REFUSED, FINAL]},
}


def play(sid: str, fault: dict[str, Any], out: Path) -> ScenarioResult:
    """Scenario SID against GOOD[SID] with FAULT applied (`rcpt` entries add to the defaults)."""
    script = {"ehlo": EHLO, **GOOD[sid], **fault}
    script["rcpt"] = faulty_rcpt_replies(**fault.get("rcpt", {}))
    with FaultyServer(script, reply_timeout=1.0) as srv:
        return run([scenario(sid)], srv.spec, out)[sid]


def seen(c: CheckResult) -> str:
    """What a reader of the report sees of a check: its message and the bytes it shows."""
    return f"{c.message} | {c.actual or ''}".lower()


def expect(check: str, says: str, level: str = "MUST") -> tuple[str, str, str]:
    return check, level, says


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"harness defect: {reason}")


BLOCK = "prdr-server-block"

# (scenario, fault, [(check, level, words in message/actual)], id); verdict: MUST → fail, else non-strict.
FAULTS = [
    # PRDR-01/02: the EHLO reply.
    pytest.param("prdr-server-ehlo-keyword", {"ehlo": ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR 1"]},
                 [expect("ehlo_keyword", "advertised with parameters 1")], id="ehlo-prdr-with-param"),
    pytest.param("prdr-server-prerequisites", {"ehlo": ["ENHANCEDSTATUSCODES", "PRDR"]},
                 [expect("ehlo_keyword_implies", "without pipelining")], id="prdr-without-pipelining"),
    pytest.param("prdr-server-prerequisites", {"ehlo": ["PIPELINING", "PRDR"]},
                 [expect("ehlo_keyword_implies", "without enhancedstatuscodes")], id="prdr-without-esc"),
    # PRDR-03: MAIL … PRDR accepted, MAIL … PRDR=1 refused (501/555 exact: MAY).
    pytest.param("prdr-server-mail-param", {"mail": "555 5.5.4 PRDR not supported"},
                 [expect("reply_is", "mail … prdr was 555")], id="mail-prdr-refused"),
    pytest.param("prdr-server-mail-param-value", {"mail": "250 2.1.0 ok"},
                 [expect("reply_is", "prdr=1 was 250"), expect("reply_is", "exact code", "MAY")],
                 id="mail-prdr-value-accepted"),
    pytest.param("prdr-server-mail-param-value", {"mail": "550 5.7.1 go away"},
                 [expect("reply_is", "exact code for mail … prdr=1 was 550", "MAY")],
                 id="mail-prdr-value-refused-with-550"),
    # PRDR-04: 512 octets + " PRDR".
    pytest.param("prdr-server-line-length", {"mail": "500 5.5.2 line too long"},
                 [expect("not_refused_as_too_long", "517-octet line was refused as too long")],
                 id="517-octet-mail-too-long"),
    # PRDR-05: no PRDR replies unless requested.
    pytest.param("prdr-server-not-requested", {"end_of_data": [INTRO, OK, REFUSED, FINAL]},
                 [expect("single_end_of_data_reply", "353 reply although the client did not request prdr")],
                 id="353-block-not-requested"),
    pytest.param("prdr-server-not-requested", {"end_of_data": [OK, FINAL]},
                 [expect("single_end_of_data_reply", "2 replies to the end of data")],
                 id="two-replies-to-one-end-of-data"),
    pytest.param("prdr-server-not-requested", {"end_of_data": [FINAL, {"raw": "\\x00\\xffgarbage\\r\\n"}]},
                 [expect("single_end_of_data_reply", "malformed")], id="garbage-after-the-one-reply"),
    pytest.param("prdr-server-not-requested", {"end_of_data": [FINAL, {"reply": OK, "delay": 0.5}]},
                 [expect("single_end_of_data_reply", "2 replies")], id="second-reply-after-settle-time"),
    # PRDR-06: the 353 line.
    pytest.param(BLOCK, {"prdr": [OK, REFUSED, DEFERRED, FINAL]},
                 [expect("prdr_intro_line", "first reply after the end of data is 250, not 353")],
                 id="353-missing"),
    pytest.param(BLOCK, {"prdr": ["353 2.0.0 go ahead", OK, REFUSED, DEFERRED, FINAL]},
                 [expect("prdr_intro_line", "353 line carries an enhanced status code")], id="353-with-esc"),
    pytest.param(BLOCK, {"prdr": ["353-PRDR\n353 content analysis beginning", OK, REFUSED, DEFERRED, FINAL]},
                 [expect("prdr_intro_line", "353 reply has several lines")], id="353-multiline"),
    pytest.param(BLOCK, {"prdr": [{"raw": "353garbage\\r\\n"}, OK, REFUSED, DEFERRED, FINAL]},
                 [expect("prdr_intro_line", "malformed reply"), expect("prdr_reply_syntax", "malformed")],
                 id="353-trailing-garbage"),
    # PRDR-07: one reply per accepted recipient, in RCPT order.
    pytest.param(BLOCK, {"prdr": [INTRO, REFUSED, OK, DEFERRED, FINAL]},
                 [expect("prdr_per_recipient", "out of order")], id="per-recipient-out-of-order"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, REFUSED, FINAL]},
                 [expect("prdr_per_recipient", "too few"),
                  expect("final_reply_class", "ended after 4 of 5 replies", "SHOULD")],
                 id="per-recipient-too-few"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, REFUSED, DEFERRED, DEFERRED, FINAL]},
                 [expect("prdr_per_recipient", "more than one per accepted recipient")],
                 id="per-recipient-too-many"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, "550 5.1.1 refused at RCPT", REFUSED, DEFERRED, FINAL]},
                 [expect("prdr_per_recipient", "more than one per accepted recipient")],
                 id="reply-for-recipient-refused-at-rcpt"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, "354 3.0.0 more please", DEFERRED, FINAL]},
                 [expect("prdr_per_recipient", "intermediate code 354"),
                  expect("prdr_reply_syntax", "not valid for a recipient")], id="per-recipient-3xx"),
    # PRDR-08: syntax, ESC.
    pytest.param(BLOCK, {"prdr": [INTRO, OK, {"raw": "\\x00\\xffgarbage\\r\\n"}, DEFERRED, FINAL]},
                 [expect("prdr_reply_syntax", "malformed")], id="per-recipient-garbage"),
    pytest.param(BLOCK, {"prdr": [INTRO, "250 ok", "550 refused", "450 later", FINAL]},
                 [expect("prdr_reply_esc", "3 per-recipient reply(ies) without an enhanced status code",
                         "SHOULD")], id="per-recipient-without-esc"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, "550 2.0.0 wrong class", DEFERRED, FINAL]},
                 [expect("prdr_reply_esc", "#2 550 2.0.0", "SHOULD")], id="per-recipient-esc-wrong-class"),
    # PRDR-09: positive codes.
    pytest.param(BLOCK, {"rcpt": {"accept-1@faulty.test": "251 2.1.5 forwarded"}},
                 [expect("prdr_positive_codes", "accepted with 251 but its per-recipient reply is 250"),
                  expect("prdr_positive_codes", "reverse transition", "SHOULD")], id="251-becomes-250"),
    pytest.param(BLOCK, {"prdr": [INTRO, "252 2.1.5 cannot verify", REFUSED, DEFERRED, FINAL]},
                 [expect("prdr_positive_codes", "accepted with 250 but its per-recipient reply is 252",
                         "SHOULD")], id="250-becomes-252"),
    # PRDR-10: negative codes.
    pytest.param(BLOCK, {"prdr": [INTRO, OK, "554 5.7.1 transaction failed", DEFERRED, FINAL]},
                 [expect("prdr_negative_codes", "554 for <data-reject-1@faulty.test> is not a valid rcpt")],
                 id="per-recipient-554"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, "521 5.3.2 does not accept mail", DEFERRED, FINAL]},
                 [expect("prdr_negative_codes", "521 for <data-reject-1@faulty.test> is not a valid rcpt")],
                 id="per-recipient-521"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, OK, OK, FINAL]},
                 [expect("prdr_negative_codes", "no negative per-recipient reply"),
                  expect("prdr_per_recipient", "which should get 5xx")], id="per-recipient-all-positive"),
    pytest.param("prdr-server-insufficient-storage", {"prdr": [INTRO, OK, "451 4.3.0 no room", FINAL]},
                 [expect("prdr_negative_codes", "refused for lack of storage with 451")], id="full-data-451"),
    pytest.param("prdr-server-insufficient-storage", {"prdr": [INTRO, OK, "552 5.2.2 over quota", FINAL]},
                 [expect("prdr_negative_codes", "refused for lack of storage with 552")], id="full-data-552"),
    # PRDR-11: final reply.
    pytest.param(BLOCK, {"prdr": [INTRO, OK, REFUSED, DEFERRED, "554 5.7.1 rejected"]},
                 [expect("final_reply_class", "final reply is 554", "SHOULD")], id="mixed-final-5xx"),
    pytest.param("prdr-server-final-all-refused", {"prdr": [INTRO, REFUSED, REFUSED, FINAL]},
                 [expect("final_reply_class", "final reply is 250")], id="all-refused-final-250"),
    pytest.param("prdr-server-final-all-refused", {"prdr": [INTRO, REFUSED, REFUSED, REFUSED, REFUSED]},
                 [expect("prdr_per_recipient", "more than one per accepted recipient")],
                 id="all-refused-too-many"),
    pytest.param("prdr-server-final-all-deferred", {"prdr": [INTRO, DEFERRED, DEFERRED, FINAL]},
                 [expect("final_reply_class", "final reply is 250")], id="all-deferred-final-250"),
    pytest.param("prdr-server-final-all-deferred", {"prdr": [INTRO, DEFERRED, DEFERRED, REFUSED]},
                 [expect("final_reply_class", "final reply is 550")], id="all-deferred-final-5xx"),
    pytest.param("prdr-server-final-all-deferred", {"prdr": [INTRO, DEFERRED, OK, "451 4.3.0 later"]},
                 [expect("prdr_per_recipient", "which should get 4xx")], id="all-deferred-one-accepted"),
    pytest.param("prdr-server-final-all-deferred", {"prdr": [DEFERRED, DEFERRED, FINAL]},
                 [expect("prdr_per_recipient", "353")], id="all-deferred-block-without-353"),
    # PRDR-12: a broken block is neither model (the requirement is MAY, so non-strict).
    pytest.param("prdr-server-model-same-verdict", {"prdr": [INTRO, OK, OK]},
                 [expect("response_model", "prdr block of 3 replies for 2 accepted recipients", "MAY")],
                 id="model-block-too-few"),
    pytest.param("prdr-server-model-single-recipient", {"prdr": [INTRO, OK, OK, FINAL]},
                 [expect("response_model", "prdr block of 4 replies for 1 accepted recipients", "MAY")],
                 id="model-block-too-many"),
    pytest.param("prdr-server-model-single-recipient", {"prdr": [OK, FINAL]},
                 [expect("response_model", "neither a single reply nor a prdr block", "MAY")],
                 id="model-two-replies-without-353"),
    # PRDR-12 scenarios also judge a PRDR block the server chose to send (PRDR-06/07).
    pytest.param("prdr-server-model-same-verdict", {"prdr": ["353 2.0.0 go ahead", OK, OK, FINAL]},
                 [expect("prdr_intro_line", "enhanced status code")], id="model-block-intro-esc"),
    pytest.param("prdr-server-model-same-verdict", {"prdr": [INTRO, OK, REFUSED, OK, FINAL]},
                 [expect("prdr_per_recipient", "more than one per accepted recipient")],
                 id="model-block-extra-line"),
    pytest.param("prdr-server-model-single-recipient", {"prdr": ["353-PRDR\n353 go ahead", OK, FINAL]},
                 [expect("prdr_intro_line", "several lines")], id="model-single-multiline-353"),
    pytest.param("prdr-server-model-single-recipient", {"prdr": [INTRO, "354 odd", FINAL]},
                 [expect("prdr_per_recipient", "intermediate code 354")], id="model-single-3xx"),
    # PRDR-13: the block after BDAT LAST.
    pytest.param("prdr-server-bdat", {"prdr": [OK, REFUSED, FINAL]},
                 [expect("prdr_intro_line", "not 353")], id="bdat-353-missing"),
    pytest.param("prdr-server-bdat", {"prdr": [INTRO, REFUSED, OK, FINAL]},
                 [expect("prdr_per_recipient", "out of order")], id="bdat-out-of-order"),
    pytest.param("prdr-server-bdat", {"prdr": [INTRO, OK, FINAL]},
                 [expect("prdr_per_recipient", "too few")], id="bdat-too-few"),
]


@pytest.mark.parametrize(("sid", "fault", "expected"), FAULTS)
def test_wrong_server_fails_the_check(sid: str, fault: dict[str, Any],
                                      expected: list[tuple[str, str, str]], tmp_path: Path) -> None:
    res = play(sid, fault, tmp_path)
    assert res.outcome.value != "error", (res.reason, res.traceback)
    for check, level, says in expected:
        c = check_result(res, check, level=level)
        assert c.verdict == ("fail" if level == "MUST" else "non-strict"), (check, c.message, c.actual)
        assert says in seen(c), (check, c.message, c.actual)


# (scenario, fault, [(check, level, verdict, words)], id): allowed behaviour, never a failure.
LEGIT = [
    pytest.param("prdr-server-ehlo-keyword", {"ehlo": ["PIPELINING", "ENHANCEDSTATUSCODES"]},
                 [("ehlo_keyword", "MUST", "unsupported", "prdr is not advertised")], id="prdr-not-offered"),
    pytest.param("prdr-server-ehlo-keyword", {"ehlo": ["pipelining", "enhancedstatuscodes", "prdr"]},
                 [("ehlo_keyword", "MUST", "pass", "prdr is advertised")], id="prdr-lower-case"),
    pytest.param("prdr-server-mail-param-value", {"mail": "501 5.5.4 PRDR takes no value"},
                 [("reply_is", "MUST", "pass", "was 501"), ("reply_is", "MAY", "pass", "was 501")],
                 id="mail-prdr-value-501"),
    pytest.param("prdr-server-line-length", {"mail": "555 5.5.4 ENVID not supported"},
                 [("not_refused_as_too_long", "MUST", "skip", "refused for another reason (555)")],
                 id="long-mail-refused-for-another-reason"),
    pytest.param("prdr-server-line-length", {"mail": "501 5.5.4 ENVID too long (RFC 3461 4.4: 100 max)"},
                 [("not_refused_as_too_long", "MUST", "skip", "another reason")],
                 id="long-mail-refused-for-envid-length"),
    pytest.param(BLOCK, {"prdr": ["250 2.0.0 queued for all"]},
                 [("prdr_intro_line", "MUST", "skip", "single-reply model (250)"),
                  ("prdr_per_recipient", "MUST", "skip", "single-reply model"),
                  ("prdr_negative_codes", "MUST", "skip", "single-reply model"),
                  ("final_reply_class", "SHOULD", "pass", "final reply is 250")], id="single-reply-model"),
    pytest.param(BLOCK, {"prdr": ["353", OK, REFUSED, DEFERRED, FINAL]},
                 [("prdr_intro_line", "MUST", "pass", "well formed")], id="353-exact"),
    pytest.param(BLOCK, {"prdr": [INTRO, OK, "550-5.7.1 refused\n550 5.7.1 after DATA", DEFERRED, FINAL]},
                 [("prdr_reply_syntax", "MUST", "pass", "well formed"),
                  ("prdr_reply_esc", "SHOULD", "pass", "carries")], id="multiline-per-recipient"),
    pytest.param(BLOCK, {"rcpt": {"accept-1@faulty.test": "251 2.1.5 forwarded"},
                         "prdr": [INTRO, "251 2.1.5 forwarded", REFUSED, DEFERRED, FINAL]},
                 [("prdr_positive_codes", "MUST", "pass", "251→251"),
                  ("prdr_positive_codes", "SHOULD", "pass", "251→251")], id="251-stays-251"),
    pytest.param(BLOCK, {"prdr": [INTRO, "251 2.1.5 forwarded", REFUSED, DEFERRED, FINAL]},
                 [("prdr_positive_codes", "SHOULD", "pass", "250→251")], id="250-may-become-251"),
    pytest.param("prdr-server-final-all-refused", {"prdr": [INTRO, REFUSED, REFUSED, "451 4.3.0 later"]},
                 [("final_reply_class", "MUST", "pass", "final reply is 451")], id="all-refused-final-4xx"),
    pytest.param("prdr-server-final-all-refused", {"prdr": [REFUSED]},
                 [("final_reply_class", "MUST", "pass", "final reply is 550"),
                  ("prdr_per_recipient", "MUST", "skip", "single-reply")], id="all-refused-single-reply"),
    pytest.param("prdr-server-model-same-verdict", {"prdr": [FINAL]},
                 [("response_model", "MAY", "pass", "single-reply (traditional) model: 250")],
                 id="model-single-reply"),
    pytest.param("prdr-server-model-single-recipient", {"prdr": [REFUSED]},
                 [("response_model", "MAY", "pass", "single-reply (traditional) model: 550")],
                 id="model-single-refusal"),
]


@pytest.mark.parametrize(("sid", "variant", "expected"), LEGIT)
def test_allowed_behaviour_does_not_fail(sid: str, variant: dict[str, Any],
                                         expected: list[tuple[str, str, str, str]], tmp_path: Path) -> None:
    res = play(sid, variant, tmp_path)
    for check, level, verdict, says in expected:
        c = check_result(res, check, level=level)
        assert (c.verdict, says in seen(c)) == (verdict, True), (check, c.verdict, c.message, c.actual)


def server_scenario_ids() -> list[str]:
    return sorted(p.stem for p in (SCENARIOS / "prdr").glob("prdr-server-*.yaml"))


def test_good_covers_every_server_scenario() -> None:
    assert sorted(GOOD) == server_scenario_ids()


@pytest.mark.parametrize("sid", server_scenario_ids())
def test_correct_server_passes_every_check(sid: str, tmp_path: Path) -> None:
    res = play(sid, {}, tmp_path)
    assert res.outcome.value == "pass", (res.reason, res.traceback)
    assert res.checks and [c.verdict for c in res.checks] == ["pass"] * len(res.checks), [
        (c.check, c.level, c.verdict, c.message) for c in res.checks]


def test_prdr_not_offered_is_unsupported(tmp_path: Path) -> None:
    """Without PRDR every scenario that needs it is unsupported; not-requested still runs."""
    script = {"ehlo": ["PIPELINING", "ENHANCEDSTATUSCODES", "CHUNKING"], "rcpt": faulty_rcpt_replies(),
              **GOOD["prdr-server-not-requested"]}
    ids = server_scenario_ids()
    with FaultyServer(script) as srv:
        results = run([scenario(sid) for sid in ids], srv.spec, tmp_path)
    verdicts = {sid: results[sid].verdict for sid in ids}
    assert verdicts == {sid: "unsupported" for sid in ids} | {"prdr-server-not-requested": "pass"}
    assert check_result(results["prdr-server-ehlo-keyword"], "ehlo_keyword").verdict == "unsupported"
    for sid in set(ids) - {"prdr-server-ehlo-keyword", "prdr-server-not-requested"}:
        assert "PRDR" in (results[sid].reason or ""), (sid, results[sid].reason)


def test_bdat_without_chunking_is_unsupported(tmp_path: Path) -> None:
    res = play("prdr-server-bdat", {"ehlo": ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR"]}, tmp_path)
    assert (res.verdict, "CHUNKING" in (res.reason or "")) == ("unsupported", True), res.reason


def test_every_check_has_a_fault_that_trips_it() -> None:
    """Each (scenario, check, level) of every prdr-server-* scenario appears in FAULTS (not as xfail)."""
    catalogue = load_catalogue()
    wanted = {(sid, c.check, STRENGTH[c.level or catalogue[c.requirement].strength])
              for sid in server_scenario_ids() for c in scenario(sid).checks}
    covered = {(p.values[0], check, level) for p in FAULTS if not p.marks
               for check, level, _ in p.values[2]}
    assert wanted - covered == set()
