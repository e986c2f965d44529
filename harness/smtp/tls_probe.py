"""A STARTTLS client that can ask for an OCSP staple and keeps the server's raw TLS bytes.

pyOpenSSL runs over memory BIOs here, so every byte the server sends passes through this module
first: `TLSProbe` records it, and `handshake_view()` reads the plaintext part of the handshake
(TLS 1.2: ServerHello … ServerHelloDone; TLS 1.3: the ServerHello only, the rest is encrypted).
That is how a check sees the status_request echo in a TLS 1.2 ServerHello and the order
Certificate → CertificateStatus (RFC 6066 §8), which no TLS library reports.

After the handshake the probe is a socket-like object (`recv`, `sendall`, `settimeout`,
`shutdown`, `close`) that the SMTP client keeps using (RFC 3207 §4.2: the session restarts with
EHLO over TLS).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

__all__ = ["TLSProbe", "TLSRecordError", "handshake_view", "parse_records", "HANDSHAKE_NAMES",
           "ALERT_NAMES"]

VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}

# RFC 8446 §4 / RFC 5246 §7.4 / RFC 6066 §8 handshake types
HANDSHAKE_NAMES = {0: "hello_request", 1: "client_hello", 2: "server_hello", 4: "new_session_ticket",
                   8: "encrypted_extensions", 11: "certificate", 12: "server_key_exchange",
                   13: "certificate_request", 14: "server_hello_done", 15: "certificate_verify",
                   16: "client_key_exchange", 20: "finished", 22: "certificate_status"}
# RFC 8446 §6, RFC 6066 §9 (113)
ALERT_NAMES = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
               42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
               45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
               48: "unknown_ca", 50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
               80: "internal_error", 90: "user_canceled", 109: "missing_extension",
               110: "unsupported_extension", 112: "unrecognized_name",
               113: "bad_certificate_status_response", 116: "certificate_required"}
EXT_STATUS_REQUEST = 5  # RFC 6066 §8
EXT_SUPPORTED_VERSIONS = 43  # RFC 8446 §4.2.1


class TLSRecordError(ValueError):
    """Server bytes that are not well-formed TLS records or handshake messages."""


def parse_records(data: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """(content type, version, fragment) of each complete TLSPlaintext record, and the rest."""
    records, i = [], 0
    while len(data) - i >= 5:
        ctype, version, length = struct.unpack("!BHH", data[i : i + 5])
        if ctype not in (20, 21, 22, 23, 24) or length > 2**14 + 2048:
            raise TLSRecordError(f"not a TLS record at byte {i}: {data[i:i + 5].hex()}")
        if len(data) - i - 5 < length:
            break
        records.append((ctype, version, data[i + 5 : i + 5 + length]))
        i += 5 + length
    return records, data[i:]


def _extensions(body: bytes, at: int) -> list[tuple[int, bytes]]:
    if at == len(body):
        return []
    (total,) = struct.unpack("!H", body[at : at + 2])
    at += 2
    end = at + total
    if end != len(body):
        raise TLSRecordError("extensions block length does not match the message")
    out = []
    while at < end:
        etype, elen = struct.unpack("!HH", body[at : at + 4])
        out.append((etype, body[at + 4 : at + 4 + elen]))
        at += 4 + elen
    if at != end:
        raise TLSRecordError("an extension runs past the extensions block")
    return out


def _server_hello(body: bytes) -> dict[str, Any]:
    """RFC 5246 §7.4.1.3 / RFC 8446 §4.1.3."""
    if len(body) < 38:
        raise TLSRecordError("ServerHello too short")
    version = struct.unpack("!H", body[:2])[0]
    sid_len = body[34]
    at = 35 + sid_len
    cipher = struct.unpack("!H", body[at : at + 2])[0]
    exts = _extensions(body, at + 3)
    out: dict[str, Any] = {"legacy_version": f"{version:04x}", "cipher": f"{cipher:04x}",
                           "extensions": [{"type": t, "length": len(d)} for t, d in exts]}
    for t, d in exts:
        if t == EXT_SUPPORTED_VERSIONS and len(d) == 2:
            out["selected_version"] = f"{struct.unpack('!H', d)[0]:04x}"
        if t == EXT_STATUS_REQUEST:
            out["status_request"] = d.hex()  # RFC 6066 §8: empty extension_data
    return out


def handshake_view(server_bytes: bytes) -> dict[str, Any]:
    """What the plaintext part of the server's handshake shows: the message sequence, the
    ServerHello's extensions, and each CertificateStatus body (TLS 1.2, RFC 6066 §8)."""
    view: dict[str, Any] = {"messages": [], "server_hello": None, "certificate_status": [],
                            "alerts": [], "encrypted_after": None, "error": None}
    try:
        records, _ = parse_records(server_bytes)
    except TLSRecordError as exc:
        view["error"] = str(exc)
        return view
    buffer = b""
    for ctype, _, fragment in records:
        if ctype == 21 and len(fragment) >= 2:  # an alert in the clear
            view["alerts"].append(ALERT_NAMES.get(fragment[1], str(fragment[1])))
            continue
        if ctype != 22:
            # ChangeCipherSpec (1.2) or encrypted records (1.3): the rest is not readable.
            view["encrypted_after"] = view["messages"][-1] if view["messages"] else None
            break
        buffer += fragment
        while len(buffer) >= 4:
            mtype = buffer[0]
            length = int.from_bytes(buffer[1:4], "big")
            if len(buffer) < 4 + length:
                break
            body, buffer = buffer[4 : 4 + length], buffer[4 + length :]
            name = HANDSHAKE_NAMES.get(mtype, f"type {mtype}")
            view["messages"].append(name)
            try:
                if mtype == 2:
                    view["server_hello"] = _server_hello(body)
                elif mtype == 22:
                    # CertificateStatus: status_type ocsp(1), then a 24-bit length and the DER.
                    status_type = body[0] if body else None
                    der_len = int.from_bytes(body[1:4], "big") if len(body) >= 4 else None
                    view["certificate_status"].append(
                        {"status_type": status_type, "length": der_len,
                         "complete": der_len is not None and der_len == len(body) - 4})
            except (TLSRecordError, struct.error, IndexError) as exc:
                view["error"] = f"{name}: {exc}"
    return view


