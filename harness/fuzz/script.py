"""Inbound cases as byte scripts: what to send on one connection, and how many replies to read.

Every inbound lane (proxy, smtp) reduces what it generated to a Script, so that a finding is
replayed by sending the same bytes in the same pieces, whatever strategy or state machine made
them. Each reply read is judged by the grammar oracle on the way (RFC 5321 §4.2).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.yamlsrc import InputError
from ..proxy.codec import Address
from ..report.model import Evidence
from ..smtp.client import ConnectionClosed, ReplyTimeout, SMTPClient
from ..smtp.codec import Reply, SMTPProtocolError
from ..smtp.transcript import Transcript, visible
from .model import Execution, Violation, b64, unb64
from .oracles import ANY, GRAMMAR, GRAMMAR_CITE, MORE, reply_code_violations, unsolicited

SETTLE_S = 0.05  # after a step the server may answer more than once: wait this long for more

SOURCES = ("client", "listed", "unlisted")


@dataclass(frozen=True)
class Step:
    send: bytes = b""
    read: int = 0  # replies to read after sending
    delay: float = 0.0  # seconds to wait before sending
    shut: bool = False  # half-close after sending (after QUIT: Exim otherwise waits 200 ms)
    starttls: bool = False  # after a 220 reply, a TLS handshake; the rest runs over TLS
    expect: tuple[str, ...] = ()  # what each reply answers ("EHLO", "DATA", "END-OF-DATA"…)


@dataclass(frozen=True)
class Script:
    steps: tuple[Step, ...]
    source: str = "client"
    meta: Mapping[str, Any] = field(default_factory=dict)  # lane data (the PROXY header…)

    def sent(self) -> bytes:
        return b"".join(s.send for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "meta": dict(self.meta),
                "steps": [{"send": b64(s.send), "text": visible(s.send), "read": s.read, "delay": s.delay,
                           **({"shut": True} if s.shut else {}),
                           **({"starttls": True} if s.starttls else {}),
                           **({"expect": list(s.expect)} if s.expect else {})} for s in self.steps]}

    @classmethod
    def from_json(cls, data: Any, where: str = "case") -> Script:
        try:
            steps = tuple(Step(unb64(s["send"]), int(s.get("read", 0)), float(s.get("delay", 0.0)),
                               bool(s.get("shut", False)), bool(s.get("starttls", False)),
                               tuple(str(e) for e in s.get("expect", ()))) for s in data["steps"])
            source = str(data.get("source", "client"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(where, None, f"not a byte script: {exc!r}") from None
        if source not in SOURCES:
            raise InputError(where, None, f"source {source!r}: one of {', '.join(SOURCES)}")
        return cls(steps, source, dict(data.get("meta", {})))


@dataclass
class Played:
    """A script's run: the replies, how it ended, and the transcript."""

    replies: list[Reply] = field(default_factory=list)
    transcript: Transcript = field(default_factory=Transcript)
    ended: str = "done"  # done | closed | timeout | malformed | connect-failed
    error: str = ""
    local: Address | None = None  # the connection's own end, as the target sees it

    def evidence(self, label: str = "session (harness → target)") -> Evidence:
        return Evidence(label, "transcript", self.transcript.to_evidence())


def judge(played: Played, execution: Execution) -> None:
    """Reply classes and the grammar oracle into EXECUTION."""
    execution.reply_classes.update(str(r.code) for r in played.replies)
    if played.ended != "done":
        execution.reply_classes.add(played.ended)
    if played.ended in ("timeout", "closed"):
        execution.suspicious = execution.suspicious or played.ended == "timeout"
    if played.ended == "malformed":
        execution.violations.append(Violation(GRAMMAR, played.error, GRAMMAR_CITE, (played.evidence(),)))


def after_ambiguity(expects: list[str]) -> list[str]:
    """Once a step may have been answered any number of times, which reply answers which later
    command is a guess: the later expectations become ANY."""
    if MORE not in expects:
        return expects
    at = expects.index(MORE)
    return expects[:at] + [ANY] * (len(expects) - at)


def judge_script(script: Script, played: Played, execution: Execution) -> None:
    """`judge`, plus the reply-code oracles for the steps that say what their replies answer."""
    judge(played, execution)
    expects = after_ambiguity([e for s in script.steps for e in (s.expect or (ANY,) * s.read)])
    execution.violations.extend(reply_code_violations(expects, played.replies))
    if played.ended == "done":
        execution.violations.extend(unsolicited(expects, played.replies))
    for v in execution.violations:
        if not v.evidence:
            execution.violations[execution.violations.index(v)] = Violation(
                v.oracle, v.message, v.cite, (played.evidence(),))


