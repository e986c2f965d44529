"""Raw reply mutations: what a broken or hostile resolver sends instead of a good DNS reply.

The zone model (``zone``) can say anything a well-formed reply can carry; this module breaks the
reply itself — a wrong ID, flipped header bits, lying section counts, a packet cut short, garbage,
records of the wrong type in the answer, or no reply at all. It is sans-I/O: ``apply`` takes the
encoded reply and a list of operations (plain JSON data) and returns the bytes to send. The DNS
server calls a ``ReplyMutator`` on every reply (``DNSServer.set_mutator``); ``RawReplies`` is the
mutator that applies operations per (name, type), as the fuzz lanes use it.

Operations, applied in order:

    {op: drop}                                      send nothing (the client times out)
    {op: replace, hex: "…"}                         send these bytes instead (garbage)
    {op: truncate, length: N}                       keep the first N octets
    {op: append, hex: "…"}                          trailing bytes after the message
    {op: xor, offset: N, mask: M}                   flip bits of one octet (offset modulo length)
    {op: id, delta: D}                              the header ID plus D (RFC 1035 §4.1.1)
    {op: flags, set: S, clear: C}                   16-bit header flags word: QR opcode AA TC RD
                                                    RA Z AD CD RCODE (RFC 1035 §4.1.1, RFC 4035)
    {op: count, section: qd|an|ns|ar, value: N}     a section count that lies
    {op: rr, section: answer|authority|additional,  one more resource record, any type and RDATA;
     name: "@" or a name, type: "A" or 28, ttl: T,  "@" is the question's name (the reply is
     rdata_hex: "…"}                                re-encoded: a reply that does not parse as
                                                    DNS is left as it is)
"""

from __future__ import annotations

import binascii
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dnslib import RD, RR, DNSLabel, DNSRecord

from . import names, rdata
from .querylog import QueryRecord

__all__ = ["OPS", "MutationError", "RawReplies", "ReplyMutator", "Rule", "apply", "check_ops", "describe"]

# What the DNS server asks a mutator: the query bytes, the reply it would send (None: no reply),
# and the log record of the exchange. It returns the bytes to send instead (None: nothing) and a
# note for the query log; (reply, None) leaves the reply alone.
ReplyMutator = Callable[[bytes, "bytes | None", QueryRecord], "tuple[bytes | None, str | None]"]

OPS = ("drop", "replace", "truncate", "append", "xor", "id", "flags", "count", "rr")
_SECTIONS = {"qd": 4, "an": 6, "ns": 8, "ar": 10}  # offset of each 16-bit count in the header
_RR_SECTIONS = ("answer", "authority", "additional")
_KEYS: dict[str, tuple[str, ...]] = {
    "drop": (), "replace": ("hex",), "truncate": ("length",), "append": ("hex",),
    "xor": ("offset", "mask"), "id": ("delta",), "flags": ("set", "clear"),
    "count": ("section", "value"), "rr": ("section", "name", "type", "ttl", "rdata_hex"),
}


