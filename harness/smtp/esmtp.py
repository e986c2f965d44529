"""ESMTP parameters of MAIL/RCPT and the EHLO reply (RFC 5321 §4.1.1.1, §4.1.2; RFC 1869).

Pure functions: strings in, values out. Bad peer input raises ``SMTPProtocolError`` with the
reply a server should give as its hint; bad input from our own code raises
``CodecUsageError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .codec import CodecUsageError, Reply, SMTPProtocolError

__all__ = [
    "ESMTP_KEYWORD_RE",
    "ESMTP_VALUE_RE",
    "EhloInfo",
    "format_path_args",
    "parse_ehlo",
    "parse_mail_args",
    "parse_rcpt_args",
]

# RFC 5321 §4.1.2 (from RFC 1869): esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
# §4.1.1.1 gives ehlo-keyword the same form.
ESMTP_KEYWORD_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*", re.ASCII)
# RFC 5321 §4.1.2: esmtp-value = 1*(%d33-60 / %d62-126), i.e. no "=", SP or controls;
# RFC 6531 §3.3 adds UTF-8 beyond ASCII (here: any code point above 127).
ESMTP_VALUE_RE: Final = re.compile(r"[\x21-\x3c\x3e-\x7e\x80-\U0010ffff]+")

_PARAM_HINT = "501 5.5.4 syntax error in parameters"


def _error(message: str, args: str, hint: str) -> SMTPProtocolError:
    return SMTPProtocolError(message, data=args.encode("utf-8", "surrogateescape"), hint=hint)


def _path_end(text: str) -> int | None:
    """Index of the ">" closing the path that TEXT starts with ("<"), or None.

    RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">". A quoted local part may hold
    SP and ">" (qtextSMTP, quoted-pairSMTP), so quotes are followed; outside quotes SP, "<"
    and control characters cannot occur. The mailbox itself is not checked further: judging
    it is the business of whoever reads the result.
    """
    quoted = False
    i = 1
    while i < len(text):
        char = text[i]
        if char in "\r\n":
            return None
        if quoted:
            if char == "\\":  # quoted-pairSMTP: the next character is taken as is
                i += 1
                if i < len(text) and text[i] in "\r\n":
                    return None
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == ">":
            return i
        elif char in " <" or ord(char) < 32 or char == "\x7f":
            return None
        i += 1
    return None


def _parse_params(text: str, args: str) -> dict[str, str | None]:
    # Mail-parameters = esmtp-param *(SP esmtp-param); esmtp-param = esmtp-keyword ["=" value]
    params: dict[str, str | None] = {}
    for param in text.split(" "):
        keyword, eq, value = param.partition("=")
        if not ESMTP_KEYWORD_RE.fullmatch(keyword):
            raise _error(f"invalid esmtp-keyword in {param!r}", args, _PARAM_HINT)
        if eq and not ESMTP_VALUE_RE.fullmatch(value):
            raise _error(f"invalid esmtp-value in {param!r}", args, _PARAM_HINT)
        keyword = keyword.upper()
        if keyword in params:
            raise _error(f"parameter {keyword} given twice", args, _PARAM_HINT)
        params[keyword] = value if eq else None
    return params


def _parse_path_args(
    args: str, prefix: str, *, allow_null: bool, path_hint: str
) -> tuple[str, dict[str, str | None]]:
    head = prefix + ":"
    if args[: len(head)].upper() != head:
        raise _error(f"arguments do not start with {head}", args, "501 5.5.4 syntax error")
    rest = args[len(head) :]
    # RFC 5321 §3.3: no spaces on either side of the colon.
    if not rest.startswith("<"):
        raise _error(f"no '<' right after {head}", args, path_hint)
    end = _path_end(rest)
    if end is None:
        raise _error("path has no matching '>' or holds SP, '<' or controls", args, path_hint)
    path = rest[1:end]
    if not path and not allow_null:
        raise _error("empty path", args, path_hint)
    after = rest[end + 1 :]
    if not after:
        return path, {}
    if not after.startswith(" "):
        raise _error("path not followed by SP or end of line", args, path_hint)
    return path, _parse_params(after[1:], args)


def parse_mail_args(args: str) -> tuple[str, dict[str, str | None]]:
    """ "FROM:<a@b> SIZE=10 PRDR" -> ("a@b", {"SIZE": "10", "PRDR": None}).

    RFC 5321 §4.1.1.2: "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF, where
    Reverse-path may be the null path "<>". The path is returned as written between the
    brackets (a source route included).
    """
    return _parse_path_args(
        args, "FROM", allow_null=True, path_hint="501 5.1.7 bad sender address syntax"
    )


def parse_rcpt_args(args: str) -> tuple[str, dict[str, str | None]]:
    """RFC 5321 §4.1.1.3: "RCPT TO:" Forward-path [SP Rcpt-parameters] CRLF (no null path)."""
    return _parse_path_args(
        args, "TO", allow_null=False, path_hint="501 5.1.3 bad recipient address syntax"
    )


def format_path_args(prefix: str, path: str, params: Mapping[str, str | None]) -> str:
    """("FROM", "a@b", {"PRDR": None}) -> "FROM:<a@b> PRDR"; the inverse of parse_*_args."""
    if not re.fullmatch(r"[A-Za-z]+", prefix, re.ASCII):
        raise CodecUsageError(f"invalid prefix {prefix!r}")
    bracketed = f"<{path}>"
    if _path_end(bracketed) != len(bracketed) - 1:
        raise CodecUsageError(f"path {path!r} cannot be written between < and >")
    parts = [f"{prefix}:{bracketed}"]
    seen: set[str] = set()
    for keyword, value in params.items():
        if not ESMTP_KEYWORD_RE.fullmatch(keyword) or keyword.upper() in seen:
            raise CodecUsageError(f"invalid or repeated esmtp-keyword {keyword!r}")
        seen.add(keyword.upper())
        if value is None:
            parts.append(keyword)
        elif ESMTP_VALUE_RE.fullmatch(value):
            parts.append(f"{keyword}={value}")
        else:
            raise CodecUsageError(f"invalid esmtp-value {value!r} for {keyword}")
    return " ".join(parts)


@dataclass(frozen=True)
class EhloInfo:
    greeting: str  # text of the first line: Domain [ SP ehlo-greet ]
    keywords: dict[str, tuple[str, ...]]  # upper-cased keyword -> params
    raw_lines: tuple[str, ...]
    # Lines whose keyword breaks the ehlo-keyword grammar, and repeats of a keyword already
    # seen (the first one is kept).
    malformed: tuple[str, ...] = ()

    def supports(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords


def parse_ehlo(reply: Reply) -> EhloInfo:
    """The extensions a 250 EHLO reply announces.

    RFC 5321 §4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param ), ehlo-param =
    1*(%d33-126). Only a bad keyword makes a line malformed; odd params are kept as sent,
    split at spaces.
    """
    if reply.code != 250:
        raise SMTPProtocolError(
            f"EHLO answered with {reply.code}, not 250", data=reply.raw
        )
    keywords: dict[str, tuple[str, ...]] = {}
    malformed: list[str] = []
    for line in reply.lines[1:]:
        words = [word for word in line.split(" ") if word]
        if not words or not ESMTP_KEYWORD_RE.fullmatch(words[0]):
            malformed.append(line)
            continue
        keyword = words[0].upper()
        if keyword in keywords:
            malformed.append(line)
            continue
        keywords[keyword] = tuple(words[1:])
    return EhloInfo(reply.lines[0], keywords, reply.lines, tuple(malformed))
