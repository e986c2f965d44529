"""Sans-I/O SMTP codec: bytes in, events out (modelled on h11).

``ReplyParser`` reads server replies (client side); ``CommandParser`` reads client commands,
message data and BDAT chunks (server side, for fake MX peers and test servers). Neither does
I/O. Bad bytes from the peer raise ``SMTPProtocolError`` and nothing else; misuse by our own
code raises ``CodecUsageError``.

ESMTP parameter and EHLO parsing live in ``harness.smtp.esmtp``; their names are also
reachable from this module.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "ESC_RE",
    "NEED_DATA",
    "Chunk",
    "CodecUsageError",
    "Command",
    "CommandParser",
    "MessageData",
    "NeedData",
    "PRDRBlock",
    "PRDRReader",
    "Reply",
    "ReplyCode",
    "ReplyParser",
    "SMTPProtocolError",
    "dot_stuff",
    "encode_command",
    "encode_reply",
    "is_prdr_intro",
]

# Errors ------------------------------------------------------------------------------------

_MAX_ERROR_DATA = 512


class SMTPProtocolError(Exception):
    """Bad bytes from the peer.

    ``data`` holds the offending bytes (truncated to 512); ``hint`` is, where one applies, the
    reply a server should have given (e.g. ``"500 5.5.2 line too long"``).
    """

    def __init__(self, message: str, *, data: bytes = b"", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = bytes(data[:_MAX_ERROR_DATA])
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.data:
            text += f" (data: {self.data!r})"
        if self.hint:
            text += f" [should reply: {self.hint}]"
        return text


class CodecUsageError(Exception):
    """Our own misuse of the codec (feeding after close, encoding an invalid code, ...)."""


class NeedData(enum.Enum):
    """The type of ``NEED_DATA``: an enum so that type checkers can narrow on it."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"

    __str__ = __repr__


NEED_DATA: Final = NeedData.NEED_DATA


# Reply codes and enhanced status codes -----------------------------------------------------


class ReplyCode(enum.IntEnum):
    """Reply codes named after RFC 5321 §4.2.2/§4.2.3 (353: draft-hall-prdr-00 §4.5)."""

    SYSTEM_STATUS = 211
    HELP_MESSAGE = 214
    SERVICE_READY = 220
    SERVICE_CLOSING = 221
    OK = 250
    USER_NOT_LOCAL_WILL_FORWARD = 251
    CANNOT_VRFY_USER = 252
    PRDR_CONTENT_ANALYSIS = 353
    START_MAIL_INPUT = 354
    SERVICE_NOT_AVAILABLE = 421
    MAILBOX_UNAVAILABLE_TRANSIENT = 450
    LOCAL_ERROR = 451
    INSUFFICIENT_STORAGE = 452
    CANNOT_ACCOMMODATE_PARAMETERS = 455
    SYNTAX_ERROR = 500
    SYNTAX_ERROR_IN_PARAMETERS = 501
    COMMAND_NOT_IMPLEMENTED = 502
    BAD_SEQUENCE = 503
    PARAMETER_NOT_IMPLEMENTED = 504
    MAILBOX_UNAVAILABLE = 550
    USER_NOT_LOCAL = 551
    EXCEEDED_STORAGE = 552
    MAILBOX_NAME_NOT_ALLOWED = 553
    TRANSACTION_FAILED = 554
    PARAMETERS_NOT_RECOGNIZED = 555


# RFC 3463 §2: status-code = class "." subject "." detail; class = "2" / "4" / "5";
# subject = 1*3digit; detail = 1*3digit.
ESC_RE: Final = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})", re.ASCII)

# RFC 2034 §4: the status code starts the text of a reply line and is followed by a space
# (or ends the line, when the reply has no further text).
_ESC_AT_START = re.compile(ESC_RE.pattern + r"(?= |\Z)", re.ASCII)

# RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39
_REPLY_CODE = re.compile(rb"[2-5][0-5][0-9]")


