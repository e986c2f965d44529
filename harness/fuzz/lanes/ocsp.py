"""The `ocsp` lane: a fake MX offers STARTTLS and staples mutated OCSP responses to the outbound
target, on a route that requires OCSP and TLS.

A case is a staple spec of harness/pki/ocsp.py drawn field by field — status, reason, times,
signer (the issuer, delegated responders with and without id-kp-OCSPSigning, one issued by the
root or by another CA, an unrelated key), responder ID, CertID hash, serial, another
certificate's response, a flipped signature bit, not DER, truncated, unsuccessful
responseStatus, nonce — plus byte-level mutations of the DER it gives (bits flipped, cut short,
trailing bytes), or no staple at all; and the TLS version the peer offers. OpenSSL's server
staples only what it can parse and what is about its certificate; anything else goes out through
the scripted TLS 1.2 server (harness/smtp/tls_flight.py), so every case's bytes are really sent.

Oracle (RFC 6066 §8: a client that asked for the status "MUST check the OCSP response and abort
the handshake if the response is not satisfactory"; RFC 6960 §3.2 acceptance checks; OCSP-06,
-07, -08, -09): with OCSP required,
- no mail goes over a TLS session whose staple is revoked, forged or badly signed, signed by an
  unauthorised responder, about another certificate or serial, expired (nextUpdate passed),
  unsuccessful or unparseable (`ocsp-<kind>-staple-accepted`, one oracle per kind, so that each
  is its own finding: `ocsp-revoked-…`, `ocsp-bad-signature-…`, `ocsp-unauthorised-signer-…`,
  `ocsp-other-certificate-…`, `ocsp-expired-…`, `ocsp-unsuccessful-…`, `ocsp-unparseable-…`;
  judged by ``assess_response``, the client's checks of RFC 6960 §3.2; a thisUpdate in the
  future is only a SHOULD of §4.2.2.1 and is left out);
- none over a TLS session without a staple (`ocsp-missing-staple-accepted`);
- none in clear after the peer stapled (`ocsp-cleartext-after-staple`: a route that requires
  OCSP cannot fall back to no TLS at all).
"""

from __future__ import annotations

import binascii
import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jsonschema
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ...engine.checks.dane import mail_in_clear
from ...engine.ocsp_world import OCSPWorldError
from ...engine.tls_world import openssl_would_staple, peer_tls
from ...engine.yamlsrc import InputError
from ...pki.ca import Leaf
from ...pki.ocsp import (REASONS, RESPONSE_STATUSES, SIGNERS, STAPLE_SCHEMA, assess_response,
                         decode_response)
from ...report.model import Evidence
from ...smtp.peer import PeerScript
from ..model import Execution, Violation, b64
from ..outbound import (DOMAIN, OUTBOUND_KNOBS, PeerPlan, add_violation, deliver, dns_world, issue,
                        peer_address, plain_zone, recipients, record, running_peers, serve)
from .base import Context, Lane

CITE_BAD = ("RFC 6066 §8 (check the response, abort if not satisfactory); RFC 6960 §3.2, §2.2, §4.2.2.2 "
            "(OCSP-06/07/08)")
CITE_MISSING = "RFC 6066 §8; OCSP-09 (a route that requires OCSP follows its own policy)"
CITE_CLEAR = "RFC 6066 §8; OCSP-06 (an OCSP-required route does not retry without TLS)"
MX_HOST = f"mx.{DOMAIN}"
VERSIONS = (None, "TLSv1.2", "TLSv1.3")
_BYTE_OPS = ("xor", "truncate", "append")


