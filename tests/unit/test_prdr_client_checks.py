"""Checks in harness/engine/checks/prdr_client.py: the target as SMTP client, seen by fake MX peers.

Every PeerSession here is real: a FakeMX on 127.0.0.1 records a connection from the project's own
SessionRunner (or SMTPClient), which plays a deliberately right or wrong MTA.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from harness.engine.actions.session import SessionRunner
from harness.engine.checks import all_checks
from harness.engine.checks.base import Verdict
from harness.engine.observations import Observations
from harness.report.model import Outcome
from harness.smtp.client import SMTPClient
from harness.smtp.peer import FakeMX, PeerSession, script_from_data
from harness.smtp.transcript import Transcript

CHECKS = all_checks()
SENDER = "sender@client.test"
NO_PRDR_EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 52428800"]
PRDR_EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR", "8BITMIME"]


def mail(params: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    return {"mail": {"from": SENDER, "params": dict(params or {})}}


def rcpts(*addresses: str) -> list[dict[str, Any]]:
    return [{"rcpt": {"to": a}} for a in addresses]


DATA: dict[str, Any] = {"data": {"body": "Subject: t\r\n\r\nhello\r\n"}}
EHLO: dict[str, Any] = {"ehlo": "mta.client.test"}


def sessions(script: Mapping[str, Any], *attempts: Sequence[Any]) -> list[PeerSession]:
    """One connection to a FakeMX playing SCRIPT per list of steps; the FakeMX's records."""
    mx = FakeMX("mx", "127.0.0.1", 0, script_from_data(dict(script)), socket_factory=socket.socket,
                hostname="mx.d.test")
    mx.start()
    try:
        for steps in attempts:
            record = SessionRunner(lambda: socket.create_connection(("127.0.0.1", mx.port), timeout=5.0),
                                   lambda role, n: None, reply_timeout=5.0).run(list(steps))
            assert record.errors == [], record.errors
            mx.wait_idle(5.0)
    finally:
        mx.stop()
    seen = mx.sessions_seen
    assert len(seen) == len(attempts)
    return seen


def observe(**peers: Sequence[PeerSession]) -> Observations:
    return Observations("test", "exim", peers={name: list(s) for name, s in peers.items()})


def run(name: str, obs: Observations, params: Mapping[str, Any]) -> Verdict:
    assert CHECKS[name].validate_params(params) is None, params
    return CHECKS[name](obs, params)


@pytest.fixture(scope="module")
def peer() -> dict[str, list[PeerSession]]:
    return {
        # A wrong client: MAIL … PRDR to a server that did not offer PRDR.
        "prdr_not_offered": sessions({"ehlo": NO_PRDR_EHLO},
                                     [EHLO, mail({"PRDR": None}), *rcpts("r1@d.test", "r2@d.test"), DATA, "quit"]),
        # A right client: no PRDR where it is not offered.
        "plain": sessions({"ehlo": NO_PRDR_EHLO},
                          [EHLO, mail({"BODY": "8BITMIME"}), *rcpts("r1@d.test", "r2@d.test"), DATA, "quit"]),
        # PRDR offered and used.
        "prdr": sessions({"ehlo": PRDR_EHLO},
                         [EHLO, mail({"PRDR": None}), *rcpts("r1@d.test", "r2@d.test"), DATA, "quit"]),
        # Two attempts: all three recipients, then the deferred one alone.
        "retry": sessions({"ehlo": PRDR_EHLO},
                          [EHLO, mail({"PRDR": None}), *rcpts("r1@d.test", "r2@d.test", "R3@d.test"), DATA, "quit"],
                          [EHLO, "quit"],  # a connection without a transaction is not an attempt
                          [EHLO, mail({"PRDR": None}), *rcpts("r3@d.test"), DATA, "quit"]),
        # A client that waits for each reply (SessionRunner's mail and rcpt steps do).
        "waiting": sessions({"ehlo": PRDR_EHLO, "mail": {"reply": "250 2.1.0 ok", "delay": 0.2}},
                            [EHLO, mail(), *rcpts("r1@d.test", "r2@d.test"), "quit"]),
        # A client that pipelines MAIL and RCPT in one write.
        "pipelining": sessions({"ehlo": PRDR_EHLO, "mail": {"reply": "250 2.1.0 ok", "delay": 0.2}},
                               [EHLO, {"send": "MAIL FROM:<sender@client.test> PRDR\\r\\n"
                                               "RCPT TO:<r1@d.test>\\r\\nRCPT TO:<r2@d.test>\\r\\n"},
                                {"read": 3}, "quit"]),
        # A client that connects and leaves without MAIL.
        "no_mail": sessions({}, [EHLO, "quit"]),
    }


