"""The `dns` lane: the lab's DNS answers the outbound target's MX, A/AAAA and TLSA queries for
the recipients' domain with mutated records and malformed packets.

A case is a zone for d.test in the zone model's own data form (harness/dns/zone.py) — MX records
to the two fake MX hosts, to CNAMEs, loops, names outside the world, the null MX or an address
string; A/AAAA records that are missing, extra, insecure, bogus or silent; TLSA RRsets with any
usage, selector, matching type and association data (real digests of the peers' certificates,
mismatched ones, empty, huge, or RDATA too short to be TLSA), behind CNAMEs or not — plus raw
reply mutations per question (harness/dns/mutate.py: wrong IDs, flipped header bits, TC, lying
counts, packets cut short or followed by garbage, records of the wrong type, no reply), and the
two fake MX hosts' STARTTLS behaviour (offered, absent, refused with 454, dropped).

Oracles: the target-level ones (no crash, no panic-log line, no hang, a fresh banner) — what
malformed DNS mostly tests — and DANE's (RFC 7672 §2, harness/fuzz/dane_policy.py): where the
world publishes a secure TLSA RRset for a secure MX host, no mail reaches that host in clear
(`dane-cleartext`); where the host's TLSA lookup fails, no mail reaches it at all
(`dane-unusable-host-used`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ...dns.mutate import MutationError, RawReplies
from ...dns.zone import World, ZoneDataError
from ...engine.checks.dane import mail_in_clear
from ...engine.tls_world import TLSA_REF_SCHEMA, peer_tls
from ...engine.yamlsrc import InputError
from ...lab import addresses
from ...pki.ca import Leaf
from ...report.model import Evidence
from ...smtp.peer import PeerScript, ReplyAction
from ...smtp.peer_script import text_reply
from .. import dane_policy
from ..model import Execution, Violation
from ..outbound import (DOMAIN, OUTBOUND_KNOBS, PeerPlan, add_violation, deliver, issue, peer_address,
                        recipients, record, running_peers, use_dns)
from .base import Context, Lane

CITE_TLS = "RFC 7672 §2.2 (secure TLSA RRset: TLS required, usable records or not), §3.1.3; RFC 7671 §9"
CITE_UNUSABLE = "RFC 7672 §2.1.2 (a failed TLSA lookup: MUST NOT deliver via that server; DANE-15)"
MX_HOSTS = {"mx": f"mx.{DOMAIN}", "mx2": f"mx2.{DOMAIN}"}
STARTTLS = ("offer", "absent", "refuse", "drop")
_EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"]


# -- the case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DNSCase:
    zone: dict[str, Any]  # one zone of the zone model's data (name d.test, state, records)
    mutations: list[dict[str, Any]] = field(default_factory=list)  # RawReplies rules' data
    starttls: dict[str, str] = field(default_factory=lambda: {"mx": "offer", "mx2": "offer"})

    def to_json(self) -> dict[str, Any]:
        return {"zone": copy.deepcopy(self.zone), "mutations": copy.deepcopy(self.mutations),
                "starttls": dict(self.starttls), "recipients": recipients(1)}

    @classmethod
    def from_json(cls, data: Any, where: str = "case") -> DNSCase:
        if not isinstance(data, dict) or not isinstance(data.get("zone"), dict):
            raise InputError(where, None, "a dns case is a mapping with zone, mutations and starttls")
        starttls = data.get("starttls", {})
        if not isinstance(starttls, dict) or set(starttls) - set(MX_HOSTS) \
                or any(v not in STARTTLS for v in starttls.values()):
            raise InputError(where, None, f"dns case: starttls maps {', '.join(MX_HOSTS)} to one of "
                                          f"{', '.join(STARTTLS)}")
        case = cls(data["zone"], list(data.get("mutations", [])), {**{k: "offer" for k in MX_HOSTS}, **starttls})
        try:
            check_world(case)
            RawReplies.rules_from_data(case.mutations, "mutations")
        except (ZoneDataError, MutationError) as exc:
            raise InputError(where, None, f"dns case: {exc}") from None
        return case

    def dns(self) -> dict[str, Any]:
        return {"zones": [copy.deepcopy(self.zone)]}


def check_world(case: DNSCase) -> World:
    """The case's zone built with a stand-in for every `{tlsa: …}` reference (no certificates
    needed); ZoneDataError when the data is not a world for this lane."""
    dns = case.dns()
    if str(case.zone.get("name", "")).lower().rstrip(".") != DOMAIN:
        raise ZoneDataError(f"the lane's zone is {DOMAIN}", "zone.name")
    for i, rec in enumerate(dns["zones"][0].get("records", []) or []):
        if isinstance(rec, dict) and isinstance(rec.get("value"), dict) and "tlsa" in rec["value"]:
            ref = rec["value"]["tlsa"]
            problems = list(jsonschema.Draft202012Validator(TLSA_REF_SCHEMA).iter_errors(ref))
            if problems or ref.get("cert") not in MX_HOSTS or ref.get("selector") not in (0, 1) \
                    or ref.get("mtype") not in (0, 1, 2):
                raise ZoneDataError(f"a TLSA reference needs cert {' or '.join(MX_HOSTS)}, selector 0–1 and "
                                    f"mtype 0–2{': ' + problems[0].message if problems else ''}",
                                    f"zone.records[{i}].value.tlsa")
            rec["value"] = "3 1 1 00"
    return World.from_data(dns, "zone")


# -- strategies -------------------------------------------------------------------------------

_EXCHANGES = st.sampled_from([MX_HOSTS["mx"]] * 5 + [MX_HOSTS["mx2"]] * 3 + [
    f"alias.{DOMAIN}", f"loop.{DOMAIN}", f"none.{DOMAIN}", ".", addresses.peer_v4(1), "mx.elsewhere.test"])
_PREF = st.sampled_from([10, 20, 0, 65535]) | st.integers(0, 65535)
# "timeout" (no reply at all) costs the stub's 2 s: rare.
_STATE = st.sampled_from([None] * 40 + ["insecure"] * 3 + ["bogus"] * 2 + ["timeout"])
_RARE_STATE = st.sampled_from([None] * 40 + ["insecure", "insecure", "bogus", "timeout"])
_USAGE = st.sampled_from([3, 3, 3, 2, 2, 1, 0, 4, 255]) | st.integers(0, 255)
_SELECTOR = st.sampled_from([1, 1, 0, 0, 2, 255]) | st.integers(0, 255)
_MTYPE = st.sampled_from([1, 1, 2, 0, 3, 255]) | st.integers(0, 255)
_DATA = st.one_of(st.binary(max_size=70), st.sampled_from([b"", b"\x00" * 31, b"\xab" * 33, b"\xcd" * 64]),
                  st.integers(300, 1500).map(lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256)))
_RR_TYPES = st.sampled_from(["A", "AAAA", "CNAME", "MX", "TLSA", "TXT", "NS", "SOA", "TYPE65280"]) | \
    st.integers(1, 65535).map(lambda n: f"TYPE{n}")
_MUTABLE = [(DOMAIN, "MX")] + [(h, t) for h in MX_HOSTS.values() for t in ("A", "AAAA")] + \
    [(f"_25._tcp.{h}", "TLSA") for h in MX_HOSTS.values()]


def _hex(data: bytes) -> str:
    return data.hex()


@st.composite
def _tlsa_entry(draw: st.DrawFn, owner: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["ref", "ref", "ref", "fields", "fields", "short"]))
    if kind == "ref":  # real digests of a peer's certificate (or its chain), matching or not
        ref = {"cert": draw(st.sampled_from(list(MX_HOSTS))), "usage": draw(_USAGE),
               "selector": draw(st.sampled_from([0, 1])), "mtype": draw(st.sampled_from([0, 1, 2]))}
        if draw(st.integers(0, 3)) == 0:
            ref["mismatch"] = True
        return {"name": owner, "type": "TLSA", "value": {"tlsa": ref}}
    if kind == "fields":
        return {"name": owner, "type": "TLSA", "value": {
            "usage": draw(_USAGE), "selector": draw(_SELECTOR), "mtype": draw(_MTYPE),
            "data_hex": _hex(draw(_DATA))}}
    return {"name": owner, "type": "TLSA", "rdata_hex": _hex(draw(st.binary(max_size=3)))}


@st.composite
def _host_records(draw: st.DrawFn, key: str) -> list[dict[str, Any]]:
    host = MX_HOSTS[key]
    n = 1 if key == "mx" else 2
    recs: list[dict[str, Any]] = []
    mode = draw(st.sampled_from(["one"] * 10 + ["extra", "missing"]))
    if mode != "missing":
        recs.append({"name": host, "type": "A", "value": addresses.peer_v4(n)})
    if mode == "extra":  # lab addresses nobody listens on, before or after the peer's
        for k in draw(st.lists(st.integers(3, 40), min_size=1, max_size=6, unique=True)):
            recs.append({"name": host, "type": "A", "value": addresses.peer_v4(k)})
    state = draw(_STATE)
    if state:
        recs.append({"name": host, "type": "A", "state": state})
    v6 = draw(st.sampled_from([None] * 10 + ["address", "insecure"]))
    if v6 == "address":
        recs.append({"name": host, "type": "AAAA", "value": addresses.peer_v6(n)})
    elif v6 == "insecure":
        recs.append({"name": host, "type": "AAAA", "state": "insecure"})
    owner = f"_25._tcp.{host}"
    if draw(st.integers(0, 7)) == 0:  # RFC 7672 §2.2.3: a CNAME at the TLSA name
        target = f"tlsa-{key}.{DOMAIN}"
        recs.append({"name": owner, "type": "CNAME", "value": target})
        owner = target
    count = draw(st.sampled_from([1, 1, 1, 1, 0, 2, 3]) | st.integers(1, 12))
    recs += [draw(_tlsa_entry(owner)) for _ in range(count)]
    tstate = draw(_STATE)
    if tstate:
        recs.append({"name": owner, "type": "TLSA", "state": tstate})
    return recs


@st.composite
def zones(draw: st.DrawFn) -> dict[str, Any]:
    exchanges = draw(st.lists(_EXCHANGES, min_size=1, max_size=3))
    if draw(st.integers(0, 9)) == 0:  # many MX records
        exchanges += draw(st.lists(_EXCHANGES, min_size=5, max_size=12))
    # Distinct preferences: among equal ones the target picks at random (RFC 5321 §5.1), and a
    # finding must replay the same way.
    taken: set[int] = set()
    records: list[dict[str, Any]] = []
    for x in exchanges:
        pref = draw(_PREF)
        while pref in taken:
            pref = (pref + 1) % 65536
        taken.add(pref)
        records.append({"name": DOMAIN, "type": "MX", "value": f"{pref} {x}"})
    mx_state = draw(_RARE_STATE)
    if mx_state:
        records.append({"name": DOMAIN, "type": "MX", "state": mx_state})
    records += draw(_host_records("mx")) + draw(_host_records("mx2"))
    records += [{"name": f"alias.{DOMAIN}", "type": "CNAME", "value": MX_HOSTS["mx"]},
                {"name": f"loop.{DOMAIN}", "type": "CNAME", "value": f"loop2.{DOMAIN}"},
                {"name": f"loop2.{DOMAIN}", "type": "CNAME", "value": f"loop.{DOMAIN}"}]
    state = draw(st.sampled_from(["secure"] * 5 + ["insecure"]))
    return {"name": DOMAIN, "state": state, "records": records}


def _question_end(name: str) -> int:
    """Where the question section of a reply about NAME ends: header, QNAME, QTYPE, QCLASS."""
    return 12 + sum(len(label) + 1 for label in name.split(".")) + 1 + 4


# TC, AA, AD, Z, CD, RA; RCODE SERVFAIL, NXDOMAIN, REFUSED, NOTAUTH, 15 (RFC 1035 §4.1.1, RFC 4035)
_SET_BITS = st.sampled_from([0x0200, 0x0400, 0x0020, 0x0040, 0x0010, 0x0080, 0x0002, 0x0003, 0x0005, 0x0009,
                             0x000F])
_CLEAR_BITS = st.sampled_from([0, 0, 0, 0x0020, 0x0080, 0x0400, 0x0200, 0x0100])
_OPS = st.sampled_from(["flags"] * 4 + ["count"] * 2 + ["truncate"] * 2 + ["garbage"] * 3 + ["xor"] * 2 +
                       ["rr"] * 4 + ["append"] + ["slow"])
_SLOW = st.sampled_from(["id", "drop", "replace", "short", "header", "qdcount"] + ["none"] * 6)


@st.composite
def _op(draw: st.DrawFn, q_end: int) -> list[dict[str, Any]]:
    """Operations that keep the header's ID and QR and the question, mostly: a reply the stub
    (glibc) drops unread only costs its time-out (1 s, twice, in the lab's resolv.conf) and
    reaches nothing in the MTA, so those are rare."""
    kind = draw(_OPS)
    if kind == "slow":
        kind = draw(_SLOW)
    if kind == "flags":
        return [{"op": "flags", "set": draw(_SET_BITS) | draw(st.sampled_from([0, 0]) | _SET_BITS),
                 "clear": draw(_CLEAR_BITS)}]
    if kind == "count":
        return [{"op": "count", "section": draw(st.sampled_from(["an", "an", "ns", "ar"])),
                 "value": draw(st.sampled_from([0, 1, 2, 3, 255, 0xFFFF]))}]
    if kind == "truncate":
        cut = draw(st.sampled_from([0, 1, 2, 10, 11, 12]) | st.integers(0, 600))
        return [{"op": "truncate", "length": q_end + cut}]
    if kind == "garbage":  # the question kept, garbage where the records were
        return [{"op": "truncate", "length": q_end + draw(st.sampled_from([0, 0, 2, 12]))},
                {"op": "append", "hex": _hex(draw(st.binary(min_size=1, max_size=60)))}]
    if kind == "xor":
        # Within the first records (an offset past the end wraps round into the header).
        return [{"op": "xor", "offset": q_end + draw(st.integers(0, 40)), "mask": draw(st.integers(1, 255))}]
    if kind == "rr":
        return [{"op": "rr", "section": draw(st.sampled_from(["answer", "answer", "authority", "additional"])),
                 "name": draw(st.sampled_from(["@", "@", MX_HOSTS["mx"], f"x.{DOMAIN}"])),
                 "type": draw(_RR_TYPES), "ttl": draw(st.sampled_from([1, 0, 2**31 - 1])),
                 "rdata_hex": _hex(draw(st.sampled_from([b"\xc6\x33\x64\x01", b"\x03\x01\x01", b""])
                                        | st.binary(max_size=40)))}]
    if kind == "append":
        return [{"op": "append", "hex": _hex(draw(st.binary(min_size=1, max_size=30)))}]
    # The rare ones the stub mostly drops unread.
    if kind == "id":
        return [{"op": "id", "delta": draw(st.sampled_from([1, -1, 0x100]))}]
    if kind == "drop":
        return [{"op": "drop"}]
    if kind == "replace":
        return [{"op": "replace", "hex": _hex(draw(st.binary(max_size=40)))}]
    if kind == "short":
        return [{"op": "truncate", "length": draw(st.integers(0, q_end - 1))}]
    if kind == "header":
        return [{"op": "xor", "offset": draw(st.integers(0, q_end - 1)), "mask": draw(st.integers(1, 255))}]
    if kind == "qdcount":
        return [{"op": "count", "section": "qd", "value": draw(st.sampled_from([0, 2, 255]))}]
    return [{"op": "flags", "set": 0x0020, "clear": 0}]  # AD on whatever the world says


@st.composite
def mutations(draw: st.DrawFn) -> list[dict[str, Any]]:
    if draw(st.integers(0, 4)) < 3:  # two cases in five have raw mutations
        return []
    chosen = draw(st.lists(st.sampled_from(_MUTABLE), min_size=1, max_size=2, unique=True))
    return [{"name": name, "type": qtype, "udp_only": draw(st.booleans()),
             "ops": [o for _ in range(draw(st.integers(1, 2))) for o in draw(_op(_question_end(name)))]}
            for name, qtype in chosen]


# Half the peers give a client nothing but cleartext: where DANE requires TLS, that is the test.
_STARTTLS_MODE = st.sampled_from(["absent", "offer", "refuse", "offer", "drop", "offer"])


@st.composite
def cases(draw: st.DrawFn) -> DNSCase:
    case = DNSCase(draw(zones()), draw(mutations()), {k: draw(_STARTTLS_MODE) for k in MX_HOSTS})
    try:
        check_world(case)
    except ZoneDataError:  # a combination the zone model refuses: not a case
        reject()
    return case


# -- the lane ---------------------------------------------------------------------------------


def peer_plan(key: str, mode: str, leaves: dict[str, Leaf]) -> PeerPlan:
    host = MX_HOSTS[key]
    address = peer_address(1 if key == "mx" else 2)
    if mode == "absent":
        return PeerPlan(key, address, PeerScript(ehlo=list(_EHLO)), None, host)
    tls = peer_tls({"cert": key}, leaves, f"peers.{key}")
    script = PeerScript(ehlo=["STARTTLS", *_EHLO])
    if mode == "refuse":
        script.starttls = ReplyAction(text_reply("454 4.7.0 TLS not available now"))
    elif mode == "drop":
        script.starttls = ReplyAction(text_reply("220 2.0.0 go ahead"), close=True)
    return PeerPlan(key, address, script, tls, host)


class DNSLane(Lane):
    name = "dns"
    description = ("the lab's DNS answers the outbound target's MX, A/AAAA and TLSA queries with mutated "
                   "records and packets")
    needs_managed = True
    knobs = {**OUTBOUND_KNOBS, "dane": "opportunistic"}
    batch = 20

    def __init__(self) -> None:
        self.leaves: dict[str, Leaf] = {}
        self.raw = RawReplies()

    def setup(self, ctx: Context) -> None:
        assert ctx.target is not None
        self.leaves = issue(ctx.target, {key: {"names": [host]} for key, host in MX_HOSTS.items()})

    def teardown(self, ctx: Context) -> None:
        if ctx.target is not None and ctx.target.run.services is not None:
            ctx.target.run.services.dns.set_mutator(None)
            self.raw.set_rules([])
            use_dns(ctx.target, {})

    def strategy(self) -> SearchStrategy[DNSCase]:
        return cases()

    def case_json(self, case: DNSCase) -> Any:
        return case.to_json()

    def case_from_json(self, data: Any) -> DNSCase:
        return DNSCase.from_json(data)

    def describe_case(self, case_json: Any) -> str:
        zone = case_json.get("zone", {})
        muts = "; ".join(f"{m.get('name')} {m.get('type')}: {len(m.get('ops', []))} op(s)"
                         for m in case_json.get("mutations", []))
        return f"{zone.get('state')} zone, {len(zone.get('records', []))} records; {muts or 'no mutation'}"

    def execute(self, ctx: Context, case: DNSCase) -> Execution:
        ft = ctx.target
        assert ft is not None
        if not self.leaves:
            self.setup(ctx)
        assert ft.run.services is not None
        world = use_dns(ft, case.dns(), self.leaves)
        rules = RawReplies.rules_from_data(case.mutations)
        self.raw.set_rules(rules)
        ft.run.services.dns.set_mutator(self.raw)
        plans = [peer_plan(key, case.starttls[key], self.leaves) for key in MX_HOSTS]
        try:
            with running_peers(ft, plans) as peers:
                delivery = deliver(ft, peers, recipients(1), self.name)
        finally:
            self.raw.set_rules([])  # what runs next (another case, another lane) gets plain replies
        ex = Execution()
        wanted = dane_policy.policy(world, RawReplies(rules), DOMAIN)
        facts = Evidence("what the world requires (RFC 7672 §2), from the replies the lab's DNS sends",
                         "text", wanted.describe())
        reached = []
        for name, session in delivery.all_sessions():
            address = delivery.addresses[name]
            need = wanted.by_address.get(address)
            clear = mail_in_clear(session)
            reached.append(f"{name}:{need or 'free'}:{'clear' if clear else 'tls' if session.mail else 'no-mail'}")
            transcript = Evidence(f"peer {name} [{address}], connection {session.index + 1} (target → peer)",
                                  "transcript", session.transcript.to_evidence())
            if need == "tls" and clear:
                add_violation(ex, Violation(
                    "dane-cleartext", f"mail went in clear to {MX_HOSTS[name]} [{address}], whose secure "
                    "TLSA RRset requires TLS", CITE_TLS, (facts, transcript)))
            elif need == "no-delivery" and session.mail is not None:
                add_violation(ex, Violation(
                    "dane-unusable-host-used", f"mail went to {MX_HOSTS[name]} [{address}] although its "
                    "TLSA lookup fails", CITE_UNUSABLE, (facts, transcript)))
        ex.states.add(f"mx {wanted.mx.kind}; " + (" ".join(sorted(set(reached))) or "no connection"))
        record(ex, delivery)
        ex.evidence.append(facts)
        return ex


__all__ = ["DNSCase", "DNSLane", "cases", "check_world", "mutations", "peer_plan", "zones"]