# -- the case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OCSPCase:
    staple: dict[str, Any] | None  # a staple spec (harness/pki/ocsp.py); None: no staple
    ops: list[dict[str, Any]] = field(default_factory=list)  # byte mutations of its DER
    max_version: str | None = None  # the peer's highest TLS version (None: OpenSSL's default)

    def to_json(self) -> dict[str, Any]:
        return {"staple": copy.deepcopy(self.staple), "ops": copy.deepcopy(self.ops),
                "max_version": self.max_version, "recipients": recipients(1)}

    @classmethod
    def from_json(cls, data: Any, where: str = "case") -> OCSPCase:
        if not isinstance(data, dict) or "staple" not in data:
            raise InputError(where, None, "an ocsp case is a mapping with staple, ops and max_version")
        staple, ops, version = data["staple"], data.get("ops", []), data.get("max_version")
        if staple is not None:
            problems = list(jsonschema.Draft202012Validator(STAPLE_SCHEMA).iter_errors(staple))
            if problems:
                raise InputError(where, None, f"ocsp case: staple: {problems[0].message}")
            if staple.get("for") not in (None, "other"):
                raise InputError(where, None, "ocsp case: staple.for: only 'other'")
        if version not in VERSIONS:
            raise InputError(where, None, f"ocsp case: max_version one of {VERSIONS}")
        try:
            check_ops(ops)
        except ValueError as exc:
            raise InputError(where, None, f"ocsp case: ops: {exc}") from None
        return cls(staple, list(ops), version)


def check_ops(ops: Any) -> None:
    if not isinstance(ops, list):
        raise ValueError("a list of byte operations")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or op.get("op") not in _BYTE_OPS:
            raise ValueError(f"[{i}]: op is one of {', '.join(_BYTE_OPS)}")
        try:
            if op["op"] == "xor" and not (int(op["offset"]) >= 0 and 1 <= int(op["mask"]) <= 255):
                raise ValueError(f"[{i}]: offset >= 0, mask 1..255")
            if op["op"] == "truncate" and int(op["length"]) < 0:
                raise ValueError(f"[{i}]: length >= 0")
            if op["op"] == "append":
                binascii.unhexlify(op["hex"])
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"[{i}]: {exc!r}") from None


def mutate(der: bytes, ops: list[dict[str, Any]]) -> bytes:
    """DER after byte operations: xor {offset (modulo the length), mask}, truncate {length},
    append {hex}."""
    buf = bytearray(der)
    for op in ops:
        if op["op"] == "xor" and buf:
            buf[int(op["offset"]) % len(buf)] ^= int(op["mask"])
        elif op["op"] == "truncate":
            del buf[int(op["length"]):]
        elif op["op"] == "append":
            buf += binascii.unhexlify(op["hex"])
    return bytes(buf)


# -- strategies -------------------------------------------------------------------------------

_OFFSETS = st.sampled_from(["-1h", "-1h", "0", "-30d", "+1d", "-400d", "+10m", "-10m"])
_NEXT = st.sampled_from(["+7d", "+7d", "+1h", "-1h", "-1d", "0", None])


