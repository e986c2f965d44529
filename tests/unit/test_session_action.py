"""harness.engine.actions.session: step validation, MAIL padding, and SessionRunner against FakeMX."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from harness.engine.actions.session import (
    MAX_PATH,
    SessionRunner,
    padded_mail_args,
    validate_steps,
)
from harness.engine.observations import SessionRecord
from harness.smtp.esmtp import parse_mail_args
from harness.smtp.peer import FakeMX, PeerSession, script_from_data
from harness.targets.spec import external_spec

# --- padded_mail_args (RFC 5321 §4.5.3.1.3 path limit, §4.5.3.1.4 line limit) ---------------


def _line(args: str) -> bytes:
    return f"MAIL {args}\r\n".encode()


def _path(args: str) -> str:
    return args.split(" ", 1)[0].removeprefix("FROM:")


@pytest.mark.parametrize("length", [276, 300, 512, 513, 1000, 4096])
def test_padded_mail_line_has_exactly_the_requested_length(length: int) -> None:
    args = padded_mail_args("sender@client.test", length, {})
    assert len(_line(args)) == length


@pytest.mark.parametrize("length", [276, 512, 1000])
def test_padded_mail_path_stays_within_the_limits(length: int) -> None:
    args = padded_mail_args("sender@client.test", length, {})
    path = _path(args)
    assert path.startswith("<sender@") and path.endswith(".client.test>")
    assert len(path) <= MAX_PATH == 256
    domain = path[1:-1].split("@", 1)[1]
    assert len(domain) <= 255  # RFC 5321 §4.5.3.1.2
    assert all(1 <= len(label) <= 63 for label in domain.split("."))  # RFC 1035 §2.3.4
    # The arguments are well-formed: our own parser reads them back.
    reverse_path, params = parse_mail_args(args)
    assert reverse_path == path[1:-1]
    assert set(params) == {"ENVID"}


def test_padded_mail_params_are_not_counted() -> None:
    plain = padded_mail_args("sender@client.test", 512, {})
    with_prdr = padded_mail_args("sender@client.test", 512, {"PRDR": None})
    # draft-hall-prdr-00 §4 (f): 512 octets without " PRDR", 517 with it.
    assert len(_line(with_prdr)) == 517
    assert with_prdr == plain + " PRDR"
    assert parse_mail_args(with_prdr)[1]["PRDR"] is None


@pytest.mark.parametrize("length", [100, 270, 275])
def test_padded_mail_short_lines_have_the_requested_length(length: int) -> None:
    args = padded_mail_args("sender@client.test", length, {})
    assert len(_line(args)) == length
    assert len(_path(args)) <= MAX_PATH


# --- validate_steps ---------------------------------------------------------------------------

VALID_STEPS: list[Any] = [
    {"ehlo": "client.test"},
    {"helo": "client.test"},
    {"mail": {"from": "a@client.test", "params": {"PRDR": None, "SIZE": 10, "ENVID": "x"}}},
    {"mail": {"raw": "FROM:<a@client.test> PRDR=1"}},
    {"mail": {"from": "a@client.test", "pad_line_to": 512}},
    {"rcpt": "accept"},
    {"rcpt": {"role": "reject_data", "params": {"NOTIFY": "NEVER"}}},
    {"rcpt": {"to": "someone@d.test"}},
    {"rcpt": {"raw": "TO:<x@d.test> BOGUS"}},
    {"data": None},
    {"data": {"body": "Subject: x\\r\\n\\r\\nhi\\r\\n"}},
    {"bdat": {}},
    {"send": "NOOP\\r\\n"},
    {"read": 2},
    "rset", "noop", "quit",
]


def test_valid_steps() -> None:
    assert validate_steps(VALID_STEPS) is None


@pytest.mark.parametrize(
    ("steps", "path", "message"),
    [
        ({"ehlo": "x"}, [], "session is a list of steps"),
        (["quit", "frobnicate"], [1], "unknown step 'frobnicate'"),
        ([{"ehlo": "x", "quit": None}], [0], "each step is one word"),
        ([42], [0], "each step is one word"),
        ([{"ehlo": 5}], [0, "ehlo"], "ehlo: 5 is not of type 'string'"),
        ([{"mail": {"from": "a@b", "size": 1}}], [0, "mail"], "mail: Additional properties"),
        ([{"mail": {"pad_line_to": 8}}], [0, "mail", "pad_line_to"], "mail: 8 is less than the minimum of 16"),
        ([{"mail": {"params": {"PRDR": [1]}}}], [0, "mail", "params", "PRDR"], "mail: [1] is not of type"),
        (["quit", {"rcpt": {"params": {}}}], [1, "rcpt"], "rcpt needs role, to or raw"),
        ([{"rcpt": 7}], [0, "rcpt"], "rcpt: 7 is not valid under any of the given schemas"),
        ([{"read": 0}], [0, "read"], "read: 0 is less than the minimum of 1"),
        ([{"data": {"bdoy": "x"}}], [0, "data"], "data: Additional properties"),
        ([{"quit": "now"}], [0, "quit"], "quit: 'now' is not of type 'null'"),
    ],
)
def test_invalid_steps(steps: Any, path: list[Any], message: str) -> None:
    problem = validate_steps(steps)
    assert problem is not None
    assert problem[0] == path
    assert problem[1].startswith(message), problem[1]


# --- SessionRunner against a FakeMX on 127.0.0.1 ----------------------------------------------

ROLES = {
    "accept": "user{n}@srv.test",
    "reject_rcpt": "nobody{n}@srv.test",
    "reject_data": "spamtrap{n}@srv.test",
}
RCPT_REPLIES = {"nobody1@srv.test": "550 5.1.1 no such user", "nobody2@srv.test": "550 5.1.1 no such user"}
PRDR_EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR", "CHUNKING", "8BITMIME", "SIZE 1000000"]


@contextmanager
def fake_mx(script: Mapping[str, Any] | None = None) -> Iterator[FakeMX]:
    mx = FakeMX("srv", "127.0.0.1", 0, script_from_data(dict(script or {})),
                socket_factory=socket.socket, hostname="srv.test", read_timeout=10.0)
    mx.start()
    try:
        yield mx
    finally:
        mx.stop()


def connector(port: int) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=5.0)


def play(script: Mapping[str, Any] | None, steps: list[Any], *, reply_timeout: float = 5.0
         ) -> tuple[SessionRecord, PeerSession]:
    """Run STEPS against a FakeMX playing SCRIPT; the client's record and the server's view."""
    with fake_mx(script) as mx:
        spec = external_spec(f"smtp://127.0.0.1:{mx.port}", ROLES)
        record = SessionRunner(connector(mx.port), spec.recipient, reply_timeout=reply_timeout,
                               label="test").run(steps)
        mx.wait_idle(5.0)
    [server] = mx.sessions_seen
    return record, server


def codes(replies: list[Any]) -> list[int]:
    return [r.code for r in replies]


def test_plain_session_records_every_step() -> None:
    record, server = play(
        {"ehlo": ["PIPELINING", "ENHANCEDSTATUSCODES", "SIZE 1000000"], "rcpt": RCPT_REPLIES},
        [{"ehlo": "client.test"},
         {"mail": {"from": "a@client.test", "params": {"SIZE": 100, "BODY": "8BITMIME"}}},
         {"rcpt": "accept"}, {"rcpt": "reject_rcpt"}, {"rcpt": "accept"}, {"data": {}}, "quit"],
    )
    assert record.errors == []
    assert record.banner is not None and record.banner.code == 220
    assert record.banner.text == "srv.test ESMTP fake"
    assert record.ehlo_reply is not None and record.ehlo_reply.code == 250
    assert record.ehlo is not None
    assert record.ehlo.keywords == {"PIPELINING": (), "ENHANCEDSTATUSCODES": (), "SIZE": ("1000000",)}
    assert record.mail_params == {"SIZE": "100", "BODY": "8BITMIME"}
    assert record.mail_reply is not None and record.mail_reply.code == 250
    assert not record.prdr_requested
    assert [(r.index, r.role, r.address) for r in record.rcpts] == [
        (1, "accept", "user1@srv.test"), (2, "reject_rcpt", "nobody1@srv.test"), (3, "accept", "user2@srv.test")]
    assert [r.reply.code if r.reply else None for r in record.rcpts] == [250, 550, 250]
    assert [r.index for r in record.accepted_rcpts] == [1, 3]
    assert record.data_reply is not None and record.data_reply.code == 354
    assert codes(record.end_replies) == [250] and record.end_replies_expected == 1
    assert [s.kind for s in record.steps] == ["banner", "ehlo", "mail", "rcpt", "rcpt", "rcpt", "data",
                                              "data-end", "quit"]
    assert codes(record.steps[-1].replies) == [221]
    # What the server saw matches what the client recorded.
    assert server.ehlo_name == "client.test"
    assert server.mail_params == {"SIZE": "100", "BODY": "8BITMIME"}
    assert [(a, c) for a, _, c in server.rcpts] == [
        ("user1@srv.test", 250), ("nobody1@srv.test", 550), ("user2@srv.test", 250)]
    assert len(server.messages) == 1 and b"Test message." in server.messages[0]
    assert server.end_reason == "quit"
    transcript = record.transcript.sent_by("C")
    assert b"MAIL FROM:<a@client.test> SIZE=100 BODY=8BITMIME\r\n" in transcript


def test_rcpt_params_to_and_raw() -> None:
    record, server = play(
        {"ehlo": ["DSN"]},
        [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}},
         {"rcpt": {"role": "accept", "params": {"NOTIFY": "SUCCESS,FAILURE"}}},
         {"rcpt": {"to": "fixed@srv.test"}},
         {"rcpt": {"raw": "TO:<raw@srv.test> ORCPT=rfc822;raw@srv.test"}}, "quit"],
    )
    assert [(r.address, r.role, r.params) for r in record.rcpts] == [
        ("user1@srv.test", "accept", {"NOTIFY": "SUCCESS,FAILURE"}),
        ("fixed@srv.test", None, {}),
        ("TO:<raw@srv.test> ORCPT=rfc822;raw@srv.test", None, {}),
    ]
    assert [(a, p) for a, p, _ in server.rcpts] == [
        ("user1@srv.test", {"NOTIFY": "SUCCESS,FAILURE"}), ("fixed@srv.test", {}),
        ("raw@srv.test", {"ORCPT": "rfc822;raw@srv.test"})]


def test_raw_mail_arguments_are_recorded_as_params() -> None:
    record, server = play({"ehlo": PRDR_EHLO},
                          [{"ehlo": "client.test"}, {"mail": {"raw": "FROM:<a@client.test> PRDR=1 body=7bit"}},
                           "quit"])
    assert record.mail_params == {"PRDR": "1", "BODY": "7bit"}
    assert server.mail_params == {"PRDR": "1", "BODY": "7bit"}


def test_padded_mail_step_sends_the_padded_line() -> None:
    record, server = play({"ehlo": PRDR_EHLO},
                          [{"ehlo": "client.test"},
                           {"mail": {"from": "a@client.test", "pad_line_to": 512, "params": {"PRDR": None}}},
                           "quit"])
    [mail] = record.steps_of("mail")
    assert len(mail.sent) == 517 and mail.sent.endswith(b" PRDR\r\n")
    assert server.mail is not None and len(server.mail.raw) == 517
    assert record.prdr_requested


PRDR_SESSION: list[Any] = [
    {"ehlo": "client.test"}, {"mail": {"from": "a@client.test", "params": {"PRDR": None}}},
    {"rcpt": "accept"}, {"rcpt": "reject_rcpt"}, {"rcpt": "reject_data"}, {"data": {}}, "quit",
]


def test_prdr_block_after_data() -> None:
    record, server = play(
        {"ehlo": PRDR_EHLO, "rcpt": RCPT_REPLIES,
         "prdr": ["353 PRDR content analysis beginning", "250 2.1.5 user1 ok",
                  "550 5.7.1 spamtrap1 refused", "250 2.0.0 accepted for some recipients"]},
        PRDR_SESSION,
    )
    assert record.errors == []
    assert record.prdr_requested and server.prdr_requested
    assert codes(record.end_replies) == [353, 250, 550, 250]
    assert record.end_replies_expected == 4  # 353 + 2 accepted recipients + final
    assert record.end_replies[2].text == "5.7.1 spamtrap1 refused"
    assert codes(record.steps[-1].replies) == [221]  # the session went on to QUIT


def test_prdr_block_after_bdat() -> None:
    record, server = play({"ehlo": PRDR_EHLO},
                          [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test", "params": {"PRDR": None}}},
                           {"rcpt": "accept"}, {"rcpt": "accept"}, {"bdat": {"body": "Subject: x\\r\\n\\r\\nhi\\r\\n"}},
                           "quit"])
    assert codes(record.end_replies) == [353, 250, 250, 250]
    assert record.end_replies_expected == 4
    assert server.transactions[0].body_via == "BDAT"
    assert server.messages == [b"Subject: x\r\n\r\nhi\r\n"]


def test_single_reply_to_a_prdr_transaction() -> None:
    record, _ = play({"ehlo": PRDR_EHLO, "prdr": ["250 2.0.0 accepted for all"]}, PRDR_SESSION[:3] + [{"data": {}}, "quit"])
    assert codes(record.end_replies) == [250]
    assert record.end_replies_expected == 1


def test_extra_replies_after_the_final_are_drained() -> None:
    # A PRDR block although the client did not ask for PRDR: one reply expected, four recorded.
    record, _ = play(
        {"ehlo": PRDR_EHLO,
         "end_of_data": ["353 PRDR content analysis beginning", "250 2.1.5 ok", "550 5.7.1 no", "250 2.0.0 final"]},
        [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}}, {"rcpt": "accept"}, {"rcpt": "reject_data"},
         {"data": {}}, "quit"],
    )
    assert record.errors == []
    assert codes(record.end_replies) == [353, 250, 550, 250]
    assert record.end_replies_expected == 1


def test_extra_line_after_a_prdr_block_is_drained() -> None:
    record, _ = play(
        {"ehlo": PRDR_EHLO,
         "prdr": ["353 PRDR", "250 2.1.5 ok", "250 2.0.0 final", "250 2.0.0 one too many"]},
        PRDR_SESSION[:3] + [{"data": {}}, "quit"],
    )
    assert codes(record.end_replies) == [353, 250, 250, 250]
    assert record.end_replies_expected == 3


def test_data_refused_continues_the_session() -> None:
    record, _ = play({"data": "554 5.5.1 no valid recipients"},
                     [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}}, {"rcpt": "accept"},
                      {"data": {}}, "quit"])
    assert record.data_reply is not None and record.data_reply.code == 554
    assert record.end_replies == []
    assert record.steps[-1].kind == "quit" and codes(record.steps[-1].replies) == [221]


def test_pipelined_send_and_read() -> None:
    record, server = play({}, [{"ehlo": "client.test"},
                               {"send": "MAIL FROM:<a@client.test>\\r\\nRCPT TO:<b@srv.test>\\r\\n"},
                               {"read": 2}, "quit"])
    assert record.errors == []
    [read] = record.steps_of("read")
    assert codes(read.replies) == [250, 250]
    assert [a for a, _, _ in server.rcpts] == ["b@srv.test"]


# --- the target misbehaves: recorded, never raised ---------------------------------------------


def test_garbage_banner_is_recorded_and_stops_the_session() -> None:
    record, server = play({"banner": {"raw": "hello there\\r\\n"}}, [{"ehlo": "client.test"}, "quit"])
    assert record.banner is None
    assert [s.kind for s in record.steps] == ["banner"]
    assert record.steps[0].error is not None and record.steps[0].error.startswith("malformed reply: ")
    assert record.errors == [f"banner: {record.steps[0].error}"]
    assert server.commands == []  # nothing was sent after the garbage


def test_garbage_reply_mid_session_is_recorded_and_stops_the_session() -> None:
    record, server = play({"rcpt": {"default": {"raw": "2x0 what\\r\\n"}}},
                          [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}}, {"rcpt": "accept"},
                           {"data": {}}, "quit"])
    assert [s.kind for s in record.steps] == ["banner", "ehlo", "mail", "rcpt"]
    assert len(record.errors) == 1 and record.errors[0].startswith("rcpt: malformed reply: ")
    assert record.rcpts[0].reply is None and not record.rcpts[0].accepted
    assert [c.verb for c in server.commands] == ["EHLO", "MAIL", "RCPT"]


def test_garbage_after_the_final_reply_is_recorded() -> None:
    record, _ = play({"end_of_data": ["250 2.0.0 queued", {"raw": "garbage\\r\\n"}]},
                     [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}}, {"rcpt": "accept"},
                      {"data": {}}, "quit"])
    assert codes(record.end_replies) == [250]
    assert record.steps[-1].kind == "data-end"  # the session stopped there
    assert len(record.errors) == 1 and record.errors[0].startswith("data-end: malformed reply: ")


def test_server_closes_mid_session() -> None:
    record, server = play({"mail": {"reply": "421 4.3.2 shutting down", "close": True}},
                          [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}}, {"rcpt": "accept"},
                           {"data": {}}, "quit"])
    assert record.mail_reply is not None and record.mail_reply.code == 421
    assert record.steps[-1].kind == "rcpt"
    assert record.steps[-1].error is not None and record.steps[-1].error.startswith("closed: ")
    assert len(record.errors) == 1 and record.errors[0].startswith("rcpt: closed: ")
    assert record.closed_by_peer
    assert server.closed_by == "peer" and server.end_reason == "scripted close"


def test_server_closes_inside_the_prdr_block() -> None:
    record, _ = play({"ehlo": PRDR_EHLO, "prdr": ["353 PRDR", {"reply": "250 2.1.5 ok", "close": True}]},
                     [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test", "params": {"PRDR": None}}},
                      {"rcpt": "accept"}, {"rcpt": "accept"}, {"data": {}}, "quit"])
    assert codes(record.end_replies) == [353, 250]
    assert record.end_replies_expected == 4
    assert record.steps[-1].kind == "data-end" and record.steps[-1].error is not None
    assert record.errors[-1].startswith("data-end: closed: ")
    assert record.closed_by_peer


def test_reply_time_out() -> None:
    start = time.monotonic()
    record, server = play({"rcpt": {"default": {"hang": True}}},
                          [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}}, {"rcpt": "accept"},
                           {"data": {}}, "quit"], reply_timeout=0.3)
    assert time.monotonic() - start < 3.0
    assert record.steps[-1].kind == "rcpt"
    assert record.steps[-1].error is not None and record.steps[-1].error.startswith("time-out: ")
    assert record.errors == [f"rcpt: {record.steps[-1].error}"]
    assert not record.closed_by_peer
    assert server.closed_by == "peer" and server.end_reason == "stopped"  # it hung to the end


def test_time_out_inside_the_prdr_block() -> None:
    record, _ = play({"ehlo": PRDR_EHLO, "prdr": ["353 PRDR", {"hang": True}]},
                     [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test", "params": {"PRDR": None}}},
                      {"rcpt": "accept"}, {"data": {}}, "quit"], reply_timeout=0.3)
    assert codes(record.end_replies) == [353]
    assert record.end_replies_expected == 3
    assert record.errors and record.errors[-1].startswith("data-end: time-out: ")


def test_connect_failure_is_recorded() -> None:
    def refuse() -> socket.socket:
        raise ConnectionRefusedError(111, "Connection refused")

    record = SessionRunner(refuse, lambda role, n: None).run([{"ehlo": "client.test"}])
    assert record.banner is None and record.steps == []
    assert record.errors == ["connect failed: [Errno 111] Connection refused"]


def test_missing_role_names_it() -> None:
    with fake_mx() as mx:
        runner = SessionRunner(connector(mx.port), external_spec("smtp://127.0.0.1:25", ROLES).recipient)
        with pytest.raises(LookupError, match="no recipient for role 'defer_data'"):
            runner.run([{"ehlo": "client.test"}, {"mail": {"from": "a@client.test"}}, {"rcpt": "defer_data"}])