def _esc_of(code: int, text: str) -> str | None:
    """The ESC at the start of TEXT, if well-formed and of the same class as CODE."""
    match = _ESC_AT_START.match(text)
    if match is None or int(match.group(1)) != code // 100:
        return None
    return match.group(0)


def _decode(data: bytes) -> str:
    # surrogateescape: 8-bit text that is not UTF-8 survives and never raises.
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise CodecUsageError(f"{what} cannot be encoded: {exc}") from None


# Replies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]  # text after code and separator; an ESC stays part of the text
    raw: bytes
    esc: str | None
    bare_lf: bool = False  # some line ended in a bare LF (only possible with strict=False)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def multiline(self) -> bool:
        return len(self.lines) > 1

    def line_escs(self) -> tuple[str | None, ...]:
        return tuple(_esc_of(self.code, line) for line in self.lines)

    def lines_without_esc(self) -> tuple[str, ...]:
        """Each line's text with its own leading ESC, and the space after it, removed."""
        out = []
        for line, esc in zip(self.lines, self.line_escs()):
            out.append(line if esc is None else line[len(esc) + 1 :])
        return tuple(out)


@dataclass
class _ReplyProgress:
    """The complete, already checked lines of the reply being read: a long multi-line reply
    arriving in many pieces is then not parsed again from its start for every piece."""

    pos: int = 0
    code: int | None = None
    lines: list[str] = field(default_factory=list)
    bare_lf: bool = False


def _read_reply(
    buf: bytearray, strict: bool, max_line_length: int, progress: _ReplyProgress
) -> tuple[Reply, int] | None:
    """One complete reply from the start of BUF and its length, or None if it is incomplete.

    RFC 5321 §4.2:
        Reply-line = *( Reply-code "-" [ textstring ] CRLF )
                     Reply-code [ SP textstring ] CRLF
    Lines are checked as soon as they are complete, so that the outcome does not depend on
    how the bytes were split across feeds. PROGRESS is updated line by line.
    """
    p = progress
    while True:
        pos = p.pos
        lf = buf.find(b"\n", pos)
        if lf < 0:
            # A line needs at least one more byte (its LF): decide now if it cannot fit.
            if len(buf) - pos + 1 > max_line_length:
                raise SMTPProtocolError(
                    f"reply line longer than {max_line_length} bytes", data=buf[pos:]
                )
            return None
        line = bytes(buf[pos : lf + 1])
        if len(line) > max_line_length:  # RFC 5321 §4.5.3.1.5 counts the CRLF too
            raise SMTPProtocolError(f"reply line longer than {max_line_length} bytes", data=line)
        if line.endswith(b"\r\n"):
            body = line[:-2]
        elif strict:  # RFC 5321 §2.3.8: lines end in CRLF only
            raise SMTPProtocolError("reply line ends in a bare LF", data=line)
        else:
            body = line[:-1]
            p.bare_lf = True
        if strict and b"\r" in body:
            raise SMTPProtocolError("bare CR in reply line", data=line)
        if not _REPLY_CODE.fullmatch(body[:3]):
            raise SMTPProtocolError("reply line does not start with a valid reply code", data=line)
        separator = body[3:4]
        if separator not in (b"", b" ", b"-"):
            raise SMTPProtocolError("reply code not followed by SP, '-' or CRLF", data=line)
        line_code = int(body[:3])
        if p.code is None:
            p.code = line_code
        elif line_code != p.code:  # RFC 5321 §4.2.1: every line of a reply has the same code
            raise SMTPProtocolError(
                f"multi-line reply mixes codes {p.code} and {line_code}", data=buf[: lf + 1]
            )
        p.lines.append(_decode(body[4:]))
        p.pos = lf + 1
        if separator != b"-":
            break
    code, lines = p.code, tuple(p.lines)
    reply = Reply(code, lines, bytes(buf[: p.pos]), _esc_of(code, lines[0]), p.bare_lf)
    return reply, p.pos


