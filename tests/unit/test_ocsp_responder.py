"""harness/pki/responder.py: RFC 6960 Appendix A over HTTP, per-certificate state, broken answers.

The HTTP tests serve on 127.0.0.1 (no lab needed) and query with a real client: `openssl ocsp
-url …` (POST), and urllib for GET (Appendix A.1: the base64 request, URL-encoded, in the path).
tests/integration/test_ocsp_responder_lab.py does the same inside a lab on 203.0.113.80.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from harness.pki.ca import PKI, Leaf
from harness.pki.responder import HTTPResponder, OCSPResponder


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI("responder test")


@pytest.fixture()
def responder(pki: PKI) -> OCSPResponder:
    return OCSPResponder(root_key=pki.root_key)


@pytest.fixture()
def server(responder: OCSPResponder) -> Iterator[HTTPResponder]:
    with HTTPResponder(responder, "127.0.0.1", 0) as srv:
        yield srv


def request_der(leaf: Leaf, nonce: bytes | None = None, alg: hashes.HashAlgorithm | None = None) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(leaf.cert, leaf.issuer_cert, alg or hashes.SHA1())
    if nonce:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(Encoding.DER)


def write_pems(d: Path, pki: PKI, leaf: Leaf) -> None:
    (d / "leaf.pem").write_bytes(leaf.cert.public_bytes(Encoding.PEM))
    (d / "issuer.pem").write_bytes(leaf.issuer_cert.public_bytes(Encoding.PEM))
    (d / "root.pem").write_text(pki.root_pem)


def openssl_ocsp(url: str, d: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "ocsp", "-issuer", str(d / "issuer.pem"), "-cert", str(d / "leaf.pem"),
         "-url", url, "-CAfile", str(d / "root.pem"), "-verify_other", str(d / "issuer.pem"),
         "-timeout", "5", *extra], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("state", "says"), [
    ({}, "leaf.pem: good"),
    ({"status": "revoked", "reason": "superseded", "revoked_at": "-3d"}, "leaf.pem: revoked"),
    ({"status": "unknown"}, "leaf.pem: unknown"),
    ({"signer": "delegated"}, "leaf.pem: good"),
])
def test_openssl_ocsp_gets_the_state(state, says, pki: PKI, responder: OCSPResponder,
                                     server: HTTPResponder, tmp_path: Path) -> None:
    leaf = pki.issue(["mx.d.test"], ocsp_url=server.url)
    write_pems(tmp_path, pki, leaf)
    responder.set_state(leaf, state)
    proc = openssl_ocsp(server.url, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and says in out and "Response verify OK" in out, out
    if state.get("reason"):
        assert "Reason: superseded" in out
    # openssl sends a nonce by default; the responder echoes it (RFC 6960 §4.4.1).
    assert "WARNING: no nonce in response" not in out
    assert [q.method for q in responder.log] == ["POST"]


@pytest.mark.parametrize(("state", "says"), [
    ({"corrupt": "signature"}, "Response Verify Failure"),
    ({"signer": "delegated_no_eku"}, "Response Verify Failure"),
    ({"next_update": "-1h", "this_update": "-2d"}, "status expired"),
    ({"nonce": "omit"}, "WARNING: no nonce in response"),
    ({"nonce": "abcd"}, "nonce verify error"),
    ({"http_status": 503}, "code=503"),
    ({"corrupt": "der"}, "Error"),
])
def test_broken_answers_are_noticed_by_openssl(state, says, pki: PKI, responder: OCSPResponder,
                                               server: HTTPResponder, tmp_path: Path) -> None:
    leaf = pki.issue(["mx.d.test"], ocsp_url=server.url)
    write_pems(tmp_path, pki, leaf)
    responder.set_state(leaf, state)
    proc = openssl_ocsp(server.url, tmp_path)
    assert says.lower() in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr


def test_get_with_the_request_in_the_path(pki: PKI, responder: OCSPResponder, server: HTTPResponder) -> None:
    leaf = pki.issue(["mx.d.test"])
    responder.set_state(leaf, {"status": "revoked"})
    path = urllib.parse.quote(base64.b64encode(request_der(leaf, b"\x01\x02")).decode(), safe="")
    with urllib.request.urlopen(server.url + path, timeout=5) as reply:
        assert reply.headers["Content-Type"] == "application/ocsp-response"
        resp = ocsp.load_der_ocsp_response(reply.read())
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert [e.value.nonce for e in resp.extensions] == [b"\x01\x02"]
    assert responder.log[-1].method == "GET"


def test_answer_is_pure_and_handles_bad_requests(pki: PKI, responder: OCSPResponder) -> None:
    leaf = pki.issue(["mx.d.test"])
    other_pki_leaf = PKI("elsewhere").issue(["x.test"])
    responder.set_state(leaf, {})
    good = responder.answer("POST", "/", request_der(leaf), "application/ocsp-request")
    assert good.status == 200 and ocsp.load_der_ocsp_response(good.body).certificate_status is \
        ocsp.OCSPCertStatus.GOOD
    # A serial never registered, same issuer: "unknown" (RFC 6960 §2.2), signed by that issuer.
    stranger = pki.issue(["stranger.test"])
    unknown = ocsp.load_der_ocsp_response(responder.answer("POST", "/", request_der(stranger)).body)
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert unknown.serial_number == stranger.cert.serial_number
    # An issuer it does not serve: unauthorized (§2.3).
    foreign = ocsp.load_der_ocsp_response(responder.answer("POST", "/", request_der(other_pki_leaf)).body)
    assert foreign.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # Garbage: malformedRequest.
    bad = ocsp.load_der_ocsp_response(responder.answer("POST", "/", b"\x30\x00").body)
    assert bad.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert ocsp.load_der_ocsp_response(responder.answer("GET", "/!!!").body).response_status is \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert responder.answer("POST", "/", request_der(leaf), "text/plain").status == 415
    assert responder.answer("PUT", "/").status == 405
    # CertID by SHA-256 finds the same state.
    sha256 = responder.answer("POST", "/", request_der(leaf, alg=hashes.SHA256()))
    assert ocsp.load_der_ocsp_response(sha256.body).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_staple_is_what_the_responder_answers(pki: PKI, responder: OCSPResponder) -> None:
    leaf = pki.issue(["mx.d.test"])
    der = responder.staple(leaf, {"status": "revoked", "reason": "key_compromise"})
    served = ocsp.load_der_ocsp_response(responder.answer("POST", "/", request_der(leaf)).body)
    stapled = ocsp.load_der_ocsp_response(der)
    assert stapled.certificate_status is served.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert stapled.serial_number == served.serial_number == leaf.cert.serial_number