# --- peer_mail_param --------------------------------------------------------------------------

def test_peer_mail_param_absent_fails_for_a_client_that_sends_prdr_unoffered(peer: dict[str, list[PeerSession]]) -> None:
    [s] = peer["prdr_not_offered"]
    assert s.mail_params == {"PRDR": None} and not s.prdr_requested  # the FakeMX did not honour it
    v = run("peer_mail_param", observe(mx=[s]), {"param": "PRDR", "present": False})
    assert v.outcome is Outcome.FAIL
    assert v.message == "MAIL carries PRDR"
    assert v.expected == "MAIL without PRDR"
    assert v.actual == "MAIL FROM:<sender@client.test> PRDR"


def test_peer_mail_param_absent_passes(peer: dict[str, list[PeerSession]]) -> None:
    v = run("peer_mail_param", observe(mx=peer["plain"]), {"param": "prdr", "present": False})
    assert v.outcome is Outcome.PASS and v.message == "MAIL without PRDR in 1 attempt(s)"


def test_peer_mail_param_present(peer: dict[str, list[PeerSession]]) -> None:
    assert run("peer_mail_param", observe(mx=peer["prdr"]), {"param": "PRDR", "present": True}).outcome is Outcome.PASS
    assert run("peer_mail_param", observe(mx=peer["retry"]), {"param": "PRDR", "present": True}).outcome is Outcome.PASS
    v = run("peer_mail_param", observe(mx=peer["plain"]), {"param": "PRDR", "present": True})
    assert v.outcome is Outcome.FAIL and v.message == "MAIL lacks PRDR"


def test_peer_mail_param_judges_every_attempt(peer: dict[str, list[PeerSession]]) -> None:
    obs = observe(mx=[*peer["plain"], *peer["prdr_not_offered"]])
    assert run("peer_mail_param", obs, {"param": "PRDR", "present": False}).outcome is Outcome.FAIL


def test_peer_mail_param_for_one_peer(peer: dict[str, list[PeerSession]]) -> None:
    obs = observe(mx=peer["plain"], backup=peer["prdr_not_offered"])
    assert run("peer_mail_param", obs, {"param": "PRDR", "present": False, "peer": "mx"}).outcome is Outcome.PASS
    assert run("peer_mail_param", obs, {"param": "PRDR", "present": False, "peer": "backup"}).outcome is Outcome.FAIL
    assert run("peer_mail_param", obs, {"param": "PRDR", "present": False}).outcome is Outcome.FAIL


def test_peer_mail_param_fails_when_no_mail_arrived(peer: dict[str, list[PeerSession]]) -> None:
    for obs in (observe(mx=peer["no_mail"]), observe()):
        v = run("peer_mail_param", obs, {"param": "PRDR", "present": False})
        assert v.outcome is Outcome.FAIL and v.message == "no MAIL command reached the peer"


def test_peer_mail_param_sees_every_transaction_of_a_connection() -> None:
    [s] = sessions({"ehlo": NO_PRDR_EHLO},
                   [EHLO, mail({"PRDR": None}), *rcpts("r1@d.test"), DATA,
                    mail(), *rcpts("r2@d.test"), DATA, "quit"])
    assert [t.mail_params for t in s.transactions] == [{"PRDR": None}, {}]
    v = run("peer_mail_param", observe(mx=[s]), {"param": "PRDR", "present": False})
    assert v.outcome is Outcome.FAIL


# --- peer_rcpts -------------------------------------------------------------------------------

def test_peer_rcpts_passes_for_a_retry_of_only_the_deferred(peer: dict[str, list[PeerSession]]) -> None:
    obs = observe(mx=peer["retry"])
    v = run("peer_rcpts", obs, {"peer": "mx", "connection": 2, "recipients": ["R3@D.test"]})
    assert v.outcome is Outcome.PASS and v.message == "attempt 2 offered only r3@d.test"
    v = run("peer_rcpts", obs, {"peer": "mx", "connection": 1, "recipients": ["r3@d.test", "r2@d.test", "r1@d.test"]})
    assert v.outcome is Outcome.PASS
    [evidence] = v.evidence
    assert evidence.content == [["r1@d.test", "r2@d.test", "R3@d.test"], ["r3@d.test"]]


