"""A small PROXY v1/v2 + SMTP receiver on 127.0.0.1 for the wrong-receiver tests.

With no faults it is a *correct* receiver: it reads the header with the project's strict decoder
(harness.proxy.codec), aborts on anything invalid or incomplete, takes the client from the header
only for PROXY over TCP, answers the SMTP that follows, and applies the same address policy as
the Exim template (198.51.100.128/25 refused, 203.0.113.0/25 may relay to relay.test). Only
127.0.0.1 is a listed proxy; from any other source the PROXY line is an ordinary (unknown)
command. It writes an Exim-like log line per session ("connection from (helo) [ip]:port … PRX=").

Each fault (FAULTS) breaks one thing on purpose, so that every PROXY check can be seen to fail.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

from harness.proxy.codec import (ADDRESS_LENGTH, NEED_DATA, V2_SIGNATURE, Address, Command, Family,
                                 ProxyDecoder, ProxyHeader, ProxyProtocolError, Transport)

FAULTS = {
    "early_banner": "sends its banner as soon as the connection opens (PROXY-01)",
    "banner_on_reject": "answers an invalid, incomplete or missing header with a banner and 503s, "
                        "like Exim, instead of closing (PROXY-10)",
    "slow_reject": "closes on an invalid header only after its timeout (PROXY-07 'at once')",
    "hang_on_eof": "keeps the connection open forever when the proxy closes mid-header",
    "guess": "serves a connection that does not start with a header as direct SMTP (PROXY-03)",
    "trust_everyone": "takes PROXY lines from any source, not only listed proxies (PROXY-03)",
    "lenient_v1": "splits v1 lines on any whitespace, reads numbers with int() (PROXY-09)",
    "bare_lf": "accepts a v1 line that ends in a bare LF (PROXY-08)",
    "no_line_limit": "waits for a v1 line's CRLF however long the line (PROXY-07)",
    "reject_port_zero": "refuses source port 0 (PROXY-09)",
    "reject_unknown": "refuses v1 UNKNOWN (PROXY-06)",
    "reject_local": "refuses v2 LOCAL (PROXY-12)",
    "local_uses_header": "takes the client of a LOCAL header from its address block (PROXY-12)",
    "any_version": "ignores the v2 version nibble (PROXY-11)",
    "any_command": "takes any v2 command nibble for PROXY (PROXY-13)",
    "any_family": "takes an undefined family/transport byte for TCP over IPv4 (PROXY-14)",
    "udp_identity": "takes the client of a UDP header as if it were TCP (PROXY-15)",
    "byteswap_port": "reads v2 ports in host (little-endian) order (PROXY-16)",
    "short_block_garbage": "reads a short v2 address block's missing bytes from what follows (PROXY-17)",
    "ignore_length": "skips only the address block, not `len` bytes: TLVs leak into SMTP (PROXY-18)",
    "max_232": "refuses v2 headers longer than 232 bytes, Exim's buffer (PROXY-18)",
    "no_crc": "does not verify CRC32C",
    "reject_valid_crc": "computes CRC32C wrongly and refuses correct checksums (PROXY-19)",
    "single_read": "reads the header with one recv() (PROXY-20 fragmented headers)",
    "swallow_trailing": "drops bytes that came with the header (PROXY-23)",
    "duplicate_trailing": "processes bytes that came with the header twice (PROXY-23)",
    "accept_truncated_v2": "takes a v2 header cut short as a LOCAL one (PROXY-20, PROXY-22)",
    "use_destination": "takes the header's destination as the client (PROXY-25 misparse)",
    "identity_real": "ignores the header's client and uses the proxy's address (PROXY-04/16)",
    "policy_by_proxy": "applies its address policy to the proxy, not the client (PROXY-24)",
    "log_without_proxy": "does not log the proxy's address (PROXY-24)",
    "die_on_big": "stops listening after a header longer than 1,000 bytes (PROXY-25)",
}

RELAY_RANGE = ipaddress.ip_network("203.0.113.0/25")
REFUSED_RANGE = ipaddress.ip_network("198.51.100.128/25")
LISTED = ("127.0.0.1",)
UNLISTED_SOURCE = "127.0.0.2"


class _Invalid(Exception):
    pass


class ProxyReceiver:
    def __init__(self, *faults: str, timeout: float = 1.0) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        self.faults = set(faults)
        self.timeout = timeout
        self.log: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(32)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> ProxyReceiver:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        for t in self._threads:
            t.join(3)

    def connector(self) -> Callable[..., socket.socket]:
        """A SessionRunner connect function: "listed" (default) from 127.0.0.1, "unlisted" from
        127.0.0.2."""
        def connect(source: str | None = None) -> socket.socket:
            sock = socket.socket()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(5)
            sock.bind((UNLISTED_SOURCE if source == "unlisted" else "127.0.0.1", 0))
            sock.connect(("127.0.0.1", self.port))
            return sock
        return connect

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn, peer), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            self._handle(conn, Address(peer[0], peer[1]))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    # -- the header ---------------------------------------------------------------------------

    def _handle(self, conn: socket.socket, real: Address) -> None:
        f = self.faults
        listed = real.host in LISTED or "trust_everyone" in f
        if "early_banner" in f:
            conn.sendall(b"220 faulty.test ESMTP\r\n")
        if not listed:
            self._smtp(conn, real, real, b"", banner="early_banner" not in f)
            return
        status, header, rest = self._read_header(conn)
        if status != "ok":
            if status == "eof" and "hang_on_eof" in f:
                self._stop.wait()
                return
            if status == "direct" and "guess" in f:
                self._smtp(conn, real, real, rest, banner="early_banner" not in f)
                return
            if "banner_on_reject" in f:
                if "early_banner" not in f:
                    conn.sendall(b"220 faulty.test ESMTP\r\n")
                self._smtp(conn, real, real, rest, banner=False, refuse=True)
                return
            if status == "invalid" and "slow_reject" in f:
                self._stop.wait(self.timeout)
            return  # abort: close without a banner
        assert header is not None
        if "die_on_big" in f and len(header.raw) > 1000:
            with contextlib.suppress(OSError):
                self.listener.close()
            return
        client = self._identity(header, real)
        if "swallow_trailing" in f:
            rest = b""
        if "duplicate_trailing" in f:
            rest = rest + rest
        self._smtp(conn, client, real, rest, banner="early_banner" not in f)

    def _read_header(self, conn: socket.socket) -> tuple[str, ProxyHeader | None, bytes]:
        f = self.faults
        buf = b""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                result = self._parse(buf)
            except _Invalid:
                return ("direct" if buf[:4].upper() in (b"EHLO", b"HELO") else "invalid"), None, buf
            if result is not None:
                return "ok", result[0], result[1]
            if "single_read" in f and buf:
                return "invalid", None, buf
            left = deadline - time.monotonic()
            if left <= 0:
                return ("direct" if not buf else "timeout"), None, buf
            ready = self._wait_readable(conn, left)
            if not ready:
                continue
            chunk = conn.recv(65536)
            if not chunk:
                if "accept_truncated_v2" in f and buf.startswith(V2_SIGNATURE[:len(buf)]) and buf:
                    return "ok", ProxyHeader(2, Command.LOCAL, Family.UNSPEC, Transport.UNSPEC, raw=buf), b""
                return "eof", None, buf
            buf += chunk

    def _wait_readable(self, conn: socket.socket, seconds: float) -> bool:
        import select
        ready, _, _ = select.select([conn], [], [], min(seconds, 0.2))
        return bool(ready) and not self._stop.is_set()

    def _parse(self, buf: bytes) -> tuple[ProxyHeader, bytes] | None:
        """(header, rest), None for "need more", or _Invalid."""
        f = self.faults
        if not buf:
            return None
        if "lenient_v1" in f and buf.startswith(b"PROXY") and b"\n" in buf:
            return self._lenient_v1(buf)
        if "bare_lf" in f and buf.startswith(b"PROXY"):
            lf = buf.find(b"\n")
            if lf > 0 and buf[lf - 1:lf] != b"\r":
                buf = buf[:lf] + b"\r\n" + buf[lf + 1:]
        if "no_line_limit" in f and buf.startswith(b"PROXY"):
            if b"\r\n" not in buf:
                return None
            line, _, rest = buf.partition(b"\r\n")
            if line.startswith(b"PROXY UNKNOWN"):
                return ProxyHeader(1, Command.PROXY, Family.UNSPEC, Transport.UNSPEC,
                                   raw=line + b"\r\n"), rest
        if buf.startswith(V2_SIGNATURE) and len(buf) >= 16:
            buf = self._v2_faults(buf)
            if isinstance(buf, tuple):
                return buf
        dec = ProxyDecoder(verify_crc="no_crc" not in f)
        dec.feed(buf)
        try:
            event = dec.next_event()
        except ProxyProtocolError as exc:
            if "short_block_garbage" in f and "address block" in exc.message:
                return self._garbage_block(buf)
            raise _Invalid(str(exc)) from None
        if event is NEED_DATA:
            if "max_232" in f and buf.startswith(V2_SIGNATURE) and len(buf) >= 16 and \
                    16 + struct.unpack("!H", buf[14:16])[0] > 232:
                raise _Invalid("too long for a 232-byte buffer")
            return None
        header = event  # type: ignore[assignment]
        assert isinstance(header, ProxyHeader)
        if "max_232" in f and len(header.raw) > 232:
            raise _Invalid("too long for a 232-byte buffer")
        if "reject_port_zero" in f and header.source and header.source.port == 0:
            raise _Invalid("port 0")
        if "reject_unknown" in f and header.version == 1 and header.family is Family.UNSPEC:
            raise _Invalid("UNKNOWN")
        if "reject_local" in f and header.command is Command.LOCAL:
            raise _Invalid("LOCAL")
        if "reject_valid_crc" in f and header.crc_ok:
            raise _Invalid("CRC32C computed wrongly")
        return header, dec.trailing

    def _v2_faults(self, buf: bytes) -> bytes | tuple[ProxyHeader, bytes]:
        f = self.faults
        b = bytearray(buf)
        if "any_version" in f:
            b[12] = 0x20 | (b[12] & 0x0F)
        if "any_command" in f and b[12] & 0x0F > 1:
            b[12] = (b[12] & 0xF0) | 1
        if "any_family" in f and (b[13] >> 4 > 3 or b[13] & 0x0F > 2):
            b[13] = 0x11
        if "ignore_length" in f:
            fam = b[13] >> 4
            need = ADDRESS_LENGTH.get(Family(fam), 0) if fam <= 3 else 0
            if len(b) < 16 + need:
                return bytes(b)
            fixed = bytes(b[:14]) + struct.pack("!H", need) + bytes(b[16:16 + need])
            header = ProxyDecoder()
            header.feed(fixed)
            event = header.next_event()
            assert isinstance(event, ProxyHeader)
            return event, bytes(b[16 + need:])
        return bytes(b)

    def _garbage_block(self, buf: bytes) -> tuple[ProxyHeader, bytes] | None:
        fam = buf[13] >> 4
        need = ADDRESS_LENGTH.get(Family(fam), 0)
        if len(buf) < 16 + need:
            return None
        fixed = buf[:14] + struct.pack("!H", need) + buf[16:16 + need]
        dec = ProxyDecoder(verify_crc=False)
        dec.feed(fixed)
        event = dec.next_event()
        assert isinstance(event, ProxyHeader)
        return event, buf[16 + need:]

    def _lenient_v1(self, buf: bytes) -> tuple[ProxyHeader, bytes]:
        end = buf.find(b"\n")
        line, rest = buf[:end].rstrip(b"\r"), buf[end + 1:]
        parts = line.split()
        if len(parts) < 2:
            raise _Invalid
        proto = parts[1].upper()
        if proto == b"UNKNOWN":
            return ProxyHeader(1, Command.PROXY, Family.UNSPEC, Transport.UNSPEC, raw=buf[:end + 1]), rest
        if proto not in (b"TCP4", b"TCP6") or len(parts) < 6:
            raise _Invalid

        def ip(tok: bytes) -> str:
            text = tok.decode("ascii", "replace")
            if "." in text and ":" not in text:
                text = ".".join(str(int(o)) for o in text.split("."))
            return str(ipaddress.ip_address(text.split("%")[0]))

        try:
            src, dst = ip(parts[2]), ip(parts[3])
            sport, dport = int(parts[4]), int(parts[5])
        except ValueError:
            raise _Invalid from None
        fam = Family.INET6 if ":" in src else Family.INET
        return (ProxyHeader(1, Command.PROXY, fam, Transport.STREAM, Address(src, sport),
                            Address(dst, dport), raw=buf[:end + 1]), rest)

    def _identity(self, header: ProxyHeader, real: Address) -> Address:
        f = self.faults
        if "identity_real" in f:
            return real
        if "use_destination" in f and header.destination is not None and header.carries_client:
            return header.destination
        if "local_uses_header" in f and header.command is Command.LOCAL and header.source is not None:
            return header.source
        if "udp_identity" in f and header.transport is Transport.DGRAM and header.source is not None:
            return header.source
        client = header.identity(real)
        if "byteswap_port" in f and header.version == 2 and client.port is not None and client is header.source:
            client = Address(client.host, struct.unpack("<H", struct.pack(">H", client.port))[0])
        return client

    # -- SMTP ---------------------------------------------------------------------------------

    def _smtp(self, conn: socket.socket, client: Address, real: Address, pending: bytes, *,
              banner: bool, refuse: bool = False) -> None:
        if banner:
            conn.sendall(b"220 faulty.test ESMTP\r\n")
        buf = pending
        helo = "?"
        in_data = False
        conn.settimeout(5)
        while not self._stop.is_set():
            while b"\r\n" in buf or (in_data and b"\r\n.\r\n" in buf):
                if in_data:
                    if b"\r\n.\r\n" not in buf:
                        break
                    _, _, buf = buf.partition(b"\r\n.\r\n")
                    in_data = False
                    conn.sendall(b"250 2.0.0 queued\r\n")
                    continue
                line, _, buf = buf.partition(b"\r\n")
                verb = line[:4].upper()
                if verb == b"QUIT":
                    self._log(client, real, helo, refuse)
                    conn.sendall(b"221 bye\r\n")
                    return
                if refuse:
                    conn.sendall(b"503 Command refused, required Proxy negotiation failed\r\n")
                    continue
                if verb in (b"EHLO", b"HELO"):
                    helo = line[5:].decode(errors="replace").strip() or "?"
                    host = f"[{client.host}]" + (f":{client.port}" if client.port is not None else "")
                    conn.sendall(f"250-faulty.test Hello {helo} {host}\r\n250-PIPELINING\r\n250 HELP\r\n".encode())
                elif verb == b"MAIL" or verb in (b"NOOP", b"RSET"):
                    conn.sendall(b"250 2.0.0 ok\r\n")
                elif verb == b"RCPT":
                    conn.sendall(self._rcpt(line, real if "policy_by_proxy" in self.faults else client))
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    in_data = True
                    buf = b"\r\n" + buf
                else:
                    conn.sendall(b"500 unrecognized command\r\n")
            try:
                chunk = conn.recv(65536)
            except (TimeoutError, OSError):
                return
            if not chunk:
                self._log(client, real, helo, refuse)
                return
            buf += chunk

    def _rcpt(self, line: bytes, client: Address) -> bytes:
        text = line.decode(errors="replace")
        addr = text.partition("<")[2].partition(">")[0]
        try:
            ip = ipaddress.ip_address(client.host)
        except ValueError:
            ip = None
        if ip is not None and ip.version == 4 and ip in REFUSED_RANGE:
            return f"550 5.7.1 client [{client.host}] is in a refused range\r\n".encode()
        if addr.lower().endswith("@relay.test"):
            if ip is not None and ip.version == 4 and ip in RELAY_RANGE:
                return f"250 2.1.5 relay permitted for client [{client.host}]\r\n".encode()
            return f"550 5.7.1 relay not permitted for client [{client.host}]\r\n".encode()
        return b"250 2.1.5 ok\r\n"

    def _log(self, client: Address, real: Address, helo: str, refused: bool) -> None:
        if refused:
            line = f"SMTP connection from [{real.host}]:{real.port} closed by QUIT"
        else:
            port = f":{client.port}" if client.port is not None else ""
            line = f"SMTP connection from ({helo}) [{client.host}]{port} closed by QUIT"
            if "log_without_proxy" not in self.faults and client != real:
                line += f" PRX={real.host}"
        with self._lock:
            self.log.append(line)


@contextlib.contextmanager
def receiver(*faults: str, timeout: float = 1.0) -> Iterator[ProxyReceiver]:
    with ProxyReceiver(*faults, timeout=timeout) as rx:
        yield rx
