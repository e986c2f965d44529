"""Issued certificates: names, validity, extensions, chain order, and real TLS handshakes."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from harness.pki import PKI, Leaf

NOW = datetime(2031, 5, 17, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI("ca-test", intermediates=1)


def san(cert: x509.Certificate) -> list[object]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [n.value for n in ext.value]


def cn(cert: x509.Certificate) -> list[str]:
    return [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def handshake(leaf: Leaf, tmp_path: Path, server_name: str, *, ca_pem: str | None = None,
              cn_fallback: bool = False) -> None:
    """A TLS handshake between two ssl contexts over memory BIOs; raises on failure."""
    files = leaf.write(tmp_path, "srv")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.cert, files.key)
    client_ctx = ssl.create_default_context(cadata=ca_pem or leaf.ca_pem)
    client_ctx.hostname_checks_common_name = cn_fallback
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {client: False, server: False}
    for _ in range(20):
        for end in (client, server):
            if not done[end]:
                try:
                    end.do_handshake()
                    done[end] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_names_validity_and_profile(pki: PKI) -> None:
    p = PKI("fixed-clock", now=NOW, intermediates=0)
    leaf = p.issue(["mx.d.test", "*.d.test", "198.51.100.1", "2001:db8::1"],
                   common_name="mx.d.test")
    cert = leaf.cert
    assert san(cert) == ["mx.d.test", "*.d.test", ipaddress.ip_address("198.51.100.1"),
                         ipaddress.ip_address("2001:db8::1")]
    assert cn(cert) == ["mx.d.test"]
    assert cert.not_valid_before_utc == NOW - timedelta(days=1)
    assert cert.not_valid_after_utc == NOW + timedelta(days=90)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    assert not cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    assert leaf.issuer_cert == p.root_cert and leaf.intermediates == ()
    custom = p.issue(["a.d.test"], not_before=NOW - timedelta(days=400),
                     not_after=NOW - timedelta(days=10), key_type="rsa")
    assert custom.cert.not_valid_after_utc == NOW - timedelta(days=10)
    assert isinstance(custom.cert.public_key(), rsa.RSAPublicKey)
    assert custom.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def test_cn_only_and_no_names(pki: PKI) -> None:
    leaf = pki.issue([], common_name="mx.d.test")
    assert san(leaf.cert) == [] and cn(leaf.cert) == ["mx.d.test"]
    with pytest.raises(ValueError):
        pki.issue([])
    with pytest.raises(TypeError):
        pki.issue("mx.d.test")  # type: ignore[arg-type]


def test_must_staple_and_ocsp_url(pki: PKI) -> None:
    leaf = pki.issue(["mx.d.test"], must_staple=True, ocsp_url="http://192.0.2.80/ocsp")
    ext = leaf.cert.extensions.get_extension_for_oid(ExtensionOID.TLS_FEATURE)
    assert ext.oid.dotted_string == "1.3.6.1.5.5.7.1.24"  # id-pe-tlsfeature, RFC 7633 §6
    assert [f.value for f in ext.value] == [5]  # status_request
    assert ext.value.public_bytes() == bytes.fromhex("3003020105")  # SEQUENCE { INTEGER 5 }
    aia = leaf.cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == \
        [(AuthorityInformationAccessOID.OCSP, "http://192.0.2.80/ocsp")]
    plain = pki.issue(["mx.d.test"])
    with pytest.raises(x509.ExtensionNotFound):
        plain.cert.extensions.get_extension_for_oid(ExtensionOID.TLS_FEATURE)


def test_chain_order_and_signatures(pki: PKI) -> None:
    leaf = pki.issue(["mx.d.test"])
    [inter] = leaf.intermediates
    assert inter == pki.intermediate_certs[0] == leaf.issuer_cert
    leaf.cert.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(pki.root_cert)
    pems = [x509.load_pem_x509_certificates(p.encode()) for p in
            (leaf.chain_pem, leaf.full_chain_pem, leaf.ca_pem)]
    assert pems == [[leaf.cert, inter], [leaf.cert, inter, pki.root_cert], [pki.root_cert]]
    direct = pki.issue(["mx.d.test"], intermediate=False)
    direct.cert.verify_directly_issued_by(pki.root_cert)
    assert direct.intermediates == () and direct.issuer_key is not None


def test_deeper_hierarchy() -> None:
    p = PKI("deep", intermediates=2)
    leaf = p.issue(["mx.d.test"])
    first, second = p.intermediate_certs
    assert leaf.intermediates == (second, first)
    leaf.cert.verify_directly_issued_by(second)
    second.verify_directly_issued_by(first)
    first.verify_directly_issued_by(p.root_cert)


def test_self_signed(pki: PKI) -> None:
    leaf = pki.self_signed(["mx.d.test"])
    assert leaf.self_signed and leaf.cert.issuer == leaf.cert.subject
    leaf.cert.verify_directly_issued_by(leaf.cert)
    assert leaf.chain_pem == leaf.full_chain_pem == leaf.cert_pem == leaf.ca_pem


def test_write(pki: PKI, tmp_path: Path) -> None:
    leaf = pki.issue(["mx.d.test"])
    files = leaf.write(tmp_path / "certs", "mx")
    assert files.cert.read_text() == leaf.chain_pem
    assert files.key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert files.ca.read_text() == pki.root_pem
    assert pki.write_ca(tmp_path).read_text() == pki.root_pem


def test_tls_handshakes_accept_and_reject(pki: PKI, tmp_path: Path) -> None:
    handshake(pki.issue(["mx.d.test"]), tmp_path, "mx.d.test")
    handshake(pki.issue(["*.d.test"], key_type="rsa"), tmp_path, "mx.d.test")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(pki.issue(["other.d.test"]), tmp_path, "mx.d.test")
    cn_only = pki.issue([], common_name="mx.d.test")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(cn_only, tmp_path, "mx.d.test")
    handshake(cn_only, tmp_path, "mx.d.test", cn_fallback=True)  # the CN is all it has
    past = PKI("past", now=datetime(2001, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        handshake(past.issue(["mx.d.test"]), tmp_path, "mx.d.test")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(PKI("stranger").issue(["mx.d.test"]), tmp_path, "mx.d.test",
                  ca_pem=pki.root_pem)
    ss = pki.self_signed(["mx.d.test"])
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ss, tmp_path, "mx.d.test", ca_pem=pki.root_pem)
