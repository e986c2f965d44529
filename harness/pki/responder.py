"""A fake OCSP responder: per-certificate state, answers over HTTP (RFC 6960 Appendix A).

The responder knows certificates by their CertID (issuer name and key hashes, serial number) and
keeps a *state* for each: a staple spec (see harness/pki/ocsp.py) — good, revoked with reason
and time, unknown, with chosen validity times and signer, or deliberately broken. The same state
answers an HTTP query and gives the DER file a target or a fake MX staples (`staple()`), so what
a scenario staples is what the lab's responder says.

`answer()` is pure (method, path, body in; status, content type, body out); `HTTPResponder`
serves it on a lab address. Beyond the staple spec, a state may say:

    http_status: 500     # answer with this HTTP error instead of a response
    nonce: echo | omit   # echo the request's nonce (default, RFC 6960 §4.4.1) or leave it out

Certificates nobody registered get "unknown" (RFC 6960 §2.2) when the responder serves their
issuer, "unauthorized" otherwise; a request that does not parse gets malformedRequest (§2.3). A
request for several certificates (`openssl ocsp -cert A -cert B`) gets one response with a
SingleResponse for each.
"""

from __future__ import annotations

import base64
import binascii
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from .ca import Leaf
from .ocsp import (STAPLE_SCHEMA, OCSPError, SignerCache, build_response, cert_id_key,
                   combine_responses, parse_request)

__all__ = ["OCSPResponder", "HTTPResponder", "STATE_SCHEMA", "Answer"]

_SHA256 = hashes.SHA256()
OCSP_REQUEST = "application/ocsp-request"  # RFC 6960 Appendix C.1
OCSP_RESPONSE = "application/ocsp-response"  # RFC 6960 Appendix C.2
MAX_REQUEST = 64 * 1024

STATE_SCHEMA: dict[str, Any] = {
    **STAPLE_SCHEMA,
    "properties": {
        **STAPLE_SCHEMA["properties"],
        "http_status": {"type": "integer", "minimum": 400, "maximum": 599},
        "nonce": {"oneOf": [STAPLE_SCHEMA["properties"]["nonce"], {"enum": ["echo", "omit"]}]},
    },
}


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    note: str = ""


@dataclass
class _Entry:
    leaf: Leaf
    state: dict[str, Any]
    about: Leaf | None = None


@dataclass(frozen=True)
class QueryRecord:
    method: str
    path: str
    serial: str | None
    status: int
    note: str