@dataclass
class TLSResult:
    """What one STARTTLS handshake showed, for SessionRecord.tls."""

    requested_ocsp: bool
    version: str | None = None
    cipher: str | None = None
    staple: bytes | None = None  # the OCSP response the server sent, None if none
    staple_callback: bool = False  # OpenSSL handed us a (possibly empty) status response
    chain: list[bytes] = field(default_factory=list)  # DER, as the server sent it
    server_bytes: bytes = b""  # everything the server sent during the handshake
    error: str | None = None
    alerts_received: list[int] = field(default_factory=list)
    alerts_sent: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.version is not None

    def summary(self) -> dict[str, Any]:
        view = handshake_view(self.server_bytes)
        return {"requested_ocsp": self.requested_ocsp, "version": self.version,
                "cipher": self.cipher, "error": self.error,
                "stapled": self.staple is not None, "staple_length": len(self.staple or b""),
                "chain": [x509.load_der_x509_certificate(c).subject.rfc4514_string()
                          for c in self.chain],
                "alerts_received": [ALERT_NAMES.get(a, str(a)) for a in self.alerts_received],
                "alerts_sent": [ALERT_NAMES.get(a, str(a)) for a in self.alerts_sent],
                "handshake": view}


def _on_ocsp(conn: SSL.Connection, data: bytes, result: TLSResult) -> bool:
    # Called when the client asked for status; DATA is b"" when the server sent none.
    result.staple_callback = True
    result.staple = data or None
    return True  # never abort here: the checks judge the staple


def _on_info(conn: SSL.Connection, where: int, ret: int) -> None:
    if where & SSL.SSL_CB_ALERT:
        result: TLSResult = conn.get_app_data()
        (result.alerts_received if where & SSL.SSL_CB_READ else result.alerts_sent).append(ret & 0xFF)


