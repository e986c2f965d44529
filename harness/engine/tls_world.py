"""Certificates of a scenario's world, and the DNS and peer data that refer to them.

A scenario names its certificates under ``world.pki``; TLSA records and peers refer to them by
name, so the digests in the zone always match (or deliberately don't match) the certificate a
peer really presents:

    world:
      pki:
        mx:  {names: [mx.d.test]}                     # leaf ← lab intermediate ← lab root
        old: {names: [mx.d.test], expired: true}
        own: {names: [mx.d.test], issuer: self}       # self-signed
      dns:
        zones:
          - name: d.test
            records:
              - {name: _25._tcp.mx.d.test, type: TLSA,
                 value: {tlsa: {cert: mx, usage: 3, selector: 1, mtype: 1}}}
              - {name: _25._tcp.mx2.d.test, type: TLSA,
                 value: {tlsa: {cert: mx, usage: 2, selector: 0, mtype: 1, anchor: root}}}
      peers:
        - {name: mx, ehlo: [STARTTLS, PIPELINING], tls: {cert: mx, chain: intermediate}}

The lab's PKI (one root, one intermediate) lives as long as the lab; the target trusts its root.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..pki.ca import PKI, Leaf
from ..pki.ocsp import STAPLE_SCHEMA
from ..pki.tlsa import tlsa_record_value
from .ocsp_world import OCSP_URL, OCSPLab, OCSPWorldError, standalone_staple

CERT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "names": {"type": "array", "items": {"type": "string"}},
        "cn": {"type": "string", "description": "subject common name"},
        "key": {"enum": ["ec", "rsa"]},
        "issuer": {"enum": ["intermediate", "root", "self"], "description": "who signs the leaf"},
        "ca": {"enum": ["lab", "private"],
               "description": "lab: the lab's CA, which the target trusts (default); private: a "
                              "root and intermediate of the scenario's own that nobody trusts, as "
                              "a DANE-TA(2) trust anchor usually is (issue #4)"},
        "expired": {"type": "boolean"},
        "not_yet_valid": {"type": "boolean"},
        "must_staple": {"type": "boolean", "description": "RFC 7633 TLS Feature status_request"},
        "ocsp_url": {"type": "string"},
    },
}

TLSA_REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["cert", "usage", "selector", "mtype"],
    "properties": {
        "cert": {"type": "string"},
        "usage": {"type": "integer", "minimum": 0, "maximum": 255},
        "selector": {"type": "integer", "minimum": 0, "maximum": 255},
        "mtype": {"type": "integer", "minimum": 0, "maximum": 255},
        "anchor": {"enum": ["root", "intermediate", "leaf"],
                   "description": "which certificate of the chain the record describes "
                                  "(default: leaf for usages 1 and 3, root for 0 and 2)"},
        "mismatch": {"type": "boolean", "description": "flip the last octet: a record that does not match"},
    },
}

PEER_TLS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["cert"],
    "properties": {
        "cert": {"type": "string"},
        "chain": {"enum": ["leaf", "intermediate", "full"],
                  "description": "what the peer presents: the leaf alone, with its intermediates "
                                 "(default), or with the root too"},
        "min_version": {"enum": ["TLSv1.2", "TLSv1.3"]},
        "max_version": {"enum": ["TLSv1.2", "TLSv1.3"]},
        # OCSP (issue #5): the response this peer staples when asked (RFC 6066 §8); a staple
        # spec of harness/pki/ocsp.py, or "none". Built by the lab's OCSP responder.
        "staple": {"oneOf": [STAPLE_SCHEMA, {"const": "none"}]},
        "unsolicited_status": {"type": "boolean",
                               "description": "a scripted TLS 1.2 flight that sends "
                                              "CertificateStatus even when not asked (OCSP-11)"},
    },
}


class WorldDataError(ValueError):
    """Scenario world data that refers to something that does not exist."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


def issue_certificates(pki: PKI, data: Mapping[str, Any], now: datetime | None = None
                       ) -> dict[str, Leaf]:
    """The scenario's named certificates, issued by the lab's PKI."""
    now = now or datetime.now(timezone.utc)
    leaves: dict[str, Leaf] = {}
    private: PKI | None = None  # made on first use: a CA outside every trust store (DANE-TA)
    for name, spec in data.items():
        names = list(spec.get("names", []))
        authority = pki
        if spec.get("ca") == "private":
            private = private or PKI("mtaconform private", now=pki.now)
            authority = private
        kwargs: dict[str, Any] = {"common_name": spec.get("cn"), "key_type": spec.get("key", "ec"),
                                  "must_staple": bool(spec.get("must_staple")),
                                  # AIA names the lab's OCSP responder unless the scenario says
                                  # otherwise (issue #5).
                                  "ocsp_url": spec.get("ocsp_url", OCSP_URL)}
        if spec.get("expired"):
            kwargs.update(not_before=now - timedelta(days=30), not_after=now - timedelta(days=1))
        elif spec.get("not_yet_valid"):
            kwargs.update(not_before=now + timedelta(days=1), not_after=now + timedelta(days=30))
        try:
            issuer = spec.get("issuer", "intermediate")
            if issuer == "self":
                leaves[name] = authority.self_signed(names, **kwargs)
            else:
                leaves[name] = authority.issue(names, intermediate=issuer == "intermediate", **kwargs)
        except ValueError as exc:
            raise WorldDataError(str(exc), f"world.pki.{name}") from None
    return leaves


