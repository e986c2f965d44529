"""The DNS world of a scenario: zones, records and DNSSEC states, built from plain data.

The fake DNS plays the lab's *validating recursive resolver*: MTAs do not validate DNSSEC
themselves, they trust the AD bit (LAB-NOTES, "DNS as MTAs see it"). So instead of signing
zones, every answer carries the outcome a validator would have reached.

Data format (as loaded from YAML)::

    zones:
      - name: d.test               # zone apex; names are absolute, the trailing dot is optional
        state: secure              # default for the zone: secure | insecure | bogus | timeout
        ttl: 1                     # TTL of its records unless a record says otherwise (default 1)
        ns_in_authority: false     # also put the zone's NS RRset in AUTHORITY of positive answers
        records:
          - {name: d.test, type: MX, value: "10 mx.d.test"}
          - {name: mx.d.test, type: A, value: 198.51.100.1}
          - {name: _25._tcp.mx.d.test, type: TLSA, value: "3 1 1 0a1b..."}
          - {name: mx2.d.test, type: A, value: 198.51.100.2, state: insecure}
          - {name: mx2.d.test, type: AAAA, state: timeout}   # state only: no record, no reply
          - {name: bad.d.test, type: TLSA,
             value: {usage: 7, selector: 1, mtype: 1, data_hex: "abcd"}}
          - {name: raw.d.test, type: TLSA, rdata_hex: "0301"}  # RDATA bytes as given
    reverse:                       # PTR shorthand: placed in the zone that holds the reverse name
      - {address: 198.51.100.1, ptr: mx.d.test}
      - {address: 198.51.100.9, state: timeout}

Records. ``name`` is absolute ("@" is the apex) and must lie in the zone, and not in a more
specific zone of the world. ``type`` is one of A, AAAA, MX, CNAME, PTR, TLSA, NS, SOA, TXT, with
a ``value`` in presentation form ("10 mx.d.test", "3 1 1 <hex>", "ns.d.test h.d.test 1 3600 600
86400 1") or, for MX, SOA and TLSA, a mapping of named fields: {preference, exchange};
{mname, rname, serial, refresh, retry, expire, minimum} (the numbers optional); {usage, selector,
mtype, data_hex}. TXT takes a string (split into 255-octet character-strings) or a list of
strings. Any type, TYPE<n> included, takes ``rdata_hex`` instead: the RDATA goes on the wire
exactly as given. TLSA fields accept any octet and any data length, so malformed TLSA is
expressible. Entries with the same name and type form one RRset. Wildcard owners are refused
(no RFC 4592 synthesis); so is a CNAME beside other data (RFC 2181 §10.1).

States. ``secure`` answers carry AD (when the query asks for it: see ``responder``);
``insecure`` answers don't; ``bogus`` gets SERVFAIL, as from a validating resolver (RFC 4035
§5.5), unless the query set CD (RFC 4035 §3.2.2); ``timeout`` gets no reply at all. A zone has a
state; an entry's ``state`` overrides it for that name and type (the RRset), also for a name and
type with no records (an entry with a state and no value), which then decides the NODATA or
NXDOMAIN answer for that type. Negative answers otherwise carry the zone's state, and the zone's
SOA in AUTHORITY (RFC 2308 §3). A SOA and apex NS are synthesised when the data gives none.
A CNAME's state is that of its own entry; the chain it starts is resolved inside the world.

Built-in zones, each replaced by a declared zone of the same (or an enclosing) name: the root,
answering only for ``.`` itself (so ``. NS`` is secure, for Postfix's dnssec_probe), and
``in-addr.arpa`` and ``ip6.arpa``, insecure and empty, so that every PTR lookup gets NXDOMAIN
unless a PTR record is given. Names outside every zone get REFUSED: see ``resolver``.

The default TTL is 1 second because worlds change between scenarios while an MTA stays up:
whatever caches an answer (Postfix keeps TLSA answers in its smtp processes) must not carry it
into the next scenario.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dnslib import NS, QTYPE, RD, RR, SOA, DNSLabel

from . import names, rdata

DEFAULT_TTL = 1


class State(str, Enum):
    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"
    TIMEOUT = "timeout"


class ZoneDataError(ValueError):
    """Bad world data. PATH locates it in the data, like "zones[0].records[2].value"."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


