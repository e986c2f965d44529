"""The lab's PKI: a trustme root CA, optional intermediates, and leaf certificates.

trustme makes the CAs. Every leaf is built here with ``cryptography`` and signed with its
issuing CA's key (trustme's public ``private_key_pem``): trustme's ``issue_cert`` can add neither
the TLS Feature extension (must-staple) nor an AIA OCSP URL, and cannot leave out the SAN for a
CN-only certificate. One builder for all leaves keeps the certificates of a scenario identical
except in what the scenario varies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, Union

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

KeyType = Literal["ec", "rsa"]
PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]

DEFAULT_VALIDITY = timedelta(days=90)
BACKDATE = timedelta(days=1)  # not_before default: a day before "now", against clock skew
_TRUSTME_KEY = {"ec": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class LeafFiles:
    cert: Path  # the leaf followed by its intermediates: what a server presents
    key: Path
    ca: Path  # the root, for a client's trust store
    full_chain: Path | None = None  # leaf, intermediates and the root (RFC 7672 §3.1.2, DANE-32)


@dataclass(frozen=True)
class Leaf:
    cert: x509.Certificate
    key: PrivateKey
    issuer_cert: x509.Certificate
    issuer_key: PrivateKey  # so an OCSP responder can sign as the CA itself (RFC 6960 §4.2.2.2)
    intermediates: tuple[x509.Certificate, ...]  # issuer first, root excluded
    root: x509.Certificate  # the leaf itself when self-signed

    @property
    def self_signed(self) -> bool:
        return self.root == self.cert

    @property
    def cert_pem(self) -> str:
        return _pem(self.cert)

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode("ascii")

    @property
    def chain_pem(self) -> str:
        """Leaf then intermediates, each certifying the one before (RFC 8446 §4.4.2)."""
        return "".join(_pem(c) for c in (self.cert, *self.intermediates))

    @property
    def full_chain_pem(self) -> str:
        return self.chain_pem if self.self_signed else self.chain_pem + _pem(self.root)

    @property
    def ca_pem(self) -> str:
        return _pem(self.root)

    def write(self, directory: str | Path, stem: str) -> LeafFiles:
        """Write STEM.crt (chain), STEM.key, STEM-ca.crt and STEM-full.crt (chain and root)
        into DIRECTORY.

        Files are world-readable: these are throw-away lab keys, and an MTA usually reads its
        key after dropping privileges.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = LeafFiles(directory / f"{stem}.crt", directory / f"{stem}.key",
                          directory / f"{stem}-ca.crt", directory / f"{stem}-full.crt")
        for path, text in ((files.cert, self.chain_pem), (files.key, self.key_pem),
                           (files.ca, self.ca_pem), (files.full_chain, self.full_chain_pem)):
            path.write_text(text)
            path.chmod(0o644)
        return files


def new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key_type must be 'ec' or 'rsa', not {key_type!r}")