class ReplyParser:
    """Client side: turns the bytes a server sends into ``Reply`` events.

    A protocol error is final: later calls to ``next_event`` raise it again. After ``close``,
    replies that were complete are still returned; ``close`` raises at once when the buffered
    bytes are only part of a reply.
    """

    def __init__(self, *, max_line_length: int = 4096, strict: bool = True) -> None:
        if max_line_length < 1:
            raise CodecUsageError("max_line_length must be positive")
        self._max_line_length = max_line_length
        self._strict = strict
        self._buf = bytearray()
        self._progress = _ReplyProgress()
        self._eof = False
        self._error: SMTPProtocolError | None = None

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        if self._eof:
            raise CodecUsageError("feed() after close()")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecUsageError(f"feed() takes bytes, not {type(data).__name__}")
        self._buf += data

    def next_event(self) -> Reply | Literal[NeedData.NEED_DATA]:
        if self._error is not None:
            raise _copy(self._error)
        try:
            result = self._read()
            if result is None and self._eof and self._buf:
                raise _truncated_reply(self._buf)
        except SMTPProtocolError as exc:
            self._error = exc
            raise
        if result is None:
            return NEED_DATA
        reply, consumed = result
        del self._buf[:consumed]
        self._progress = _ReplyProgress()
        return reply

    def close(self) -> None:
        """The peer closed the connection."""
        if self._eof:
            return
        self._eof = True
        if self._error is not None or not self._buf:
            return
        try:  # a look ahead only: next_event() must not find the lines already read
            fresh = _ReplyProgress()
            partial = _read_reply(self._buf, self._strict, self._max_line_length, fresh) is None
        except SMTPProtocolError:
            return  # next_event() reports it
        if partial:
            self._error = _truncated_reply(self._buf)
            raise _copy(self._error)

    def _read(self) -> tuple[Reply, int] | None:
        return _read_reply(self._buf, self._strict, self._max_line_length, self._progress)


def _truncated_reply(buf: bytearray) -> SMTPProtocolError:
    return SMTPProtocolError("connection closed in the middle of a reply", data=buf)


def _copy(exc: SMTPProtocolError) -> SMTPProtocolError:
    return SMTPProtocolError(exc.message, data=exc.data, hint=exc.hint)


def encode_reply(code: int, lines: str | Sequence[str] = "", *, esc: str | None = None) -> bytes:
    """Encode a reply (RFC 5321 §4.2); a str for LINES is split at "\\n".

    With ESC, every line starts with it (RFC 2034 §4: "250-2.1.0 text"). A line with no text
    is sent as the bare code (``Reply-code [ SP textstring ] CRLF``: textstring is 1*char).
    """
    valid = isinstance(code, int) and not isinstance(code, bool)
    if not valid or not _REPLY_CODE.fullmatch(b"%d" % code):
        raise CodecUsageError(f"invalid reply code {code!r} (RFC 5321 §4.2)")
    code = int(code)  # an IntEnum member would format as its name on some Pythons
    texts = lines.split("\n") if isinstance(lines, str) else list(lines)
    if not texts:
        texts = [""]
    for text in texts:
        if not isinstance(text, str) or "\r" in text or "\n" in text:
            raise CodecUsageError(f"reply line text must be a str without CR or LF: {text!r}")
    if esc is not None:
        if not ESC_RE.fullmatch(esc) or int(esc[0]) != code // 100:
            raise CodecUsageError(f"invalid enhanced status code {esc!r} for reply {code}")
        texts = [f"{esc} {text}" if text else esc for text in texts]
    out = bytearray()
    last = len(texts) - 1
    for i, text in enumerate(texts):
        separator = "-" if i < last else (" " if text else "")
        out += f"{code}{separator}".encode() + _encode(text, "reply text") + b"\r\n"
    return bytes(out)


# PRDR (draft-hall-prdr-00 §4.5) ------------------------------------------------------------


@dataclass(frozen=True)
class PRDRBlock:
    intro: Reply  # 353 in a PRDR block; otherwise the one reply for the whole message
    per_recipient: tuple[Reply, ...]
    final: Reply | None


def is_prdr_intro(reply: Reply) -> bool:
    return reply.code == ReplyCode.PRDR_CONTENT_ANALYSIS


