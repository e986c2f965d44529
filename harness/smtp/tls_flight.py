"""A TLS 1.2 server written by hand, for what no TLS library will send (OCSP issue #5).

OpenSSL's server (the one pyOpenSSL bundles) staples only when asked, always echoes
status_request, and drops a staple it cannot parse or that is not about its certificate. The fake
MX needs all of those: a CertificateStatus nobody asked for (RFC 6066 §8: a server MUST NOT), one
without the ServerHello echo, a truncated or non-DER staple, a response for another serial. So
`play_flight()` serves the handshake itself — ECDHE (x25519 or P-256) with ECDSA or RSA,
AES-128-GCM (RFC 5246, RFC 5288, RFC 8422), extended master secret when offered (RFC 7627) —
sends the staple bytes it was given, and returns a `ScriptedTLS` connection FakeMX then talks
SMTP through; or None, with what the client did (its alert) recorded, when the client gave up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import select
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .tls_probe import ALERT_NAMES, EXT_STATUS_REQUEST, TLSRecordError, parse_records

__all__ = ["ScriptedTLS", "parse_client_hello", "play_flight"]

_EXT_RENEGOTIATION_INFO, _EXT_EC_POINT_FORMATS, _EXT_EMS = 0xFF01, 0x000B, 0x0017


def _handshake(mtype: int, body: bytes) -> bytes:
    return bytes([mtype]) + len(body).to_bytes(3, "big") + body


def _records(ctype: int, data: bytes) -> bytes:
    out = b""
    for i in range(0, len(data), 2**14):
        chunk = data[i : i + 2**14]
        out += struct.pack("!BHH", ctype, 0x0303, len(chunk)) + chunk
    return out


def _ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


def parse_client_hello(data: bytes) -> dict[str, Any] | None:
    """The ClientHello in DATA (records from the client), or None while it is incomplete."""
    records, _ = parse_records(data)
    buf = b"".join(f for t, _, f in records if t == 22)
    if len(buf) < 4:
        return None
    if buf[0] != 1:
        raise TLSRecordError(f"expected a ClientHello, got handshake type {buf[0]}")
    length = int.from_bytes(buf[1:4], "big")
    if len(buf) < 4 + length:
        return None
    body = buf[4 : 4 + length]
    at = 2 + 32
    sid = body[at + 1 : at + 1 + body[at]]
    at += 1 + body[at]
    (n,) = struct.unpack("!H", body[at : at + 2])
    suites = [struct.unpack("!H", body[at + 2 + i : at + 4 + i])[0] for i in range(0, n, 2)]
    at += 2 + n
    at += 1 + body[at]  # compression methods
    exts: dict[int, bytes] = {}
    if at + 2 <= len(body):
        (total,) = struct.unpack("!H", body[at : at + 2])
        at += 2
        end = at + total
        while at + 4 <= end:
            etype, elen = struct.unpack("!HH", body[at : at + 4])
            exts[etype] = body[at + 4 : at + 4 + elen]
            at += 4 + elen
    return {"random": body[2:34], "session_id": sid, "suites": suites, "extensions": exts,
            "status_request": EXT_STATUS_REQUEST in exts}


class ScriptedTLS:
    """The server side of one TLS 1.2 connection completed by hand (ECDHE, AES-128-GCM, RFC 5246,
    RFC 5288, RFC 7627 extended master secret): what FakeMX talks through after the handshake,
    like a pyOpenSSL connection (recv, sendall, shutdown)."""

    def __init__(self, sock: socket.socket, key: Any, cipher: str, master: bytes,
                 server_random: bytes, client_random: bytes) -> None:
        block = _prf(master, b"key expansion", server_random + client_random, 40)
        self.sock = sock
        self.cipher = cipher
        self._read = (AESGCM(block[0:16]), block[32:36])
        self._write = (AESGCM(block[16:32]), block[36:40])
        self._rseq = self._wseq = 0
        self._buffer = b""
        self._closed = False

    def get_protocol_version_name(self) -> str:
        return "TLSv1.2"

    def get_cipher_name(self) -> str:
        return self.cipher

    def seal(self, ctype: int, data: bytes) -> bytes:
        aead, iv = self._write
        explicit = self._wseq.to_bytes(8, "big")
        aad = explicit + struct.pack("!BHH", ctype, 0x0303, len(data))
        self._wseq += 1
        body = explicit + aead.encrypt(iv + explicit, data, aad)
        return struct.pack("!BHH", ctype, 0x0303, len(body)) + body

    def open(self, ctype: int, body: bytes) -> bytes:
        aead, iv = self._read
        explicit, sealed = body[:8], body[8:]
        aad = self._rseq.to_bytes(8, "big") + struct.pack("!BHH", ctype, 0x0303, len(sealed) - 16)
        self._rseq += 1
        try:
            return aead.decrypt(iv + explicit, sealed, aad)
        except InvalidTag:
            raise ConnectionError("TLS: bad record MAC") from None

    def record(self) -> tuple[int, bytes]:
        """The next record, decrypted; (21, alert) or (23, data); EOF → ConnectionError."""
        while True:
            records, rest = parse_records(self._buffer)
            if records:
                ctype, _, body = records[0]
                self._buffer = self._buffer[5 + len(body):]
                return ctype, self.open(ctype, body)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self._buffer += chunk

    def recv(self, size: int) -> bytes:
        if self._closed:
            return b""
        while True:
            try:
                ctype, data = self.record()
            except ConnectionError:
                self._closed = True
                return b""
            if ctype == 21:  # an alert: close_notify or fatal, either way the end
                self._closed = True
                return b""
            if ctype == 23 and data:
                return data

    def sendall(self, data: bytes) -> None:
        out = b"".join(self.seal(23, data[i : i + 2**14]) for i in range(0, len(data), 2**14))
        self.sock.sendall(out)

    def shutdown(self) -> None:
        self.sock.sendall(self.seal(21, b"\x01\x00"))  # close_notify


def _prf(secret: bytes, label: bytes, seed: bytes, size: int) -> bytes:
    """RFC 5246 §5: P_SHA256(secret, label + seed)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < size:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:size]


