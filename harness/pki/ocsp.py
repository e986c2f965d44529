"""OCSP responses (RFC 6960): build them — good, bad and broken — and decode them for evidence.

A *staple spec* is scenario data that says which response to build for a certificate:

    staple:
      status: good            # good | revoked | unknown                      (RFC 6960 §2.2)
      reason: key_compromise  # revoked only: a CRLReason (RFC 5280 §5.3.1), snake_case
      revoked_at: -30d        # revoked only: revocationTime, relative to now
      this_update: -1h        # relative to now ("-1h", "+1d", "0", seconds as a number)
      next_update: +7d        # null: leave nextUpdate out
      produced_at: 0          # default: now
      signer: issuer          # issuer | delegated | delegated_no_eku | delegated_by_root |
                              # delegated_by_other_ca | unrelated                (§4.2.2.2)
      include_signer: true    # put the signer's certificate in `certs` (default: delegated ones)
      responder_id: key       # key | name                                     (§4.2.1)
      for: other              # a response about another certificate of world.pki
      serial: other           # the right issuer, another serial number         (§3.2 item 1)
      corrupt: signature      # signature: one bit of the signature flipped; der: not DER at all;
                              # truncated: the response cut short; stub: its first two bytes only
      response_status: try_later   # a non-successful OCSPResponse (§2.3), no responseBytes
      hash: sha1              # CertID hash algorithm: sha1 (default) | sha256
      nonce: <hex>            # a nonce extension in the response (§4.4.1)

`build_response(leaf, spec)` turns it into DER with `cryptography`'s OCSPResponseBuilder; the
few fields that builder cannot set (producedAt, a bit-flipped signature) are rewritten in the DER
afterwards and the response re-signed. `decode_response(der)` gives the fields a report shows,
and `assess_response(der, cert, issuer)` the acceptance checks of RFC 6960 §3.2 that a client
would make — what the server-side checks hold a target's staple to. `parse_request` and
`combine_responses` serve the responder (harness/pki/responder.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .ca import Leaf, PrivateKey, new_key

__all__ = ["STAPLE_SCHEMA", "OCSPError", "Signer", "SignerCache", "build_response",
           "decode_response", "assess_response", "parse_offset", "cert_id_key", "parse_request",
           "combine_responses"]

STATUSES = ("good", "revoked", "unknown")
SIGNERS = ("issuer", "delegated", "delegated_no_eku", "delegated_by_root",
           "delegated_by_other_ca", "unrelated")
REASONS = tuple(r.name for r in x509.ReasonFlags)
RESPONSE_STATUSES = {s.name.lower(): s for s in ocsp.OCSPResponseStatus
                     if s is not ocsp.OCSPResponseStatus.SUCCESSFUL}
_OFFSET = {"type": ["string", "number"], "pattern": r"^[+-]?\d+(\.\d+)?[smhdw]?$"}

STAPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"enum": list(STATUSES)},
        "reason": {"enum": list(REASONS)},
        "revoked_at": _OFFSET,
        "this_update": _OFFSET,
        "next_update": {"oneOf": [_OFFSET, {"type": "null"}]},
        "produced_at": _OFFSET,
        "signer": {"enum": list(SIGNERS)},
        "include_signer": {"type": "boolean"},
        "responder_id": {"enum": ["key", "name"]},
        "for": {"type": "string", "description": "another certificate of world.pki"},
        "serial": {"enum": ["other"]},
        "corrupt": {"enum": ["signature", "der", "truncated", "stub"]},
        "response_status": {"enum": sorted(RESPONSE_STATUSES)},
        "hash": {"enum": ["sha1", "sha256"]},
        "nonce": {"type": "string", "pattern": "^([0-9a-fA-F]{2})+$"},
    },
}

DEFAULT_THIS_UPDATE = "-1h"
DEFAULT_NEXT_UPDATE = "+7d"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


class OCSPError(ValueError):
    """A staple spec that cannot be built (our input's fault, not a peer's)."""


def parse_offset(value: str | int | float) -> timedelta:
    """"-1h", "+30d", "90s", "0" or a number of seconds → a timedelta."""
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    m = re.fullmatch(r"([+-]?)(\d+(?:\.\d+)?)([smhdw]?)", value.strip())
    if not m:
        raise OCSPError(f"{value!r} is not a time offset like -1h, +7d or 90s")
    seconds = float(m.group(2)) * _UNITS[m.group(3) or "s"]
    return timedelta(seconds=-seconds if m.group(1) == "-" else seconds)


def _when(spec: Mapping[str, Any], key: str, default: str | None, now: datetime) -> datetime | None:
    raw = spec.get(key, default)
    if raw is None:
        return None
    # GeneralizedTime in OCSP has whole seconds (RFC 5280 §4.1.2.5.2).
    return (now + parse_offset(raw)).replace(microsecond=0)


# -- signers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """Who signs a response: a key, the certificate that names it, and what goes into `certs`."""

    key: PrivateKey
    cert: x509.Certificate
    include: bool


def _responder_cert(subject_cn: str, key: PrivateKey, issuer_cert: x509.Certificate | None,
                    issuer_key: PrivateKey, *, ocsp_signing: bool, now: datetime
                    ) -> x509.Certificate:
    """A delegated responder certificate (RFC 6960 §4.2.2.2) — or a look-alike without the EKU."""
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mtaconform lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=90))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True))
    if ocsp_signing:
        # §4.2.2.2: id-kp-OCSPSigning in the EKU; §4.2.2.2.1: id-pkix-ocsp-nocheck.
        builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                                         critical=False)
                   .add_extension(x509.OCSPNoCheck(), critical=False))
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class SignerCache:
    """Delegated and unrelated signers, made once per (leaf issuer, kind) and reused."""

    def __init__(self, root_key: PrivateKey | None = None) -> None:
        self.root_key = root_key  # the lab root's key, for delegated_by_root
        self._made: dict[tuple[bytes, str], tuple[PrivateKey, x509.Certificate]] = {}
        self._other_ca: tuple[PrivateKey, x509.Certificate] | None = None

    def other_ca(self, now: datetime) -> tuple[PrivateKey, x509.Certificate]:
        if self._other_ca is None:
            key = new_key("ec")
            name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unrelated CA"),
                              x509.NameAttribute(NameOID.COMMON_NAME, "unrelated OCSP CA")])
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - timedelta(days=1))
                    .not_valid_after(now + timedelta(days=3650))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .sign(key, hashes.SHA256()))
            self._other_ca = (key, cert)
        return self._other_ca

    def signer(self, kind: str, leaf: Leaf, include: bool | None, now: datetime) -> Signer:
        if kind == "issuer":
            return Signer(leaf.issuer_key, leaf.issuer_cert, bool(include))
        if kind not in SIGNERS:
            raise OCSPError(f"unknown signer {kind!r} (known: {', '.join(SIGNERS)})")
        cache_key = (leaf.issuer_cert.fingerprint(hashes.SHA256()), kind)
        if cache_key not in self._made:
            key = new_key("ec")
            if kind == "unrelated":  # a self-signed key nobody authorised (§3.2 item 2/3)
                cert = _responder_cert("unrelated OCSP signer", key, None, key,
                                       ocsp_signing=True, now=now)
            elif kind == "delegated_by_root":  # a CA above the issuer, not the issuer (§4.2.2.2)
                cert = _responder_cert("OCSP responder (root-issued)", key, leaf.root,
                                       self._root_key(leaf), ocsp_signing=True, now=now)
            elif kind == "delegated_by_other_ca":
                ca_key, ca_cert = self.other_ca(now)
                cert = _responder_cert("OCSP responder (other CA)", key, ca_cert, ca_key,
                                       ocsp_signing=True, now=now)
            else:
                cert = _responder_cert(
                    "OCSP responder" + (" (no OCSPSigning)" if kind == "delegated_no_eku" else ""),
                    key, leaf.issuer_cert, leaf.issuer_key,
                    ocsp_signing=kind == "delegated", now=now)
            self._made[cache_key] = (key, cert)
        key, cert = self._made[cache_key]
        return Signer(key, cert, True if include is None else include)

    def _root_key(self, leaf: Leaf) -> PrivateKey:
        if self.root_key is None or leaf.root == leaf.issuer_cert:
            raise OCSPError("signer delegated_by_root needs the lab root's key and a leaf "
                            "issued by an intermediate")
        return self.root_key


_DEFAULT_SIGNERS = SignerCache()


# -- building --------------------------------------------------------------------------------


def build_response(leaf: Leaf, spec: Mapping[str, Any] | None = None, *,
                   now: datetime | None = None, about: Leaf | None = None,
                   signers: SignerCache | None = None, nonce: bytes | None = None,
                   serial: int | None = None) -> bytes:
    """The DER OCSPResponse that SPEC describes for LEAF's certificate.

    ABOUT is the certificate the response talks about when it is not LEAF (`for:` in the spec,
    resolved by the caller); LEAF's issuer still signs unless `signer` says otherwise. SERIAL
    replaces the CertID's serial number (a responder answering for a serial it never issued).
    """
    spec = dict(spec or {})
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    signers = signers or _DEFAULT_SIGNERS
    if "response_status" in spec:  # RFC 6960 §2.3: no responseBytes at all
        status = RESPONSE_STATUSES[spec["response_status"]]
        return _finish(ocsp.OCSPResponseBuilder.build_unsuccessful(status)
                       .public_bytes(serialization.Encoding.DER), spec)
    subject = about or leaf
    status = spec.get("status", "good")
    if status not in STATUSES:
        raise OCSPError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    this_update = _when(spec, "this_update", DEFAULT_THIS_UPDATE, now)
    next_update = _when(spec, "next_update", DEFAULT_NEXT_UPDATE, now)
    revocation_time = reason = None
    if status == "revoked":
        revocation_time = _when(spec, "revoked_at", "-1d", now)
        reason = x509.ReasonFlags[spec["reason"]] if spec.get("reason") else None
    cert_status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
                   "unknown": ocsp.OCSPCertStatus.UNKNOWN}[status]
    algorithm = _HASHES[spec.get("hash", "sha1")]()
    issuer = subject.issuer_cert
    serial = subject.cert.serial_number if serial is None else serial
    if spec.get("serial") == "other":
        serial = serial ^ 0x5A5A5A  # same issuer, a serial number the CA never gave this cert
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=_digest(algorithm, issuer.subject.public_bytes()),
        issuer_key_hash=_digest(algorithm, _key_bits(issuer)),
        serial_number=serial, algorithm=algorithm, cert_status=cert_status,
        this_update=this_update, next_update=next_update,
        revocation_time=revocation_time, revocation_reason=reason)
    signer = signers.signer(spec.get("signer", "issuer"), leaf, spec.get("include_signer"), now)
    encoding = (ocsp.OCSPResponderEncoding.NAME if spec.get("responder_id") == "name"
                else ocsp.OCSPResponderEncoding.HASH)
    builder = builder.responder_id(encoding, signer.cert)
    if signer.include:
        builder = builder.certificates([signer.cert])
    nonce = bytes.fromhex(spec["nonce"]) if spec.get("nonce") else nonce
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    der = builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    if "produced_at" in spec:
        produced = _when(spec, "produced_at", None, now)
        assert produced is not None
        der = _set_produced_at(der, produced, signer.key)
    return _finish(der, spec)


def _finish(der: bytes, spec: Mapping[str, Any]) -> bytes:
    corrupt = spec.get("corrupt")
    if corrupt == "signature":
        return _flip_signature_bit(der)
    if corrupt == "truncated":
        return der[: len(der) * 2 // 3]
    if corrupt == "stub":  # a SEQUENCE header and nothing after it (the ocsp fuzz lane's find)
        return der[:2]
    if corrupt == "der":  # not an OCSPResponse at all: an OCTET STRING of text
        text = b"this is not an OCSP response"
        return bytes([0x04, len(text)]) + text
    return der


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value (no unused-bits octet): what KeyHash hashes."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    outer = _children(spki)
    (tag, _, content), = outer
    parts = _children(content)
    return parts[1][2][1:]  # BIT STRING: drop the unused-bits octet


def cert_id_key(cert: x509.Certificate, issuer: x509.Certificate, algorithm: str = "sha1"
                ) -> tuple[bytes, bytes, int]:
    """(issuerNameHash, issuerKeyHash, serialNumber) of CERT's CertID (RFC 6960 §4.1.1)."""
    alg = _HASHES[algorithm]()
    return (_digest(alg, issuer.subject.public_bytes()), _digest(alg, _key_bits(issuer)),
            cert.serial_number)