class PRDRReader:
    """Collects the replies after end of data into a ``PRDRBlock``.

    draft-hall-prdr-00 §4.5: after end of data the server answers either with one ordinary
    reply for the whole message, or with a 353 reply, then one reply per accepted recipient
    in RCPT order, then a final reply for the message.
    """

    def __init__(self, *, recipients: int) -> None:
        if recipients < 1:
            raise CodecUsageError("a PRDR transaction has at least one accepted recipient")
        self._recipients = recipients
        self._intro: Reply | None = None
        self._per_recipient: list[Reply] = []
        self._done = False

    def add(self, reply: Reply) -> PRDRBlock | None:
        """Add the next reply; returns the block once it is complete."""
        if self._done:
            raise CodecUsageError("the PRDR block is already complete")
        if self._intro is None:
            self._intro = reply
            if not is_prdr_intro(reply):
                self._done = True
                return PRDRBlock(reply, (), None)
            return None
        if len(self._per_recipient) < self._recipients:
            self._per_recipient.append(reply)
            return None
        self._done = True
        return PRDRBlock(self._intro, tuple(self._per_recipient), reply)


# Commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    verb: str  # upper-cased
    args: str  # after the verb and one space
    raw: bytes


@dataclass(frozen=True)
class MessageData:
    content: bytes  # dot-stuffing removed, CRLFs kept, without the final ".\r\n"
    raw: bytes


@dataclass(frozen=True)
class Chunk:
    data: bytes
    last: bool
    raw: bytes  # BDAT command line + chunk bytes


def encode_command(verb: str, args: str = "") -> bytes:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", verb, re.ASCII):
        raise CodecUsageError(f"invalid command verb {verb!r}")
    if "\r" in args or "\n" in args:
        raise CodecUsageError(f"command arguments must not contain CR or LF: {args!r}")
    line = f"{verb} {args}" if args else verb
    return _encode(line, "command") + b"\r\n"


def dot_stuff(content: bytes) -> bytes:
    """Message data as sent after 354 (RFC 5321 §4.5.2), end-of-data line included.

    Lines begin only after CRLF (§4.1.1.4): a dot after a bare LF is not stuffed, exactly as
    ``CommandParser`` does not unstuff it. Empty content is sent as the lone ".\\r\\n".
    """
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if stuffed and not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _unstuff(body: bytes) -> bytes:
    # RFC 5321 §4.5.2: a line that starts with "." loses that first ".".
    body = body.replace(b"\r\n..", b"\r\n.")
    return body[1:] if body.startswith(b".") else body


# RFC 3030 §2: bdat-cmd ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF;
# chunk-size ::= 1*DIGIT; end-marker ::= "LAST". Sizes of more than 18 digits are treated as
# invalid arguments (no real chunk is that large, and int() refuses very long numbers).
_BDAT_ARGS = re.compile(r"([0-9]{1,18})(?: (LAST))?", re.ASCII | re.IGNORECASE)


class _State(enum.Enum):
    COMMAND = "command"  # reading command lines (and BDAT chunks)
    DATA = "data"  # after 354: reading message content up to CRLF.CRLF
    DISCARD = "discard"  # an over-long line was reported: dropping the rest of it


class _Happened(enum.Enum):
    COMMAND = "a command line was read"
    CHUNK = "a BDAT line and its chunk were read"
    BAD_LINE = "a malformed command line was read and reported"
    LONG_PARTIAL = "an unterminated line grew over the limit and was reported"
    DATA_END = "message data up to CRLF.CRLF was read"
    DISCARDING = "part of an over-long line was dropped"
    LINE_DISCARDED = "the end of an over-long line was dropped"
    START_DATA = "the server called start_data() after sending 354"


