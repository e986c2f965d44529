"""Checks in harness/engine/checks/delivery.py: what an outbound target did with a message.

The peer sessions are real: a FakeMX on 127.0.0.1 and the project's SessionRunner playing the
target MTA as client. Queue listings are QueueEntry lists; DSNs are RFC 3464 multipart/report
bounces written by hand (the layout of Exim's) and placed at the DSN sink.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from harness.engine.actions.session import SessionRunner
from harness.engine.checks import all_checks
from harness.engine.checks.base import CheckDef, Verdict
from harness.engine.checks.delivery import dsns, parse_duration
from harness.engine.observations import Observations
from harness.report.model import Outcome
from harness.smtp.peer import FakeMX, PeerSession, script_from_data
from harness.smtp.transcript import Transcript
from harness.targets.queue import QueueEntry, parse_exim

SENDER = "sender@client.test"
CHECKS = all_checks()


def deliver(script: Mapping[str, Any], rcpts: Sequence[str], *, prdr: bool = False,
            body: bytes = b"Subject: test\r\nFrom: <sender@client.test>\r\n\r\nhello\r\n") -> PeerSession:
    """One delivery attempt by a client that plays the target MTA; the FakeMX's record of it."""
    mx = FakeMX("mx", "127.0.0.1", 0, script_from_data(dict(script)), socket_factory=socket.socket,
                hostname="mx.d.test")
    mx.start()
    try:
        steps: list[Any] = [{"ehlo": "mta.client.test"},
                            {"mail": {"from": SENDER, "params": {"PRDR": None} if prdr else {}}}]
        steps += [{"rcpt": {"to": r}} for r in rcpts]
        steps += [{"data": {"body": body.decode("ascii")}}, "quit"]
        record = SessionRunner(lambda: socket.create_connection(("127.0.0.1", mx.port), timeout=5.0),
                               lambda role, n: None, reply_timeout=5.0).run(steps)
        assert record.errors == [], record.errors
        mx.wait_idle(5.0)
    finally:
        mx.stop()
    [session] = mx.sessions_seen
    return session


PRDR_EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR", "8BITMIME"]


@pytest.fixture(scope="module")
def peer() -> dict[str, PeerSession]:
    return {
        # r1 and r2 accepted at RCPT and after DATA.
        "plain": deliver({}, ["r1@d.test", "r2@d.test"]),
        # r2 refused at RCPT time.
        "rcpt_refused": deliver({"rcpt": {"r2@d.test": "550 5.1.1 r2 unknown"}}, ["r1@d.test", "r2@d.test"]),
        # PRDR: r1 accepted, r2 and r3 refused per recipient, positive final reply.
        "prdr": deliver({"ehlo": PRDR_EHLO,
                         "prdr": ["353 PRDR content analysis beginning", "250 2.1.5 r1 ok",
                                  "552 5.2.2 r2 mailbox full", "550 5.7.1 r3 refused by policy",
                                  "250 2.0.0 final: accepted for some recipients"]},
                        ["r1@d.test", "r2@d.test", "r3@d.test"], prdr=True),
        # The whole message refused after DATA.
        "eod_refused": deliver({"end_of_data": ["554 5.7.1 message refused"]}, ["r1@d.test"]),
    }


# --- DSNs (RFC 3464 in an RFC 6522 multipart/report), Exim's layout ---------------------------

def dsn(groups: Sequence[Mapping[str, str]], *, subject: str = "Mail delivery failed: returning message to sender",
        failed: Sequence[str] = ()) -> bytes:
    status = "Reporting-MTA: dns; mta.client.test\r\n"
    for group in groups:
        status += "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in group.items())
    text = (
        "Return-path: <>\r\n"
        "Received: from mailnull by mta.client.test with local (Exim 4.96)\r\n"
        "\tid 1sZ0aD-0004J1-0B\r\n\tfor sender@client.test; Mon, 03 Jun 2024 10:00:01 +0000\r\n"
        + (f"X-Failed-Recipients: {', '.join(failed)}\r\n" if failed else "")
        + "Auto-Submitted: auto-replied\r\n"
        "From: Mail Delivery System <Mailer-Daemon@mta.client.test>\r\n"
        "To: sender@client.test\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=1717408801-eximdsn-1804289383\r\n"
        "MIME-Version: 1.0\r\n"
        f"Subject: {subject}\r\n"
        "Message-Id: <E1sZ0aD-0004J1-0B@mta.client.test>\r\n"
        "Date: Mon, 03 Jun 2024 10:00:01 +0000\r\n"
        "\r\n"
        "--1717408801-eximdsn-1804289383\r\n"
        "Content-type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This message was created automatically by mail delivery software.\r\n"
        "\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error.\r\n"
        "\r\n"
        "--1717408801-eximdsn-1804289383\r\n"
        "Content-type: message/delivery-status\r\n"
        "\r\n"
        f"{status}"
        "\r\n"
        "--1717408801-eximdsn-1804289383\r\n"
        "Content-type: message/rfc822\r\n"
        "\r\n"
        "Return-path: <sender@client.test>\r\n"
        "Subject: test\r\n"
        "From: <sender@client.test>\r\n"
        "\r\n"
        "hello\r\n"
        "\r\n"
        "--1717408801-eximdsn-1804289383--\r\n"
    )
    return text.encode("ascii")