class Conversation:
    """One live connection, step by step (the smtp lane's state machine drives it a step at a
    time; `play` runs a whole script)."""

    def __init__(self, connect: Callable[[str], socket.socket], source: str, reply_timeout: float) -> None:
        self.played = Played()
        self.client: SMTPClient | None = None
        self.closed = False
        try:
            sock = connect(source)
        except OSError as exc:
            self.played.ended, self.played.error = "connect-failed", f"connect failed: {exc}"
            self.played.transcript.note(self.played.error)
            return
        host, port = sock.getsockname()[:2]
        self.played.local = Address(host, port)
        self.client = SMTPClient(sock, self.played.transcript, reply_timeout=reply_timeout)

    @property
    def open(self) -> bool:
        return self.client is not None and not self.closed and self.played.ended == "done"

    def step(self, step: Step) -> list[Reply]:
        """Send, then read; stops at the first close, time-out or malformed reply."""
        got: list[Reply] = []
        if not self.open:
            return got
        assert self.client is not None
        try:
            if step.delay:
                time.sleep(step.delay)
            if step.send:
                self.client.send(step.send)
            if step.shut:
                try:
                    self.client.sock.shutdown(socket.SHUT_WR)
                except OSError as exc:
                    raise ConnectionClosed(f"shutdown failed: {exc}") from None
                self.client.half_closed = True
            for _ in range(step.read):
                got.append(self.client.read_reply())
            while MORE in step.expect:  # the rest of what it said about this step
                try:
                    got.append(self.client.read_reply(SETTLE_S))
                except ReplyTimeout:
                    break
            if step.starttls and got and got[-1].code == 220:
                self._handshake()
        except ReplyTimeout as exc:
            self.played.ended, self.played.error = "timeout", str(exc)
        except ConnectionClosed as exc:
            self.played.ended, self.played.error = "closed", str(exc)
        except SMTPProtocolError as exc:
            self.played.ended, self.played.error = "malformed", f"malformed reply: {exc}"
        self.played.replies.extend(got)
        return got

    def _handshake(self) -> None:
        """RFC 3207 §4.2: TLS, then a fresh parser (nothing before TLS counts)."""
        from ..smtp.starttls import client_handshake

        assert self.client is not None
        tls_sock, info = client_handshake(self.client.sock, None, self.client.reply_timeout)  # type: ignore[arg-type]
        if tls_sock is None:
            self.played.ended, self.played.error = "tls-failed", f"TLS handshake failed: {info['error']}"
            self.played.transcript.note(self.played.error)
            return
        self.played.transcript.note(f"TLS established: {info['version']} {info['cipher']}")
        self.client.sock = tls_sock  # type: ignore[assignment]
        self.client.parser = type(self.client.parser)()

    def close(self) -> Played:
        """End the connection: what already arrived is parsed too (no waiting for more)."""
        if self.client is None or self.closed:
            return self.played
        self.closed = True
        if self.played.ended == "done":
            try:
                if not isinstance(self.client.sock, socket.socket):
                    raise BlockingIOError  # over TLS: what is buffered already was read
                self.client.sock.setblocking(False)
                while True:
                    chunk = self.client.sock.recv(65536)
                    if not chunk:
                        self.client.parser.close()
                        break
                    self.played.transcript.add("S", chunk)
                    self.client.parser.feed(chunk)
            except (BlockingIOError, OSError):
                pass
            except SMTPProtocolError as exc:
                self.played.ended, self.played.error = "malformed", f"malformed reply: {exc}"
            try:
                while self.played.ended == "done":
                    event = self.client.parser.next_event()
                    if not isinstance(event, Reply):
                        break
                    self.played.replies.append(event)
            except SMTPProtocolError as exc:
                self.played.ended, self.played.error = "malformed", f"malformed reply: {exc}"
        self.client.close()
        return self.played


def play(script: Script, connect: Callable[[str], socket.socket], reply_timeout: float) -> Played:
    conv = Conversation(connect, script.source, reply_timeout)
    for step in script.steps:
        if not conv.open:
            break
        conv.step(step)
    return conv.close()