Key = tuple[str, int]  # (canonical owner name, record type)


@dataclass(frozen=True)
class Zone:
    name: str
    state: State
    soa: RR  # as it goes into AUTHORITY of a negative answer (TTL per RFC 2308 §3)
    ns: tuple[RR, ...]
    rrsets: Mapping[Key, tuple[RR, ...]]
    overrides: Mapping[Key, State]
    names: frozenset[str]  # owner names and empty non-terminals (RFC 8020 §2): they exist
    cnames: Mapping[str, str]  # owner → canonical target
    ns_in_authority: bool = False
    apex_only: bool = False
    builtin: bool = False

    def contains(self, name: str) -> bool:
        if self.apex_only:
            return name == self.name
        return names.is_at_or_below(name, self.name)

    def state_of(self, name: str, rtype: int) -> State:
        return self.overrides.get((name, rtype), self.state)

    def rrset(self, name: str, rtype: int) -> tuple[RR, ...]:
        return self.rrsets.get((name, rtype), ())

    def everything_at(self, name: str) -> tuple[RR, ...]:
        return tuple(rr for (owner, _), rrs in self.rrsets.items() if owner == name for rr in rrs)

    def exists(self, name: str) -> bool:
        return name in self.names


@dataclass(frozen=True)
class World:
    """All zones the lab's resolver knows, by canonical apex name."""

    zones: Mapping[str, Zone] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Any, path: str = "") -> World:
        """Build a world from scenario data; PATH prefixes error paths ("world.dns")."""
        return _parse_world(data, path)

    @classmethod
    def empty(cls) -> World:
        return _parse_world({}, "")

    def zone_for(self, name: str) -> Zone | None:
        """The zone with the longest apex that contains NAME."""
        candidate = name
        while True:
            zone = self.zones.get(candidate)
            if zone is not None and zone.contains(name):
                return zone
            if candidate == "":
                return None
            candidate = candidate.split(".", 1)[1] if "." in candidate else ""


# -- building ---------------------------------------------------------------------------------

BUILTIN_ZONES: tuple[tuple[str, State], ...] = (
    ("", State.SECURE),
    ("in-addr.arpa", State.INSECURE),
    ("ip6.arpa", State.INSECURE),
)
_RECORD_KEYS = ("name", "type", "value", "rdata_hex", "state", "ttl")
_ZONE_KEYS = ("name", "state", "ttl", "ns_in_authority", "records")
_REVERSE_KEYS = ("address", "ptr", "state", "ttl")
_TYPE_OPT = 41


def _join(path: str, part: str) -> str:
    if not path:
        return part.lstrip(".")
    return path + part if part.startswith("[") else f"{path}.{part}"