def failed_group(rcpt: str, diagnostic: str, status: str = "5.0.0") -> dict[str, str]:
    return {"Action": "failed", "Final-Recipient": f"rfc822;{rcpt}", "Status": status,
            "Remote-MTA": "dns; mx.d.test", "Diagnostic-Code": diagnostic}


# r2 and r3 each with the code the peer gave them; r3's Diagnostic-Code folded as Exim folds it.
BOUNCE = dsn([failed_group("r2@d.test", "smtp; 552 5.2.2 r2 mailbox full", "5.2.2"),
              failed_group("r3@d.test", "smtp; 550 5.7.1 r3 refused\r\n    by policy", "5.7.1")],
             failed=["r2@d.test", "r3@d.test"])
# The same bounce without a group for r3.
BOUNCE_NO_R3 = dsn([failed_group("r2@d.test", "smtp; 552 5.2.2 r2 mailbox full", "5.2.2")], failed=["r2@d.test"])
# One Diagnostic-Code for every recipient: the per-recipient codes were lost.
BOUNCE_ONE_CODE = dsn([failed_group("r2@d.test", "smtp; 550 5.0.0 message refused"),
                       failed_group("r3@d.test", "smtp; 550 5.0.0 message refused")],
                      failed=["r2@d.test", "r3@d.test"])
# A success DSN (NOTIFY=SUCCESS) for r1.
SUCCESS = dsn([{"Action": "delivered", "Final-Recipient": "rfc822;r1@d.test", "Status": "2.0.0",
                "Remote-MTA": "dns; mx.d.test", "Diagnostic-Code": "smtp; 250 2.0.0 final: accepted"}],
              subject="Delivery Status Notification (Success)")
NOT_A_DSN = b"From: someone@client.test\r\nSubject: hello\r\n\r\nnot a report\r\n"


def sink(*messages: bytes) -> list[PeerSession]:
    return [PeerSession(0, "sink", ("198.51.100.53", 25), Transcript("sink"), messages=list(messages))]


def observe(*, peers: Sequence[PeerSession] = (), bounces: Sequence[bytes] = (),
            queue: list[QueueEntry] | None = None, history: list[list[QueueEntry]] | None = None,
            settings: dict[str, str | None] | None = None) -> Observations:
    return Observations("test", "exim", peers={"mx": list(peers)}, sink=sink(*bounces) if bounces else [],
                        queue=queue, queue_history=history or ([] if queue is None else [queue]),
                        settings=settings or {})


def queue_of(*rcpts: str) -> list[QueueEntry]:
    return [QueueEntry("1sZ0aB-0004Ix-2T", SENDER, tuple(rcpts), ())] if rcpts else []


def run(name: str, obs: Observations, params: Mapping[str, Any]) -> Verdict:
    definition: CheckDef = CHECKS[name]
    assert definition.validate_params(params) is None, params
    return definition(obs, params)


def test_the_dsn_samples_parse() -> None:
    reports, problems = dsns(observe(bounces=[BOUNCE, SUCCESS, NOT_A_DSN]))
    assert len(reports) == 2 and len(problems) == 1 and problems[0].startswith("not a DSN (")
    bounce = reports[0]
    assert bounce.report_type == "delivery-status"
    assert bounce.per_message == {"reporting-mta": "dns; mta.client.test"}
    assert [g.final_recipient for g in bounce.recipients] == ["r2@d.test", "r3@d.test"]
    r3 = bounce.group_for("R3@D.TEST")
    assert r3 is not None and r3.get("diagnostic-code") == "smtp; 550 5.7.1 r3 refused by policy"
    assert bounce.returned_type == "message/rfc822"