def test_peer_rcpts_fails_for_a_retry_of_too_many(peer: dict[str, list[PeerSession]]) -> None:
    obs = observe(mx=peer["retry"])
    v = run("peer_rcpts", obs, {"peer": "mx", "connection": 1, "recipients": ["r3@d.test"]})
    assert v.outcome is Outcome.FAIL
    assert v.actual == "r1@d.test, r2@d.test, r3@d.test" and v.expected == "r3@d.test"


def test_peer_rcpts_fails_without_that_attempt(peer: dict[str, list[PeerSession]]) -> None:
    v = run("peer_rcpts", observe(mx=peer["plain"]), {"peer": "mx", "connection": 2, "recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "only 1 delivery attempt(s) reached mx"
    v = run("peer_rcpts", observe(mx=peer["plain"]), {"peer": "other", "connection": 1, "recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "only 0 delivery attempt(s) reached other"


# --- pipelined (draft-hall-prdr-00 §4.7) ------------------------------------------------------

def test_pipelined_fails_for_a_client_that_waits(peer: dict[str, list[PeerSession]]) -> None:
    v = run("pipelined", observe(mx=peer["waiting"]), {"peer": "mx"})
    assert v.outcome is Outcome.FAIL
    assert v.message == "the client waited for the MAIL reply before sending RCPT"
    assert v.actual == "MAIL, reply, then RCPT"
    assert v.evidence[0].kind == "transcript"


def test_pipelined_passes_for_a_client_that_pipelines(peer: dict[str, list[PeerSession]]) -> None:
    [s] = peer["pipelining"]
    assert [a for a, _, _ in s.rcpts] == ["r1@d.test", "r2@d.test"]
    v = run("pipelined", observe(mx=[s]), {"peer": "mx"})
    assert v.outcome is Outcome.PASS
    assert v.message == "RCPT arrived in the same segment as MAIL"


def test_pipelined_judges_the_named_peer(peer: dict[str, list[PeerSession]]) -> None:
    obs = observe(mx=peer["waiting"], backup=peer["pipelining"])
    assert run("pipelined", obs, {"peer": "backup"}).outcome is Outcome.PASS
    assert run("pipelined", obs, {"peer": "mx"}).outcome is Outcome.FAIL


def test_pipelined_fails_when_no_mail_arrived(peer: dict[str, list[PeerSession]]) -> None:
    v = run("pipelined", observe(mx=peer["no_mail"]), {})
    assert v.outcome is Outcome.FAIL and v.message == "no MAIL command reached the peer"


def _pipeline_in_two_writes(mx: FakeMX) -> None:
    """MAIL, then RCPT in a second write once the FakeMX is delaying its MAIL reply."""
    sock = socket.create_connection(("127.0.0.1", mx.port), timeout=5.0)
    client = SMTPClient(sock, Transcript("client"), reply_timeout=5.0)
    try:
        client.read_reply()
        client.command(b"EHLO mta.client.test")
        sent_mail = time.monotonic()
        client.send(b"MAIL FROM:<sender@client.test> PRDR\r\n")
        while not any(c.verb == "MAIL" for s in mx.sessions_seen for c in s.commands):
            assert time.monotonic() - sent_mail < 5.0
            time.sleep(0.01)
        client.send(b"RCPT TO:<r1@d.test>\r\n")
        assert client.read_reply().code == 250
        # The MAIL reply came after the RCPT had been sent.
        assert time.monotonic() - sent_mail >= 0.5
        assert client.read_reply().code == 250
        client.quit()
    finally:
        client.close()


def test_pipelined_passes_for_rcpt_in_a_second_write_before_the_mail_reply() -> None:
    with FakeMX("mx", "127.0.0.1", 0, script_from_data({"ehlo": PRDR_EHLO,
                                                        "mail": {"reply": "250 2.1.0 ok", "delay": 0.6}}),
                socket_factory=socket.socket) as mx:
        _pipeline_in_two_writes(mx)
        mx.wait_idle(5.0)
    v = run("pipelined", observe(mx=mx.sessions_seen), {"peer": "mx"})
    assert v.outcome is Outcome.PASS