def general_name(identity: str) -> x509.GeneralName:
    """A SAN entry: IP address, e-mail address, or DNS name (wildcards kept, IDNs as A-labels)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        pass
    if "@" in identity:
        return x509.RFC822Name(identity)
    if not identity.isascii():
        identity = ".".join(label if label == "*" else label.encode("idna").decode("ascii")
                            for label in identity.split("."))
    return x509.DNSName(identity)


class PKI:
    """A root CA named NAME with INTERMEDIATES intermediate CAs below it, one under the other.

    ``now`` fixes the clock for leaf validity windows (deterministic runs); by default the
    wall clock is read at each issue. CA certificates are trustme's (valid 2000–3000).
    """

    def __init__(self, name: str = "mtaconform", *, intermediates: int = 1,
                 key_type: KeyType = "ec", now: datetime | None = None,
                 validity: timedelta = DEFAULT_VALIDITY) -> None:
        if intermediates < 0:
            raise ValueError("intermediates must be >= 0")
        self.name = name
        self.now = now
        self.validity = validity
        root = trustme.CA(organization_name=name, organization_unit_name=f"{name} root CA",
                          key_type=_TRUSTME_KEY[key_type])
        self._cas: list[trustme.CA] = [root]
        for i in range(intermediates):
            self._cas.append(trustme.CA(
                parent_cert=self._cas[-1], path_length=8 - i, organization_name=name,
                organization_unit_name=f"{name} intermediate CA {i + 1}",
                key_type=_TRUSTME_KEY[key_type]))
        self._certs = [x509.load_pem_x509_certificate(ca.cert_pem.bytes()) for ca in self._cas]
        self._keys: list[PrivateKey] = [
            serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
            for ca in self._cas]  # type: ignore[misc]

    # -- CAs --------------------------------------------------------------------------------

    @property
    def root(self) -> trustme.CA:
        return self._cas[0]

    @property
    def root_cert(self) -> x509.Certificate:
        return self._certs[0]

    @property
    def root_key(self) -> PrivateKey:
        return self._keys[0]

    @property
    def root_pem(self) -> str:
        return _pem(self._certs[0])

    @property
    def intermediate_certs(self) -> tuple[x509.Certificate, ...]:
        """Intermediates from the one the root signed down to the one that signs leaves."""
        return tuple(self._certs[1:])

    def write_ca(self, directory: str | Path, stem: str = "ca") -> Path:
        path = Path(directory) / f"{stem}.crt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.root_pem)
        return path

    # -- leaves -----------------------------------------------------------------------------

    def issue(self, names: list[str], *, common_name: str | None = None,
              key_type: KeyType = "ec", not_before: datetime | None = None,
              not_after: datetime | None = None, must_staple: bool = False,
              ocsp_url: str | None = None, intermediate: bool = True) -> Leaf:
        """A leaf for NAMES (SAN entries; may be empty for a CN-only certificate).

        Signed by the last intermediate, or by the root when INTERMEDIATE is false or there is
        no intermediate.
        """
        depth = len(self._cas) - 1 if intermediate else 0
        key = new_key(key_type)
        cert = self._build(names, common_name, key, self._certs[depth], self._keys[depth],
                           not_before, not_after, must_staple, ocsp_url)
        return Leaf(cert=cert, key=key, issuer_cert=self._certs[depth],
                    issuer_key=self._keys[depth],
                    intermediates=tuple(reversed(self._certs[1 : depth + 1])),
                    root=self._certs[0])

    def self_signed(self, names: list[str], *, common_name: str | None = None,
                    key_type: KeyType = "ec", not_before: datetime | None = None,
                    not_after: datetime | None = None, must_staple: bool = False,
                    ocsp_url: str | None = None) -> Leaf:
        """A self-signed end-entity certificate (no CA involved), e.g. for DANE-EE(3)."""
        key = new_key(key_type)
        cert = self._build(names, common_name, key, None, key, not_before, not_after,
                           must_staple, ocsp_url)
        return Leaf(cert=cert, key=key, issuer_cert=cert, issuer_key=key, intermediates=(),
                    root=cert)

    def _build(self, names: list[str], common_name: str | None, key: PrivateKey,
               issuer: x509.Certificate | None, signing_key: PrivateKey,
               not_before: datetime | None, not_after: datetime | None, must_staple: bool,
               ocsp_url: str | None) -> x509.Certificate:
        if isinstance(names, str):
            raise TypeError("names must be a list of names, not a string")
        if not names and common_name is None:
            raise ValueError("a certificate needs at least one name or a common name")
        now = self.now or datetime.now(timezone.utc)
        start = not_before or now - BACKDATE
        end = not_after or now + self.validity
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name)]
        if common_name is not None:
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        subject = x509.Name(attrs)
        public = key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer is not None else subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            # RFC 5280 §4.2.1.9: BasicConstraints cA=false; §4.2.1.3 KeyUsage, critical.
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey), data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False,
                decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        if issuer is not None:  # RFC 5280 §4.2.1.1
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False)
        if names:
            # RFC 5280 §4.2.1.6: non-critical, since the subject is never empty here.
            builder = builder.add_extension(
                x509.SubjectAlternativeName([general_name(n) for n in names]), critical=False)
        if must_staple:
            # RFC 7633 §4: TLS Feature with status_request (5, RFC 6066 §8); non-critical, as
            # public CAs issue it, so that unaware relying parties still accept the cert.
            builder = builder.add_extension(
                x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
        if ocsp_url is not None:  # RFC 5280 §4.2.2.1, id-ad-ocsp
            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(ocsp_url))]),
                critical=False)
        return builder.sign(signing_key, hashes.SHA256())
