"""harness/pki/ocsp.py: every staple spec builds the response it names, as OpenSSL reads it.

`openssl ocsp -respin` is an independent implementation: each built response is checked with it
(verdict, status, times), and with the harness's own assessment (RFC 6960 §3.2), which the
server-side checks use.
"""

from __future__ import annotations

import base64
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from harness.pki.ca import PKI, Leaf
from harness.pki.ocsp import (STAPLE_SCHEMA, OCSPError, SignerCache, assess_response,
                              build_response, decode_response, parse_offset)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI("ocsp test")


@pytest.fixture(scope="module")
def leaf(pki: PKI) -> Leaf:
    return pki.issue(["mx.d.test"], ocsp_url="http://203.0.113.80/")


@pytest.fixture(scope="module")
def signers(pki: PKI) -> SignerCache:
    return SignerCache(pki.root_key)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, pki: PKI, leaf: Leaf) -> Path:
    d = tmp_path_factory.mktemp("ocsp")
    (d / "leaf.pem").write_bytes(leaf.cert.public_bytes(Encoding.PEM))
    (d / "issuer.pem").write_bytes(leaf.issuer_cert.public_bytes(Encoding.PEM))
    (d / "root.pem").write_text(pki.root_pem)
    return d


def openssl_says(der: bytes, files: Path) -> str:
    (files / "resp.der").write_bytes(der)
    proc = subprocess.run(
        ["openssl", "ocsp", "-respin", str(files / "resp.der"), "-issuer", str(files / "issuer.pem"),
         "-cert", str(files / "leaf.pem"), "-CAfile", str(files / "root.pem"),
         "-verify_other", str(files / "issuer.pem")],
        capture_output=True, text=True, timeout=30)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(("spec", "openssl", "problem"), [
    ({}, ["leaf.pem: good", "Response verify OK"], None),
    ({"status": "revoked", "reason": "key_compromise"},
     ["leaf.pem: revoked", "Reason: keyCompromise", "Response verify OK"], "revoked"),
    ({"status": "unknown"}, ["leaf.pem: unknown", "Response verify OK"], None),
    ({"signer": "delegated"}, ["leaf.pem: good", "Response verify OK"], None),
    ({"signer": "delegated_no_eku"}, ["Response Verify Failure"], "lacks id-kp-OCSPSigning"),
    ({"signer": "delegated_by_root"}, ["Response Verify Failure"], "not issued by the certificate's issuer"),
    ({"signer": "delegated_by_other_ca"}, ["Response Verify Failure"], "not issued by the certificate's issuer"),
    ({"signer": "unrelated"}, ["Response Verify Failure"], "not issued by the certificate's issuer"),
    ({"corrupt": "signature"}, ["Response Verify Failure"], "signature does not verify"),
    ({"next_update": "-1h", "this_update": "-2d"}, ["status expired"], "nextUpdate"),
    ({"this_update": "+1d"}, ["status not yet valid"], "in the future"),
    ({"serial": "other"}, ["No Status found"], "CertID serial"),
    ({"response_status": "try_later"}, ["Responder Error: trylater"], "try_later"),
    ({"corrupt": "der"}, ["Error reading OCSP response"], "not a DER OCSPResponse"),
    ({"corrupt": "truncated"}, ["Error reading OCSP response"], "not a DER OCSPResponse"),
])
def test_each_spec_builds_what_openssl_and_the_assessment_see(
        spec, openssl, problem, leaf: Leaf, signers: SignerCache, files: Path) -> None:
    der = build_response(leaf, spec, signers=signers)
    said = openssl_says(der, files)
    for words in openssl:
        assert words in said, said
    problems = assess_response(der, leaf.cert, leaf.issuer_cert).problems
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_produced_at_is_rewritten_and_resigned(leaf: Leaf, files: Path) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    der = build_response(leaf, {"produced_at": "-3d", "this_update": "-3d"}, now=now)
    resp = ocsp.load_der_ocsp_response(der)
    assert resp.produced_at_utc == now - timedelta(days=3)
    assert assess_response(der, leaf.cert, leaf.issuer_cert, now=now).problems == []


