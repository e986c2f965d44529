"""harness/dsn/trace.py: which peer reply decided each recipient, from real FakeMX sessions."""

from __future__ import annotations

from harness.dsn.trace import Conversation, conversation, conversations, fate
from support.dsn import deliver

PRDR_EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR", "8BITMIME"]


def test_rcpt_refusal_and_acceptance() -> None:
    s = deliver({"rcpt": {"r2@d.test": "550-5.1.1 first\n550 5.1.1 second"}}, ["r1@d.test", "r2@d.test"])
    conv = conversation("mx", s)
    assert Conversation.first_line(conv.greeting) == "220 mx.d.test ESMTP fake"
    assert Conversation.first_line(conv.ehlo_reply) == "250-mx.d.test greets mta.target.test"
    refused = fate([conv], "R2@d.test")
    assert refused is not None and (refused.stage, refused.outcome, refused.code) == ("RCPT", "refused", 550)
    assert refused.text == "550-5.1.1 first 550 5.1.1 second" and refused.enhanced_code == "5.1.1"
    assert refused.describe() == "peer mx, connection 1, RCPT for <r2@d.test>: 550-5.1.1 first 550 5.1.1 second"
    accepted = fate([conv], "r1@d.test")
    assert accepted is not None and (accepted.stage, accepted.outcome) == ("end of data", "accepted")


def test_end_of_data_refusal() -> None:
    s = deliver({"end_of_data": ["554 5.7.1 refused"]}, ["r1@d.test"])
    ev = fate([conversation("mx", s)], "r1@d.test")
    assert ev is not None and (ev.stage, ev.text) == ("end of data", "554 5.7.1 refused")


def test_prdr_per_recipient_reply_decides_over_a_positive_final_reply() -> None:
    s = deliver({"ehlo": PRDR_EHLO, "prdr": ["353 PRDR content analysis beginning", "250 2.1.5 r1 ok",
                                             "550 5.7.1 r2 refused", "250 2.0.0 final"]},
                ["r1@d.test", "r2@d.test"], prdr=True)
    convs = [conversation("mx", s)]
    r2 = fate(convs, "r2@d.test")
    assert r2 is not None and (r2.stage, r2.text) == ("PRDR", "550 5.7.1 r2 refused")
    r1 = fate(convs, "r1@d.test")
    assert r1 is not None and (r1.stage, r1.outcome) == ("PRDR final", "accepted")


def test_prdr_negative_final_reply_decides() -> None:
    s = deliver({"ehlo": PRDR_EHLO, "prdr": ["353 PRDR content analysis beginning", "250 2.1.5 r1 ok",
                                             "554 5.7.0 final refusal"]}, ["r1@d.test"], prdr=True)
    ev = fate([conversation("mx", s)], "r1@d.test")
    assert ev is not None and (ev.stage, ev.code) == ("PRDR final", 554)


def test_bdat_last_reply_is_the_end_of_data_reply() -> None:
    s = deliver({"ehlo": ["CHUNKING", "PIPELINING"], "end_of_data": ["552 5.3.4 too big"]}, ["r1@d.test"], bdat=True)
    ev = fate([conversation("mx", s)], "r1@d.test")
    assert ev is not None and (ev.stage, ev.code) == ("end of data", 552)


def test_greeting_and_mail_refusals_are_connection_wide() -> None:
    s = deliver({"banner": "554 5.3.2 no service"}, ["r1@d.test"])
    conv = conversation("mx", s)
    assert conv.events[0].stage == "greeting" and conv.events[0].recipient is None
    assert fate([conv], "anyone@d.test") is not None
    s = deliver({"mail": "550 5.7.1 sender refused"}, ["r1@d.test"])
    ev = fate([conversation("mx", s)], "r1@d.test")
    assert ev is not None and (ev.stage, ev.recipient, ev.code) == ("MAIL", "r1@d.test", 550)


def test_conversations_are_ordered_and_the_last_reply_wins() -> None:
    first = deliver({"rcpt": {"default": "451 4.2.0 later"}}, ["r1@d.test"])
    second = deliver({}, ["r1@d.test"])
    second.index, second.started = 1, first.started + 1
    convs = conversations({"mx": [second, first]})
    assert [c.connection for c in convs] == [1, 2]
    ev = fate(convs, "r1@d.test")
    assert ev is not None and ev.outcome == "accepted" and ev.connection == 2
