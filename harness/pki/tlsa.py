"""TLSA certificate association data (RFC 6698 §2.1) and record values for the zone data.

``tlsa_record_value`` gives the presentation form ("3 1 1 <hex>") that the DNS zone data takes
as a TLSA ``value``. Usage numbers are not checked (0..255), so records with unknown usages can
carry real digests; selector and matching type must be ones this module can compute.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization

# RFC 7218 §2 acronyms
PKIX_TA, PKIX_EE, DANE_TA, DANE_EE = 0, 1, 2, 3
CERT, SPKI = 0, 1  # selectors, RFC 6698 §2.1.2
FULL, SHA2_256, SHA2_512 = 0, 1, 2  # matching types, RFC 6698 §2.1.3

CertLike = x509.Certificate | str | bytes


def load(cert: CertLike) -> x509.Certificate:
    """CERT as a certificate object; str/bytes are PEM (bytes without a PEM header: DER)."""
    if isinstance(cert, x509.Certificate):
        return cert
    data = cert.encode("ascii") if isinstance(cert, str) else cert
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def selected(cert: CertLike, selector: int) -> bytes:
    """RFC 6698 §2.1.2: 0 = the full certificate (DER), 1 = SubjectPublicKeyInfo (DER)."""
    c = load(cert)
    if selector == CERT:
        return c.public_bytes(serialization.Encoding.DER)
    if selector == SPKI:
        return c.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    raise ValueError(f"TLSA selector must be 0 or 1, not {selector}")


def tlsa_association(cert: CertLike, selector: int, mtype: int) -> bytes:
    """RFC 6698 §2.1.3: 0 = the selected bytes, 1 = their SHA-256, 2 = their SHA-512."""
    data = selected(cert, selector)
    if mtype == FULL:
        return data
    if mtype == SHA2_256:
        return hashlib.sha256(data).digest()
    if mtype == SHA2_512:
        return hashlib.sha512(data).digest()
    raise ValueError(f"TLSA matching type must be 0, 1 or 2, not {mtype}")


def tlsa_record_value(usage: int, selector: int, mtype: int, cert: CertLike) -> str:
    """The presentation form of a TLSA RDATA (RFC 6698 §2.2): "3 1 1 <hex>"."""
    if not 0 <= usage <= 255:
        raise ValueError(f"TLSA usage must be an octet, not {usage}")
    return f"{usage} {selector} {mtype} {tlsa_association(cert, selector, mtype).hex()}"


def dane_ee(cert: CertLike, selector: int = SPKI, mtype: int = SHA2_256) -> str:
    """Usage 3, the server's own certificate or key (RFC 7671 §5.1); "3 1 1" is the usual form."""
    return tlsa_record_value(DANE_EE, selector, mtype, cert)


def dane_ta(ca_cert: CertLike, selector: int = CERT, mtype: int = SHA2_256) -> str:
    """Usage 2, a CA in the server's chain as trust anchor (RFC 7671 §5.2); "2 0 1" by default.

    The server must then present that CA certificate in its chain (RFC 7671 §5.2.2)."""
    return tlsa_record_value(DANE_TA, selector, mtype, ca_cert)