# Every state change of CommandParser. A pair missing here is our own misuse.
_TRANSITIONS: Final[dict[tuple[_State, _Happened], _State]] = {
    (_State.COMMAND, _Happened.COMMAND): _State.COMMAND,
    (_State.COMMAND, _Happened.CHUNK): _State.COMMAND,
    (_State.COMMAND, _Happened.BAD_LINE): _State.COMMAND,
    (_State.COMMAND, _Happened.LONG_PARTIAL): _State.DISCARD,
    (_State.COMMAND, _Happened.START_DATA): _State.DATA,
    (_State.DATA, _Happened.DATA_END): _State.COMMAND,
    (_State.DISCARD, _Happened.DISCARDING): _State.DISCARD,
    (_State.DISCARD, _Happened.LINE_DISCARDED): _State.COMMAND,
}

_Event = Command | MessageData | Chunk


@dataclass(frozen=True)
class _Step:
    happened: _Happened
    consumed: int
    event: _Event | SMTPProtocolError | None


@dataclass(frozen=True)
class _Config:
    max_line_length: int
    allow_bare_lf: bool

    @property
    def terminator(self) -> bytes:
        return b"\n" if self.allow_bare_lf else b"\r\n"

    def partial_to_keep(self, buf: bytearray) -> int:
        """Bytes to keep when dropping an unterminated line: a CR may begin the CRLF."""
        return 1 if not self.allow_bare_lf and buf.endswith(b"\r") else 0


def _too_long(cfg: _Config, data: bytes | bytearray) -> SMTPProtocolError:
    # RFC 5321 §4.5.3.1.4 (command line limit), §4.5.3.1.10 (500 "Line too long").
    return SMTPProtocolError(
        f"command line longer than {cfg.max_line_length} bytes",
        data=data,
        hint="500 5.5.2 line too long",
    )


def _read_command(buf: bytearray, cfg: _Config, scan: int) -> _Step | None:
    end = buf.find(cfg.terminator)
    if end < 0:
        if len(buf) + 1 > cfg.max_line_length:
            drop = len(buf) - cfg.partial_to_keep(buf)
            return _Step(_Happened.LONG_PARTIAL, drop, _too_long(cfg, buf[:drop]))
        return None
    stop = end + len(cfg.terminator)
    line = bytes(buf[:stop])
    if len(line) > cfg.max_line_length:
        return _Step(_Happened.BAD_LINE, stop, _too_long(cfg, line))
    body = line[: -len(cfg.terminator)]
    if cfg.allow_bare_lf and body.endswith(b"\r"):
        body = body[:-1]
    # RFC 5321 §2.3.8 and §4.1.1.4: CR and LF appear only together, as the line end.
    # Without allow_bare_lf a bare LF does not end a line (that is how SMTP smuggling
    # starts): it stays inside the line, which is then rejected as a whole.
    for char, name in ((b"\n", "LF"), (b"\r", "CR")):
        if char in body:
            return _Step(
                _Happened.BAD_LINE,
                stop,
                SMTPProtocolError(
                    f"bare {name} in command line",
                    data=line,
                    hint=f"500 5.5.2 bare <{name}> not allowed",
                ),
            )
    verb, _, args = body.partition(b" ")
    command = Command(_decode(verb.upper()), _decode(args), line)  # bytes.upper(): ASCII only
    if command.verb == "BDAT":
        match = _BDAT_ARGS.fullmatch(command.args)
        if match is not None:
            size = int(match.group(1))
            if len(buf) < stop + size:
                return None
            data = bytes(buf[stop : stop + size])
            chunk = Chunk(data, match.group(2) is not None, line + data)
            return _Step(_Happened.CHUNK, stop + size, chunk)
    return _Step(_Happened.COMMAND, stop, command)


def _read_data(buf: bytearray, cfg: _Config, scan: int) -> _Step | None:
    # RFC 5321 §4.1.1.4: data ends with CRLF "." CRLF, the first CRLF ending the last line;
    # at the very start of the data the DATA command's CRLF plays that part. Only CRLF
    # counts: "\n.\n" or "\r\n.\n" are content (SMTP smuggling).
    if buf.startswith(b".\r\n"):
        body_end, stop = 0, 3
    else:
        found = buf.find(b"\r\n.\r\n", scan)
        if found < 0:
            return None
        body_end, stop = found + 2, found + 5
    raw = bytes(buf[:stop])
    return _Step(_Happened.DATA_END, stop, MessageData(_unstuff(raw[:body_end]), raw))


