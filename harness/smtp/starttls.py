"""The client side of STARTTLS (RFC 3207): a TLS handshake over an SMTP connection, recorded.

The harness never authenticates the server here: it records what the server presented (the whole
certificate chain, in order) so that checks can judge it, and whether the handshake completed
with the SNI it was given (none, or a name). pyOpenSSL with a blocking socket (LAB-NOTES "Clients
and peers"); `TLSSocket` then stands in for the plain socket under `SMTPClient`.
"""

from __future__ import annotations

import hashlib
import select
import socket
import struct
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from ..pki.tlsa import tlsa_association


class TLSSocket:
    """Just enough of a socket for SMTPClient over an established pyOpenSSL connection."""

    def __init__(self, conn: SSL.Connection, sock: socket.socket) -> None:
        self.conn = conn
        self.raw = sock
        self._timeout: float | None = None

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def sendall(self, data: bytes) -> None:
        try:
            self.conn.sendall(data)
        except SSL.Error as exc:
            raise OSError(f"TLS send failed: {exc}") from None

    def recv(self, size: int) -> bytes:
        if not self.conn.pending():
            ready, _, _ = select.select([self.raw], [], [], self._timeout)
            if not ready:
                raise TimeoutError("no data")
        try:
            return self.conn.recv(size)
        except SSL.ZeroReturnError:
            return b""
        except SSL.WantReadError:
            raise TimeoutError("incomplete TLS record") from None
        except SSL.SysCallError as exc:  # (-1, "Unexpected EOF") or an errno
            if exc.args and exc.args[0] == -1:
                return b""
            raise OSError(f"TLS recv failed: {exc}") from None
        except SSL.Error as exc:
            raise OSError(f"TLS recv failed: {exc}") from None

    def shutdown(self, how: int) -> None:
        # The half-close after QUIT (SMTPClient.quit): TCP only. A close_notify now would stop
        # OpenSSL from reading the 221 that is still to come.
        self.raw.shutdown(how)

    def close(self) -> None:
        self.raw.close()


def certificate_summary(cert: x509.Certificate) -> dict[str, Any]:
    """What a report shows of one presented certificate."""
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = names.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "dns_names": dns_names,
        "ca": ca,
        "self_issued": cert.subject == cert.issuer,
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        # RFC 6698 §2.1: the "2 0 1" association of this certificate as a trust anchor.
        "tlsa_2_0_1": tlsa_association(cert, 0, 1).hex(),
    }


def client_handshake(sock: socket.socket, sni: str | None, timeout: float
                     ) -> tuple[TLSSocket | None, dict[str, Any]]:
    """Run the client handshake on SOCK (after a 220 reply to STARTTLS) with SNI (None: no SNI
    extension). Returns the TLS socket (None if the handshake failed) and what was recorded:
    sni_sent, handshake_ok, error, version, cipher, chain_pem (leaf first, as presented) and
    chain (a summary per certificate)."""
    info: dict[str, Any] = {"sni_sent": sni, "handshake_ok": False, "error": None, "version": None,
                            "cipher": None, "chain_pem": [], "chain": [], "alerts_received": []}
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE, lambda *args: True)  # record, never judge, here

    def on_info(conn: SSL.Connection, where: int, ret: int) -> None:
        if where & SSL.SSL_CB_ALERT and where & SSL.SSL_CB_READ:
            info["alerts_received"].append(ret & 0xFF)  # AlertDescription (RFC 8446 §6)

    ctx.set_info_callback(on_info)
    sock.settimeout(None)  # blocking for pyOpenSSL, bounded by the kernel's receive timeout
    seconds = max(timeout, 0.001)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000)))
    conn = SSL.Connection(ctx, sock)
    if sni is not None:
        conn.set_tlsext_host_name(sni.encode("idna"))
    conn.set_connect_state()
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        info["error"] = f"handshake timed out after {timeout:g} s"
        return None, info
    except (SSL.Error, OSError) as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        return None, info
    chain = conn.get_peer_cert_chain(as_cryptography=True) or []
    info.update(handshake_ok=True, version=conn.get_protocol_version_name(),
                cipher=conn.get_cipher_name(),
                chain_pem=[c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain],
                chain=[certificate_summary(c) for c in chain])
    return TLSSocket(conn, sock), info
