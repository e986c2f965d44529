"""Concrete vectors for harness.smtp.codec and harness.smtp.esmtp."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from harness.smtp import codec
from harness.smtp.codec import (
    ESC_RE,
    NEED_DATA,
    Chunk,
    CodecUsageError,
    Command,
    CommandParser,
    MessageData,
    PRDRBlock,
    PRDRReader,
    Reply,
    ReplyCode,
    ReplyParser,
    SMTPProtocolError,
    dot_stuff,
    encode_command,
    encode_reply,
    is_prdr_intro,
)
from harness.smtp.esmtp import (
    EhloInfo,
    format_path_args,
    parse_ehlo,
    parse_mail_args,
    parse_rcpt_args,
)

# Drivers: feed chunks, collect events; a protocol error becomes ("error", message). ---------

Events = list[object]


def run_replies(chunks: Sequence[bytes], **options: object) -> tuple[Events, bytes]:
    parser = ReplyParser(**options)  # type: ignore[arg-type]
    events: Events = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (event := parser.next_event()) is not NEED_DATA:
                events.append(event)
    except SMTPProtocolError as exc:  # final for ReplyParser
        events.append(("error", exc.message))
    return events, parser.pending


def drain_commands(parser: CommandParser, events: Events) -> None:
    """Read all events; act as a server that accepts every DATA command."""
    while True:
        try:
            event = parser.next_event()
        except SMTPProtocolError as exc:  # CommandParser reads on after a bad line
            events.append(("error", exc.message, exc.hint))
            continue
        if event is NEED_DATA:
            return
        events.append(event)
        if isinstance(event, Command) and event.verb == "DATA":
            parser.start_data()


def run_commands(chunks: Sequence[bytes], **options: object) -> tuple[Events, bytes]:
    parser = CommandParser(**options)  # type: ignore[arg-type]
    events: Events = []
    for chunk in chunks:
        parser.feed(chunk)
        drain_commands(parser, events)
    return events, parser.pending


Runner = Callable[..., tuple[Events, bytes]]


def feed_three_ways(run: Runner, data: bytes, trailing: bytes, **options: object) -> Events:
    """STYLE.md point 3: whole, one byte at a time, and with trailing bytes (left pending)."""
    whole, pending = run([data], **options)
    bytewise, _ = run([data[i : i + 1] for i in range(len(data))], **options)
    assert bytewise == whole
    with_trailing, pending_after = run([data + trailing], **options)
    assert with_trailing == whole
    if not any(isinstance(e, tuple) for e in whole):
        assert pending == b""
        assert pending_after == trailing
    return whole


def reply(code: int, *lines: str, raw: bytes, esc: str | None = None, bare_lf: bool = False):
    return Reply(code, lines, raw, esc, bare_lf)


# ReplyParser -------------------------------------------------------------------------------

EHLO_RAW = (
    b"250-mx.example.org greets client.example\r\n"
    b"250-SIZE 52428800\r\n"
    b"250-PIPELINING\r\n"
    b"250-PRDR\r\n"
    b"250 8BITMIME\r\n"
)

GOOD_REPLIES = [
    pytest.param(
        b"220 mx.example.org ESMTP\r\n",
        [reply(220, "mx.example.org ESMTP", raw=b"220 mx.example.org ESMTP\r\n")],
        id="greeting",
    ),
    pytest.param(
        EHLO_RAW,
        [reply(250, "mx.example.org greets client.example", "SIZE 52428800", "PIPELINING",
               "PRDR", "8BITMIME", raw=EHLO_RAW)],
        id="multi-line-ehlo",
    ),
    pytest.param(
        b"250 2.1.0 Sender ok\r\n",
        [reply(250, "2.1.0 Sender ok", raw=b"250 2.1.0 Sender ok\r\n", esc="2.1.0")],
        id="esc",
    ),
    pytest.param(
        b"550-5.1.1 no such user\r\n550 5.1.1 see https://example.org\r\n",
        [reply(550, "5.1.1 no such user", "5.1.1 see https://example.org", esc="5.1.1",
               raw=b"550-5.1.1 no such user\r\n550 5.1.1 see https://example.org\r\n")],
        id="esc-multi-line",
    ),
    pytest.param(
        b"250 5.1.0 class differs\r\n",
        [reply(250, "5.1.0 class differs", raw=b"250 5.1.0 class differs\r\n")],
        id="esc-class-mismatch-ignored",
    ),
    pytest.param(
        b"250 2.1.0x\r\n", [reply(250, "2.1.0x", raw=b"250 2.1.0x\r\n")], id="esc-needs-space"
    ),
    pytest.param(
        b"250 2.0.0\r\n", [reply(250, "2.0.0", raw=b"250 2.0.0\r\n", esc="2.0.0")],
        id="esc-alone",
    ),
    pytest.param(
        b"353 PRDR content analysis beginning\r\n",
        [reply(353, "PRDR content analysis beginning",
               raw=b"353 PRDR content analysis beginning\r\n")],
        id="prdr-353",
    ),
    pytest.param(b"250\r\n", [reply(250, "", raw=b"250\r\n")], id="bare-code"),
    pytest.param(b"250 \r\n", [reply(250, "", raw=b"250 \r\n")], id="code-space"),
    pytest.param(
        b"250-\r\n250 x\r\n", [reply(250, "", "x", raw=b"250-\r\n250 x\r\n")],
        id="empty-continuation",
    ),
    pytest.param(
        b"250 caf\xc3\xa9 \xff\r\n",
        [reply(250, "caf\u00e9 \udcff", raw=b"250 caf\xc3\xa9 \xff\r\n")],
        id="8bit-text",
    ),
    pytest.param(
        b"250 a\x00b\tc\r\n", [reply(250, "a\x00b\tc", raw=b"250 a\x00b\tc\r\n")],
        id="controls-kept",
    ),
    pytest.param(
        b"221 bye\r\n250 ok\r\n",
        [reply(221, "bye", raw=b"221 bye\r\n"), reply(250, "ok", raw=b"250 ok\r\n")],
        id="two-replies",
    ),
]


@pytest.mark.parametrize(("data", "expected"), GOOD_REPLIES)
def test_reply_vectors_three_ways(data: bytes, expected: Events) -> None:
    assert feed_three_ways(run_replies, data, b"250-partial\r\n25") == expected


BAD_REPLIES = [
    pytest.param(b"ABC hello\r\n", "does not start with a valid reply code", id="non-digit"),
    pytest.param(b"600 nope\r\n", "valid reply code", id="first-digit-6"),
    pytest.param(b"160 nope\r\n", "valid reply code", id="first-digit-1"),
    pytest.param(b"260 nope\r\n", "valid reply code", id="second-digit-6"),
    pytest.param(b"25\r\n", "valid reply code", id="short"),
    pytest.param(b"\r\n", "valid reply code", id="empty-line"),
    pytest.param(b"250:ok\r\n", "not followed by SP", id="bad-separator"),
    pytest.param(b"2500 ok\r\n", "not followed by SP", id="four-digits"),
    pytest.param(b"250-a\r\n251 b\r\n", "mixes codes 250 and 251", id="mixed-codes"),
    pytest.param(b"250-a\r\n550-b\r\n550 c\r\n", "mixes codes", id="mixed-codes-early"),
    pytest.param(b"250 ok\n", "bare LF", id="bare-lf-strict"),
    pytest.param(b"250 a\rb\r\n", "bare CR", id="bare-cr-strict"),
    pytest.param(b"HTTP/1.1 400 Bad Request\r\n", "valid reply code", id="http"),
]


@pytest.mark.parametrize(("data", "message"), BAD_REPLIES)
def test_bad_replies_raise_protocol_error(data: bytes, message: str) -> None:
    events = feed_three_ways(run_replies, data, b"250 ok\r\n")
    assert len(events) == 1
    kind, text = events[0]  # type: ignore[misc]
    assert kind == "error" and message in text


def test_replies_before_garbage_are_delivered() -> None:
    events, _ = run_replies([b"250 ok\r\nXYZ\r\n"])
    assert events[0] == reply(250, "ok", raw=b"250 ok\r\n")
    assert events[1][0] == "error"  # type: ignore[index]


def test_protocol_error_carries_offending_bytes() -> None:
    parser = ReplyParser()
    parser.feed(b"250-a\r\n251 b\r\n")
    with pytest.raises(SMTPProtocolError) as info:
        parser.next_event()
    assert info.value.data == b"250-a\r\n251 b\r\n"
    assert info.value.hint is None


def test_reply_error_is_final() -> None:
    parser = ReplyParser()
    parser.feed(b"XYZ\r\n")
    with pytest.raises(SMTPProtocolError):
        parser.next_event()
    parser.feed(b"250 ok\r\n")
    with pytest.raises(SMTPProtocolError, match="valid reply code"):
        parser.next_event()


def test_lenient_accepts_bare_lf_and_records_it() -> None:
    data = b"250-a\n250 b\r\n"
    expected = [reply(250, "a", "b", raw=data, bare_lf=True)]
    assert feed_three_ways(run_replies, data, b"25", strict=False) == expected
    events, _ = run_replies([b"250 x\r\n"], strict=False)
    assert events == [reply(250, "x", raw=b"250 x\r\n")]


def test_lenient_keeps_bare_cr_in_text() -> None:
    events, _ = run_replies([b"250 a\rb\n"], strict=False)
    assert events == [reply(250, "a\rb", raw=b"250 a\rb\n", bare_lf=True)]


def test_reply_split_across_feeds() -> None:
    events, pending = run_replies([b"250-mx.exa", b"mple.org\r", b"\n250-SIZE 1", b"0\r\n25",
                                   b"0 OK\r\n"])
    assert events == [reply(250, "mx.example.org", "SIZE 10", "OK",
                            raw=b"250-mx.example.org\r\n250-SIZE 10\r\n250 OK\r\n")]
    assert pending == b""


@pytest.mark.parametrize(
    ("data", "ok"),
    [(b"250 1234\r\n", True), (b"250 12345\r\n", False), (b"250 1234567890", False)],
    ids=["at-limit", "over-limit", "unterminated-over-limit"],
)
def test_reply_line_length_limit(data: bytes, ok: bool) -> None:
    events = feed_three_ways(run_replies, data, b"", max_line_length=10)
    if ok:
        assert events == [reply(250, "1234", raw=data)]
    else:
        assert events == [("error", "reply line longer than 10 bytes")]


def test_unterminated_line_under_limit_waits() -> None:
    parser = ReplyParser(max_line_length=10)
    parser.feed(b"250 12345")
    assert parser.next_event() is NEED_DATA
    assert parser.pending == b"250 12345"


def test_close_mid_reply_raises() -> None:
    parser = ReplyParser()
    parser.feed(b"250-first\r\n250 sec")
    assert parser.next_event() is NEED_DATA
    with pytest.raises(SMTPProtocolError, match="connection closed in the middle of a reply"):
        parser.close()
    with pytest.raises(SMTPProtocolError, match="closed in the middle"):
        parser.next_event()


def test_close_delivers_complete_replies_first() -> None:
    parser = ReplyParser()
    parser.feed(b"250 ok\r\n221 by")
    parser.close()  # a complete reply is still to be read: no error yet
    assert parser.next_event() == reply(250, "ok", raw=b"250 ok\r\n")
    with pytest.raises(SMTPProtocolError, match="closed in the middle"):
        parser.next_event()


def test_clean_close() -> None:
    parser = ReplyParser()
    parser.feed(b"221 bye\r\n")
    assert parser.next_event() == reply(221, "bye", raw=b"221 bye\r\n")
    parser.close()
    parser.close()
    assert parser.next_event() is NEED_DATA


def test_reply_parser_misuse() -> None:
    parser = ReplyParser()
    with pytest.raises(CodecUsageError):
        parser.feed("250 ok\r\n")  # type: ignore[arg-type]
    parser.close()
    with pytest.raises(CodecUsageError, match="after close"):
        parser.feed(b"250 ok\r\n")
    with pytest.raises(CodecUsageError):
        ReplyParser(max_line_length=0)


def test_reply_properties() -> None:
    r = reply(550, "5.1.1 no such user", "more", "5.1.1", raw=b"", esc="5.1.1")
    assert r.text == "5.1.1 no such user\nmore\n5.1.1"
    assert r.multiline and r.is_permanent
    assert not (r.is_positive or r.is_intermediate or r.is_transient)
    assert r.line_escs() == ("5.1.1", None, "5.1.1")
    assert r.lines_without_esc() == ("no such user", "more", "")
    assert reply(250, "x", raw=b"").is_positive
    assert reply(354, "x", raw=b"").is_intermediate
    assert reply(451, "x", raw=b"").is_transient
    assert not reply(250, "x", raw=b"").multiline


def test_is_prdr_intro() -> None:
    events, _ = run_replies([b"353 go\r\n250 ok\r\n"])
    assert [is_prdr_intro(r) for r in events] == [True, False]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("esc", "valid"),
    [("2.0.0", True), ("5.7.1", True), ("4.999.999", True), ("5.01.002", True),
     ("3.0.0", False), ("2.1000.0", False), ("2.1", False), ("2.a.0", False),
     ("2.\u0661.0", False)],
)
def test_esc_re(esc: str, valid: bool) -> None:
    assert bool(ESC_RE.fullmatch(esc)) is valid


def test_need_data_is_a_singleton_with_a_plain_repr() -> None:
    assert repr(NEED_DATA) == "NEED_DATA"
    assert codec.NeedData.NEED_DATA is NEED_DATA


# encode_reply ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "wire"),
    [
        ((250, "ok"), {}, b"250 ok\r\n"),
        ((250,), {}, b"250\r\n"),
        ((250, ["a", "", "b"]), {}, b"250-a\r\n250-\r\n250 b\r\n"),
        ((250, "a\nb"), {}, b"250-a\r\n250 b\r\n"),
        ((250, []), {}, b"250\r\n"),
        ((250, ["a", "b"]), {"esc": "2.1.0"}, b"250-2.1.0 a\r\n250 2.1.0 b\r\n"),
        ((550, ""), {"esc": "5.1.1"}, b"550 5.1.1\r\n"),
        ((ReplyCode.OK, "x"), {}, b"250 x\r\n"),
        ((250, "caf\u00e9 \udcff"), {}, b"250 caf\xc3\xa9 \xff\r\n"),
    ],
)
def test_encode_reply(args: tuple, kwargs: dict, wire: bytes) -> None:
    assert encode_reply(*args, **kwargs) == wire


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((199, "x"), {}), ((600, "x"), {}), ((260, "x"), {}), ((True, "x"), {}),
        (("250", "x"), {}), ((250, "a\rb"), {}), ((250, ["a\nb"]), {}),
        ((250, "x"), {"esc": "5.0.0"}), ((250, "x"), {"esc": "2.0"}),
        ((354, "x"), {"esc": "3.0.0"}), ((250, "\ud800"), {}),
    ],
)
def test_encode_reply_misuse(args: tuple, kwargs: dict) -> None:
    with pytest.raises(CodecUsageError):
        encode_reply(*args, **kwargs)


# PRDR --------------------------------------------------------------------------------------


def _replies(data: bytes) -> list[Reply]:
    events, _ = run_replies([data])
    return events  # type: ignore[return-value]


def test_prdr_reader_collects_a_block() -> None:
    intro, first, second, final = _replies(
        b"353 content analysis started\r\n250 ok for a\r\n550 5.7.1 not for b\r\n"
        b"250 2.0.0 message accepted for some\r\n"
    )
    collector = PRDRReader(recipients=2)
    assert collector.add(intro) is None
    assert collector.add(first) is None
    assert collector.add(second) is None
    assert collector.add(final) == PRDRBlock(intro, (first, second), final)
    with pytest.raises(CodecUsageError):
        collector.add(final)


def test_prdr_reader_without_353_is_one_reply() -> None:
    (only,) = _replies(b"554 5.7.1 rejected\r\n")
    assert PRDRReader(recipients=3).add(only) == PRDRBlock(only, (), None)
    with pytest.raises(CodecUsageError):
        PRDRReader(recipients=0)


# CommandParser -----------------------------------------------------------------------------

MESSAGE = b"Subject: t\r\n\r\n..leading dot\r\nbody\r\n"
GOOD_COMMANDS = [
    pytest.param(
        b"EHLO client.example\r\n",
        [Command("EHLO", "client.example", b"EHLO client.example\r\n")],
        id="ehlo",
    ),
    pytest.param(b"quit\r\n", [Command("QUIT", "", b"quit\r\n")], id="lower-case-verb"),
    pytest.param(
        b"MAIL  FROM:<>\r\n", [Command("MAIL", " FROM:<>", b"MAIL  FROM:<>\r\n")],
        id="args-after-one-space",
    ),
    pytest.param(b"NOOP \r\n", [Command("NOOP", "", b"NOOP \r\n")], id="trailing-space"),
    pytest.param(b"\r\n", [Command("", "", b"\r\n")], id="empty-line"),
    pytest.param(
        b"VRFY j\xc3\xb6rg \xff\r\n",
        [Command("VRFY", "j\u00f6rg \udcff", b"VRFY j\xc3\xb6rg \xff\r\n")],
        id="8bit-args",
    ),
    pytest.param(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
        + MESSAGE
        + b".\r\nQUIT\r\n",
        [
            Command("MAIL", "FROM:<a@example.org>", b"MAIL FROM:<a@example.org>\r\n"),
            Command("RCPT", "TO:<b@example.org>", b"RCPT TO:<b@example.org>\r\n"),
            Command("DATA", "", b"DATA\r\n"),
            MessageData(b"Subject: t\r\n\r\n.leading dot\r\nbody\r\n", MESSAGE + b".\r\n"),
            Command("QUIT", "", b"QUIT\r\n"),
        ],
        id="pipelined-transaction",
    ),
    pytest.param(
        b"DATA\r\n.\r\n", [Command("DATA", "", b"DATA\r\n"), MessageData(b"", b".\r\n")],
        id="empty-message",
    ),
    pytest.param(
        b"DATA\r\n..\r\n.\r\n",
        [Command("DATA", "", b"DATA\r\n"), MessageData(b".\r\n", b"..\r\n.\r\n")],
        id="message-is-a-dot",
    ),
    pytest.param(
        # SMTP smuggling (RFC 5321 §4.1.1.4): only CRLF.CRLF ends the data.
        b"DATA\r\nx\n.\nMAIL FROM:<evil>\r\ny\r\n.\nz\n.\r\nw\r\n.\r\n",
        [
            Command("DATA", "", b"DATA\r\n"),
            MessageData(b"x\n.\nMAIL FROM:<evil>\r\ny\r\n.\nz\n.\r\nw\r\n",
                        b"x\n.\nMAIL FROM:<evil>\r\ny\r\n.\nz\n.\r\nw\r\n.\r\n"),
        ],
        id="smuggling-is-content",
    ),
    pytest.param(
        b"BDAT 5\r\nhelloBDAT 0 LAST\r\n",
        [Chunk(b"hello", False, b"BDAT 5\r\nhello"), Chunk(b"", True, b"BDAT 0 LAST\r\n")],
        id="bdat",
    ),
    pytest.param(
        b"bdat 15 last\r\nQUIT\r\nDATA\r\n.\r\nNOOP\r\n",
        [Chunk(b"QUIT\r\nDATA\r\n.\r\n", True, b"bdat 15 last\r\nQUIT\r\nDATA\r\n.\r\n"),
         Command("NOOP", "", b"NOOP\r\n")],
        id="bdat-chunk-is-not-parsed",
    ),
    pytest.param(b"BDAT x\r\n", [Command("BDAT", "x", b"BDAT x\r\n")], id="bdat-bad-size"),
    pytest.param(b"BDAT\r\n", [Command("BDAT", "", b"BDAT\r\n")], id="bdat-no-size"),
    pytest.param(b"BDAT  5\r\n", [Command("BDAT", " 5", b"BDAT  5\r\n")], id="bdat-two-spaces"),
    pytest.param(
        b"BDAT 5 LAST x\r\n", [Command("BDAT", "5 LAST x", b"BDAT 5 LAST x\r\n")],
        id="bdat-extra-arg",
    ),
    pytest.param(
        b"BDAT 1234567890123456789\r\n",
        [Command("BDAT", "1234567890123456789", b"BDAT 1234567890123456789\r\n")],
        id="bdat-size-too-long",
    ),
]


@pytest.mark.parametrize(("data", "expected"), GOOD_COMMANDS)
def test_command_vectors_three_ways(data: bytes, expected: Events) -> None:
    assert feed_three_ways(run_commands, data, b"RCPT TO:<x") == expected


def test_bare_lf_is_an_error_inside_the_line() -> None:
    events = feed_three_ways(run_commands, b"NOOP\nRSET\r\nQUIT\r\n", b"QU")
    assert events == [
        ("error", "bare LF in command line", "500 5.5.2 bare <LF> not allowed"),
        Command("QUIT", "", b"QUIT\r\n"),
    ]


def test_bare_cr_is_an_error() -> None:
    events = feed_three_ways(run_commands, b"NOOP\rRSET\r\nQUIT\r\n", b"QU")
    assert events[0] == ("error", "bare CR in command line", "500 5.5.2 bare <CR> not allowed")
    assert events[1:] == [Command("QUIT", "", b"QUIT\r\n")]


def test_allow_bare_lf() -> None:
    events = feed_three_ways(
        run_commands, b"NOOP\nRSET\r\nDATA\nx\n.\ny\r\n.\r\n", b"QU", allow_bare_lf=True
    )
    assert events == [
        Command("NOOP", "", b"NOOP\n"),
        Command("RSET", "", b"RSET\r\n"),
        Command("DATA", "", b"DATA\n"),
        MessageData(b"x\n.\ny\r\n", b"x\n.\ny\r\n.\r\n"),  # data still ends only at CRLF.CRLF
    ]


@pytest.mark.parametrize(
    "data",
    [b"NOOP " + b"x" * 40 + b"\r\nQUIT\r\n", b"NOOP " + b"x" * 40 + b"\r\r\nQUIT\r\n",
     b"x" * 15 + b"\r\nQUIT\r\n"],
    ids=["long", "long-with-cr", "one-over"],
)
def test_over_long_line_is_reported_once_and_dropped(data: bytes) -> None:
    events = feed_three_ways(run_commands, data, b"QU", max_line_length=16)
    assert events == [
        ("error", "command line longer than 16 bytes", "500 5.5.2 line too long"),
        Command("QUIT", "", b"QUIT\r\n"),
    ]


def test_line_at_the_limit_is_accepted() -> None:
    events, _ = run_commands([b"x" * 14 + b"\r\n"], max_line_length=16)
    assert events == [Command("X" * 14, "", b"x" * 14 + b"\r\n")]


def test_over_long_line_split_before_its_lf() -> None:
    parser = CommandParser(max_line_length=16)
    events: Events = []
    for chunk in (b"y" * 30 + b"\r", b"\nNOOP\r\n"):
        parser.feed(chunk)
        drain_commands(parser, events)
    assert [e if isinstance(e, tuple) else e.verb for e in events] == [  # type: ignore[union-attr]
        ("error", "command line longer than 16 bytes", "500 5.5.2 line too long"),
        "NOOP",
    ]


def test_start_data_misuse() -> None:
    parser = CommandParser()
    parser.start_data()
    with pytest.raises(CodecUsageError):
        parser.start_data()


def test_commands_wait_for_start_data() -> None:
    parser = CommandParser()
    parser.feed(b"DATA\r\nNOOP\r\n.\r\n")
    assert parser.next_event() == Command("DATA", "", b"DATA\r\n")
    # A server that answered 554 to DATA reads on in command state.
    assert parser.next_event() == Command("NOOP", "", b"NOOP\r\n")
    assert parser.next_event() == Command(".", "", b".\r\n")


@pytest.mark.parametrize(
    ("data", "start_data", "message"),
    [
        (b"NOO", False, "in the middle of a command line"),
        (b"BDAT 10\r\nabc", False, "in the middle of a BDAT chunk"),
        (b"hello\r\n", True, "in the middle of message data"),
        (b"", True, "in the middle of message data"),
    ],
)
def test_close_mid_event_raises(data: bytes, start_data: bool, message: str) -> None:
    parser = CommandParser()
    if start_data:
        parser.start_data()
    parser.feed(data)
    assert parser.next_event() is NEED_DATA
    with pytest.raises(SMTPProtocolError, match=message):
        parser.close()


def test_close_delivers_complete_commands_first() -> None:
    parser = CommandParser()
    parser.feed(b"QUIT\r\nNO")
    parser.close()
    assert parser.next_event() == Command("QUIT", "", b"QUIT\r\n")
    with pytest.raises(SMTPProtocolError, match="in the middle of a command line"):
        parser.next_event()


def test_clean_close_and_misuse() -> None:
    parser = CommandParser()
    parser.feed(b"QUIT\r\n")
    assert parser.next_event() == Command("QUIT", "", b"QUIT\r\n")
    parser.close()
    parser.close()
    assert parser.next_event() is NEED_DATA
    with pytest.raises(CodecUsageError):
        parser.feed(b"x")
    with pytest.raises(CodecUsageError):
        CommandParser().feed("QUIT\r\n")  # type: ignore[arg-type]


def test_close_while_dropping_an_over_long_line_is_quiet() -> None:
    parser = CommandParser(max_line_length=8)
    parser.feed(b"x" * 20)
    with pytest.raises(SMTPProtocolError):
        parser.next_event()
    parser.close()
    assert parser.next_event() is NEED_DATA


# encode_command and dot_stuff --------------------------------------------------------------


def test_encode_command() -> None:
    assert encode_command("EHLO", "client.example") == b"EHLO client.example\r\n"
    assert encode_command("QUIT") == b"QUIT\r\n"
    assert encode_command("X-FOO", " two") == b"X-FOO  two\r\n"
    for verb, args in [("", ""), ("MA IL", ""), ("NOOP", "a\r\nQUIT"), ("9X", ""),
                       ("NOOP", "a\nb")]:
        with pytest.raises(CodecUsageError):
            encode_command(verb, args)


@pytest.mark.parametrize(
    ("content", "wire"),
    [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".a\r\n", b"..a\r\n.\r\n"),
        (b"a\r\n.\r\n", b"a\r\n..\r\n.\r\n"),
        (b"a\r\n..b\r\n", b"a\r\n...b\r\n.\r\n"),
        (b"a\n.b", b"a\n.b\r\n.\r\n"),  # a line starts after CRLF only
        (b"a\r", b"a\r\r\n.\r\n"),
    ],
)
def test_dot_stuff(content: bytes, wire: bytes) -> None:
    assert dot_stuff(content) == wire


# ESMTP parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("FROM:<a@b> SIZE=10 PRDR", ("a@b", {"SIZE": "10", "PRDR": None})),
        ("from:<>", ("", {})),
        ("FROM:<a@b> body=8BITMIME", ("a@b", {"BODY": "8BITMIME"})),
        ('FROM:<"a b>c"@example.org>', ('"a b>c"@example.org', {})),
        ('FROM:<"a\\"b"@example.org>', ('"a\\"b"@example.org', {})),
        ("FROM:<@r.example:a@b>", ("@r.example:a@b", {})),
        ("FROM:<j\u00f6rg@example.org> SMTPUTF8", ("j\u00f6rg@example.org", {"SMTPUTF8": None})),
        ("FROM:<a@b> ENVID=QQ+2Bx", ("a@b", {"ENVID": "QQ+2Bx"})),
    ],
)
def test_parse_mail_args(args: str, expected: tuple) -> None:
    assert parse_mail_args(args) == expected


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        ("TO:<a@b>", "501 5.5.4 syntax error"),
        ("FROM<a@b>", "501 5.5.4 syntax error"),
        ("", "501 5.5.4 syntax error"),
        ("FROM: <a@b>", "501 5.1.7 bad sender address syntax"),
        ("FROM:a@b", "501 5.1.7 bad sender address syntax"),
        ("FROM:<a@b", "501 5.1.7 bad sender address syntax"),
        ("FROM:<a b@c>", "501 5.1.7 bad sender address syntax"),
        ("FROM:<a<b@c>", "501 5.1.7 bad sender address syntax"),
        ('FROM:<"a@b>', "501 5.1.7 bad sender address syntax"),
        ("FROM:<a@b>SIZE=1", "501 5.1.7 bad sender address syntax"),
        ("FROM:<a@b> SIZE=", "501 5.5.4 syntax error in parameters"),
        ("FROM:<a@b> SIZE=1 size=2", "501 5.5.4 syntax error in parameters"),
        ("FROM:<a@b>  SIZE=1", "501 5.5.4 syntax error in parameters"),
        ("FROM:<a@b> SIZE=1 ", "501 5.5.4 syntax error in parameters"),
        ("FROM:<a@b> -X", "501 5.5.4 syntax error in parameters"),
        ("FROM:<a@b> S_Z=1", "501 5.5.4 syntax error in parameters"),
        ("FROM:<a@b> X=a=b", "501 5.5.4 syntax error in parameters"),
        ("FROM:<a@b> X=a\x01", "501 5.5.4 syntax error in parameters"),
    ],
)
def test_parse_mail_args_errors(args: str, hint: str) -> None:
    with pytest.raises(SMTPProtocolError) as info:
        parse_mail_args(args)
    assert info.value.hint == hint


def test_parse_rcpt_args() -> None:
    assert parse_rcpt_args("TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y") == (
        "b@example.org",
        {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;x@y"},
    )
    assert parse_rcpt_args("to:<Postmaster>") == ("Postmaster", {})
    with pytest.raises(SMTPProtocolError) as info:
        parse_rcpt_args("TO:<>")
    assert info.value.hint == "501 5.1.3 bad recipient address syntax"
    with pytest.raises(SMTPProtocolError):
        parse_rcpt_args("FROM:<a@b>")


def test_format_path_args() -> None:
    assert format_path_args("FROM", "a@b", {"PRDR": None}) == "FROM:<a@b> PRDR"
    assert format_path_args("TO", "b@c", {"NOTIFY": "NEVER", "orcpt": "rfc822;b@c"}) == (
        "TO:<b@c> NOTIFY=NEVER orcpt=rfc822;b@c"
    )
    assert format_path_args("FROM", "", {}) == "FROM:<>"
    for prefix, path, params in [
        ("FROM", "a b@c", {}), ("FROM", "a>b", {}), ("FR OM", "a@b", {}),
        ("FROM", "a@b", {"SIZE": ""}), ("FROM", "a@b", {"-X": None}),
        ("FROM", "a@b", {"SIZE": "1", "size": "2"}), ("FROM", "a@b", {"X": "a b"}),
    ]:
        with pytest.raises(CodecUsageError):
            format_path_args(prefix, path, params)


def test_esmtp_names_are_reachable_from_codec() -> None:
    assert codec.parse_mail_args is parse_mail_args
    assert codec.EhloInfo is EhloInfo
    with pytest.raises(AttributeError):
        codec.no_such_name  # noqa: B018


# EHLO --------------------------------------------------------------------------------------


def test_parse_ehlo() -> None:
    (ehlo,) = _replies(
        b"250-mx.example.org at your service\r\n"
        b"250-SIZE 52428800\r\n"
        b"250-pipelining\r\n"
        b"250-AUTH PLAIN LOGIN\r\n"
        b"250-AUTH=LOGIN\r\n"
        b"250-X-WEIRD  a\x01b \xff\r\n"
        b"250-SIZE 1\r\n"
        b"250-\r\n"
        b"250 PRDR\r\n"
    )
    info = parse_ehlo(ehlo)
    assert info.greeting == "mx.example.org at your service"
    assert info.keywords == {
        "SIZE": ("52428800",),
        "PIPELINING": (),
        "AUTH": ("PLAIN", "LOGIN"),
        "X-WEIRD": ("a\x01b", "\udcff"),
        "PRDR": (),
    }
    assert info.malformed == ("AUTH=LOGIN", "SIZE 1", "")
    assert info.raw_lines == ehlo.lines
    assert info.supports("prdr") and not info.supports("CHUNKING")


def test_parse_ehlo_single_line_and_errors() -> None:
    (single,) = _replies(b"250 mx.example.org\r\n")
    assert parse_ehlo(single) == EhloInfo("mx.example.org", {}, ("mx.example.org",), ())
    (refused,) = _replies(b"502 5.5.1 EHLO not implemented\r\n")
    with pytest.raises(SMTPProtocolError, match="not 250"):
        parse_ehlo(refused)
