"""Hypothesis properties of harness.smtp.codec and harness.smtp.esmtp."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from harness.smtp import strategies as smtp_st
from harness.smtp.codec import (
    NEED_DATA,
    Command,
    CommandParser,
    MessageData,
    Reply,
    ReplyParser,
    SMTPProtocolError,
    dot_stuff,
    encode_command,
    encode_reply,
)
from harness.smtp.esmtp import format_path_args, parse_mail_args, parse_rcpt_args

# Seeded, no example database written into the tree, no timing flakiness.
fixed = settings(derandomize=True, database=None, deadline=None, max_examples=200)

Events = list[object]


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """DATA cut at the given offsets (taken modulo its length, sorted)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def three_ways(data: bytes, cuts: Sequence[int]) -> list[list[bytes]]:
    """STYLE.md point 3, plus arbitrary cuts: every way must give the same events."""
    return [[data], [data[i : i + 1] for i in range(len(data))], split(data, cuts)]


cut_lists = st.lists(st.integers(min_value=0, max_value=10_000), max_size=8)


def reply_events(chunks: Sequence[bytes], *, close: bool = False, **options: object) -> Events:
    parser = ReplyParser(**options)  # type: ignore[arg-type]
    events: Events = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            for _ in range(len(chunk) + 1):  # each event consumes at least one byte
                event = parser.next_event()
                if event is NEED_DATA:
                    break
                events.append(event)
            else:
                pytest.fail("ReplyParser returned events without consuming bytes")
        if close:
            parser.close()
            while (event := parser.next_event()) is not NEED_DATA:
                events.append(event)
    except SMTPProtocolError as exc:
        events.append(("error", exc.message))
    events.append(("pending", parser.pending))
    return events


def command_events(
    chunks: Sequence[bytes],
    *,
    accept_data: Sequence[bool] = (True,),
    close: bool = False,
    **options: object,
) -> Events:
    """Drive a CommandParser like a server; ACCEPT_DATA says, in turn, whether each DATA
    command is answered with 354 (the last value repeats)."""
    parser = CommandParser(**options)  # type: ignore[arg-type]
    events: Events = []
    data_commands = 0

    def drain(budget: int) -> None:
        nonlocal data_commands
        for _ in range(budget):
            try:
                event = parser.next_event()
            except SMTPProtocolError as exc:
                events.append(("error", exc.message, exc.hint))
                if parser_closed and exc.message.startswith("connection closed"):
                    return  # at end of input this error repeats
                continue
            if event is NEED_DATA:
                return
            events.append(event)
            if isinstance(event, Command) and event.verb == "DATA":
                accept = accept_data[min(data_commands, len(accept_data) - 1)]
                data_commands += 1
                if accept:
                    parser.start_data()
        pytest.fail("CommandParser did not come back to NEED_DATA")

    parser_closed = False
    for chunk in chunks:
        parser.feed(chunk)
        drain(2 * len(chunk) + 2)  # every event or error consumes input or changes state
    if close:
        parser_closed = True
        try:
            parser.close()
        except SMTPProtocolError as exc:
            events.append(("error", exc.message, exc.hint))
        else:
            drain(len(parser.pending) + 2)
    events.append(("pending", parser.pending))
    return events


# Round trips -------------------------------------------------------------------------------

any_reply_args = smtp_st.reply_args() | smtp_st.reply_args(allow_8bit=True, max_lines=2)


def check_reply(parsed: object, args: smtp_st.ReplyArgs, wire: bytes) -> None:
    assert isinstance(parsed, Reply)
    assert (parsed.code, parsed.esc, parsed.raw) == (args.code, args.esc, wire)
    if args.esc is None:
        assert parsed.lines == args.lines
    else:
        assert parsed.lines_without_esc() == args.lines
        assert parsed.line_escs() == (args.esc,) * len(args.lines)


