"""Hypothesis strategies for valid SMTP replies, commands, paths, parameters and message data.

Like Hypothesis's own strategies, arguments are keyword-only and checked when the strategy is
built (``InvalidArgument``), and the values lean towards edge cases: ESC-like reply text,
dots at line starts, bare CR/LF in message data, quoted local parts holding SP and ">".
Everything drawn here is valid input for the encoders in ``harness.smtp.codec`` and
``harness.smtp.esmtp``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .codec import ESC_RE, ReplyCode, encode_command, encode_reply

__all__ = [
    "KNOWN_VERBS",
    "CommandArgs",
    "ReplyArgs",
    "command_args",
    "command_lines",
    "encoded_replies",
    "enhanced_status_codes",
    "esmtp_keywords",
    "esmtp_params",
    "esmtp_values",
    "message_contents",
    "paths",
    "reply_args",
    "reply_codes",
    "reply_texts",
    "verbs",
]


class ReplyArgs(NamedTuple):
    """Arguments for ``encode_reply``: the lines are the texts without the ESC."""

    code: int
    lines: tuple[str, ...]
    esc: str | None


class CommandArgs(NamedTuple):
    verb: str
    args: str


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidArgument(message)


def _check_size(name: str, value: int, minimum: int = 0) -> None:
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        f"{name}={value!r} must be an integer >= {minimum}",
    )


def _check_classes(classes: Iterable[int], allowed: tuple[int, ...]) -> tuple[int, ...]:
    classes = tuple(classes)
    _check(
        bool(classes) and all(c in allowed for c in classes),
        f"classes={classes!r} must be a non-empty selection of {allowed}",
    )
    return classes


def _mixed_case(word: str) -> SearchStrategy[str]:
    """WORD as given, upper, lower, or with each letter's case drawn."""
    return st.one_of(
        st.just(word),
        st.just(word.upper()),
        st.just(word.lower()),
        st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
            lambda flips: "".join(c.upper() if f else c.lower() for c, f in zip(word, flips))
        ),
    )


# Replies -----------------------------------------------------------------------------------

_ASCII_TEXT = st.characters(min_codepoint=32, max_codepoint=126) | st.just("\t")
_UTF8_TEXT = _ASCII_TEXT | st.characters(min_codepoint=128, exclude_categories=("Cs", "Cc"))