# -- a little DER, for the two fields the builder cannot set --------------------------------


def _read_tlv(data: bytes, i: int) -> tuple[int, int, int, int]:
    """(tag, start of content, end of element, start of element) of the DER element at I."""
    if i + 2 > len(data):
        raise OCSPError("DER element cut short")
    tag, first = data[i], data[i + 1]
    j = i + 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4 or j + n > len(data):
            raise OCSPError("bad DER length")
        length = int.from_bytes(data[j : j + n], "big")
        j += n
    else:
        length = first
    if j + length > len(data):
        raise OCSPError("DER element runs past its container")
    return tag, j, j + length, i


def _children(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The DER elements one after another in DATA: (tag, whole element, content)."""
    out, i = [], 0
    while i < len(data):
        tag, start, end, _ = _read_tlv(data, i)
        out.append((tag, data[i:end], data[start:end]))
        i = end
    return out


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def _split_response(der: bytes) -> tuple[bytes, list[tuple[int, bytes, bytes]]]:
    """OCSPResponse → (responseStatus element, the BasicOCSPResponse's elements)."""
    (_, _, top), = _children(der)
    status, explicit = _children(top)[:2]
    (_, _, response_bytes), = _children(explicit[2])
    _, octets = _children(response_bytes)[:2]
    (_, _, basic), = _children(octets[2])
    return status[1], _children(basic)


def _join_response(status: bytes, basic_parts: list[bytes]) -> bytes:
    basic = _tlv(0x30, b"".join(basic_parts))
    response_bytes = _tlv(0x30, _tlv(0x06, bytes.fromhex("2b0601050507300101")) + _tlv(0x04, basic))
    return _tlv(0x30, status + _tlv(0xA0, response_bytes))


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _set_produced_at(der: bytes, produced: datetime, key: PrivateKey) -> bytes:
    """DER with tbsResponseData.producedAt replaced, re-signed with KEY (SHA-256)."""
    status, parts = _split_response(der)
    tbs = parts[0]
    fields = _children(tbs[2])
    stamp = produced.astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ").encode()
    new_fields = [_tlv(0x18, stamp) if tag == 0x18 else whole for tag, whole, _ in fields]
    new_tbs = _tlv(0x30, b"".join(new_fields))
    signature = _tlv(0x03, b"\x00" + _sign(key, new_tbs))
    return _join_response(status, [new_tbs, parts[1][1], signature, *(p[1] for p in parts[3:])])


def _flip_signature_bit(der: bytes) -> bytes:
    """The same response with one bit of the signature value flipped (RFC 6960 §3.2 item 2)."""
    status, parts = _split_response(der)
    sig = bytearray(parts[2][2])
    sig[len(sig) // 2] ^= 0x01  # inside r (ECDSA) or the RSA value: still well-formed DER
    return _join_response(status, [parts[0][1], parts[1][1], _tlv(0x03, bytes(sig)),
                                   *(p[1] for p in parts[3:])])


# -- decoding and judging --------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def _cert_label(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return repr(cert.subject)


def decode_response(der: bytes | None) -> dict[str, Any]:
    """The fields of a DER OCSPResponse a report shows: status, times, signer, serial.

    Never raises: bytes that do not parse give {"parse_error": …} with their length and head.
    """
    if der is None:
        return {"present": False}
    out: dict[str, Any] = {"present": True, "length": len(der),
                           "sha256": hashlib.sha256(der).hexdigest()[:16]}
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        out.update(parse_error=str(exc), head=der[:32].hex())
        return out
    out["response_status"] = resp.response_status.name.lower()
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return out
    try:
        singles = list(resp.responses)
        out["responses"] = len(singles)
        out["produced_at"] = _iso(resp.produced_at_utc)
        out["responder_id"] = (f"key {resp.responder_key_hash.hex()}" if resp.responder_key_hash
                               else f"name {resp.responder_name.rfc4514_string()}"
                               if resp.responder_name else None)
        out["signature_algorithm"] = getattr(resp.signature_hash_algorithm, "name", None)
        out["certs"] = [_cert_label(c) for c in resp.certificates]
        named = [c for c in resp.certificates if _names_signer(resp, c)]
        # The signer as the response names it: an included responder certificate, or (RFC 6960
        # §4.2.2.2) the CA itself, which a client knows from the chain.
        out["signer"] = (_cert_label(named[0]) if named
                         else "not included: the issuing CA or an unknown key "
                              f"({out['responder_id']})")
        single = singles[0]
        out["cert_status"] = single.certificate_status.name.lower()
        out["serial"] = f"{single.serial_number:x}"
        out["hash_algorithm"] = single.hash_algorithm.name
        out["this_update"] = _iso(single.this_update_utc)
        out["next_update"] = _iso(single.next_update_utc)
        if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
            out["revocation_time"] = _iso(single.revocation_time_utc)
            out["revocation_reason"] = (single.revocation_reason.name
                                        if single.revocation_reason else None)
        nonce = [e.value.nonce.hex() for e in resp.extensions if isinstance(e.value, x509.OCSPNonce)]
        if nonce:
            out["nonce"] = nonce[0]
    except (ValueError, UnsupportedAlgorithm) as exc:  # an OID cryptography does not know (the self fuzz lane)
        out["parse_error"] = str(exc)
    return out


@dataclass
class Assessment:
    """What a client checking a staple for CERT would find (RFC 6960 §3.2, RFC 6066 §8)."""

    decoded: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # each one makes the response unacceptable
    signer: str | None = None  # "issuer" | "delegated responder <subject>"
    cert_status: str | None = None

    @property
    def acceptable(self) -> bool:
        return not self.problems


def _verify(public_key: Any, signature: bytes, data: bytes, algorithm: Any) -> bool:
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _names_signer(resp: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if resp.responder_key_hash is not None:
        return resp.responder_key_hash == hashlib.sha1(_key_bits(cert)).digest()
    return resp.responder_name == cert.subject


def assess_response(der: bytes | None, cert: x509.Certificate, issuer: x509.Certificate, *,
                    now: datetime | None = None, max_age: timedelta | None = None) -> Assessment:
    """Judge DER as a client would before accepting it for CERT issued by ISSUER.

    RFC 6960 §3.2: 1. the certificate identified is CERT; 2. the signature is valid; 3. the signer
    is identified and 4. authorised (the issuer itself, or a responder certificate issued directly
    by the issuer with id-kp-OCSPSigning, §4.2.2.2); 5. thisUpdate is recent enough (MAX_AGE, if
    given) and §4.2.2.1 not in the future; 6. nextUpdate, if set, is not in the past.
    RFC 6066 §8: a complete OCSPResponse, successful, of type basic, with one response.
    """
    now = now or datetime.now(timezone.utc)
    decoded = decode_response(der)
    a = Assessment(decoded)
    if der is None:
        a.problems.append("no response")
        return a
    if "parse_error" in decoded:
        a.problems.append(f"not a DER OCSPResponse: {decoded['parse_error']}")
        return a
    resp = ocsp.load_der_ocsp_response(der)
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        a.problems.append(f"responseStatus is {decoded['response_status']}, not successful")
        return a
    singles = list(resp.responses)
    if len(singles) != 1:
        a.problems.append(f"{len(singles)} SingleResponses; a staple answers for one certificate")
    single = singles[0]
    a.cert_status = single.certificate_status.name.lower()
    # 1. the CertID names this certificate.
    alg = single.hash_algorithm.name
    want = cert_id_key(cert, issuer, alg) if alg in _HASHES else None
    got = (single.issuer_name_hash, single.issuer_key_hash, single.serial_number)
    if want is None:
        a.problems.append(f"CertID hash algorithm {alg} is not one this harness computes")
    elif got[2] != want[2]:
        a.problems.append(f"the CertID serial {got[2]:x} is not the certificate's {want[2]:x}")
    elif got[:2] != want[:2]:
        a.problems.append("the CertID names another issuer (issuerNameHash/issuerKeyHash differ)")
    # 2–4. signature and authorised signer.
    sig_alg = resp.signature_hash_algorithm
    candidates = [("the issuing CA", issuer, None)] + [
        (f"delegated responder {_cert_label(c)}", c, c) for c in resp.certificates]
    signer = next(((label, c, d) for label, c, d in candidates if _names_signer(resp, c)), None)
    if signer is None:
        a.problems.append("the responderID names neither the issuer nor an included certificate")
    else:
        label, signer_cert, delegated = signer
        a.signer = label
        if not _verify(signer_cert.public_key(), resp.signature, resp.tbs_response_bytes, sig_alg):
            a.problems.append(f"the signature does not verify with the key of {label}")
        if delegated is not None:
            if delegated.issuer != issuer.subject or not _verify(
                    issuer.public_key(), delegated.signature, delegated.tbs_certificate_bytes,
                    delegated.signature_hash_algorithm):
                a.problems.append("the responder certificate was not issued by the certificate's "
                                  "issuer (RFC 6960 §4.2.2.2)")
            try:
                eku = delegated.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                has_eku = ExtendedKeyUsageOID.OCSP_SIGNING in eku
            except x509.ExtensionNotFound:
                has_eku = False
            if not has_eku:
                a.problems.append("the responder certificate lacks id-kp-OCSPSigning "
                                  "(RFC 6960 §4.2.2.2)")
    # 5–6. times.
    skew = timedelta(minutes=5)
    this_update, next_update = single.this_update_utc, single.next_update_utc
    if this_update > now + skew:
        a.problems.append(f"thisUpdate {_iso(this_update)} is in the future (RFC 6960 §4.2.2.1)")
    if next_update is not None and next_update < now - skew:
        a.problems.append(f"nextUpdate {_iso(next_update)} has passed (RFC 6960 §3.2 item 6)")
    if max_age is not None and this_update < now - max_age:
        a.problems.append(f"thisUpdate {_iso(this_update)} is older than {max_age}")
    if a.cert_status == "revoked":
        a.problems.append("the certificate is revoked (RFC 6960 §2.2)")
    return a


# -- requests (RFC 6960 §4.1), several certificates per request ---------------------------------

_HASH_OIDS = {bytes.fromhex("2b0e03021a"): "sha1", bytes.fromhex("608648016503040201"): "sha256",
              bytes.fromhex("608648016503040202"): "sha384", bytes.fromhex("608648016503040203"): "sha512"}
_NONCE_OID = bytes.fromhex("2b0601050507300102")  # id-pkix-ocsp-nonce, RFC 6960 §4.4.1


@dataclass(frozen=True)
class CertIDData:
    hash_algorithm: str  # "sha1", "sha256", … or the OID in hex when unknown
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int


@dataclass(frozen=True)
class RequestData:
    cert_ids: list[CertIDData]
    nonce: bytes | None


def parse_request(der: bytes) -> RequestData:
    """An OCSPRequest (RFC 6960 §4.1.1) with any number of Requests; OCSPError if malformed.

    (cryptography's load_der_ocsp_request takes one Request only; clients such as `openssl ocsp
    -cert A -cert B` send several.)"""
    try:
        (tag, _, top), = _children(der)
        if tag != 0x30:
            raise OCSPError("OCSPRequest is not a SEQUENCE")
        tbs_tag, _, tbs = _children(top)[0]
        if tbs_tag != 0x30:
            raise OCSPError("tbsRequest is not a SEQUENCE")
        ids: list[CertIDData] = []
        nonce = None
        for tag, _, content in _children(tbs):
            if tag == 0x30:  # requestList
                for rtag, _, request in _children(content):
                    if rtag != 0x30:
                        raise OCSPError("a Request is not a SEQUENCE")
                    _, _, cert_id = _children(request)[0]
                    alg, name_hash, key_hash, serial = _children(cert_id)[:4]
                    oid = _children(alg[2])[0][2]
                    if name_hash[0] != 0x04 or key_hash[0] != 0x04 or serial[0] != 0x02:
                        raise OCSPError("CertID fields have the wrong types")
                    ids.append(CertIDData(_HASH_OIDS.get(oid, oid.hex()), name_hash[2], key_hash[2],
                                          int.from_bytes(serial[2], "big", signed=True)))
            elif tag == 0xA2:  # requestExtensions
                (_, _, exts), = _children(content)
                for _, _, ext in _children(exts):
                    parts = _children(ext)
                    if parts[0][2] == _NONCE_OID:
                        value = parts[-1][2]
                        inner = _children(value)  # RFC 8954: an OCTET STRING inside extnValue
                        nonce = inner[0][2] if len(inner) == 1 and inner[0][0] == 0x04 else value
    except (IndexError, ValueError) as exc:
        raise OCSPError(f"malformed OCSPRequest: {exc}") from None
    if not ids:
        raise OCSPError("an OCSPRequest without any Request")
    return RequestData(ids, nonce)


def combine_responses(ders: list[bytes], key: PrivateKey) -> bytes:
    """One BasicOCSPResponse with the SingleResponses of DERS (all successful), taking the first's
    responderID, producedAt, extensions and certs, re-signed with KEY (RFC 6960 §4.2.1)."""
    status, parts = _split_response(ders[0])
    singles = b""
    for der in ders:
        _, p = _split_response(der)
        responses = next(content for tag, _, content in _children(p[0][2]) if tag == 0x30)
        singles += responses
    fields = [_tlv(0x30, singles) if tag == 0x30 else whole for tag, whole, _ in _children(parts[0][2])]
    new_tbs = _tlv(0x30, b"".join(fields))
    signature = _tlv(0x03, b"\x00" + _sign(key, new_tbs))
    return _join_response(status, [new_tbs, parts[1][1], signature, *(p[1] for p in parts[3:])])