def _anchor_cert(leaf: Leaf, anchor: str) -> Any:
    if anchor == "leaf":
        return leaf.cert
    if anchor == "intermediate":
        return leaf.intermediates[0] if leaf.intermediates else leaf.issuer_cert
    return leaf.root


def tlsa_value(ref: Mapping[str, Any], leaves: Mapping[str, Leaf], path: str) -> str:
    """RFC 6698 §2.1 presentation form ("3 1 1 <hex>") for a reference to a named certificate."""
    if ref["cert"] not in leaves:
        raise WorldDataError(f"no certificate {ref['cert']!r} in world.pki", path)
    usage, selector, mtype = ref["usage"], ref["selector"], ref["mtype"]
    anchor = ref.get("anchor") or ("leaf" if usage in (1, 3) else "root")
    try:
        value = tlsa_record_value(usage, selector, mtype, _anchor_cert(leaves[ref["cert"]], anchor))
    except ValueError as exc:
        raise WorldDataError(str(exc), path) from None
    if ref.get("mismatch"):
        head, digest = value.rsplit(" ", 1)
        value = f"{head} {digest[:-2]}{(int(digest[-2:], 16) ^ 0xFF):02x}"
    return value


def resolve_dns(dns: Mapping[str, Any], leaves: Mapping[str, Leaf]) -> dict[str, Any]:
    """DNS world data with every ``value: {tlsa: {...}}`` replaced by the record it stands for."""
    out = copy.deepcopy(dict(dns))
    for zi, zone in enumerate(out.get("zones", []) or []):
        for ri, record in enumerate(zone.get("records", []) or [] if isinstance(zone, dict) else []):
            value = record.get("value") if isinstance(record, dict) else None
            if isinstance(value, dict) and "tlsa" in value:
                record["value"] = tlsa_value(value["tlsa"], leaves,
                                             f"world.dns.zones[{zi}].records[{ri}].value.tlsa")
    return out


def peer_tls(data: Mapping[str, Any] | None, leaves: Mapping[str, Leaf], path: str,
             ocsp: OCSPLab | None = None) -> dict[str, Any] | None:
    """A fake MX's ``tls`` configuration (PEM bytes) from the scenario's ``tls:`` mapping."""
    if not data:
        return None
    if data["cert"] not in leaves:
        raise WorldDataError(f"no certificate {data['cert']!r} in world.pki", f"{path}.tls.cert")
    leaf = leaves[data["cert"]]
    chain = data.get("chain", "intermediate")
    extra = {"leaf": "", "intermediate": leaf.chain_pem[len(leaf.cert_pem):],
             "full": leaf.full_chain_pem[len(leaf.cert_pem):]}[chain]
    tls: dict[str, Any] = {"cert_pem": leaf.cert_pem.encode(), "key_pem": leaf.key_pem.encode(),
                           "chain_pem": extra.encode() or None}
    for key in ("min_version", "max_version"):
        if data.get(key):
            tls[key] = data[key]
    if data.get("staple") is not None:  # OCSP (issue #5): DER from the lab's responder
        make = ocsp.peer_staple if ocsp is not None else standalone_staple
        try:
            staple = make(leaf, data["staple"], leaves, f"{path}.tls.staple")
        except OCSPWorldError as exc:
            raise WorldDataError(str(exc), f"{path}.tls.staple") from None
        if staple is not None:
            tls["ocsp_staple"] = staple
    # OCSP (issue #5): OpenSSL's server (pyOpenSSL) drops a staple it cannot parse or that is not
    # about the certificate it presents, and never staples unasked. Those peers speak TLS 1.2
    # through a handshake written by hand (harness/smtp/tls_flight.py) that sends any bytes.
    unsolicited = bool(data.get("unsolicited_status"))
    if unsolicited and "ocsp_staple" not in tls:
        make = ocsp.peer_staple if ocsp is not None else standalone_staple
        tls["ocsp_staple"] = make(leaf, {}, leaves, f"{path}.tls.staple")
    if unsolicited or ("ocsp_staple" in tls and not openssl_would_staple(tls["ocsp_staple"], leaf)):
        if data.get("min_version") == "TLSv1.3":
            raise WorldDataError("this staple needs the scripted TLS 1.2 server (OpenSSL would not "
                                 "send it), which cannot do TLS 1.3", f"{path}.tls")
        from cryptography.hazmat.primitives.serialization import Encoding

        tls["raw_flight"] = {"chain": [c.public_bytes(Encoding.DER) for c in (leaf.cert, *leaf.intermediates)],
                             "key_pem": leaf.key_pem.encode(), "staple": tls["ocsp_staple"],
                             "unsolicited": unsolicited}
    return tls


def openssl_would_staple(der: bytes, leaf: Leaf) -> bool:
    """Whether OpenSSL's server (as bundled with pyOpenSSL) sends DER for LEAF: it drops a
    successful response it cannot parse or whose SingleResponses are all about other
    certificates (measured: OpenSSL 4.0)."""
    from cryptography.x509 import ocsp as x509_ocsp

    try:
        resp = x509_ocsp.load_der_ocsp_response(der)
    except ValueError:
        return False
    if resp.response_status is not x509_ocsp.OCSPResponseStatus.SUCCESSFUL:
        return True
    from ..pki.ocsp import cert_id_key

    for single in resp.responses:
        alg = single.hash_algorithm.name
        try:
            want = cert_id_key(leaf.cert, leaf.issuer_cert, alg)
        except KeyError:
            continue
        if (single.issuer_name_hash, single.issuer_key_hash, single.serial_number) == want:
            return True
    return False
