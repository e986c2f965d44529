"""The lab's DNS server: UDP and TCP listeners in front of the sans-I/O responder.

Sockets come from a factory, normally ``Lab.socket``, so they live inside the lab namespace
while the serving threads stay in the harness process. One thread serves UDP; one serves every
TCP connection through a selector. A pipe wakes both for a prompt ``stop()``. A reply mutator
(``set_mutator``, harness/dns/mutate.py) may rewrite or withhold any reply: malformed packets
for the fuzz lanes.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..lab import addresses
from .mutate import ReplyMutator
from .querylog import QueryLog, QueryRecord
from .responder import now, respond
from .zone import World

SocketFactory = Callable[[int, int], socket.socket]

_WAKE = "wake"
_LISTEN = "listen"
_SEND_TIMEOUT = 2.0


@dataclass
class _Connection:
    sock: socket.socket
    peer: tuple[str, int]
    last_active: float
    buffer: bytearray = field(default_factory=bytearray)


class DNSServer:
    """Serves the current World on ADDRESS:PORT over UDP and TCP (RFC 1035 §4.2, RFC 7766).

    PORT 0 picks a free port (useful outside a lab); ``port`` holds the bound one after start().
    """

    def __init__(self, socket_factory: SocketFactory, address: str = addresses.DNS_V4,
                 port: int = 53, *, world: World | None = None,
                 ad_only_if_requested: bool = True, tcp_idle_timeout: float = 10.0) -> None:
        self._factory = socket_factory
        self.address = address
        self.port = port
        self.ad_only_if_requested = ad_only_if_requested
        self.tcp_idle_timeout = tcp_idle_timeout
        self._world = world if world is not None else World.empty()
        self._mutator: ReplyMutator | None = None
        self._log = QueryLog()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._wake: tuple[int, int] | None = None

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> DNSServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("the DNS server is already running")
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        try:
            udp, tcp = self._bind_pair(family)
            for sock in self._sockets:
                sock.setblocking(False)
            self._wake = os.pipe()
            os.set_blocking(self._wake[0], False)
        except BaseException:
            self._close()
            raise
        for name, target, sock in (("udp", self._serve_udp, udp), ("tcp", self._serve_tcp, tcp)):
            thread = threading.Thread(target=target, args=(sock, self._wake[0]), daemon=True,
                                      name=f"dns-{name}-{self.address}:{self.port}")
            thread.start()
            self._threads.append(thread)

    def _bind_pair(self, family: int) -> tuple[socket.socket, socket.socket]:
        """A UDP and a TCP socket on the same port. With port 0 the kernel picks a free UDP port,
        which TCP may not have free: then try another, a few times."""
        for _ in range(1 if self.port else 20):
            udp = self._factory(family, socket.SOCK_DGRAM)
            self._sockets.append(udp)
            udp.bind((self.address, self.port))
            port = udp.getsockname()[1]
            tcp = self._factory(family, socket.SOCK_STREAM)
            self._sockets.append(tcp)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.address, port))
            except OSError as exc:
                if self.port or exc.errno != errno.EADDRINUSE:
                    raise
                self._close()
                continue
            tcp.listen(64)
            self.port = port
            return udp, tcp
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    def stop(self) -> None:
        if self._wake is not None:
            try:
                os.write(self._wake[1], b"x")
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads.clear()
        self._close()

    def _close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # -- world and log ----------------------------------------------------------------------

    @property
    def world(self) -> World:
        return self._world

    def set_world(self, world: World) -> None:
        # A single reference assignment: each query reads the world once, so it sees either
        # the old world or the new one, never a mixture.
        self._world = world

    def set_mutator(self, mutator: ReplyMutator | None) -> None:
        """Pass every reply through MUTATOR before it leaves (None: replies as the world gives
        them): raw packet mutations for the fuzz lanes, see harness/dns/mutate.py."""
        self._mutator = mutator

    @property
    def log(self) -> list[QueryRecord]:
        return self._log.snapshot()

    @property
    def query_log(self) -> QueryLog:
        return self._log

    def clear_log(self) -> None:
        self._log.clear()

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, data: bytes, transport: str, peer: tuple[str, int]) -> bytes | None:
        wire, record = respond(self._world, data, transport=transport, client=peer[:2],
                               received=now(), ad_only_if_requested=self.ad_only_if_requested)
        mutator = self._mutator  # read once, like the world
        if mutator is not None:
            try:
                mutated, note = mutator(data, wire, record)
            except Exception as exc:  # a harness bug: logged with the query, the reply unchanged
                record = replace(record, error=f"mutator failed: {type(exc).__name__}: {exc}")
            else:
                if note is not None:
                    wire = mutated
                    record = replace(record, mutation=note, size=len(wire) if wire is not None else 0)
        # Logged before the reply leaves, so whoever got the reply also finds it in the log.
        self._log.append(record)
        return wire

    def _harness_error(self, transport: str, exc: BaseException) -> None:
        mono, wall = now()
        self._log.append(QueryRecord(mono, wall, transport, "", 0, state="error",
                                     error=f"{type(exc).__name__}: {exc}"))

    def _serve_udp(self, sock: socket.socket, wake: int) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ, None)
            sel.register(wake, selectors.EVENT_READ, _WAKE)
            while True:
                for key, _ in sel.select():
                    if key.data == _WAKE:
                        return
                    self._drain_udp(sock)

    def _drain_udp(self, sock: socket.socket) -> None:
        while True:
            try:
                data, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:  # an ICMP error for an earlier reply
                continue
            except OSError as exc:
                self._harness_error("udp", exc)
                return
            try:
                wire = self._handle(data, "udp", peer)
                if wire is not None:
                    sock.sendto(wire, peer)
            except OSError:
                pass  # the client went away; its query is logged
            except Exception as exc:
                self._harness_error("udp", exc)

    def _serve_tcp(self, listener: socket.socket, wake: int) -> None:
        conns: dict[socket.socket, _Connection] = {}
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ, _LISTEN)
            sel.register(wake, selectors.EVENT_READ, _WAKE)
            try:
                while True:
                    for key, _ in sel.select(timeout=1.0):
                        if key.data == _WAKE:
                            return
                        if key.data == _LISTEN:
                            self._accept(listener, sel, conns)
                        else:
                            self._read_tcp(conns[key.fileobj], sel, conns)
                    self._expire(sel, conns)
            finally:
                for conn in conns.values():
                    conn.sock.close()

    def _accept(self, listener: socket.socket, sel: selectors.BaseSelector,
                conns: dict[socket.socket, _Connection]) -> None:
        while True:
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._harness_error("tcp", exc)
                return
            # With a timeout, recv after select never blocks and sendall cannot hang forever.
            sock.settimeout(_SEND_TIMEOUT)
            conns[sock] = _Connection(sock, peer, time.monotonic())
            sel.register(sock, selectors.EVENT_READ, "conn")

    def _drop(self, conn: _Connection, sel: selectors.BaseSelector,
              conns: dict[socket.socket, _Connection]) -> None:
        sel.unregister(conn.sock)
        conns.pop(conn.sock, None)
        conn.sock.close()

    def _read_tcp(self, conn: _Connection, sel: selectors.BaseSelector,
                  conns: dict[socket.socket, _Connection]) -> None:
        try:
            data = conn.sock.recv(65535)
        except OSError:
            data = b""
        if not data:
            self._drop(conn, sel, conns)
            return
        conn.last_active = time.monotonic()
        conn.buffer += data
        # RFC 1035 §4.2.2 / RFC 7766 §8: each message has a two-octet length prefix; a client
        # may pipeline several (RFC 7766 §6.2.1.1).
        while len(conn.buffer) >= 2:
            length = int.from_bytes(conn.buffer[:2], "big")
            if len(conn.buffer) < 2 + length:
                break
            message = bytes(conn.buffer[2 : 2 + length])
            del conn.buffer[: 2 + length]
            try:
                wire = self._handle(message, "tcp", conn.peer)
                if wire is not None:
                    conn.sock.sendall(len(wire).to_bytes(2, "big") + wire)
            except OSError:
                self._drop(conn, sel, conns)
                return
            except Exception as exc:
                self._harness_error("tcp", exc)

    def _expire(self, sel: selectors.BaseSelector,
                conns: dict[socket.socket, _Connection]) -> None:
        # RFC 7766 §6.2.3: servers close idle connections.
        cutoff = time.monotonic() - self.tcp_idle_timeout
        for conn in [c for c in conns.values() if c.last_active < cutoff]:
            self._drop(conn, sel, conns)
