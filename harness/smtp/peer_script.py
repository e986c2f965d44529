"""What a fake MX does, as data: reply actions and per-session scripts built from scenario mappings.

Kept apart from `peer.py` (sockets, threads, TLS) so scenario loading and validation need no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_EHLO: tuple[str, ...] = ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 52428800")


@dataclass(frozen=True)
class ReplyAction:
    """What the peer does at one point of the dialogue: wait, send bytes, then close or hang."""

    reply: bytes | None = None  # sent as-is: CRLF-terminated, possibly multi-line or malformed
    delay: float = 0.0
    close: bool = False  # after the reply, if any
    hang: bool = False  # send nothing more; keep the connection until the client leaves or stop()

    @property
    def code(self) -> int:
        """The reply code of the first line; 0 when the bytes carry none (no reply, or malformed)."""
        return reply_code(self.reply)


def reply_code(reply: bytes | None) -> int:
    if reply is None or len(reply) < 3 or not reply[:3].isdigit():
        return 0
    return int(reply[:3])


def text_reply(text: str) -> bytes:
    """ "353-a\\n353 b" -> b"353-a\\r\\n353 b\\r\\n": each line CRLF-terminated."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return b"".join(line.removesuffix("\r").encode("utf-8", "surrogateescape") + b"\r\n"
                    for line in lines)


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\x00", "\\": b"\\"}


def unescape_raw(text: str) -> bytes:
    r"""Scenario text with \r \n \t \0 \\ \xHH escapes -> the exact bytes to send."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8", "surrogateescape")
        esc = m.group(1)
        if esc.startswith("x") and len(esc) == 3:
            out.append(int(esc[1:], 16))
        elif esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc]
        else:
            raise ValueError(f"unknown escape \\{esc} in raw reply")
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


_ACTION_KEYS = {"reply", "raw", "delay", "close", "hang"}


def reply_action(spec: str | Mapping[str, Any] | ReplyAction, path: str = "reply") -> ReplyAction:
    """A ReplyAction from scenario data; ValueError names PATH, the key path of the bad value."""
    if isinstance(spec, ReplyAction):
        return spec
    if isinstance(spec, str):
        return ReplyAction(text_reply(spec))
    if not isinstance(spec, Mapping):
        raise ValueError(f"{path}: expected a reply string or a mapping, got {type(spec).__name__}")
    unknown = set(spec) - _ACTION_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if "reply" in spec and "raw" in spec:
        raise ValueError(f"{path}: give either reply or raw, not both")
    reply: bytes | None = None
    if spec.get("reply") is not None:
        if not isinstance(spec["reply"], str):
            raise ValueError(f"{path}.reply: expected a string")
        reply = text_reply(spec["reply"])
    elif spec.get("raw") is not None:
        raw = spec["raw"]
        if isinstance(raw, bytes):
            reply = raw
        elif isinstance(raw, str):
            try:
                reply = unescape_raw(raw)
            except ValueError as exc:
                raise ValueError(f"{path}.raw: {exc}") from None
        else:
            raise ValueError(f"{path}.raw: expected a string")
    delay = spec.get("delay", 0.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError(f"{path}.delay: expected a number of seconds >= 0")
    flags = {}
    for key in ("close", "hang"):
        value = spec.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"{path}.{key}: expected true or false")
        flags[key] = value
    return ReplyAction(reply, float(delay), **flags)


def _ok(text: str) -> ReplyAction:
    return ReplyAction(text_reply(text))


@dataclass
class PeerScript:
    """One session's behaviour. Treated as read-only once a FakeMX runs it."""

    banner: ReplyAction | None = None  # None: "220 <hostname> ESMTP fake"
    ehlo: list[str] = field(default_factory=lambda: list(DEFAULT_EHLO))
    helo_only: bool = False
    mail: ReplyAction = field(default_factory=lambda: _ok("250 2.1.0 ok"))
    rcpt: dict[str, ReplyAction] = field(default_factory=lambda: {"default": _ok("250 2.1.5 ok")})
    data: ReplyAction = field(default_factory=lambda: _ok("354 go ahead"))
    end_of_data: list[ReplyAction] = field(default_factory=lambda: [_ok("250 2.0.0 queued")])
    prdr: list[ReplyAction] | None = None  # None: the well-formed block (see FakeMX)
    rset: ReplyAction = field(default_factory=lambda: _ok("250 2.0.0 ok"))
    quit: ReplyAction = field(default_factory=lambda: _ok("221 2.0.0 bye"))
    starttls: ReplyAction = field(default_factory=lambda: _ok("220 2.0.0 ready to start TLS"))
    bdat: ReplyAction = field(default_factory=lambda: _ok("250 2.0.0 chunk ok"))

    def offers(self, keyword: str) -> bool:
        """Whether the EHLO list has KEYWORD (case-insensitive, parameters ignored)."""
        want = keyword.upper()
        return any(k.split(" ", 1)[0].upper() == want for k in self.ehlo) and not self.helo_only

    def rcpt_action(self, address: str) -> ReplyAction:
        return self.rcpt.get(address.lower()) or self.rcpt.get("default") or _ok("250 2.1.5 ok")


_SINGLE_KEYS = ("banner", "mail", "data", "rset", "quit", "starttls", "bdat")
_SCRIPT_KEYS = {*_SINGLE_KEYS, "ehlo", "helo_only", "rcpt", "end_of_data", "prdr"}


def _action_list(value: Any, path: str) -> list[ReplyAction]:
    if isinstance(value, (str, Mapping, ReplyAction)):
        return [reply_action(value, path)]
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected a list of replies")
    return [reply_action(v, f"{path}[{i}]") for i, v in enumerate(value)]


def script_from_data(data: Mapping[str, Any], base: PeerScript | None = None,
                     path: str = "peer") -> PeerScript:
    """A PeerScript from a scenario's peer mapping; keys not given keep BASE's (or default) values.

    `rcpt` entries are merged into BASE's, keys lower-cased. ValueError names the key path.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping")
    unknown = set(data) - _SCRIPT_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    script = replace(base) if base is not None else PeerScript()
    changes: dict[str, Any] = {}
    for key in _SINGLE_KEYS:
        if key in data:
            changes[key] = reply_action(data[key], f"{path}.{key}")
    if "ehlo" in data:
        ehlo = data["ehlo"]
        if not isinstance(ehlo, list) or not all(isinstance(k, str) and k.strip() for k in ehlo):
            raise ValueError(f"{path}.ehlo: expected a list of keyword strings")
        changes["ehlo"] = [k.strip() for k in ehlo]
    if "helo_only" in data:
        if not isinstance(data["helo_only"], bool):
            raise ValueError(f"{path}.helo_only: expected true or false")
        changes["helo_only"] = data["helo_only"]
    if "rcpt" in data:
        rcpt = data["rcpt"]
        if not isinstance(rcpt, Mapping):
            raise ValueError(f"{path}.rcpt: expected a mapping of address to reply")
        merged = dict(script.rcpt)
        for addr, spec in rcpt.items():
            if not isinstance(addr, str):
                raise ValueError(f"{path}.rcpt: addresses must be strings")
            merged[addr.lower()] = reply_action(spec, f"{path}.rcpt.{addr}")
        changes["rcpt"] = merged
    if "end_of_data" in data:
        changes["end_of_data"] = _action_list(data["end_of_data"], f"{path}.end_of_data")
    if "prdr" in data:
        changes["prdr"] = (None if data["prdr"] is None
                           else _action_list(data["prdr"], f"{path}.prdr"))
    return replace(script, **changes)