def test_a_dsn_survives_delivery_to_the_sink() -> None:
    at_sink = deliver({}, [SENDER], body=BOUNCE)
    assert at_sink.messages == [BOUNCE]
    obs = Observations("test", "exim", sink=[at_sink])
    assert run("failure_dsn", obs, {"recipients": ["r2@d.test", "r3@d.test"]}).outcome is Outcome.PASS


# --- delivered --------------------------------------------------------------------------------

def test_delivered_passes(peer: dict[str, PeerSession]) -> None:
    v = run("delivered", observe(peers=[peer["plain"]], queue=[]), {"recipients": ["r1@d.test", "R2@D.test"]})
    assert v.outcome is Outcome.PASS


def test_delivered_fails_when_still_queued(peer: dict[str, PeerSession]) -> None:
    v = run("delivered", observe(peers=[peer["plain"]], queue=queue_of("r2@d.test")),
            {"recipients": ["r1@d.test", "r2@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.message == "<r2@d.test> is still queued" and v.actual == "queued"


def test_delivered_fails_when_bounced(peer: dict[str, PeerSession]) -> None:
    v = run("delivered", observe(peers=[peer["prdr"]], queue=[], bounces=[BOUNCE]), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.message == "<r2@d.test> was bounced" and v.actual == "failure DSN"


def test_delivered_fails_when_no_peer_accepted_it(peer: dict[str, PeerSession]) -> None:
    v = run("delivered", observe(peers=[peer["rcpt_refused"]], queue=[]), {"recipients": ["r1@d.test", "r2@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.message == "no peer accepted a message for <r2@d.test>"


def test_delivered_is_skipped_without_a_queue_listing(peer: dict[str, PeerSession]) -> None:
    assert run("delivered", observe(peers=[peer["plain"]]), {"recipients": ["r1@d.test"]}).outcome is Outcome.SKIP


def test_delivered_fails_when_the_peer_refused_the_message_after_data(peer: dict[str, PeerSession]) -> None:
    v = run("delivered", observe(peers=[peer["eod_refused"]], queue=[]), {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL


# --- queued -----------------------------------------------------------------------------------

def test_queued_passes(peer: dict[str, PeerSession]) -> None:
    obs = observe(peers=[peer["prdr"]], queue=queue_of("r3@d.test"))
    assert run("queued", obs, {"recipients": ["r3@d.test"]}).outcome is Outcome.PASS


def test_queued_fails_when_delivered(peer: dict[str, PeerSession]) -> None:
    v = run("queued", observe(peers=[peer["plain"]], queue=[]), {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.message == "<r1@d.test> is not queued any more (delivered)"


def test_queued_fails_when_gone(peer: dict[str, PeerSession]) -> None:
    v = run("queued", observe(peers=[peer["rcpt_refused"]], queue=[]), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.actual == "gone from the queue"


def test_queued_fails_when_bounced_although_listed(peer: dict[str, PeerSession]) -> None:
    v = run("queued", observe(peers=[peer["prdr"]], queue=queue_of("r3@d.test"), bounces=[BOUNCE]),
            {"recipients": ["r3@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "<r3@d.test> was bounced"


def test_queued_after_attempt(peer: dict[str, PeerSession]) -> None:
    first = parse_exim(" 0m   523 1sZ0aB-0004Ix-2T <sender@client.test>\n"
                       "        D r1@d.test\n          r3@d.test\n")
    obs = observe(peers=[peer["prdr"]], queue=[], history=[first, []])
    assert run("queued", obs, {"recipients": ["r3@d.test"], "after_attempt": 1}).outcome is Outcome.PASS
    assert run("queued", obs, {"recipients": ["r3@d.test"], "after_attempt": 2}).outcome is Outcome.FAIL
    assert run("queued", obs, {"recipients": ["r3@d.test"]}).outcome is Outcome.FAIL  # the last listing
    assert run("queued", obs, {"recipients": ["r1@d.test"], "after_attempt": 1}).outcome is Outcome.FAIL
    v = run("queued", obs, {"recipients": ["r3@d.test"], "after_attempt": 3})
    assert v.outcome is Outcome.SKIP and v.message == "only 2 attempt(s) were made"


def test_queued_is_skipped_without_a_queue_listing() -> None:
    assert run("queued", observe(), {"recipients": ["r1@d.test"]}).outcome is Outcome.SKIP


# --- failure_dsn ------------------------------------------------------------------------------

def test_failure_dsn_passes() -> None:
    obs = observe(bounces=[BOUNCE])
    assert run("failure_dsn", obs, {"recipients": ["r2@d.test", "r3@d.test"]}).outcome is Outcome.PASS
    assert run("failure_dsn", obs, {"recipients": ["r3@d.test"], "contains": "refused by policy"}
               ).outcome is Outcome.PASS
    assert run("failure_dsn", obs, {"recipients": ["r2@d.test"], "excludes": "refused by policy"}
               ).outcome is Outcome.PASS


def test_failure_dsn_fails_without_a_group_for_the_recipient() -> None:
    v = run("failure_dsn", observe(bounces=[BOUNCE_NO_R3]), {"recipients": ["r2@d.test", "r3@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.message == "no failure DSN for <r3@d.test>" and v.actual == "1 DSN(s) at the sink"


def test_failure_dsn_fails_without_any_dsn() -> None:
    v = run("failure_dsn", observe(), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL and v.actual == "0 DSN(s) at the sink"


def test_failure_dsn_contains_and_excludes() -> None:
    obs = observe(bounces=[BOUNCE_ONE_CODE])
    v = run("failure_dsn", obs, {"recipients": ["r2@d.test"], "contains": "mailbox full"})
    assert v.outcome is Outcome.FAIL
    assert v.actual == "smtp; 550 5.0.0 message refused"
    v = run("failure_dsn", obs, {"recipients": ["r3@d.test"], "excludes": "message refused"})
    assert v.outcome is Outcome.FAIL and v.message == "the DSN for <r3@d.test> carries 'message refused'"


def test_failure_dsn_is_not_a_success_dsn() -> None:
    v = run("failure_dsn", observe(bounces=[SUCCESS]), {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL


def test_failure_dsn_shows_unreadable_messages_at_the_sink() -> None:
    v = run("failure_dsn", observe(bounces=[NOT_A_DSN]), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL
    [evidence] = [e for e in v.evidence if e.label == "unreadable messages at the sink"]
    assert "not a report" in evidence.content


# --- no_failure_dsn ---------------------------------------------------------------------------

def test_no_failure_dsn_passes() -> None:
    assert run("no_failure_dsn", observe(), {}).outcome is Outcome.PASS
    assert run("no_failure_dsn", observe(bounces=[SUCCESS]), {}).outcome is Outcome.PASS
    # The bounce is for r2 and r3 only.
    assert run("no_failure_dsn", observe(bounces=[BOUNCE]), {"recipients": ["r1@d.test"]}).outcome is Outcome.PASS


def test_no_failure_dsn_fails() -> None:
    v = run("no_failure_dsn", observe(bounces=[BOUNCE]), {"recipients": ["r1@d.test", "R3@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.message == "a failure DSN for <r3@d.test>"
    assert v.actual == "smtp; 550 5.7.1 r3 refused by policy"
    assert run("no_failure_dsn", observe(bounces=[BOUNCE]), {}).outcome is Outcome.FAIL


# --- dsn_codes_kept ---------------------------------------------------------------------------

def test_dsn_codes_kept_passes_for_prdr_refusals(peer: dict[str, PeerSession]) -> None:
    v = run("dsn_codes_kept", observe(peers=[peer["prdr"]], bounces=[BOUNCE]),
            {"recipients": ["r2@d.test", "r3@d.test"]})
    assert v.outcome is Outcome.PASS
    assert v.message == "each group carries its own code: r2@d.test 552, r3@d.test 550"


def test_dsn_codes_kept_passes_for_rcpt_time_refusals(peer: dict[str, PeerSession]) -> None:
    bounce = dsn([failed_group("r2@d.test", "smtp; 550 5.1.1 r2 unknown", "5.1.1")])
    v = run("dsn_codes_kept", observe(peers=[peer["rcpt_refused"]], bounces=[bounce]), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.PASS


def test_dsn_codes_kept_fails_with_one_code_for_all(peer: dict[str, PeerSession]) -> None:
    v = run("dsn_codes_kept", observe(peers=[peer["prdr"]], bounces=[BOUNCE_ONE_CODE]),
            {"recipients": ["r2@d.test", "r3@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.message == "the group for <r2@d.test> does not carry its own code 552"
    assert v.expected == "552"


def test_dsn_codes_kept_fails_without_a_group(peer: dict[str, PeerSession]) -> None:
    v = run("dsn_codes_kept", observe(peers=[peer["prdr"]], bounces=[BOUNCE_NO_R3]),
            {"recipients": ["r2@d.test", "r3@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "no per-recipient group for <r3@d.test>"


def test_dsn_codes_kept_is_skipped_when_no_peer_refused(peer: dict[str, PeerSession]) -> None:
    v = run("dsn_codes_kept", observe(peers=[peer["plain"]], bounces=[BOUNCE]), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.SKIP


# --- success_dsn ------------------------------------------------------------------------------

def test_success_dsn_passes() -> None:
    obs = observe(bounces=[BOUNCE, SUCCESS])
    assert run("success_dsn", obs, {"recipients": ["r1@d.test"]}).outcome is Outcome.PASS
    assert run("success_dsn", obs, {"recipients": ["r1@d.test"], "contains": "250 2.0.0"}).outcome is Outcome.PASS
    assert run("success_dsn", obs, {"recipients": ["r1@d.test"], "excludes": "5.0.0"}).outcome is Outcome.PASS


def test_success_dsn_fails() -> None:
    v = run("success_dsn", observe(bounces=[BOUNCE]), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "no success DSN for <r2@d.test>"
    obs = observe(bounces=[SUCCESS])
    assert run("success_dsn", obs, {"recipients": ["r1@d.test"], "contains": "PRDR"}).outcome is Outcome.FAIL
    v = run("success_dsn", obs, {"recipients": ["r1@d.test"], "excludes": "final: accepted"})
    assert v.outcome is Outcome.FAIL and v.message == "the success DSN for <r1@d.test> carries 'final: accepted'"


# --- setting_at_least and parse_duration ------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "seconds"),
    [("600", 600.0), ("600s", 600.0), ("10m", 600.0), ("1h30m", 5400.0), ("1.5h", 5400.0),
     ("2d", 172800.0), ("1w", 604800.0), (" 10m ", 600.0), ("0", 0.0), ("1h0m30s", 3630.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "m10", "10m5", "-5m", "10 m"])
def test_parse_duration_refuses(text: str) -> None:
    assert parse_duration(text) is None


def test_setting_at_least() -> None:
    params = {"setting": "final_timeout", "at_least_s": 600}
    v = run("setting_at_least", observe(settings={"final_timeout": "10m"}), params)
    assert v.outcome is Outcome.PASS and v.message == "final_timeout is 600 s"
    v = run("setting_at_least", observe(settings={"final_timeout": "5m"}), params)
    assert v.outcome is Outcome.FAIL and v.message == "final_timeout is 300 s" and v.actual == "5m"
    v = run("setting_at_least", observe(settings={"final_timeout": "forever"}), params)
    assert v.outcome is Outcome.FAIL and v.message.startswith("cannot read final_timeout")
    assert run("setting_at_least", observe(settings={"final_timeout": None}), params).outcome is Outcome.SKIP
    assert run("setting_at_least", observe(), params).outcome is Outcome.SKIP


# --- recipient_states -------------------------------------------------------------------------

def test_recipient_states_passes(peer: dict[str, PeerSession]) -> None:
    obs = observe(peers=[peer["prdr"]], queue=queue_of("r3@d.test"), bounces=[BOUNCE_NO_R3])
    v = run("recipient_states", obs, {"allow": {"r1@d.test": ["delivered"], "r2@d.test": ["bounced"],
                                                "r3@d.test": ["queued", "bounced"]}})
    assert v.outcome is Outcome.PASS
    assert v.actual == "r1@d.test: delivered, r2@d.test: bounced, r3@d.test: queued"


def test_recipient_states_fails(peer: dict[str, PeerSession]) -> None:
    obs = observe(peers=[peer["plain"]], queue=queue_of("r2@d.test"))
    v = run("recipient_states", obs, {"allow": {"r1@d.test": ["queued"], "r2@d.test": ["queued"]}})
    assert v.outcome is Outcome.FAIL and v.message == "<r1@d.test> was delivered"


def test_recipient_states_lost_is_never_allowed(peer: dict[str, PeerSession]) -> None:
    obs = observe(peers=[peer["rcpt_refused"]], queue=[])
    v = run("recipient_states", obs, {"allow": {"r2@d.test": ["delivered", "queued", "bounced"]}})
    assert v.outcome is Outcome.FAIL and v.message == "<r2@d.test> was lost"


def test_recipient_states_is_skipped_without_a_queue_listing() -> None:
    assert run("recipient_states", observe(), {"allow": {"r1@d.test": ["queued"]}}).outcome is Outcome.SKIP


def test_recipient_refused_in_the_prdr_block_and_dropped_is_lost(peer: dict[str, PeerSession]) -> None:
    obs = observe(peers=[peer["prdr"]], queue=[])
    v = run("recipient_states", obs, {"allow": {"r2@d.test": ["delivered", "queued", "bounced"]}})
    assert v.outcome is Outcome.FAIL and v.message == "<r2@d.test> was lost"