def reply_codes(*, classes: Iterable[int] = (2, 3, 4, 5)) -> SearchStrategy[int]:
    """Reply codes of RFC 5321 §4.2 grammar (%x32-35 %x30-35 %x30-39), mostly named ones."""
    classes = _check_classes(classes, (2, 3, 4, 5))
    named = [int(code) for code in ReplyCode if code // 100 in classes]
    generic = st.builds(
        lambda c, d, u: 100 * c + 10 * d + u,
        st.sampled_from(classes),
        st.integers(0, 5),
        st.integers(0, 9),
    )
    return st.sampled_from(named) | generic if named else generic


_ESC_EDGES = ("0.0", "1.1", "7.1", "999.999", "0.000", "01.1")


def enhanced_status_codes(*, classes: Iterable[int] = (2, 4, 5)) -> SearchStrategy[str]:
    """RFC 3463 §2 codes: class.subject.detail with subject and detail of 1 to 3 digits."""
    classes = _check_classes(classes, (2, 4, 5))
    number = st.integers(0, 999).map(str) | st.from_regex(r"\A[0-9]{1,3}\Z")
    generic = st.builds(lambda c, s, d: f"{c}.{s}.{d}", st.sampled_from(classes), number, number)
    edges = st.builds(
        lambda c, rest: f"{c}.{rest}", st.sampled_from(classes), st.sampled_from(_ESC_EDGES)
    )
    return (edges | generic).filter(ESC_RE.fullmatch)


_TEXT_EDGES = ("", " ", "\t", "-", " leading space", "trailing space ", "250 looks like a reply",
               "2.0.0", "5.7.1 esc-like", "4.4.1", "PRDR", "SIZE 10240000", ".", "a\tb")


def reply_texts(*, max_size: int = 60, allow_8bit: bool = False) -> SearchStrategy[str]:
    """Text of one reply line (RFC 5321 §4.2 textstring: tab and printable ASCII)."""
    _check_size("max_size", max_size)
    alphabet = _UTF8_TEXT if allow_8bit else _ASCII_TEXT
    edges = [text for text in _TEXT_EDGES if len(text) <= max_size]
    return st.sampled_from(edges) | st.text(alphabet, max_size=max_size)


def _starts_with_esc(code: int, text: str) -> bool:
    match = ESC_RE.match(text)
    return (
        match is not None
        and int(match.group(1)) == code // 100
        and text[match.end() : match.end() + 1] in ("", " ")
    )


def reply_args(
    *,
    codes: SearchStrategy[int] | None = None,
    min_lines: int = 1,
    max_lines: int = 4,
    esc: bool | None = None,
    max_text_size: int = 60,
    allow_8bit: bool = False,
) -> SearchStrategy[ReplyArgs]:
    """Arguments for a valid reply.

    ESC=True: always an ESC where the code's class has them (not for 3xx); False: never;
    None: either. Without an ESC, the first line never starts with ESC-like text, so that
    ``ReplyParser`` gives ``esc=None`` back.
    """
    _check_size("min_lines", min_lines, 1)
    _check_size("max_lines", max_lines, min_lines)
    _check(codes is None or isinstance(codes, SearchStrategy), "codes must be a strategy")
    _check(esc in (True, False, None), f"esc={esc!r} must be True, False or None")
    code_strategy = codes if codes is not None else reply_codes()
    text_strategy = reply_texts(max_size=max_text_size, allow_8bit=allow_8bit)

    @st.composite
    def build(draw: st.DrawFn) -> ReplyArgs:
        code = draw(code_strategy)
        lines = draw(st.lists(text_strategy, min_size=min_lines, max_size=max_lines))
        want_esc = draw(st.booleans()) if esc is None else esc
        esc_code = None
        if want_esc and code // 100 in (2, 4, 5):
            esc_code = draw(enhanced_status_codes(classes=(code // 100,)))
        elif _starts_with_esc(code, lines[0]):
            lines[0] = "x" + lines[0]
        return ReplyArgs(code, tuple(lines), esc_code)

    return build()


def encoded_replies(
    *,
    codes: SearchStrategy[int] | None = None,
    min_lines: int = 1,
    max_lines: int = 4,
    esc: bool | None = None,
    max_text_size: int = 60,
    allow_8bit: bool = False,
) -> SearchStrategy[bytes]:
    """Wire bytes of valid replies (see ``reply_args``)."""
    args = reply_args(
        codes=codes,
        min_lines=min_lines,
        max_lines=max_lines,
        esc=esc,
        max_text_size=max_text_size,
        allow_8bit=allow_8bit,
    )
    return args.map(lambda a: encode_reply(a.code, a.lines, esc=a.esc))


# Commands ----------------------------------------------------------------------------------

KNOWN_VERBS = ("HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN",
               "HELP", "STARTTLS", "AUTH", "BDAT", "ETRN", "XCLIENT")


def verbs(*, exclude: Iterable[str] = ("BDAT",)) -> SearchStrategy[str]:
    """Command verbs in any letter case; BDAT is left out by default, because a valid BDAT
    line is followed by chunk data and so is not a command on its own."""
    excluded = {verb.upper() for verb in exclude}
    known = [verb for verb in KNOWN_VERBS if verb not in excluded]
    invented = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,11}\Z")
    strategy = invented if not known else st.sampled_from(known).flatmap(_mixed_case) | invented
    return strategy.filter(lambda verb: verb.upper() not in excluded)


_ARG_EDGES = ("", " ", "  two leading spaces", "FROM:<>", "FROM:<a@example.org> SIZE=100",
              "TO:<postmaster>", "client.example", "[192.0.2.1]", "PLAIN AGFAYgBj", "trailing ")


def command_args(
    *,
    verbs: SearchStrategy[str] | None = None,
    max_size: int = 60,
    allow_8bit: bool = False,
) -> SearchStrategy[CommandArgs]:
    _check_size("max_size", max_size)
    _check(verbs is None or isinstance(verbs, SearchStrategy), "verbs must be a strategy")
    verb_strategy = verbs if verbs is not None else _default_verbs
    alphabet = _UTF8_TEXT if allow_8bit else _ASCII_TEXT
    edges = [text for text in _ARG_EDGES if len(text) <= max_size]
    args = st.sampled_from(edges) | st.text(alphabet, max_size=max_size)
    return st.builds(CommandArgs, verb_strategy, args)


_default_verbs = verbs()


def command_lines(
    *,
    verbs: SearchStrategy[str] | None = None,
    max_size: int = 60,
    allow_8bit: bool = False,
) -> SearchStrategy[bytes]:
    """Wire bytes of valid command lines (see ``command_args``)."""
    args = command_args(verbs=verbs, max_size=max_size, allow_8bit=allow_8bit)
    return args.map(lambda c: encode_command(c.verb, c.args))


# Paths and ESMTP parameters ----------------------------------------------------------------

_ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
_QTEXT = "".join(chr(c) for c in range(32, 127) if chr(c) not in '"\\')
_PATH_EDGES = ("postmaster", "Postmaster", "a@b", '"a b"@example.org', '"a>b"@example.org',
               '"\\""@example.org', "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]",
               "@relay.example,@other.example:user@example.org", "a.b.c@d-e.example")


def _dot_atom(alphabet: str) -> SearchStrategy[str]:
    atom = st.text(alphabet, min_size=1, max_size=8)
    return st.lists(atom, min_size=1, max_size=3).map(".".join)


_label = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?\Z")
_domains = st.lists(_label, min_size=1, max_size=4).map(".".join)
_quoted_local = st.lists(
    st.sampled_from(_QTEXT) | st.sampled_from(_QTEXT + '"\\').map(lambda c: "\\" + c),
    max_size=10,
).map(lambda parts: '"' + "".join(parts) + '"')


def paths(
    *,
    allow_null: bool = False,
    allow_quoted: bool = True,
    allow_utf8: bool = False,
) -> SearchStrategy[str]:
    """What goes between "<" and ">" of a MAIL/RCPT path (RFC 5321 §4.1.2)."""
    atext = _ATEXT + ("éßλ中" if allow_utf8 else "")
    local = _dot_atom(atext) | _quoted_local if allow_quoted else _dot_atom(atext)
    edges = [p for p in _PATH_EDGES if allow_quoted or '"' not in p]
    strategy = st.sampled_from(edges) | st.builds(lambda lp, d: f"{lp}@{d}", local, _domains)
    return strategy | st.just("") if allow_null else strategy


_KNOWN_KEYWORDS = ("SIZE", "BODY", "PRDR", "SMTPUTF8", "NOTIFY", "ORCPT", "RET", "ENVID",
                   "AUTH", "REQUIRETLS", "MT-PRIORITY", "HOLDFOR", "X-1")
_VALUE_EDGES = ("0", "10240000", "8BITMIME", "7BIT", "SUCCESS,FAILURE", "NEVER", "HDRS",
                "rfc822;user@example.org", "<>", "a+2Bb", "QQ-1")
_VALUE_ALPHABET = "".join(chr(c) for c in range(33, 127) if chr(c) != "=")


def esmtp_keywords() -> SearchStrategy[str]:
    """esmtp-keyword (RFC 5321 §4.1.2) in any letter case."""
    invented = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,10}\Z")
    return st.sampled_from(_KNOWN_KEYWORDS).flatmap(_mixed_case) | invented


def esmtp_values(*, allow_utf8: bool = False) -> SearchStrategy[str]:
    """esmtp-value: 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 §3.3) when allowed."""
    alphabet = st.sampled_from(_VALUE_ALPHABET)
    if allow_utf8:
        alphabet = alphabet | st.characters(
            min_codepoint=128, exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")
        )
    return st.sampled_from(_VALUE_EDGES) | st.text(alphabet, min_size=1, max_size=20)


def esmtp_params(
    *, max_size: int = 4, allow_utf8: bool = False
) -> SearchStrategy[dict[str, str | None]]:
    """Parameters with keywords distinct regardless of case."""
    _check_size("max_size", max_size)
    pair = st.tuples(esmtp_keywords(), st.none() | esmtp_values(allow_utf8=allow_utf8))
    return st.lists(pair, max_size=max_size, unique_by=lambda kv: kv[0].upper()).map(dict)


# Message data ------------------------------------------------------------------------------

_CONTENT_EDGES = (b"\r\n", b".", b"..", b".\r\n", b"\r\n.\r\n", b"\r\n..\r\n", b"\n.\n",
                  b"\r\n.\n", b"\n.\r\n", b"\n", b"\r", b"\r\r\n", b"\x00", b"\xff\xfe",
                  b"Subject: edge\r\n", b"\r\n\r\n")


def message_contents(*, max_pieces: int = 20) -> SearchStrategy[bytes]:
    """Arbitrary message bytes, built from pieces that stress dot-stuffing and line ends."""
    _check_size("max_pieces", max_pieces)
    piece = st.sampled_from(_CONTENT_EDGES) | st.binary(max_size=12)
    return st.lists(piece, max_size=max_pieces).map(b"".join)
