"""Record values from scenario data → dnslib RDATA whose wire bytes are what the data says.

Each builder takes the ``value`` of one record entry (a string in presentation form, or for
some types a mapping with named fields) and returns a dnslib ``RD``. Nothing is normalised
beyond what the presentation format implies: TLSA fields may take any octet value and any data
length, so malformed TLSA records are expressible on purpose.
"""

from __future__ import annotations

import binascii
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RD, SOA, TLSA, TXT, A, DNSLabel

from . import names

MAX_TTL = 2**31 - 1  # RFC 2181 §8


class RdataError(ValueError):
    """A record value that cannot be built; SUBPATH points inside the value (".usage")."""

    def __init__(self, message: str, subpath: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.subpath = subpath


def type_code(text: Any) -> int:
    """A record type name ("MX", "tlsa") or the RFC 3597 §5 generic form "TYPE65" as a number."""
    if not isinstance(text, str) or not text.strip():
        raise RdataError(f"record type must be a name such as MX, not {text!r}")
    upper = text.strip().upper()
    if upper.startswith("TYPE") and upper[4:].isdigit():
        code = int(upper[4:])
        if 0 < code < 65536:
            return code
        raise RdataError(f"record type {text!r} is outside 1..65535")
    code = QTYPE.reverse.get(upper)
    if code is None:
        raise RdataError(f"unknown record type {text!r}")
    return code


def type_name(code: int) -> str:
    return QTYPE.forward.get(code) or f"TYPE{code}"


def _int(value: Any, what: str, low: int, high: int, subpath: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise RdataError(f"{what} must be an integer in {low}..{high}, not {value!r}", subpath)
    if not low <= value <= high:
        raise RdataError(f"{what} must be in {low}..{high}, not {value}", subpath)
    return value


def _hex(value: Any, what: str, subpath: str = "") -> bytes:
    if not isinstance(value, str):
        raise RdataError(f"{what} must be a hex string, not {value!r}", subpath)
    text = "".join(value.split())
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise RdataError(f"{what} is not an even-length hex string: {value!r}", subpath) from None


def _name(value: Any, what: str, subpath: str = "") -> DNSLabel:
    try:
        return DNSLabel(names.display(names.canonical(value)))
    except names.InvalidName as exc:
        raise RdataError(f"{what}: {exc}", subpath) from None


def _fields(value: Any, keys: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    """VALUE as a mapping with exactly KEYS (some optional), or as presentation-form tokens."""
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in keys]
        if unknown:
            raise RdataError(f"unknown field {unknown[0]!r}; expected {', '.join(keys)}",
                             f".{unknown[0]}")
        missing = [k for k in required if k not in value]
        if missing:
            raise RdataError(f"missing field {missing[0]!r}")
        return dict(value)
    if isinstance(value, str):
        tokens = value.split()
        if len(tokens) < len(required):
            raise RdataError(f"expected {' '.join(required)}, got {value!r}")
        fields = dict(zip(keys, tokens[: len(keys) - 1]))
        fields[keys[-1]] = " ".join(tokens[len(keys) - 1 :])
        if not fields[keys[-1]]:
            del fields[keys[-1]]
        return fields
    raise RdataError(f"expected a string or a mapping with {', '.join(keys)}, not {value!r}")


def _sub(value: Any, key: str) -> str:
    """The error subpath of field KEY: only a mapping value has addressable fields."""
    return f".{key}" if isinstance(value, Mapping) else ""


def _a(value: Any, zone_ttl: int) -> RD:
    try:
        return A(tuple(ipaddress.IPv4Address(value).packed))
    except (ipaddress.AddressValueError, ValueError):
        raise RdataError(f"not an IPv4 address: {value!r}") from None


def _aaaa(value: Any, zone_ttl: int) -> RD:
    try:
        return AAAA(tuple(ipaddress.IPv6Address(value).packed))
    except (ipaddress.AddressValueError, ValueError):
        raise RdataError(f"not an IPv6 address: {value!r}") from None


def _mx(value: Any, zone_ttl: int) -> RD:
    # RFC 1035 §3.3.9; exchange "." is the null MX of RFC 7505.
    fields = _fields(value, ("preference", "exchange"), ("preference", "exchange"))
    pref = _int(fields["preference"], "MX preference", 0, 65535, _sub(value, "preference"))
    return MX(_name(fields["exchange"], "MX exchange", _sub(value, "exchange")), pref)


def _target(cls: type[RD], what: str) -> Callable[[Any, int], RD]:
    def build(value: Any, zone_ttl: int) -> RD:
        return cls(_name(value, what))

    return build


def _soa(value: Any, zone_ttl: int) -> RD:
    # RFC 1035 §3.3.13. Missing timers get defaults; MINIMUM is the negative-caching TTL
    # (RFC 2308 §4), so it defaults to the zone's TTL.
    keys = ("mname", "rname", "serial", "refresh", "retry", "expire", "minimum")
    if isinstance(value, str):
        tokens = value.split()
        if len(tokens) != len(keys):
            raise RdataError(f"SOA needs {' '.join(keys)}, got {value!r}")
        fields: dict[str, Any] = dict(zip(keys, tokens))
    else:
        fields = _fields(value, keys, ("mname", "rname"))
    defaults = {"serial": 1, "refresh": 3600, "retry": 600, "expire": 86400,
                "minimum": zone_ttl}
    times = tuple(_int(fields.get(k, defaults[k]), f"SOA {k}", 0, 2**32 - 1, _sub(value, k))
                  for k in keys[2:])
    return SOA(_name(fields["mname"], "SOA mname", _sub(value, "mname")),
               _name(fields["rname"], "SOA rname", _sub(value, "rname")), times)


def _txt(value: Any, zone_ttl: int) -> RD:
    # RFC 1035 §3.3.14: one or more <character-string>s of at most 255 octets each. A string
    # value is split into 255-octet pieces; a list gives the pieces explicitly.
    if isinstance(value, str):
        data = value.encode()
        return TXT([data[i : i + 255] for i in range(0, len(data), 255)] or [b""])
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        pieces = [v.encode() for v in value]
        for i, piece in enumerate(pieces):
            if len(piece) > 255:
                raise RdataError("a TXT character-string is at most 255 octets", f"[{i}]")
        return TXT(pieces)
    raise RdataError(f"TXT value must be a string or a list of strings, not {value!r}")


def _tlsa(value: Any, zone_ttl: int) -> RD:
    # RFC 6698 §2.1: three octets then the association data. Any octet value and any data
    # length are accepted so that scenarios can publish malformed records on purpose.
    fields = _fields(value, ("usage", "selector", "mtype", "data_hex"),
                     ("usage", "selector", "mtype"))
    usage = _int(fields["usage"], "TLSA usage", 0, 255, _sub(value, "usage"))
    selector = _int(fields["selector"], "TLSA selector", 0, 255, _sub(value, "selector"))
    mtype = _int(fields["mtype"], "TLSA matching type", 0, 255, _sub(value, "mtype"))
    data = _hex(fields.get("data_hex", ""), "TLSA data", _sub(value, "data_hex"))
    return TLSA(usage, selector, mtype, data)


BUILDERS: dict[str, Callable[[Any, int], RD]] = {
    "A": _a,
    "AAAA": _aaaa,
    "MX": _mx,
    "CNAME": _target(CNAME, "CNAME target"),
    "PTR": _target(PTR, "PTR target"),
    "NS": _target(NS, "NS name"),
    "SOA": _soa,
    "TXT": _txt,
    "TLSA": _tlsa,
}


def build(rtype: int, value: Any, zone_ttl: int) -> RD:
    builder = BUILDERS.get(type_name(rtype))
    if builder is None:
        raise RdataError(f"type {type_name(rtype)} takes rdata_hex, not value "
                         f"(value works for {', '.join(BUILDERS)})")
    return builder(value, zone_ttl)


def raw(value: Any) -> RD:
    """RDATA given as hex: sent byte for byte, whatever the type (RFC 3597 §5 style)."""
    return RD(_hex(value, "rdata_hex"))


def ttl(value: Any) -> int:
    return _int(value, "ttl", 0, MAX_TTL)