@st.composite
def staple_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Spec dicts, each field present or not, edges first."""
    spec: dict[str, Any] = {}
    if draw(st.integers(0, 9)) == 0:
        spec["response_status"] = draw(st.sampled_from(sorted(RESPONSE_STATUSES)))
        return spec
    spec["status"] = draw(st.sampled_from(["good", "good", "revoked", "revoked", "unknown"]))
    if spec["status"] == "revoked":
        if draw(st.booleans()):
            spec["reason"] = draw(st.sampled_from(list(REASONS)))
        if draw(st.booleans()):
            spec["revoked_at"] = draw(st.sampled_from(["-1d", "-1h", "+1d", "-400d"]))
    optional = {
        "this_update": _OFFSETS, "next_update": _NEXT, "produced_at": _OFFSETS,
        "signer": st.sampled_from(["issuer", "issuer", *SIGNERS]),
        "include_signer": st.booleans(), "responder_id": st.sampled_from(["key", "name"]),
        "for": st.just("other"), "serial": st.just("other"),
        "corrupt": st.sampled_from(["signature", "der", "truncated"]),
        "hash": st.sampled_from(["sha1", "sha256"]),
        "nonce": st.binary(min_size=1, max_size=40).map(bytes.hex),
    }
    for key, strategy in optional.items():
        if draw(st.integers(0, 4)) == 0:
            spec[key] = draw(strategy)
    return spec


_OP = st.one_of(
    st.fixed_dictionaries({"op": st.just("xor"), "offset": st.integers(0, 2000), "mask": st.integers(1, 255)}),
    st.fixed_dictionaries({"op": st.just("truncate"), "length": st.integers(0, 600)}),
    st.fixed_dictionaries({"op": st.just("append"), "hex": st.binary(min_size=1, max_size=16).map(bytes.hex)}),
)


@st.composite
def cases(draw: st.DrawFn) -> OCSPCase:
    kind = draw(st.sampled_from(["spec"] * 7 + ["bytes"] * 2 + ["none"]))
    version = draw(st.sampled_from(list(VERSIONS)))
    if kind == "none":
        return OCSPCase(None, [], version)
    if kind == "bytes":  # a good response, then its bytes broken
        return OCSPCase({"status": "good"}, draw(st.lists(_OP, min_size=1, max_size=3)), version)
    return OCSPCase(draw(staple_specs()), [], version)


# -- the lane ---------------------------------------------------------------------------------


def staple_tls(leaves: dict[str, Leaf], der: bytes | None, max_version: str | None) -> dict[str, Any]:
    """The fake MX's TLS configuration presenting leaf "mx" and stapling DER as it is: through
    OpenSSL when it would send it, else through the scripted TLS 1.2 server."""
    data: dict[str, Any] = {"cert": "mx"}
    if max_version:
        data["max_version"] = max_version
    tls = peer_tls(data, leaves, "peer")
    assert tls is not None
    if der is not None:
        tls["ocsp_staple"] = der
        leaf = leaves["mx"]
        if not openssl_would_staple(der, leaf):
            chain = [c.public_bytes(Encoding.DER) for c in (leaf.cert, *leaf.intermediates)]
            tls["raw_flight"] = {"chain": chain, "key_pem": leaf.key_pem.encode(), "staple": der,
                                 "unsolicited": False}
    return tls


# assess_response's problems (RFC 6960 §3.2 order) → the kind of staple the client accepted.
# None: not a MUST (thisUpdate in the future, RFC 6960 §4.2.2.1 "SHOULD"), or nothing this
# harness can judge (a CertID hash it does not compute).
_KINDS: tuple[tuple[str, str | None], ...] = (
    ("not a DER OCSPResponse", "unparseable"), ("responseStatus is", "unsuccessful"),
    ("SingleResponses", "several-responses"), ("CertID hash algorithm", None),
    ("the CertID serial", "other-certificate"), ("the CertID names another issuer", "other-certificate"),
    ("the responderID names neither", "bad-signature"), ("the signature does not verify", "bad-signature"),
    ("the responder certificate", "unauthorised-signer"), ("nextUpdate", "expired"),
    ("thisUpdate", None), ("the certificate is revoked", "revoked"),
)


def unacceptable(der: bytes, leaf: Leaf) -> list[tuple[str, str]]:
    """Why a client must refuse DER for LEAF, as (kind, problem), in the order of RFC 6960 §3.2
    (harness.pki.ocsp.assess_response)."""
    a = assess_response(der, leaf.cert, leaf.issuer_cert, now=datetime.now(timezone.utc))
    out = []
    for problem in a.problems:
        kind = next((k for prefix, k in _KINDS if problem.startswith(prefix)), "other")
        if kind is not None:
            out.append((kind, problem))
    return out


class OCSPLane(Lane):
    name = "ocsp"
    description = "a fake MX staples mutated OCSP responses on a route that requires OCSP and TLS"
    needs_managed = True
    knobs = {**OUTBOUND_KNOBS, "ocsp_client_require": "*", "ocsp_client_tls": "required"}
    batch = 20

    def __init__(self) -> None:
        self.leaves: dict[str, Leaf] = {}
        self.world = dns_world(plain_zone((MX_HOST, peer_address(1))))

    def setup(self, ctx: Context) -> None:
        assert ctx.target is not None
        self.leaves = issue(ctx.target, {"mx": {"names": [MX_HOST]},
                                         "other": {"names": [f"other.{DOMAIN}"]}})

    def strategy(self) -> SearchStrategy[OCSPCase]:
        return cases()

    def case_json(self, case: OCSPCase) -> Any:
        return case.to_json()

    def case_from_json(self, data: Any) -> OCSPCase:
        return OCSPCase.from_json(data)

    def describe_case(self, case_json: Any) -> str:
        return f"staple {case_json.get('staple')}, {len(case_json.get('ops', []))} byte op(s), " \
               f"TLS {case_json.get('max_version') or 'default'}"

    def der(self, ctx: Context, case: OCSPCase) -> bytes | None:
        if case.staple is None:
            return None
        services = ctx.target.run.services if ctx.target else None
        assert services is not None and services.ocsp is not None
        try:
            der = services.ocsp.peer_staple(self.leaves["mx"], case.staple, self.leaves, "staple")
        except OCSPWorldError as exc:  # a spec the builder refuses (delegated_by_root and a root leaf…)
            raise InputError("case", None, f"ocsp case: {exc}") from None
        return mutate(der, case.ops) if der is not None else None

    def execute(self, ctx: Context, case: OCSPCase) -> Execution:
        ft = ctx.target
        assert ft is not None
        if not self.leaves:
            self.setup(ctx)
        serve(ft, self.world)
        der = self.der(ctx, case)
        plan = PeerPlan("mx", peer_address(1), PeerScript(ehlo=["STARTTLS", "PIPELINING", "8BITMIME"]),
                        staple_tls(self.leaves, der, case.max_version), MX_HOST)
        with running_peers(ft, [plan]) as peers:
            delivery = deliver(ft, peers, recipients(1), self.name)
        ex = Execution()
        problems = unacceptable(der, self.leaves["mx"]) if der is not None else []
        facts = Evidence("the staple, and why a client must refuse it (RFC 6960 §3.2)", "json", {
            "spec": case.staple, "byte_ops": case.ops, "b64": b64(der) if der is not None else None,
            "decoded": decode_response(der), "problems": [p for _, p in problems]})
        stapled_any = False
        for _, s in delivery.all_sessions():
            tls = s.tls or {}
            stapled = bool(tls.get("ocsp_stapled"))
            stapled_any = stapled_any or stapled
            over_tls = bool(tls.get("handshake_ok")) and s.mail is not None and not mail_in_clear(s)
            transcript = Evidence(f"peer mx, connection {s.index + 1} (target → peer)", "transcript",
                                  s.transcript.to_evidence())
            staple_state = f"stapled {problems[0][0] if problems else 'acceptable'}" if stapled else "no staple"
            mail_state = "mail over TLS" if over_tls else "mail in clear" if s.mail else "no mail"
            ex.states.add(f"{staple_state} → {mail_state}")
            if over_tls and stapled and problems:
                kind = problems[0][0]
                add_violation(ex, Violation(
                    f"ocsp-{kind}-staple-accepted", f"mail went over a TLS session whose staple must be "
                    f"refused: {'; '.join(p for _, p in problems)}", CITE_BAD, (facts, transcript)))
            elif over_tls and not stapled:
                why = "the peer had none" if case.staple is None else "the peer did not send it" \
                    if tls.get("ocsp_requested") else "the target did not ask for one (no status_request)"
                add_violation(ex, Violation(
                    "ocsp-missing-staple-accepted", f"mail went over a TLS session without a staple ({why}) "
                    "on a route that requires OCSP", CITE_MISSING, (facts, transcript)))
        for _, s in delivery.all_sessions():
            if stapled_any and mail_in_clear(s):
                add_violation(ex, Violation(
                    "ocsp-cleartext-after-staple", "after the peer stapled, mail went to it in clear",
                    CITE_CLEAR, (facts, Evidence(f"peer mx, connection {s.index + 1} (target → peer)",
                                                 "transcript", s.transcript.to_evidence()))))
        record(ex, delivery)
        ex.evidence.append(facts)
        return ex


__all__ = ["OCSPCase", "OCSPLane", "cases", "mutate", "staple_specs", "staple_tls", "unacceptable"]
