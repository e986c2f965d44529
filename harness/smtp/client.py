"""A blocking SMTP client for inbound sessions that records everything and never trusts the peer.

Scenarios must be able to misbehave (raw sends, half-finished commands), so this is a thin layer
over a socket and the sans-I/O codec rather than a full-featured library client.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from .codec import NEED_DATA, Reply, ReplyParser, SMTPProtocolError
from .transcript import Transcript


class ConnectionClosed(Exception):
    """The server closed the connection (or reset it) while we waited for a reply."""


class ReplyTimeout(Exception):
    """No complete reply arrived in time."""


@dataclass
class ClientConfig:
    reply_timeout: float = 10.0


class SMTPClient:
    def __init__(self, sock: socket.socket, transcript: Transcript, *,
                 reply_timeout: float = 10.0) -> None:
        self.sock = sock
        self.transcript = transcript
        self.reply_timeout = reply_timeout
        self.parser = ReplyParser()
        self.closed_by_peer = False
        self.half_closed = False

    def send(self, data: bytes) -> None:
        self.transcript.add("C", data)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.closed_by_peer = True
            raise ConnectionClosed(f"send failed: {exc}") from None

    def read_reply(self, timeout: float | None = None) -> Reply:
        """The next reply; ReplyTimeout, ConnectionClosed, or SMTPProtocolError for garbage."""
        deadline = time.monotonic() + (self.reply_timeout if timeout is None else timeout)
        while True:
            event = self.parser.next_event()
            if event is not NEED_DATA:
                return event  # type: ignore[return-value]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplyTimeout(f"no complete reply within {timeout or self.reply_timeout:.1f} s")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                self.closed_by_peer = True
                raise ConnectionClosed(f"recv failed: {exc}") from None
            if not chunk:
                self.closed_by_peer = True
                self.transcript.note("server closed the connection")
                self.parser.close()  # raises SMTPProtocolError if a reply was cut short
                raise ConnectionClosed("server closed the connection")
            self.transcript.add("S", chunk)
            self.parser.feed(chunk)

    def command(self, line: bytes | str, timeout: float | None = None) -> Reply:
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        self.send(line + b"\r\n")
        return self.read_reply(timeout)

    def drain(self, settle: float) -> tuple[list[Reply], str | None]:
        """Replies that arrive within SETTLE seconds of quiet (unsolicited or extra lines), and
        the protocol error that ended the drain, if garbage arrived instead."""
        extra: list[Reply] = []
        while True:
            try:
                extra.append(self.read_reply(settle))
            except (ReplyTimeout, ConnectionClosed):
                return extra, None
            except SMTPProtocolError as exc:
                return extra, f"malformed reply: {exc}"

    def quit(self) -> Reply | None:
        """QUIT, then half-close so the server need not wait (Exim: 200 ms otherwise)."""
        try:
            self.send(b"QUIT\r\n")
            self.sock.shutdown(socket.SHUT_WR)
            self.half_closed = True
            return self.read_reply()
        except (ConnectionClosed, ReplyTimeout, SMTPProtocolError, OSError):
            return None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