def test_times_and_nonce_are_as_asked(leaf: Leaf) -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    der = build_response(leaf, {"this_update": "-90s", "next_update": None, "nonce": "00ff"}, now=now)
    d = decode_response(der)
    assert d["this_update"] == "2029-12-31T23:58:30+00:00"
    assert d["next_update"] is None and d["nonce"] == "00ff"
    assert d["serial"] == f"{leaf.cert.serial_number:x}" and d["cert_status"] == "good"


def test_response_about_another_certificate_is_signed_by_the_leafs_issuer(pki: PKI, leaf: Leaf) -> None:
    other = pki.issue(["other.d.test"])
    der = build_response(leaf, {}, about=other)
    a = assess_response(der, leaf.cert, leaf.issuer_cert)
    assert any("CertID serial" in p for p in a.problems)
    assert assess_response(der, other.cert, other.issuer_cert).problems == []


def test_decode_never_raises_on_garbage() -> None:
    for blob in (b"", b"\x30", b"\x30\x03\x0a\x01\x00", bytes(range(256))):
        out = decode_response(blob)
        assert out["present"] and ("parse_error" in out or "response_status" in out)
    assert decode_response(None) == {"present": False}


def test_signer_is_named_in_the_decoded_response(leaf: Leaf, signers: SignerCache) -> None:
    assert decode_response(build_response(leaf, {"signer": "delegated"}, signers=signers))[
        "signer"].startswith("CN=OCSP responder")
    assert "issuing CA" in decode_response(build_response(leaf, {}))["signer"]


def test_bad_input_is_our_error() -> None:
    with pytest.raises(OCSPError):
        parse_offset("yesterday")
    assert parse_offset("-1h") == timedelta(hours=-1) and parse_offset(90) == timedelta(seconds=90)
    assert set(STAPLE_SCHEMA["properties"]) >= {"status", "signer", "corrupt", "produced_at"}


def test_delegated_responder_certificate_has_ocsp_signing(leaf: Leaf, signers: SignerCache) -> None:
    resp = ocsp.load_der_ocsp_response(build_response(leaf, {"signer": "delegated"}, signers=signers))
    (cert,) = resp.certificates
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku
    assert cert.issuer == leaf.issuer_cert.subject


# Found by `mtaconform fuzz self` (seed 1): a response whose CertID hash algorithm OID was
# mutated made decode_response raise UnsupportedAlgorithm, which is not a ValueError.
MUTATED_OID = base64.b64decode(
    "MIIBGAoBAKCCAREwggENBgkrBgEFBQcwAQEEgf8wgfwwgaKiFgQUAZnFm0a+F0hg2FQExkxYZ1+igy8YDzIwMjYxMTI1MTUzODQ5"
    "WjB3MHUwTTAJBgcrDgMCGgUABBRB9QKaD7+ZYlv5CGgYWR2tO4Q70wQUAZnFm0a+F0hg2FQExkxYZ1+igy8CFHmTVA2cUsm4rKEF"
    "DJykTK26E3orgAAYDzIwMjYxMTI1MTQzODQ5WqARGA8yMDI2MTIwMjE1Mzg0OVowCgYIKoZIzj0EAwIDSQAwRgIhALYtRgrUpCdW"
    "ZCTBj/Vttg7vgDFcBj+8rdUiYMFCjC8YAiEA9NlsxrMgrjtFyr74ONpwTRtrMrReuJPRWHRxXQ3qHgI=")


def test_unknown_algorithm_oid_is_a_parse_error_not_a_crash(pki: PKI, leaf: Leaf) -> None:
    decoded = decode_response(MUTATED_OID)
    assert "not recognized" in decoded["parse_error"]
    assessed = assess_response(MUTATED_OID, leaf.cert, pki.intermediate_certs[-1])
    assert not assessed.acceptable and "not recognized" in assessed.problems[0]
