"""FakeMX: a scriptable SMTP server that plays the MX hosts a target MTA delivers to.

Each accepted connection runs in its own thread against a `PeerScript` and leaves a
`PeerSession` behind: the observation that checks read. Sockets are blocking with a kernel
receive timeout (SO_RCVTIMEO) rather than Python timeouts, because pyOpenSSL needs a blocking
socket (LAB-NOTES "Clients and peers") and the same read path then serves plain and TLS.
`stop()` wakes every blocked thread by shutting its socket down.
"""

from __future__ import annotations

import dataclasses
import select
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from .codec import NEED_DATA, Chunk, Command, CommandParser, MessageData, SMTPProtocolError
from .esmtp import parse_mail_args, parse_rcpt_args
from .peer_script import (
    DEFAULT_EHLO,
    PeerScript,
    ReplyAction,
    reply_action,
    reply_code,
    script_from_data,
    text_reply,
)
from .transcript import Transcript

__all__ = [
    "DEFAULT_EHLO",
    "FakeMX",
    "PeerScript",
    "PeerSession",
    "ReplyAction",
    "Transaction",
    "reply_action",
    "script_from_data",
    "tls_context",
]

SocketFactory = Callable[[int, int], socket.socket]
Params = dict[str, str | None]

_RECV_SIZE = 65536
_JOIN_TIMEOUT = 2.0


@dataclass
class Transaction:
    """One MAIL transaction (RFC 5321 §3.3): MAIL, RCPTs, and the message if one arrived."""

    mail: Command
    reverse_path: str
    mail_params: Params
    prdr_requested: bool
    rcpts: list[tuple[str, Params, int]] = field(default_factory=list)
    message: bytes | None = None
    body_via: str | None = None  # "DATA" | "BDAT"
    data_replies_sent: list[bytes] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    @property
    def accepted(self) -> list[tuple[str, Params, int]]:
        return [r for r in self.rcpts if 200 <= r[2] < 300]


@dataclass
class PeerSession:
    """What one connection saw. Session-wide lists accumulate over all transactions of the
    connection; `mail`, `mail_params` and `prdr_requested` describe the latest MAIL."""

    index: int
    peer: str
    client: tuple[str, int]
    transcript: Transcript
    ehlo_name: str | None = None
    mail: Command | None = None
    mail_params: Params = field(default_factory=dict)
    rcpts: list[tuple[str, Params, int]] = field(default_factory=list)
    prdr_requested: bool = False
    messages: list[bytes] = field(default_factory=list)
    data_replies_sent: list[bytes] = field(default_factory=list)  # replies after end of data
    closed_by: str | None = None  # "client" | "peer" | "error"; None while open
    tls: dict[str, Any] | None = None
    error: str | None = None  # a harness failure (traceback), never the client's misbehaviour
    started: float = field(default_factory=time.monotonic)  # time.monotonic()
    ended: float | None = None
    segments: list[tuple[float, bytes]] = field(default_factory=list)  # (monotonic, recv bytes)
    commands: list[Command] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)
    end_reason: str | None = None

    def snapshot(self) -> PeerSession:
        return dataclasses.replace(
            self,
            mail_params=dict(self.mail_params), rcpts=list(self.rcpts),
            messages=list(self.messages), data_replies_sent=list(self.data_replies_sent),
            tls=None if self.tls is None else dict(self.tls), segments=list(self.segments),
            commands=list(self.commands), transactions=list(self.transactions),
            protocol_errors=list(self.protocol_errors),
        )


# TLS ---------------------------------------------------------------------------------------

_TLS_KEYS = {"cert_pem", "key_pem", "chain_pem", "ocsp_staple", "min_version", "max_version",
             "raw_flight"}  # raw_flight: a scripted TLS 1.2 flight (tls_flight.py, OCSP issue #5)
_TLS_VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}


def _on_servername(conn: SSL.Connection) -> None:
    name = conn.get_servername()
    conn.get_app_data()["sni"] = None if name is None else name.decode("ascii", "replace")