class _Reader:
    """Handshake messages from the client's plaintext records (before its ChangeCipherSpec)."""

    def __init__(self, sock: socket.socket, data: bytes, deadline: float) -> None:
        self.sock, self.data, self.deadline = sock, data, deadline
        self.handshake = b""
        self.alerts: list[int] = []
        self.ccs = False

    def _fill(self) -> bool:
        chunk = _recv(self.sock, self.deadline)
        if not chunk:
            return False
        self.data += chunk
        return True

    def message(self) -> tuple[int, bytes, bytes] | None:
        """(type, body, whole message) or None when the client stopped (alert, close, CCS)."""
        while True:
            if len(self.handshake) >= 4:
                length = int.from_bytes(self.handshake[1:4], "big")
                if len(self.handshake) >= 4 + length:
                    whole = self.handshake[: 4 + length]
                    self.handshake = self.handshake[4 + length :]
                    return whole[0], whole[4:], whole
            records, rest = parse_records(self.data)
            if not records:
                if not self._fill():
                    return None
                continue
            ctype, _, fragment = records[0]
            self.data = self.data[5 + len(fragment):]
            if ctype == 21 and len(fragment) >= 2:
                self.alerts.append(fragment[1])
                return None
            if ctype == 20:
                self.ccs = True
                return None
            if ctype == 22:
                self.handshake += fragment