@fixed
@given(st.lists(any_reply_args, min_size=1, max_size=4), cut_lists, st.integers(0, 10_000))
def test_encode_reply_then_parse_is_identity(
    all_args: list[smtp_st.ReplyArgs], cuts: list[int], trailing_cut: int
) -> None:
    wires = [encode_reply(a.code, a.lines, esc=a.esc) for a in all_args]
    trailing = wires[0][: trailing_cut % len(wires[0])]  # a proper prefix: never complete
    data = b"".join(wires)
    for chunks in three_ways(data, cuts):
        *replies, pending = reply_events(chunks)
        assert pending == ("pending", b"")
        assert len(replies) == len(all_args)
        for parsed, args, wire in zip(replies, all_args, wires):
            check_reply(parsed, args, wire)
    with_trailing = reply_events([data + trailing])
    assert with_trailing[:-1] == replies
    assert with_trailing[-1] == ("pending", trailing)


@fixed
@given(smtp_st.reply_args())
def test_lenient_parser_reads_bare_lf_replies(args: smtp_st.ReplyArgs) -> None:
    wire = encode_reply(args.code, args.lines, esc=args.esc)
    (parsed, pending) = reply_events([wire.replace(b"\r\n", b"\n")], strict=False)
    assert isinstance(parsed, Reply)
    lines = parsed.lines if args.esc is None else parsed.lines_without_esc()
    assert (parsed.code, lines, parsed.esc, parsed.bare_lf) == (
        args.code, args.lines, args.esc, True
    )
    assert pending == ("pending", b"")
    strict = reply_events([wire.replace(b"\r\n", b"\n")])
    assert strict[0] == ("error", "reply line ends in a bare LF")


any_command_args = smtp_st.command_args() | smtp_st.command_args(allow_8bit=True)


@fixed
@given(st.lists(any_command_args, min_size=1, max_size=6), cut_lists, st.integers(0, 10_000))
def test_encode_command_then_parse_is_identity(
    all_args: list[smtp_st.CommandArgs], cuts: list[int], trailing_cut: int
) -> None:
    wires = [encode_command(a.verb, a.args) for a in all_args]
    expected = [Command(a.verb.upper(), a.args, w) for a, w in zip(all_args, wires)]
    trailing = wires[-1][: trailing_cut % len(wires[-1])]
    data = b"".join(wires)
    for chunks in three_ways(data, cuts):
        assert command_events(chunks, accept_data=(False,)) == [*expected, ("pending", b"")]
    assert command_events([data + trailing], accept_data=(False,)) == [
        *expected, ("pending", trailing)
    ]


def expected_content(content: bytes) -> bytes:
    return content if not content or content.endswith(b"\r\n") else content + b"\r\n"


@fixed
@given(smtp_st.message_contents() | st.binary(max_size=200), cut_lists, smtp_st.command_lines())
def test_dot_stuff_then_data_parsing_is_identity(
    content: bytes, cuts: list[int], after: bytes
) -> None:
    wire = dot_stuff(content)
    data = b"DATA\r\n" + wire
    data_command = Command("DATA", "", b"DATA\r\n")
    message = MessageData(expected_content(content), wire)
    for chunks in three_ways(data, cuts):
        assert command_events(chunks) == [data_command, message, ("pending", b"")]
    trailing = after[:-1]
    assert command_events([data + trailing]) == [data_command, message, ("pending", trailing)]


@fixed
@given(
    st.sampled_from(["FROM", "from", "TO", "To"]),
    st.booleans(),
    smtp_st.esmtp_params() | smtp_st.esmtp_params(allow_utf8=True),
    st.data(),
)
def test_format_then_parse_path_args_is_identity(
    prefix: str, utf8: bool, params: dict[str, str | None], data: st.DataObject
) -> None:
    mail = prefix.upper() == "FROM"
    path = data.draw(smtp_st.paths(allow_null=mail, allow_utf8=utf8))
    args = format_path_args(prefix, path, params)
    parse = parse_mail_args if mail else parse_rcpt_args
    assert parse(args) == (path, {k.upper(): v for k, v in params.items()})
    # And through the wire: the command parser hands the same args over.
    verb = "MAIL" if mail else "RCPT"
    (command, _) = command_events([encode_command(verb, args)])
    assert command == Command(verb, args, encode_command(verb, args))