class TLSProbe:
    """The client side of TLS over SOCK (already past "220 Ready to start TLS")."""

    def __init__(self, sock: socket.socket, *, request_ocsp: bool = False,
                 min_version: str | None = None, max_version: str | None = None,
                 server_name: str | None = None, timeout: float = 10.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.result = TLSResult(requested_ocsp=request_ocsp)
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)  # checks judge the chain, not OpenSSL
        if min_version:
            ctx.set_min_proto_version(VERSIONS[min_version])
        if max_version:
            ctx.set_max_proto_version(VERSIONS[max_version])
        if request_ocsp:
            ctx.set_ocsp_client_callback(_on_ocsp, self.result)
        ctx.set_info_callback(_on_info)
        self.conn = SSL.Connection(ctx, None)  # memory BIOs
        self.conn.set_app_data(self.result)
        if request_ocsp:
            self.conn.request_ocsp()
        if server_name:
            self.conn.set_tlsext_host_name(server_name.encode("idna"))
        self.conn.set_connect_state()
        self._recorded = True  # record server bytes during the handshake only

    # -- memory BIO plumbing -------------------------------------------------------------------

    def _flush(self) -> None:
        while True:
            try:
                data = self.conn.bio_read(65536)
            except SSL.WantReadError:
                return
            if not data:
                return
            self.sock.sendall(data)

    def _pull(self) -> bool:
        """Move what the server sent into OpenSSL; False when the server closed."""
        data = self.sock.recv(65536)
        if not data:
            self.conn.bio_shutdown()
            return False
        if self._recorded:
            self.result.server_bytes += data
        self.conn.bio_write(data)
        return True

    def handshake(self) -> TLSResult:
        self.sock.settimeout(self.timeout)
        try:
            while True:
                try:
                    self.conn.do_handshake()
                    break
                except SSL.WantReadError:
                    self._flush()
                    if not self._pull():
                        raise ConnectionError("the server closed the connection during the handshake")
            self._flush()
        except (SSL.Error, OSError) as exc:
            try:
                self._flush()  # our alert, if OpenSSL wrote one
            except OSError:
                pass
            self.result.error = f"{type(exc).__name__}: {exc}"
            return self.result
        finally:
            self._recorded = False
        self.result.version = self.conn.get_protocol_version_name()
        self.result.cipher = self.conn.get_cipher_name()
        chain = self.conn.get_peer_cert_chain(as_cryptography=True) or []
        self.result.chain = [c.public_bytes(serialization.Encoding.DER) for c in chain]
        return self.result

    # -- socket-like after the handshake -------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        self.sock.settimeout(value)

    def recv(self, n: int) -> bytes:
        while True:
            try:
                return self.conn.recv(n)
            except SSL.WantReadError:
                self._flush()
                try:
                    if not self._pull():
                        continue  # OpenSSL now reports the EOF
                except TimeoutError:
                    raise
            except SSL.ZeroReturnError:
                return b""
            except SSL.SysCallError:
                return b""
            except SSL.Error as exc:
                raise ConnectionError(f"TLS: {exc}") from None

    def sendall(self, data: bytes) -> None:
        try:
            self.conn.sendall(data)
        except SSL.Error as exc:
            raise ConnectionError(f"TLS: {exc}") from None
        self._flush()

    def shutdown(self, how: int) -> None:
        try:
            self.conn.shutdown()  # close_notify
            self._flush()
        except (SSL.Error, OSError):
            pass
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


PROBE_OPTIONS = ("request_ocsp", "min_version", "max_version")


def probe_handshake(sock: socket.socket, sni: str | None, timeout: float,
                    options: Mapping[str, Any]) -> tuple[TLSProbe | None, dict[str, Any]]:
    """The session step's handshake with OCSP/version OPTIONS (see PROBE_OPTIONS): the probe to
    keep talking over (None if the handshake failed) and the record for SessionRecord.tls — the
    keys of starttls.client_handshake plus ocsp_requested, ocsp_staple (DER or None),
    ocsp_callback (OpenSSL reported a status: only when requested) and handshake (the
    plaintext view of the server's flight)."""
    from .starttls import certificate_summary

    probe = TLSProbe(sock, request_ocsp=bool(options.get("request_ocsp")),
                     min_version=options.get("min_version"), max_version=options.get("max_version"),
                     server_name=sni, timeout=timeout)
    result = probe.handshake()
    chain = [x509.load_der_x509_certificate(c) for c in result.chain]
    info: dict[str, Any] = {
        "sni_sent": sni, "handshake_ok": result.ok, "error": result.error,
        "version": result.version, "cipher": result.cipher,
        "chain_pem": [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain],
        "chain": [certificate_summary(c) for c in chain],
        "alerts_received": list(result.alerts_received), "alerts_sent": list(result.alerts_sent),
        "ocsp_requested": result.requested_ocsp, "ocsp_staple": result.staple,
        "ocsp_callback": result.staple_callback,
        "min_version": options.get("min_version"), "max_version": options.get("max_version"),
        "handshake": handshake_view(result.server_bytes),
    }
    return (probe if result.ok else None), info