class OCSPResponder:
    """Certificate states and the responses they give; no I/O."""

    def __init__(self, *, root_key: Any = None, clock: Callable[[], datetime] | None = None) -> None:
        self.signers = SignerCache(root_key)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._entries: dict[tuple[str, bytes, bytes, int], _Entry] = {}
        self._lock = threading.Lock()
        self.log: list[QueryRecord] = []

    # -- state --------------------------------------------------------------------------------

    def set_state(self, leaf: Leaf, state: Mapping[str, Any] | None = None, *,
                  about: Leaf | None = None) -> None:
        """LEAF's certificate now answers with STATE (a staple spec; default: good)."""
        entry = _Entry(leaf, dict(state or {}), about)
        with self._lock:
            for alg in ("sha1", "sha256"):
                name_hash, key_hash, serial = cert_id_key(leaf.cert, leaf.issuer_cert, alg)
                self._entries[(alg, name_hash, key_hash, serial)] = entry

    def forget(self, leaf: Leaf) -> None:
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.leaf.cert == leaf.cert]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.log.clear()

    def staple(self, leaf: Leaf, state: Mapping[str, Any] | None = None, *,
               about: Leaf | None = None) -> bytes:
        """Set LEAF's state and return the DER response it gives: the file to staple."""
        self.set_state(leaf, state, about=about)
        return self.response_for(leaf)

    def response_for(self, leaf: Leaf, nonce: bytes | None = None) -> bytes:
        name_hash, key_hash, serial = cert_id_key(leaf.cert, leaf.issuer_cert)
        with self._lock:
            entry = self._entries.get(("sha1", name_hash, key_hash, serial))
        if entry is None:
            return build_response(leaf, {"status": "unknown"}, now=self.clock(),
                                  signers=self.signers, nonce=nonce)
        return self._build(entry, nonce)

    def _build(self, entry: _Entry, nonce: bytes | None) -> bytes:
        spec = {k: v for k, v in entry.state.items() if k not in ("http_status", "nonce")}
        if isinstance(entry.state.get("nonce"), str) and entry.state["nonce"] not in ("echo", "omit"):
            spec["nonce"] = entry.state["nonce"]  # a fixed (wrong) nonce
        elif entry.state.get("nonce") == "omit":
            nonce = None
        return build_response(entry.leaf, spec, now=self.clock(), about=entry.about,
                              signers=self.signers, nonce=nonce,
                              serial=getattr(entry, "serial", None))

    # -- HTTP (RFC 6960 Appendix A.1) ---------------------------------------------------------

    def answer(self, method: str, path: str, body: bytes = b"",
               content_type: str | None = None) -> Answer:
        """The HTTP answer to one request: GET /{url-encoded base64 of the DER request}, or
        POST with the DER request as the body."""
        if method == "POST":
            der = body
            if content_type is not None and content_type.split(";")[0].strip().lower() != OCSP_REQUEST:
                return self._record(method, path, None, Answer(
                    415, "text/plain", b"expected Content-Type: application/ocsp-request\n",
                    "wrong content type"))
        elif method == "GET":
            # Appendix A.1: the path is the URL-encoded base64 of the DER request (our URL is "/";
            # a '/' of the base64 alphabet may arrive unencoded).
            encoded = urllib.parse.unquote(path.split("?", 1)[0].lstrip("/"))
            try:
                der = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return self._record(method, path, None, self._malformed("GET path is not base64"))
        else:
            return self._record(method, path, None, Answer(405, "text/plain", b"GET or POST\n",
                                                           "method not allowed"))
        try:
            request = parse_request(der)
        except OCSPError as exc:
            return self._record(method, path, None, self._malformed(str(exc)))
        built: list[tuple[bytes, Any]] = []
        serials = ", ".join(f"{c.serial_number:x}" for c in request.cert_ids)
        for cid in request.cert_ids:
            key = (cid.hash_algorithm, cid.issuer_name_hash, cid.issuer_key_hash, cid.serial_number)
            with self._lock:
                entry = self._entries.get(key)
                issuer_known = any(k[0] == key[0] and k[2] == key[2] for k in self._entries)
            if entry is None and issuer_known:
                entry = self._unknown_entry(key)
            if entry is None:
                # RFC 6960 §2.3: not authoritative for this issuer.
                der_out = x509_ocsp.OCSPResponseBuilder.build_unsuccessful(
                    x509_ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
                return self._record(method, path, serials, Answer(200, OCSP_RESPONSE, der_out,
                                                                  "unauthorized: unknown issuer"))
            status = entry.state.get("http_status")
            if status:
                return self._record(method, path, serials, Answer(
                    int(status), "text/plain", b"responder error (scripted)\n", f"HTTP {status}"))
            try:
                built.append((self._build(entry, request.nonce), entry))
            except OCSPError as exc:
                return self._record(method, path, serials, Answer(
                    500, "text/plain", f"{exc}\n".encode(), "cannot build"))
        der_out = built[0][0]
        same_signer = len({(e.state.get("signer", "issuer"), e.leaf.issuer_cert.fingerprint(_SHA256))
                           for _, e in built}) == 1
        if len(built) > 1 and same_signer and all(self._plain(e) for _, e in built):
            first = built[0][1]
            signer = self.signers.signer(first.state.get("signer", "issuer"), first.leaf,
                                         first.state.get("include_signer"), self.clock())
            der_out = combine_responses([d for d, _ in built], signer.key)
        return self._record(method, path, serials, Answer(
            200, OCSP_RESPONSE, der_out, ", ".join(e.state.get("status", "good") for _, e in built)))

    @staticmethod
    def _plain(entry: _Entry) -> bool:
        """A state whose response can share a signature with others (successful, unbroken, and
        signed by the same kind of signer as the first)."""
        return not ({"corrupt", "response_status", "produced_at"} & set(entry.state))

    def _unknown_entry(self, key: tuple[str, bytes, bytes, int]) -> _Entry | None:
        """A serial this responder never saw, under an issuer it serves: status unknown, signed
        by that issuer (a leaf of the same issuer stands in for the CertID)."""
        with self._lock:
            sibling = next((e for k, e in self._entries.items() if k[0] == key[0] and k[2] == key[2]),
                           None)
        if sibling is None:
            return None
        return _UnknownEntry(sibling.leaf, key[3])

    def _malformed(self, why: str) -> Answer:
        der = x509_ocsp.OCSPResponseBuilder.build_unsuccessful(
            x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
        return Answer(200, OCSP_RESPONSE, der, f"malformedRequest: {why}")

    def _record(self, method: str, path: str, serial: str | None, answer: Answer) -> Answer:
        with self._lock:
            self.log.append(QueryRecord(method, path[:200], serial, answer.status, answer.note))
        return answer


class _UnknownEntry(_Entry):
    """Answers "unknown" for SERIAL under LEAF's issuer."""

    def __init__(self, leaf: Leaf, serial: int) -> None:
        super().__init__(leaf, {"status": "unknown"})
        self.serial = serial


# -- the HTTP server ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # queries are recorded in OCSPResponder.log

    def _reply(self, method: str, body: bytes = b"") -> None:
        answer = self.server.responder.answer(method, self.path, body,
                                              self.headers.get("Content-Type"))
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(answer.body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._reply("GET")

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST:
            self.send_error(413 if length > MAX_REQUEST else 411)
            return
        self._reply("POST", self.rfile.read(length))


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, sock: socket.socket, address: tuple[str, int], responder: OCSPResponder) -> None:
        self.responder = responder
        super().__init__(address, _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server_bind()  # binds only: no getfqdn() as HTTPServer would do
        self.server_activate()


class HTTPResponder:
    """RESPONDER served over HTTP on ADDRESS:PORT, from sockets made by SOCKET_FACTORY."""

    def __init__(self, responder: OCSPResponder, address: str, port: int = 80, *,
                 socket_factory: Callable[[int, int], socket.socket] = socket.socket) -> None:
        self.responder = responder
        self.address = address
        self._port = port
        self._factory = socket_factory
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}{'' if self.port == 80 else f':{self.port}'}/"

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = self._factory(family, socket.SOCK_STREAM)
        try:
            self._server = _Server(sock, (self.address, self._port), self.responder)
        except BaseException:
            sock.close()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="ocsp-responder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(2.0)
        self._server = self._thread = None

    def __enter__(self) -> HTTPResponder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