def _mapping(data: Any, path: str, what: str, keys: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ZoneDataError(f"{what} must be a mapping, not {type(data).__name__}", path)
    allowed = tuple(keys)
    for key in data:
        if key not in allowed:
            raise ZoneDataError(f"unknown key {key!r} (expected one of: {', '.join(allowed)})",
                                _join(path, str(key)))
    return data


def _list(data: Any, path: str, what: str) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ZoneDataError(f"{what} must be a list, not {type(data).__name__}", path)
    return data


def _name(value: Any, path: str) -> str:
    try:
        return names.canonical(value)
    except names.InvalidName as exc:
        raise ZoneDataError(str(exc), path) from None


def _state(value: Any, path: str) -> State:
    try:
        return State(value)
    except ValueError:
        choices = ", ".join(s.value for s in State)
        raise ZoneDataError(f"unknown state {value!r} (expected one of: {choices})", path) from None


def _wrap(exc: rdata.RdataError, path: str) -> ZoneDataError:
    return ZoneDataError(exc.message, path + exc.subpath)


@dataclass(frozen=True)
class _Entry:
    path: str
    name: str
    rtype: int
    rd: RD | None  # None: the entry only sets a state
    state: State | None
    ttl: int


@dataclass
class _ZoneBuilder:
    name: str
    state: State
    ttl: int
    path: str
    ns_in_authority: bool = False
    apex_only: bool = False
    builtin: bool = False
    entries: list[_Entry] = field(default_factory=list)

    def finish(self) -> Zone:
        apex = DNSLabel(names.display(self.name))
        groups: dict[Key, list[_Entry]] = {}
        for entry in self.entries:
            groups.setdefault((entry.name, entry.rtype), []).append(entry)

        rrsets: dict[Key, tuple[RR, ...]] = {}
        overrides: dict[Key, State] = {}
        for key, entries in groups.items():
            state = _rrset_state(entries)
            if state is not None:
                overrides[key] = state
            with_data = [e for e in entries if e.rd is not None]
            if with_data:
                _check_ttls(with_data)
                rrsets[key] = tuple(
                    RR(DNSLabel(names.display(e.name)), e.rtype, ttl=e.ttl, rdata=e.rd)
                    for e in with_data)

        cnames = self._check_cnames(groups, rrsets)
        self._check_soa(groups)
        soa = rrsets.setdefault((self.name, QTYPE.SOA), (
            RR(apex, QTYPE.SOA, ttl=self.ttl, rdata=_default_soa(self.name, self.ttl)),))
        ns = rrsets.setdefault((self.name, QTYPE.NS), (
            RR(apex, QTYPE.NS, ttl=self.ttl,
               rdata=NS(DNSLabel(names.display(_default_ns(self.name))))),))

        existing = {self.name}
        for owner, _ in rrsets:
            existing.update(names.ancestors(owner, self.name))
        return Zone(
            name=self.name, state=self.state, soa=_negative_soa(soa[0]), ns=ns,
            rrsets=rrsets, overrides=overrides, names=frozenset(existing), cnames=cnames,
            ns_in_authority=self.ns_in_authority, apex_only=self.apex_only,
            builtin=self.builtin)

    def _check_soa(self, groups: dict[Key, list[_Entry]]) -> None:
        # RFC 1035 §5.2: exactly one SOA, at the apex.
        for (owner, rtype), entries in groups.items():
            if rtype != QTYPE.SOA:
                continue
            with_data = [e for e in entries if e.rd is not None]
            if owner != self.name:
                raise ZoneDataError(f"a SOA record belongs at the zone apex "
                                    f"{names.display(self.name)}", _join(entries[0].path, "name"))
            if len(with_data) > 1:
                raise ZoneDataError("a zone has exactly one SOA record (RFC 1035 §5.2)",
                                    with_data[1].path)

    def _check_cnames(self, groups: dict[Key, list[_Entry]],
                      rrsets: dict[Key, tuple[RR, ...]]) -> dict[str, str]:
        cnames: dict[str, str] = {}
        for (owner, rtype), rrs in rrsets.items():
            if rtype != QTYPE.CNAME:
                continue
            entries = groups[(owner, rtype)]
            if owner == self.name:
                raise ZoneDataError("a CNAME cannot be at the zone apex, which has SOA and NS "
                                    "(RFC 2181 §10.1)", _join(entries[0].path, "name"))
            if len(rrs) > 1:
                raise ZoneDataError("a name has at most one CNAME record (RFC 2181 §10.1)",
                                    entries[1].path)
            target = getattr(rrs[0].rdata, "label", None)
            if target is not None:  # a CNAME given as rdata_hex is served but not chased
                cnames[owner] = names.canonical_label(target)
        for (owner, rtype), entries in groups.items():
            if owner in cnames and rtype != QTYPE.CNAME:
                raise ZoneDataError(
                    f"{names.display(owner)} has a CNAME, so it can have no other data or state "
                    "(RFC 2181 §10.1); give the CNAME entry the state", entries[0].path)
        return cnames


def _rrset_state(entries: list[_Entry]) -> State | None:
    state: State | None = None
    for entry in entries:
        if entry.state is None:
            continue
        if state is not None and entry.state != state:
            raise ZoneDataError(
                f"state {entry.state.value!r} conflicts with {state.value!r} given for the same "
                "name and type: a state belongs to the whole RRset", _join(entry.path, "state"))
        state = entry.state
    return state


def _check_ttls(entries: list[_Entry]) -> None:
    for entry in entries[1:]:
        if entry.ttl != entries[0].ttl:
            raise ZoneDataError(
                f"ttl {entry.ttl} differs from {entries[0].ttl} of the same RRset "
                "(RFC 2181 §5.2)", _join(entry.path, "ttl"))


def _default_ns(zone: str) -> str:
    return f"ns.{zone}" if zone else "a.root.test"


def _default_soa(zone: str, ttl: int) -> SOA:
    mname = DNSLabel(names.display(_default_ns(zone)))
    rname = DNSLabel(names.display(f"hostmaster.{zone}" if zone else "hostmaster.root.test"))
    return SOA(mname, rname, (1, 3600, 600, 86400, ttl))


def _negative_soa(soa: RR) -> RR:
    # RFC 2308 §3: the SOA in a negative answer has TTL min(SOA TTL, SOA MINIMUM).
    minimum = soa.rdata.times[4] if isinstance(soa.rdata, SOA) else soa.ttl
    return RR(soa.rname, QTYPE.SOA, ttl=min(soa.ttl, minimum), rdata=soa.rdata)


def _zone_header(data: Any, path: str) -> _ZoneBuilder:
    zone = _mapping(data, path, "a zone", _ZONE_KEYS)
    if "name" not in zone:
        raise ZoneDataError("a zone needs a name", path)
    name = _name(zone["name"], _join(path, "name"))
    state = _state(zone.get("state", "secure"), _join(path, "state"))
    try:
        ttl = rdata.ttl(zone.get("ttl", DEFAULT_TTL))
    except rdata.RdataError as exc:
        raise _wrap(exc, _join(path, "ttl")) from None
    flag = zone.get("ns_in_authority", False)
    if not isinstance(flag, bool):
        raise ZoneDataError("ns_in_authority must be true or false", _join(path, "ns_in_authority"))
    return _ZoneBuilder(name, state, ttl, path, ns_in_authority=flag)


def _record(data: Any, path: str, zone: _ZoneBuilder) -> _Entry:
    rec = _mapping(data, path, "a record", _RECORD_KEYS)
    for key in ("name", "type"):
        if key not in rec:
            raise ZoneDataError(f"a record needs a {key}", path)
    raw_name = rec["name"]
    name = zone.name if raw_name == "@" else _name(raw_name, _join(path, "name"))
    if any(part == "*" for part in name.split(".")):
        raise ZoneDataError("wildcard owner names are not supported", _join(path, "name"))
    if not names.is_at_or_below(name, zone.name):
        raise ZoneDataError(f"{names.display(name)} is not in zone {names.display(zone.name)} "
                            "(names are absolute)", _join(path, "name"))
    try:
        rtype = rdata.type_code(rec["type"])
    except rdata.RdataError as exc:
        raise _wrap(exc, _join(path, "type")) from None
    if rtype == _TYPE_OPT or 128 <= rtype <= 255:  # RFC 6891 §6.1.1; RFC 6895 §3.1 meta/QTYPEs
        raise ZoneDataError(f"{rdata.type_name(rtype)} is not a record type that zones hold",
                            _join(path, "type"))
    state = _state(rec["state"], _join(path, "state")) if "state" in rec else None
    try:
        ttl = rdata.ttl(rec["ttl"]) if "ttl" in rec else zone.ttl
    except rdata.RdataError as exc:
        raise _wrap(exc, _join(path, "ttl")) from None
    if "value" in rec and "rdata_hex" in rec:
        raise ZoneDataError("give value or rdata_hex, not both", path)
    rd: RD | None = None
    try:
        if "value" in rec:
            rd = rdata.build(rtype, rec["value"], zone.ttl)
        elif "rdata_hex" in rec:
            rd = rdata.raw(rec["rdata_hex"])
    except rdata.RdataError as exc:
        raise _wrap(exc, _join(path, "value" if "value" in rec else "rdata_hex")) from None
    if rd is None and state is None:
        raise ZoneDataError("a record needs a value (or rdata_hex), or at least a state", path)
    return _Entry(path, name, rtype, rd, state, ttl)


def _reverse(data: Any, path: str) -> tuple[str, RD | None, State | None, int | None]:
    """A reverse entry as (owner name, PTR rdata, state, ttl); ttl None means the zone's."""
    rev = _mapping(data, path, "a reverse entry", _REVERSE_KEYS)
    if "address" not in rev:
        raise ZoneDataError("a reverse entry needs an address", path)
    try:
        address = ipaddress.ip_address(str(rev["address"]))
    except ValueError:
        raise ZoneDataError(f"not an IP address: {rev['address']!r}",
                            _join(path, "address")) from None
    state = _state(rev["state"], _join(path, "state")) if "state" in rev else None
    try:
        ttl = rdata.ttl(rev["ttl"]) if "ttl" in rev else None
    except rdata.RdataError as exc:
        raise _wrap(exc, _join(path, "ttl")) from None
    try:
        rd = rdata.build(QTYPE.PTR, rev["ptr"], DEFAULT_TTL) if "ptr" in rev else None
    except rdata.RdataError as exc:
        raise _wrap(exc, _join(path, "ptr")) from None
    if rd is None and state is None:
        raise ZoneDataError("a reverse entry needs a ptr, or at least a state", path)
    # RFC 1035 §3.5 / RFC 3596 §2.5: the reverse owner name of the address.
    return names.canonical(address.reverse_pointer), rd, state, ttl


def _owner(builders: Mapping[str, _ZoneBuilder], name: str) -> _ZoneBuilder | None:
    candidate = name
    while True:
        builder = builders.get(candidate)
        if builder is not None and (not builder.apex_only or candidate == name):
            return builder
        if candidate == "":
            return None
        candidate = candidate.split(".", 1)[1] if "." in candidate else ""


def _parse_world(data: Any, path: str) -> World:
    world = _mapping({} if data is None else data, path, "the DNS world", ("zones", "reverse"))
    zone_items = _list(world.get("zones"), _join(path, "zones"), "zones")
    declared: dict[str, tuple[_ZoneBuilder, list[Any]]] = {}
    for i, item in enumerate(zone_items):
        zpath = _join(path, f"zones[{i}]")
        builder = _zone_header(item, zpath)
        if builder.name in declared:
            first = declared[builder.name][0].path
            raise ZoneDataError(f"zone {names.display(builder.name)} is declared twice "
                                f"(also at {first})", _join(zpath, "name"))
        records = _list(item.get("records"), _join(zpath, "records"), "records")
        declared[builder.name] = (builder, records)

    builders = {name: b for name, (b, _) in declared.items()}
    for name, state in BUILTIN_ZONES:
        covered = name in declared or (name != "" and any(
            names.is_at_or_below(name, other) for other in declared))
        if not covered:
            builders[name] = _ZoneBuilder(name, state, DEFAULT_TTL, "(built-in)",
                                          apex_only=(name == ""), builtin=True)

    for builder, records in declared.values():
        for j, item in enumerate(records):
            entry = _record(item, _join(builder.path, f"records[{j}]"), builder)
            owner = _owner(builders, entry.name)
            if owner is not None and owner is not builder:
                raise ZoneDataError(
                    f"{names.display(entry.name)} belongs to the more specific zone "
                    f"{names.display(owner.name)} ({owner.path})", _join(entry.path, "name"))
            builder.entries.append(entry)

    for k, item in enumerate(_list(world.get("reverse"), _join(path, "reverse"), "reverse")):
        rpath = _join(path, f"reverse[{k}]")
        name, rd, state, ttl = _reverse(item, rpath)
        owner = _owner(builders, name)
        if owner is None:  # the built-in reverse zones were replaced by an apex-only root
            raise ZoneDataError(f"no zone holds {names.display(name)}", _join(rpath, "address"))
        owner.entries.append(_Entry(rpath, name, QTYPE.PTR, rd, state,
                                    owner.ttl if ttl is None else ttl))

    return World({name: b.finish() for name, b in builders.items()})