# Fuzzing: nothing but SMTPProtocolError escapes, and fragmentation never matters ----------

_reply_noise = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b"250", b"250-", b"250 ", b"353 ", b"2.0.0 ", b"-", b" ", b"\xff",
     b"5"]
)
reply_streams = st.lists(
    smtp_st.encoded_replies() | _reply_noise | st.binary(max_size=16), max_size=12
).map(b"".join)

_command_noise = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b"DATA\r\n", b".\r\n", b"\r\n.\r\n", b"\n.\n", b"BDAT 3\r\n",
     b"BDAT 0 LAST\r\n", b"bdat 2 last\r\n", b"BDAT 99999\r\n", b"BDAT x\r\n", b" ", b"\x00",
     b"DATA\r\n.\r\n", b"DATA\r\nx\r\n..\r\n.\r\n"]
)
command_streams = st.lists(
    smtp_st.command_lines() | _command_noise | st.binary(max_size=16), max_size=12
).map(b"".join)


@fixed
@given(
    reply_streams,
    cut_lists,
    st.booleans(),
    st.sampled_from([4096, 16, 5, 1]),
)
def test_reply_parser_fuzz(data: bytes, cuts: list[int], strict: bool, limit: int) -> None:
    ways = [
        reply_events(chunks, close=True, strict=strict, max_line_length=limit)
        for chunks in three_ways(data, cuts)
    ]
    # Only SMTPProtocolError escapes (reply_events catches nothing else), and the split of
    # the input changes nothing but, after an error, what is left pending.
    events = [way[:-1] for way in ways]
    assert events[1] == events[0] and events[2] == events[0]


@fixed
@given(
    command_streams,
    cut_lists,
    st.lists(st.booleans(), min_size=1, max_size=4),
    st.booleans(),
    st.sampled_from([8192, 16, 3, 1]),
)
def test_command_parser_fuzz(
    data: bytes, cuts: list[int], accept_data: list[bool], bare_lf: bool, limit: int
) -> None:
    ways = [
        command_events(
            chunks, accept_data=accept_data, close=True, allow_bare_lf=bare_lf,
            max_line_length=limit,
        )
        for chunks in three_ways(data, cuts)
    ]
    assert ways[1] == ways[0] and ways[2] == ways[0]


@fixed
@given(st.binary(max_size=300), cut_lists)
def test_parsers_take_raw_binary(data: bytes, cuts: list[int]) -> None:
    for chunks in three_ways(data, cuts):
        reply_events(chunks, close=True)
        command_events(chunks, close=True)


# The strategies themselves -----------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: smtp_st.reply_codes(classes=(1,)),
        lambda: smtp_st.reply_codes(classes=()),
        lambda: smtp_st.enhanced_status_codes(classes=(3,)),
        lambda: smtp_st.reply_args(min_lines=0),
        lambda: smtp_st.reply_args(min_lines=3, max_lines=2),
        lambda: smtp_st.reply_args(esc="yes"),
        lambda: smtp_st.reply_args(codes=250),
        lambda: smtp_st.reply_texts(max_size=-1),
        lambda: smtp_st.command_args(max_size=-1),
        lambda: smtp_st.esmtp_params(max_size=-1),
        lambda: smtp_st.message_contents(max_pieces=-1),
    ],
)
def test_strategies_check_their_arguments_at_once(build: object) -> None:
    with pytest.raises(InvalidArgument):
        build()  # type: ignore[operator]


@fixed
@given(smtp_st.reply_args(esc=True, codes=smtp_st.reply_codes(classes=(2, 4, 5))))
def test_reply_args_esc_true_always_has_an_esc(args: smtp_st.ReplyArgs) -> None:
    assert args.esc is not None and int(args.esc[0]) == args.code // 100


@fixed
@given(smtp_st.verbs())
def test_verbs_leave_out_bdat(verb: str) -> None:
    assert verb.upper() != "BDAT"