def _read_discard(buf: bytearray, cfg: _Config, scan: int) -> _Step | None:
    end = buf.find(cfg.terminator)
    if end >= 0:
        return _Step(_Happened.LINE_DISCARDED, end + len(cfg.terminator), None)
    drop = len(buf) - cfg.partial_to_keep(buf)
    return _Step(_Happened.DISCARDING, drop, None) if drop else None


_Reader = Callable[[bytearray, _Config, int], _Step | None]
_READERS: Final[dict[_State, _Reader]] = {
    _State.COMMAND: _read_command,
    _State.DATA: _read_data,
    _State.DISCARD: _read_discard,
}


class CommandParser:
    """Server side: turns the bytes a client sends into ``Command``, ``MessageData`` and
    ``Chunk`` events.

    A protocol error here concerns one line: its bytes are consumed and the next call reads
    on, so that a server can send the error's ``hint`` and carry on. An over-long line is
    reported once, as soon as it is known to be too long, and the rest of it is dropped.
    After ``close``, complete events are still returned; ``close`` raises at once when the
    buffered bytes cannot make one.
    """

    def __init__(self, *, max_line_length: int = 8192, allow_bare_lf: bool = False) -> None:
        if max_line_length < 1:
            raise CodecUsageError("max_line_length must be positive")
        self._cfg = _Config(max_line_length, allow_bare_lf)
        self._state = _State.COMMAND
        self._buf = bytearray()
        self._scan = 0  # where _read_data resumes its search for CRLF.CRLF
        self._eof = False

    @property
    def pending(self) -> bytes:
        """Received bytes that are not part of any event returned yet."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        if self._eof:
            raise CodecUsageError("feed() after close()")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecUsageError(f"feed() takes bytes, not {type(data).__name__}")
        self._buf += data

    def start_data(self) -> None:
        """The server sent 354: the bytes that follow are message content."""
        self._change_state(_Happened.START_DATA)
        self._scan = 0

    def next_event(self) -> Command | MessageData | Chunk | Literal[NeedData.NEED_DATA]:
        while True:
            step = self._peek()
            if step is None:
                if self._state is _State.DATA:
                    self._scan = max(0, len(self._buf) - 4)  # a match may straddle feeds
                if self._eof:
                    self._raise_if_truncated()
                return NEED_DATA
            del self._buf[: step.consumed]
            self._scan = 0
            self._change_state(step.happened)
            if isinstance(step.event, SMTPProtocolError):
                raise step.event
            if step.event is not None:
                return step.event

    def close(self) -> None:
        """The peer closed the connection."""
        if self._eof:
            return
        self._eof = True
        if self._peek() is None:
            self._raise_if_truncated()

    def _peek(self) -> _Step | None:
        return _READERS[self._state](self._buf, self._cfg, self._scan)

    def _change_state(self, happened: _Happened) -> None:
        try:
            self._state = _TRANSITIONS[(self._state, happened)]
        except KeyError:
            raise CodecUsageError(
                f"{happened.value!r} is impossible in state {self._state.value!r}"
            ) from None

    def _raise_if_truncated(self) -> None:
        if self._state is _State.DATA:
            raise SMTPProtocolError(
                "connection closed in the middle of message data", data=self._buf[-100:]
            )
        if self._state is _State.COMMAND and self._buf:
            what = "BDAT chunk" if self._cfg.terminator in self._buf else "command line"
            raise SMTPProtocolError(
                f"connection closed in the middle of a {what}", data=self._buf
            )


# ESMTP helpers live in esmtp.py (which imports this module); they are re-exported lazily.
_ESMTP_NAMES = frozenset(
    {"EhloInfo", "parse_ehlo", "parse_mail_args", "parse_rcpt_args", "format_path_args"}
)


def __getattr__(name: str) -> object:
    if name in _ESMTP_NAMES:
        from . import esmtp

        return getattr(esmtp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