def _on_ocsp_request(conn: SSL.Connection, staple: bytes | None) -> bytes:
    # OpenSSL calls this only when the ClientHello carried status_request (RFC 6066 §8).
    info = conn.get_app_data()
    info["ocsp_requested"] = True
    info["ocsp_stapled"] = bool(staple)
    return staple or b""  # empty: no CertificateStatus


def _on_info(conn: SSL.Connection, where: int, ret: int) -> None:
    if where & SSL.SSL_CB_ALERT:
        key = "alerts_received" if where & SSL.SSL_CB_READ else "alerts_sent"
        conn.get_app_data()[key].append(ret & 0xFF)  # AlertDescription (RFC 8446 §6)


def tls_context(tls: Mapping[str, Any]) -> SSL.Context:
    """A server context from {cert_pem, key_pem, chain_pem?, ocsp_staple?, min/max_version?}.

    cert_pem may hold the whole chain (leaf first); chain_pem adds certificates after it.
    """
    unknown = set(tls) - _TLS_KEYS
    if unknown:
        raise ValueError(f"tls: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("cert_pem", "key_pem"):
        if not isinstance(tls.get(key), bytes):
            raise ValueError(f"tls.{key}: PEM bytes required")
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    certs = x509.load_pem_x509_certificates(tls["cert_pem"])
    if tls.get("chain_pem"):
        certs += x509.load_pem_x509_certificates(tls["chain_pem"])
    ctx.use_certificate(certs[0])
    for cert in certs[1:]:
        ctx.add_extra_chain_cert(cert)
    ctx.use_privatekey(serialization.load_pem_private_key(tls["key_pem"], None))
    ctx.check_privatekey()
    for key, setter in (("min_version", ctx.set_min_proto_version),
                        ("max_version", ctx.set_max_proto_version)):
        if tls.get(key) is not None:
            if tls[key] not in _TLS_VERSIONS:
                raise ValueError(f"tls.{key}: one of {', '.join(_TLS_VERSIONS)}")
            setter(_TLS_VERSIONS[tls[key]])
    ctx.set_tlsext_servername_callback(_on_servername)
    staple = tls.get("ocsp_staple")
    if staple is not None and not isinstance(staple, bytes):
        raise ValueError("tls.ocsp_staple: DER bytes required")
    ctx.set_ocsp_server_callback(_on_ocsp_request, staple)
    ctx.set_info_callback(_on_info)
    return ctx


# One connection ----------------------------------------------------------------------------


class _End(Exception):
    """Ends the dialogue: why, and who ended it."""

    def __init__(self, reason: str, closed_by: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.closed_by = closed_by


class _Dialogue:
    """The server side of one SMTP connection (RFC 5321 §4.1.4 command order)."""

    def __init__(self, mx: FakeMX, sock: socket.socket, session: PeerSession,
                 script: PeerScript) -> None:
        self.mx = mx
        self.sock = sock
        self.session = session
        self.script = script
        self.transcript = session.transcript
        self.stop = mx._stop
        self.tls_conn: SSL.Connection | None = None
        self.parser = CommandParser()
        self.greeted = False
        self.offered: set[str] = set()
        self.txn: Transaction | None = None
        self.handlers: dict[str, Callable[[Command], None]] = {
            "EHLO": self._ehlo, "HELO": self._helo, "MAIL": self._mail, "RCPT": self._rcpt,
            "DATA": self._data, "BDAT": self._bad_bdat, "RSET": self._rset, "NOOP": self._noop,
            "QUIT": self._quit, "STARTTLS": self._starttls, "VRFY": self._vrfy,
            "HELP": self._help,
        }

    # -- run ----------------------------------------------------------------------------------

    def run(self) -> None:
        session = self.session
        try:
            self._dialogue()
        except _End as end:
            if self.stop.is_set() and end.closed_by != "peer":
                end = _End("stopped", "peer")
            session.end_reason, session.closed_by = end.reason, end.closed_by
        except Exception as exc:  # noqa: BLE001 - recorded, never lost with the thread
            if self.stop.is_set() and isinstance(exc, (OSError, SSL.Error)):
                session.end_reason, session.closed_by = "stopped", "peer"
            else:
                session.error = traceback.format_exc()
                session.end_reason, session.closed_by = f"error: {exc!r}", "error"
        finally:
            self._close()
            self.transcript.note(f"session ended: {session.end_reason} "
                                 f"(closed by {session.closed_by})")
            session.ended = time.monotonic()

    def _dialogue(self) -> None:
        banner = self.script.banner or ReplyAction(
            text_reply(f"220 {self.mx.hostname} ESMTP fake"))
        self._perform(banner)
        while True:
            event = self._next_event()
            if isinstance(event, Command):
                self.session.commands.append(event)
                self.handlers.get(event.verb, self._unknown)(event)
            elif isinstance(event, MessageData):
                self._message(event.content, "DATA")
            else:
                self._chunk(event)

    # -- I/O ------------------------------------------------------------------------------------

    def _recv(self) -> bytes | None:
        """Bytes from the client; b"" when it closed; None on read timeout."""
        try:
            data = (self.tls_conn or self.sock).recv(_RECV_SIZE)
        except (BlockingIOError, TimeoutError, SSL.WantReadError):
            return None
        except (SSL.ZeroReturnError, ConnectionError):
            data = b""
        except SSL.SysCallError as exc:  # (-1, "Unexpected EOF") or an errno
            self.transcript.note(f"TLS read: {exc}")
            data = b""
        except SSL.Error as exc:  # e.g. a fatal alert after the handshake
            self.transcript.note(f"TLS read error: {exc}")
            data = b""
        if data:
            self.session.segments.append((time.monotonic(), data))
            self.transcript.add("C", data)
        elif self.stop.is_set():
            raise _End("stopped", "peer")
        return data

    def _send(self, data: bytes) -> None:
        # One sendall per reply with TCP_NODELAY (LAB-NOTES: line-by-line writes stall 40 ms).
        self.transcript.add("S", data)
        try:
            (self.tls_conn or self.sock).sendall(data)
        except (OSError, SSL.Error) as exc:
            if self.stop.is_set():
                raise _End("stopped", "peer") from None
            raise _End(f"send failed: {exc}", "client") from None

    def _delay(self, seconds: float) -> None:
        """Wait SECONDS before a reply, still reading what the client sends meanwhile.

        Bytes that arrive during the pause are recorded when they arrive and queued for the
        parser, so a pipelining client's commands are seen before the delayed reply (PRDR-23).
        Over TLS the pause only waits: records cannot be read without the TLS layer.
        """
        deadline = time.monotonic() + seconds
        reading = self.tls_conn is None
        while (remaining := deadline - time.monotonic()) > 0:
            if not reading:
                if self.stop.wait(remaining):
                    raise _End("stopped", "peer")
                return
            if self.stop.is_set():
                raise _End("stopped", "peer")
            ready, _, _ = select.select([self.sock], [], [], min(remaining, 0.05))
            if not ready:
                continue
            try:
                data = self.sock.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                reading = False
                continue
            if not data:  # the client closed; the next read after the reply sees it again
                reading = False
                continue
            self.session.segments.append((time.monotonic(), data))
            self.transcript.add("C", data)
            self.parser.feed(data)

    def _perform(self, action: ReplyAction, *record: list[bytes]) -> None:
        """Wait, send, then hang or close as ACTION says; RECORD lists get the reply once sent."""
        if action.delay > 0:
            self._delay(action.delay)
        if action.reply is not None:
            self._send(action.reply)
            for sink in record:
                sink.append(action.reply)
        if action.hang:
            self._hang()
        if action.close:
            raise _End("scripted close", "peer")

    def _reply(self, text: str) -> None:
        self._send(text_reply(text))

    def _hang(self) -> None:
        """Send nothing more and keep the connection. A client's FIN does not end the hang: Exim
        half-closes right after the QUIT it pipelines behind the message, and a server that hangs
        keeps its side open, so the client must time out on its own (PRDR-20)."""
        self.transcript.note("hanging")
        half_closed = False
        while not self.stop.is_set():
            if half_closed:
                self.stop.wait(0.05)
            elif self._recv() == b"":
                half_closed = True
                self.transcript.note("the client half-closed; the peer keeps hanging")
                self.mx._settle(self.session.index)
        raise _End("stopped", "peer")

    def _next_event(self) -> Command | MessageData | Chunk:
        while True:
            try:
                event = self.parser.next_event()
            except SMTPProtocolError as exc:
                self._protocol_error(exc)
                continue
            if event is not NEED_DATA:
                return event
            data = self._recv()
            if data is None:
                self._reply(f"421 4.4.2 {self.mx.hostname} idle timeout")
                raise _End("read timeout", "peer")
            if not data:
                try:
                    self.parser.close()
                except SMTPProtocolError as exc:
                    self.session.protocol_errors.append(str(exc))
                    self.transcript.note(f"protocol error: {exc}")
                raise _End("client closed", "client")
            self.parser.feed(data)

    def _protocol_error(self, exc: SMTPProtocolError) -> None:
        self.session.protocol_errors.append(str(exc))
        self.transcript.note(f"protocol error: {exc}")
        hint = exc.hint or ""
        self._reply(hint if reply_code(hint.encode()) else "500 5.5.2 syntax error")

    def _close(self) -> None:
        with self.mx._lock:
            self.mx._conns.pop(self.session.index, None)
        if self.tls_conn is not None:
            try:
                self.tls_conn.shutdown()  # close_notify (LAB-NOTES "Clients and peers")
            except (SSL.Error, OSError):
                pass
        if not self.stop.is_set():
            try:
                self.sock.shutdown(socket.SHUT_WR)
                # Unread input would turn our FIN into a RST that can destroy the last reply
                # at the client; take what has arrived already.
                for _ in range(16):
                    if not (rest := self.sock.recv(_RECV_SIZE, socket.MSG_DONTWAIT)):
                        break
                    if self.tls_conn is None:
                        self.session.segments.append((time.monotonic(), rest))
                        self.transcript.add("C", rest)
            except OSError:
                pass
        self.sock.close()

    # -- commands (RFC 5321 §4.1.1) ---------------------------------------------------------

    def _unknown(self, cmd: Command) -> None:
        self._reply("500 5.5.2 command not recognized")

    def _out_of_sequence(self, what: str = "bad sequence of commands") -> None:
        self._reply(f"503 5.5.1 {what}")

    def _reset(self) -> None:
        self.txn = None

    def _ehlo(self, cmd: Command) -> None:
        self.session.ehlo_name = cmd.args.strip() or None
        if self.script.helo_only:  # RFC 5321 §4.1.4: an old server rejects EHLO
            self._reply("502 command not implemented")
            return
        self._reset()  # RFC 5321 §4.1.4: EHLO implies RSET
        keywords = [k for k in self.script.ehlo
                    if k.split(" ", 1)[0].upper() != "STARTTLS" or self._tls_offerable()]
        lines = [f"{self.mx.hostname} greets {cmd.args.strip() or 'you'}", *keywords]
        self.greeted = True
        self.offered = {k.split(" ", 1)[0].upper() for k in keywords}
        self._send(b"".join(f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n"
                            .encode("utf-8", "surrogateescape")
                            for i, line in enumerate(lines)))

    def _helo(self, cmd: Command) -> None:
        self.session.ehlo_name = cmd.args.strip() or None
        self._reset()
        self.greeted = True
        self.offered = set()
        self._reply(f"250 {self.mx.hostname}")

    def _mail(self, cmd: Command) -> None:
        if not self.greeted:
            self._out_of_sequence("send EHLO or HELO first")
            return
        if self.txn is not None:
            self._out_of_sequence("nested MAIL command")
            return
        try:
            path, params = parse_mail_args(cmd.args)
        except SMTPProtocolError as exc:
            self._protocol_error(exc)
            return
        # draft-hall-prdr-00 §4.2: the PRDR parameter counts only if PRDR was advertised; the
        # raw parameters are kept either way so that a check can see a client that sent it anyway.
        prdr = "PRDR" in params and "PRDR" in self.offered
        self.session.mail, self.session.mail_params = cmd, params
        self.session.prdr_requested = prdr
        if 200 <= self.script.mail.code < 300:
            self.txn = Transaction(cmd, path, params, prdr)
            self.session.transactions.append(self.txn)
        self._perform(self.script.mail)

    def _rcpt(self, cmd: Command) -> None:
        if self.txn is None:
            self._out_of_sequence("need MAIL before RCPT")
            return
        try:
            address, params = parse_rcpt_args(cmd.args)
        except SMTPProtocolError as exc:
            self._protocol_error(exc)
            return
        action = self.script.rcpt_action(address)
        entry = (address, params, action.code)
        self.txn.rcpts.append(entry)
        self.session.rcpts.append(entry)
        self._perform(action)

    def _data(self, cmd: Command) -> None:
        if self.txn is None or self.txn.chunks:
            self._out_of_sequence("need MAIL before DATA" if self.txn is None
                                  else "DATA after BDAT")
            return
        if not self.txn.accepted:  # RFC 5321 §3.3: 503 or 554 when no RCPT was accepted
            self._out_of_sequence("no valid recipients")
            return
        if cmd.args:
            self._reply("501 5.5.4 DATA takes no arguments")
            return
        self._perform(self.script.data)
        if self.script.data.code == 354:
            self.parser.start_data()

    def _bad_bdat(self, cmd: Command) -> None:
        # A well-formed BDAT arrives as a Chunk; this is a BDAT line the codec could not read.
        if "CHUNKING" not in self.offered:
            self._unknown(cmd)
            return
        self._reply("501 5.5.4 syntax: BDAT size [LAST]")

    def _chunk(self, chunk: Chunk) -> None:
        line = chunk.raw[: len(chunk.raw) - len(chunk.data)]
        command = Command("BDAT", line[5:-2].decode("utf-8", "surrogateescape"), line)
        self.session.commands.append(command)
        if "CHUNKING" not in self.offered:
            self._unknown(command)
            return
        # RFC 3030 §2: a refused BDAT still has its chunk read (and discarded).
        if self.txn is None or not self.txn.accepted:
            self._out_of_sequence("need MAIL and an accepted RCPT before BDAT")
            return
        self.txn.chunks.append(chunk.data)
        if chunk.last:
            self._message(b"".join(self.txn.chunks), "BDAT")
        else:
            self._perform(self.script.bdat)

    def _message(self, content: bytes, via: str) -> None:
        txn = self.txn
        assert txn is not None  # DATA/BDAT are accepted only inside a transaction
        txn.message, txn.body_via = content, via
        self.session.messages.append(content)
        self.txn = None  # RFC 5321 §4.1.1.4: the end-of-data reply ends the transaction
        if txn.prdr_requested:
            # draft-hall-prdr-00 §4.5 (§3: after DATA's dot or BDAT LAST alike)
            actions = self.script.prdr if self.script.prdr is not None else _prdr_block(txn)
        else:
            actions = self.script.end_of_data
        for action in actions:
            self._perform(action, txn.data_replies_sent, self.session.data_replies_sent)

    def _rset(self, cmd: Command) -> None:
        self._reset()
        self._perform(self.script.rset)

    def _noop(self, cmd: Command) -> None:
        self._reply("250 2.0.0 ok")

    def _vrfy(self, cmd: Command) -> None:
        self._reply("252 2.5.2 cannot verify, will attempt delivery")

    def _help(self, cmd: Command) -> None:
        self._reply("214 2.0.0 fake MX")

    def _quit(self, cmd: Command) -> None:
        # RFC 5321 §4.1.1.10: reply, then close. The client chose to end the session.
        self._perform(self.script.quit)
        raise _End("quit", "client")

    # -- STARTTLS (RFC 3207) --------------------------------------------------------------------

    def _tls_offerable(self) -> bool:
        return self.mx._tls_ctx is not None and self.tls_conn is None

    def _starttls(self, cmd: Command) -> None:
        if self.tls_conn is not None:
            self._out_of_sequence("TLS already active")
            return
        if "STARTTLS" not in self.offered:
            self._reply("502 5.5.1 STARTTLS not offered")
            return
        if cmd.args:  # RFC 3207 §4: STARTTLS takes no parameters
            self._reply("501 5.5.4 STARTTLS takes no arguments")
            return
        self._perform(self.script.starttls)
        if self.script.starttls.code == 220:
            self._handshake()

    def _handshake(self) -> None:
        info: dict[str, Any] = {
            "sni": None, "ocsp_requested": False, "ocsp_stapled": False, "tls_version": None,
            "cipher": None, "handshake_ok": False, "error": None,
            "tls_established_before_mail": False, "alerts_received": [], "alerts_sent": [],
            "plaintext_after_starttls": self.parser.pending,
        }
        self.session.tls = info
        if info["plaintext_after_starttls"]:
            # RFC 3207 §4.2 / CVE-2011-0411: bytes pipelined after STARTTLS are discarded.
            self.transcript.note("discarding plaintext sent after STARTTLS")
        if self.mx._raw_flight is not None:  # OCSP (issue #5): bytes no TLS library sends
            from .tls_flight import play_flight

            scripted = play_flight(self.sock, self.mx._raw_flight, info, self.transcript)
            if scripted is None:
                raise _End("scripted TLS handshake not completed", "client")
            self.tls_conn = scripted  # type: ignore[assignment]
            info["tls_established_before_mail"] = not any(c.verb == "MAIL" for c in self.session.commands)
            self.transcript.note(f"TLS established (scripted): {info['tls_version']} {info['cipher']} "
                                 f"ocsp_requested={info['ocsp_requested']}")
            self.parser = CommandParser()  # RFC 3207 §4.2, as below
            self.greeted = False
            self.offered = set()
            self._reset()
            return
        assert self.mx._tls_ctx is not None
        conn = SSL.Connection(self.mx._tls_ctx, self.sock)
        conn.set_app_data(info)
        conn.set_accept_state()
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            info["error"] = "handshake timed out"
            raise _End("TLS handshake timed out", "peer") from None
        except (SSL.Error, OSError) as exc:
            info["error"] = f"{type(exc).__name__}: {exc}"
            self.transcript.note(f"TLS handshake failed: {info['error']}")
            who = "peer" if info["alerts_sent"] and not info["alerts_received"] else "client"
            raise _End("TLS handshake failed", who) from None
        self.tls_conn = conn
        info.update(handshake_ok=True, tls_version=conn.get_protocol_version_name(),
                    cipher=conn.get_cipher_name(),
                    tls_established_before_mail=not any(
                        c.verb == "MAIL" for c in self.session.commands))
        self.transcript.note(f"TLS established: {info['tls_version']} {info['cipher']} "
                             f"sni={info['sni']} ocsp_requested={info['ocsp_requested']}")
        # RFC 3207 §4.2: forget everything learnt before TLS; the client starts with EHLO.
        self.parser = CommandParser()
        self.greeted = False
        self.offered = set()
        self._reset()


def _prdr_block(txn: Transaction) -> list[ReplyAction]:
    """The well-formed PRDR reply block, draft-hall-prdr-00 §4.5."""
    # §4.5.1: one 353 line, no enhanced status code.
    actions = [ReplyAction(b"353 PRDR content analysis beginning\r\n")]
    # §4.5.2: one reply per accepted recipient, in RCPT order, reusing the RCPT's 2xx code.
    actions += [ReplyAction(text_reply(f"{code} 2.1.5 ok")) for _, _, code in txn.accepted]
    # §4.5.3: the final reply for the message.
    actions.append(ReplyAction(b"250 2.0.0 ok\r\n"))
    return actions


# The server -------------------------------------------------------------------------------


class FakeMX:
    """A fake MX on ADDRESS:PORT; connection i runs `sessions[i]` if given, else SCRIPT."""

    def __init__(self, name: str, address: str, port: int, script: PeerScript | None = None,
                 *, socket_factory: SocketFactory,
                 sessions: list[PeerScript | None] | None = None,
                 tls: Mapping[str, Any] | None = None, hostname: str | None = None,
                 read_timeout: float = 60.0, backlog: int = 64) -> None:
        self.name = name
        self.address = address
        self.hostname = hostname or name
        self.script = script or PeerScript()
        self.session_scripts = list(sessions or [])
        self.read_timeout = read_timeout
        self._port = port
        self._backlog = backlog
        self._socket_factory = socket_factory
        self._tls_ctx = tls_context(tls) if tls is not None else None
        self._raw_flight = (tls or {}).get("raw_flight")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._sessions: list[PeerSession] = []
        self._conns: dict[int, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self._active = 0
        self._settled: set[int] = set()  # sessions hanging after the client's FIN: nothing more to come
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self.accept_error: str | None = None

    def __enter__(self) -> FakeMX:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0), or the configured one before start(); still
        known after stop() (the listener's socket is closed by then)."""
        return self._port

    @property
    def sessions_seen(self) -> list[PeerSession]:
        """Snapshots in connection order; final once wait_idle() or stop() returned."""
        with self._lock:
            return [s.snapshot() for s in self._sessions]

    def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError(f"FakeMX {self.name} already started")
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = self._socket_factory(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.address, self._port))
            sock.listen(self._backlog)
            self._port = sock.getsockname()[1]
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"fakemx-{self.name}-accept", daemon=True)
        self._accept_thread.start()

    def stop(self) -> None:
        """Close the listener and every connection (hangs and delays end at once), join threads."""
        with self._lock:
            self._stop.set()
            if self._listener is not None:
                _shutdown(self._listener)  # wakes accept() (Linux: EINVAL)
            for conn in self._conns.values():
                _shutdown(conn)  # wakes a blocked recv/send/handshake
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_TIMEOUT)
        for thread in list(self._threads):
            thread.join(_JOIN_TIMEOUT)
        if self._listener is not None:
            self._listener.close()

    def wait_idle(self, timeout: float) -> bool:
        """True once no connection is open (also when none ever came) but hung ones the client
        has half-closed: neither side will send anything more on those."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active - len(self._settled) == 0, timeout)

    def _settle(self, index: int) -> None:
        with self._idle:
            self._settled.add(index)
            self._idle.notify_all()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, client = self._listener.accept()
            except OSError as exc:
                if not self._stop.is_set():
                    self.accept_error = f"accept: {exc}"
                return
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                index = len(self._sessions)
                session = PeerSession(index, self.name, client[:2],
                                      Transcript(label=f"{self.name}#{index}"))
                self._sessions.append(session)
                self._conns[index] = conn
                self._active += 1
                script = (self.session_scripts[index]
                          if index < len(self.session_scripts) else None) or self.script
                thread = threading.Thread(target=self._serve, args=(conn, session, script),
                                          name=f"fakemx-{self.name}-{index}", daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, session: PeerSession, script: PeerScript) -> None:
        try:
            conn.settimeout(None)  # blocking: pyOpenSSL needs it (LAB-NOTES)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            seconds = max(self.read_timeout, 0.0)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                            struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000)))
            _Dialogue(self, conn, session, script).run()
        except Exception:  # noqa: BLE001 - set-up failure: recorded on the session
            session.error = traceback.format_exc()
            session.closed_by, session.end_reason = "error", "set-up failed"
            session.ended = time.monotonic()
            conn.close()
        finally:
            with self._idle:
                self._conns.pop(session.index, None)
                self._active -= 1
                self._settled.discard(session.index)
                self._idle.notify_all()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