class MutationError(ValueError):
    """Mutation data that cannot be applied; PATH locates it ("mutations[0].ops[2].mask")."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


def _int(op: Mapping[str, Any], key: str, low: int, high: int, path: str, default: int | None = None) -> int:
    value = op.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MutationError(f"{key} must be an integer in {low}..{high}, not {value!r}", f"{path}.{key}")
    return value


def _hex(op: Mapping[str, Any], key: str, path: str) -> bytes:
    value = op.get(key, "")
    if not isinstance(value, str):
        raise MutationError(f"{key} must be a hex string", f"{path}.{key}")
    try:
        return binascii.unhexlify("".join(value.split()))
    except (binascii.Error, ValueError):
        raise MutationError(f"{key} is not an even-length hex string", f"{path}.{key}") from None


def check_ops(ops: Any, path: str = "ops") -> list[dict[str, Any]]:
    """OPS validated (MutationError names the bad one), as a list of plain dicts."""
    if not isinstance(ops, list):
        raise MutationError("a list of operations", path)
    out = []
    for i, op in enumerate(ops):
        where = f"{path}[{i}]"
        if not isinstance(op, Mapping) or op.get("op") not in OPS:
            raise MutationError(f"an operation is a mapping with op: one of {', '.join(OPS)}", where)
        unknown = set(op) - {"op", *_KEYS[op["op"]]}
        if unknown:
            raise MutationError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}", where)
        kind = op["op"]
        if kind in ("replace", "append"):
            _hex(op, "hex", where)
        elif kind == "truncate":
            _int(op, "length", 0, 65535, where)
        elif kind == "xor":
            _int(op, "offset", 0, 65535, where)
            _int(op, "mask", 1, 255, where)
        elif kind == "id":
            _int(op, "delta", -65535, 65535, where)
        elif kind == "flags":
            _int(op, "set", 0, 0xFFFF, where, 0)
            _int(op, "clear", 0, 0xFFFF, where, 0)
        elif kind == "count":
            if op.get("section") not in _SECTIONS:
                raise MutationError(f"section must be one of {', '.join(_SECTIONS)}", f"{where}.section")
            _int(op, "value", 0, 0xFFFF, where)
        elif kind == "rr":
            _rr(op, "x.test", where)
        out.append(dict(op))
    return out


def _rr(op: Mapping[str, Any], qname: str, path: str) -> tuple[str, RR]:
    section = op.get("section", "answer")
    if section not in _RR_SECTIONS:
        raise MutationError(f"section must be one of {', '.join(_RR_SECTIONS)}", f"{path}.section")
    raw_name = op.get("name", "@")
    try:
        owner = qname if raw_name == "@" else names.canonical(raw_name)
    except names.InvalidName as exc:
        raise MutationError(str(exc), f"{path}.name") from None
    try:
        rtype = op["type"] if isinstance(op.get("type"), int) else rdata.type_code(op.get("type"))
    except rdata.RdataError as exc:
        raise MutationError(exc.message, f"{path}.type") from None
    if not 1 <= rtype <= 65535:
        raise MutationError("type must be in 1..65535", f"{path}.type")
    ttl = _int(op, "ttl", 0, rdata.MAX_TTL, path, 1)
    data = _hex(op, "rdata_hex", path)
    return section, RR(DNSLabel(names.display(owner)), rtype, ttl=ttl, rdata=RD(data))


def _set16(buf: bytearray, offset: int, value: int) -> None:
    if len(buf) >= offset + 2:
        buf[offset:offset + 2] = (value & 0xFFFF).to_bytes(2, "big")


def _get16(buf: bytearray, offset: int) -> int:
    return int.from_bytes(buf[offset:offset + 2], "big") if len(buf) >= offset + 2 else 0


def _add_rr(wire: bytes, op: Mapping[str, Any]) -> bytes:
    try:
        record = DNSRecord.parse(wire)
    except Exception:  # dnslib raises many kinds on bad bytes: such a reply stays as it is
        return wire
    qname = names.canonical_label(record.questions[0].qname) if record.questions else ""
    section, rr = _rr(op, qname, "rr")
    {"answer": record.rr, "authority": record.auth, "additional": record.ar}[section].append(rr)
    return record.pack()


def apply(wire: bytes | None, ops: Sequence[Mapping[str, Any]]) -> bytes | None:
    """The bytes to send after OPS (validated with ``check_ops``); None: send nothing.

    A reply that was not going to be sent (WIRE None) stays unsent unless an operation gives it
    bytes (`replace`)."""
    buf: bytearray | None = None if wire is None else bytearray(wire)
    for op in ops:
        kind = op["op"]
        if kind == "drop":
            buf = None
        elif kind == "replace":
            buf = bytearray(_hex(op, "hex", "replace"))
        elif buf is None:
            continue
        elif kind == "truncate":
            del buf[op["length"]:]
        elif kind == "append":
            buf += _hex(op, "hex", "append")
        elif kind == "xor":
            if buf:
                buf[op["offset"] % len(buf)] ^= op["mask"]
        elif kind == "id":
            _set16(buf, 0, _get16(buf, 0) + op["delta"])
        elif kind == "flags":
            _set16(buf, 2, (_get16(buf, 2) | op.get("set", 0)) & ~op.get("clear", 0))
        elif kind == "count":
            _set16(buf, _SECTIONS[op["section"]], op["value"])
        elif kind == "rr":
            buf = bytearray(_add_rr(bytes(buf), op))
    return None if buf is None else bytes(buf)


def describe(ops: Sequence[Mapping[str, Any]]) -> str:
    """One line for the query log: "flags set 0x0200; truncate 40"."""
    parts = []
    for op in ops:
        args = " ".join(f"{k}={v:#06x}" if k in ("set", "clear") else f"{k}={v}"
                        for k, v in op.items() if k != "op" and v not in ("", None))
        parts.append(f"{op['op']} {args}".strip())
    return "; ".join(parts) or "(none)"


@dataclass(frozen=True)
class Rule:
    name: str  # canonical owner name of the question
    qtype: str  # "TLSA", "A", "TYPE65534"
    ops: tuple[Mapping[str, Any], ...]
    udp_only: bool = False  # a TCP retry (after TC, say) then gets the good reply


class RawReplies:
    """A ReplyMutator: the replies to (name, type) questions mutated by per-question rules.

    Thread-safe; ``set_rules`` swaps the whole set at once, like ``DNSServer.set_world``."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: dict[tuple[str, str], Rule] = {}
        self.set_rules(rules)

    @staticmethod
    def rules_from_data(data: Any, path: str = "mutations") -> list[Rule]:
        """[{name, type, ops, udp_only?}] → rules; MutationError names what is wrong."""
        if not isinstance(data, list):
            raise MutationError("a list of {name, type, ops}", path)
        rules = []
        for i, item in enumerate(data):
            where = f"{path}[{i}]"
            if not isinstance(item, Mapping) or set(item) - {"name", "type", "ops", "udp_only"}:
                raise MutationError("a mapping with name, type, ops and optionally udp_only", where)
            try:
                name = names.canonical(item.get("name"))
                qtype = rdata.type_name(rdata.type_code(item.get("type")))
            except (names.InvalidName, rdata.RdataError) as exc:
                raise MutationError(str(exc), where) from None
            ops = check_ops(item.get("ops"), f"{where}.ops")
            rules.append(Rule(name, qtype, tuple(ops), bool(item.get("udp_only", False))))
        return rules

    def set_rules(self, rules: Sequence[Rule]) -> None:
        table = {(r.name, r.qtype): r for r in rules}
        with self._lock:
            self._rules = table

    def rule_for(self, name: str | None, qtype: str | None, transport: str) -> Rule | None:
        with self._lock:
            rule = self._rules.get((name or "", qtype or ""))
        if rule is None or (rule.udp_only and transport != "udp"):
            return None
        return rule

    def __call__(self, query: bytes, reply: bytes | None, record: QueryRecord) -> tuple[bytes | None, str | None]:
        rule = self.rule_for(record.qname, record.qtype, record.transport)
        if rule is None:
            return reply, None
        return apply(reply, rule.ops), describe(rule.ops)