def play_flight(sock: socket.socket, config: Mapping[str, Any], info: dict[str, Any],
                transcript: Any = None, *, timeout: float = 5.0) -> ScriptedTLS | None:
    """Serve one TLS 1.2 handshake written by hand on SOCK, and return the connection to talk
    through — or None when the client did not complete it (what it did is in INFO).

    CONFIG: chain (DER, leaf first), key_pem (the leaf's key), staple (DER, any bytes at all), and
    unsolicited: True sends CertificateStatus whether asked or not and never echoes
    status_request (RFC 6066 §8 violated on purpose); False staples exactly as asked.
    INFO gets ocsp_requested, ocsp_stapled, status_echoed, unsolicited_status_sent,
    alerts_received, client_continued, and on success tls_version and cipher."""
    deadline = time.monotonic() + timeout
    reader = _Reader(sock, b"", deadline)
    first = reader.message()
    if first is None or first[0] != 1:
        info["error"] = "no ClientHello"
        return None
    hello = _client_hello_fields(first[1])
    info["ocsp_requested"] = hello["status_request"]
    info["sni"] = hello.get("sni")
    unsolicited = bool(config.get("unsolicited"))
    send_status = bool(config.get("staple") is not None) and (unsolicited or hello["status_request"])
    echo = send_status and not unsolicited
    info["ocsp_stapled"] = send_status
    info["status_echoed"] = echo
    info["unsolicited_status_sent"] = send_status and not echo
    key = serialization.load_pem_private_key(config["key_pem"], None)
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    suite = 0xC02F if rsa_key else 0xC02B
    if suite not in hello["suites"]:
        info["error"] = f"the client does not offer cipher suite {suite:04x}"
        return None
    groups = hello.get("groups", [])
    group = 0x001D if 0x001D in groups or not groups else 0x0017
    ems = _EXT_EMS in hello["extensions"]
    server_random = os.urandom(24) + b"mtacnfrm"  # never the RFC 8446 §4.1.3 downgrade sentinel
    exts = b""
    if _EXT_RENEGOTIATION_INFO in hello["extensions"] or 0x00FF in hello["suites"]:
        exts += _ext(_EXT_RENEGOTIATION_INFO, b"\x00")  # RFC 5746 §3.6: only if the client signalled
    if _EXT_EC_POINT_FORMATS in hello["extensions"]:
        exts += _ext(_EXT_EC_POINT_FORMATS, b"\x01\x00")  # RFC 8422 §5.2: uncompressed
    if ems:
        exts += _ext(_EXT_EMS, b"")
    if echo:
        exts += _ext(EXT_STATUS_REQUEST, b"")
    sid = hello["session_id"]
    messages = [first[2], _handshake(2, b"\x03\x03" + server_random + bytes([len(sid)]) + sid
                                     + struct.pack("!HB", suite, 0) + struct.pack("!H", len(exts)) + exts)]
    certs = b"".join(len(c).to_bytes(3, "big") + c for c in config["chain"])
    messages.append(_handshake(11, len(certs).to_bytes(3, "big") + certs))
    if send_status:
        staple = config["staple"]
        messages.append(_handshake(22, b"\x01" + len(staple).to_bytes(3, "big") + staple))
    if group == 0x001D:
        ephemeral: Any = x25519.X25519PrivateKey.generate()
        point = ephemeral.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
    else:
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        point = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
    params = b"\x03" + struct.pack("!H", group) + bytes([len(point)]) + point
    signed = hello["random"] + server_random + params
    if rsa_key:
        sig, scheme = key.sign(signed, padding.PKCS1v15(), hashes.SHA256()), 0x0401
    else:
        sig, scheme = key.sign(signed, ec.ECDSA(hashes.SHA256())), 0x0403
    messages.append(_handshake(12, params + struct.pack("!HH", scheme, len(sig)) + sig))
    messages.append(_handshake(14, b""))
    sock.sendall(_records(22, b"".join(messages[1:])))
    if transcript is not None:
        transcript.note("scripted TLS 1.2 server: CertificateStatus "
                        + ("not sent" if not send_status else
                           "sent as asked" if echo else
                           f"sent {'unasked' if not hello['status_request'] else 'without the echo'}"))
    # The client's flight: ClientKeyExchange, ChangeCipherSpec, Finished.
    cke = reader.message()
    if cke is None or cke[0] != 16:
        info["alerts_received"].extend(reader.alerts)
        _note_end(info, transcript)
        return None
    info["client_continued"] = True
    messages.append(cke[2])
    peer_point = cke[1][1 : 1 + cke[1][0]]
    try:
        if group == 0x001D:
            pms = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(peer_point))
        else:
            pms = ephemeral.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), peer_point))
    except ValueError as exc:
        info["error"] = f"bad ClientKeyExchange: {exc}"
        return None
    if ems:  # RFC 7627 §4
        master = _prf(pms, b"extended master secret",
                      hashlib.sha256(b"".join(messages)).digest(), 48)
    else:
        master = _prf(pms, b"master secret", hello["random"] + server_random, 48)
    conn = ScriptedTLS(sock, key, "ECDHE-RSA-AES128-GCM-SHA256" if rsa_key
                       else "ECDHE-ECDSA-AES128-GCM-SHA256", master, server_random, hello["random"])
    while reader.message() is not None:  # up to the client's ChangeCipherSpec
        pass
    if not reader.ccs:
        info["alerts_received"].extend(reader.alerts)
        _note_end(info, transcript)
        return None
    conn._buffer = reader.data
    try:
        ctype, finished = conn.record()
    except (ConnectionError, OSError) as exc:
        info["error"] = f"client Finished: {exc}"
        return None
    expected = _handshake(20, _prf(master, b"client finished",
                                   hashlib.sha256(b"".join(messages)).digest(), 12))
    if ctype != 22 or finished != expected:
        info["error"] = "the client's Finished does not verify"
        return None
    messages.append(finished)
    sock.sendall(_records(20, b"\x01") + conn.seal(22, _handshake(20, _prf(
        master, b"server finished", hashlib.sha256(b"".join(messages)).digest(), 12))))
    info.update(handshake_ok=True, tls_version="TLSv1.2", cipher=conn.cipher)
    return conn


def _note_end(info: dict[str, Any], transcript: Any) -> None:
    alerts = [ALERT_NAMES.get(a, str(a)) for a in info["alerts_received"]]
    info["error"] = info.get("error") or f"the client stopped; alerts: {', '.join(alerts) or 'none'}"
    if transcript is not None:
        transcript.note(f"client answered the flight with alerts: {', '.join(alerts) or 'none'}"
                        f"{' after a ClientKeyExchange' if info.get('client_continued') else ''}")


def _client_hello_fields(body: bytes) -> dict[str, Any]:
    record = struct.pack("!BHH", 22, 0x0301, len(body) + 4) + _handshake(1, body)
    hello = parse_client_hello(record)
    assert hello is not None
    groups_raw = hello["extensions"].get(10, b"")
    hello["groups"] = [struct.unpack("!H", groups_raw[2 + i : 4 + i])[0]
                       for i in range(0, max(len(groups_raw) - 2, 0), 2)]
    return hello


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return b""
    ready, _, _ = select.select([sock], [], [], remaining)
    if not ready:
        return b""
    try:
        return sock.recv(65536)
    except OSError:
        return b""
