"""The PROXY sender: puts a header on a fresh connection exactly as a scenario says.

Whole, in chosen fragments with chosen delays, after a silence, followed in the same segment by
SMTP bytes, truncated and then silent or half-closed, or not at all. While it sends it watches
the socket, so a receiver that speaks before the header is complete (PROXY-01) is caught with the
time of its first byte. Everything goes into the session's transcript; the ProxyRecord keeps the
plan, the bytes sent, the times, and the strict decoder's verdict on those bytes (the oracle).

The scenario step (``proxy:``) is described by STEP_SCHEMA and turned into a ProxyPlan by
``plan_from_step``; the header itself is built by ``build_header`` from ``v1`` text, ``v2``
fields (through the scapy layers, so every field can be set to a wrong value), ``raw`` bytes or
``none``.
"""

from __future__ import annotations

import codecs
import select
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..smtp.transcript import Transcript
from .codec import (V2_SIGNATURE, Address, Family, ProxyHeader, ProxyProtocolError, SSLSubtype, TLVType,
                    decode, encode_v2)
from .layers import ProxyV2, ProxyV2IPv4, ProxyV2IPv6, ProxyV2TLV, ProxyV2TLVSSL, ProxyV2TLVs, ProxyV2Unix

__all__ = ["STEP_SCHEMA", "ProxyPlan", "ProxyRecord", "build_header", "plan_from_step", "send_header"]

SOURCES = ("listed", "unlisted")
THEN = ("smtp", "silent", "close")

_tlv_schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"oneOf": [{"enum": [t.name for t in TLVType]}, {"type": "integer", "minimum": 0,
                                                                 "maximum": 255}]},
        "value": {"type": "string", "description": "bytes, escapes allowed"},
        "size": {"type": "integer", "minimum": 0, "maximum": 65535,
                 "description": "a value of SIZE bytes ('x')"},
        "client": {"type": "integer", "minimum": 0, "maximum": 255},
        "verify": {"type": "integer", "minimum": 0},
        "sub": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["type", "value"],
            "properties": {"type": {"oneOf": [{"enum": [s.name for s in SSLSubtype]},
                                              {"type": "integer", "minimum": 0, "maximum": 255}]},
                           "value": {"type": "string"}}}},
        "bad": {"type": "boolean", "description": "CRC32C: a wrong checksum instead of the right one"},
    },
}

_nibble = {"type": "integer", "minimum": 0, "maximum": 15}
STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "v1": {"type": "string", "description": "the v1 line, escapes allowed"},
        "v2": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "command": {"oneOf": [{"enum": ["LOCAL", "PROXY"]}, _nibble]},
                "family": {"oneOf": [{"enum": [f.name for f in Family]}, _nibble]},
                "transport": {"oneOf": [{"enum": ["UNSPEC", "STREAM", "DGRAM"]}, _nibble]},
                "version": _nibble,
                "src": {"type": "string"}, "dst": {"type": "string"},
                "sport": {"type": "integer", "minimum": 0, "maximum": 65535},
                "dport": {"type": "integer", "minimum": 0, "maximum": 65535},
                "addresses": {"type": "boolean", "description": "send an address block (default: "
                              "yes for INET/INET6/UNIX)"},
                "block": {"type": "string", "description": "the whole block after the 16 bytes, "
                          "raw (escapes allowed), instead of addresses and TLVs"},
                "tlvs": {"type": "array", "items": _tlv_schema},
                "len": {"type": "integer", "minimum": 0, "maximum": 65535,
                        "description": "the length field, whatever the block's real length"},
                "sig": {"type": "string", "description": "the 12-byte signature (escapes allowed)"},
            },
        },
        "raw": {"type": "string", "description": "bytes exactly as written (escapes allowed)"},
        "none": {"const": True, "description": "send no header at all"},
        "from": {"enum": list(SOURCES), "description": "the connection's source: a listed proxy "
                 "(default) or a host not listed as one"},
        "wait_before": {"type": "number", "minimum": 0, "maximum": 30},
        "fragments": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                      "description": "sizes of the first segments; the rest goes in one"},
        "fragment_size": {"type": "integer", "minimum": 1, "description": "every segment this size"},
        "delay": {"type": "number", "minimum": 0, "maximum": 5, "description": "between segments"},
        "truncate": {"type": "integer", "minimum": 0, "description": "send only the first N bytes"},
        "trailing": {"type": "string", "description": "bytes sent in the same segment as the "
                     "header's last piece (escapes allowed)"},
        "then": {"enum": list(THEN), "description": "smtp: read the banner and go on (default); "
                 "silent: send nothing and watch; close: half-close (FIN) and watch"},
        "observe": {"type": "number", "minimum": 0.1, "maximum": 60,
                    "description": "seconds to watch after silent/close (default 6)"},
    },
    "oneOf": [{"required": ["v1"]}, {"required": ["v2"]}, {"required": ["raw"]}, {"required": ["none"]}],
}


def unescape(text: str) -> bytes:
    return codecs.escape_decode(text.encode("utf-8"))[0]  # type: ignore[no-any-return]


def _enum_value(value: Any, names: Mapping[str, int]) -> int:
    return names[value] if isinstance(value, str) else int(value)


def _tlv_layer(data: Mapping[str, Any]) -> Any:
    typ = _enum_value(data["type"], {t.name: int(t) for t in TLVType})
    if typ == TLVType.SSL:
        subs = [ProxyV2TLV(type=_enum_value(s["type"], {n.name: int(n) for n in SSLSubtype}),
                           value=unescape(s["value"])) for s in data.get("sub", [])]
        return ProxyV2TLVSSL(client=data.get("client", 1), verify=data.get("verify", 0), sub_tlvs=subs)
    if typ == TLVType.CRC32C and "value" not in data:
        return ProxyV2TLV(type=typ, value=None)  # computed when the header is built
    value = unescape(data["value"]) if "value" in data else b"x" * data.get("size", 0)
    return ProxyV2TLV(type=typ, value=value)


def build_v2(spec: Mapping[str, Any]) -> bytes:
    """v2 header bytes from scenario fields, through the scapy layers (§2.2)."""
    fam = _enum_value(spec.get("family", "INET"), {f.name: int(f) for f in Family})
    tr = _enum_value(spec.get("transport", "STREAM"), {"UNSPEC": 0, "STREAM": 1, "DGRAM": 2})
    cmd = _enum_value(spec.get("command", "PROXY"), {"LOCAL": 0, "PROXY": 1})
    fields: dict[str, Any] = {"version": spec.get("version", 2), "cmd": cmd, "family": fam, "transport": tr}
    if "sig" in spec:
        fields["sig"] = unescape(spec["sig"])
    head = ProxyV2(**fields)
    tlvs = [_tlv_layer(t) for t in spec.get("tlvs", [])]
    if "block" in spec:
        body: Any = unescape(spec["block"])
    elif spec.get("addresses", fam in (1, 2, 3)) and fam in (1, 2, 3):
        layer = {1: ProxyV2IPv4, 2: ProxyV2IPv6, 3: ProxyV2Unix}[fam]
        kw: dict[str, Any] = {"tlvs": tlvs}
        if fam == 3:
            kw |= {k: spec[k].encode() for k in ("src", "dst") if k in spec}
        else:
            kw |= {k: spec[k] for k in ("src", "dst", "sport", "dport") if k in spec}
        body = layer(**kw)
    else:
        body = ProxyV2TLVs(tlvs=tlvs)
    data = bytes(head / body) if not isinstance(body, bytes) else bytes(head) + body
    if isinstance(body, bytes) and "len" not in spec:
        data = data[:14] + struct.pack("!H", len(body)) + data[16:]
    if "len" in spec:
        data = data[:14] + struct.pack("!H", spec["len"]) + data[16:]
    bad_crc = any(t.get("bad") for t in spec.get("tlvs", []) if t.get("type") in ("CRC32C", 3))
    if bad_crc:  # flip the computed checksum
        header, _ = decode(data, verify_crc=False)
        crc = header.tlv(TLVType.CRC32C)
        assert crc is not None and crc.offset is not None
        at = crc.offset + 3
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    return data


def build_header(step: Mapping[str, Any]) -> bytes | None:
    """The header bytes a `proxy:` step asks for; None for ``none: true``."""
    if "v1" in step:
        return unescape(step["v1"])
    if "v2" in step:
        return build_v2(step["v2"])
    if "raw" in step:
        return unescape(step["raw"])
    return None


@dataclass(frozen=True)
class ProxyPlan:
    """What to send, how, and what to do after."""

    header: bytes | None
    source: str = "listed"
    wait_before: float = 0.0
    fragments: tuple[int, ...] = ()
    fragment_size: int | None = None
    delay: float = 0.0
    truncate: int | None = None
    trailing: bytes = b""
    then: str = "smtp"
    observe: float = 6.0

    @property
    def sent_header(self) -> bytes:
        data = self.header or b""
        return data if self.truncate is None else data[: self.truncate]

    def segments(self) -> list[bytes]:
        """The header cut as asked; the trailing bytes ride with the last piece."""
        data = self.sent_header
        pieces: list[bytes] = []
        if self.fragment_size:
            pieces = [data[i:i + self.fragment_size] for i in range(0, len(data), self.fragment_size)]
        else:
            at = 0
            for size in self.fragments:
                if at >= len(data):
                    break
                pieces.append(data[at:at + size])
                at += size
            if at < len(data):
                pieces.append(data[at:])
        if self.trailing:
            if pieces:
                pieces[-1] += self.trailing
            else:
                pieces.append(self.trailing)
        return pieces


def plan_from_step(step: Mapping[str, Any]) -> ProxyPlan:
    return ProxyPlan(
        header=build_header(step), source=step.get("from", "listed"),
        wait_before=float(step.get("wait_before", 0.0)), fragments=tuple(step.get("fragments", ())),
        fragment_size=step.get("fragment_size"), delay=float(step.get("delay", 0.0)),
        truncate=step.get("truncate"), trailing=unescape(step.get("trailing", "")),
        then=step.get("then", "smtp"), observe=float(step.get("observe", 6.0)))


@dataclass
class ProxyRecord:
    """What the sender did and saw; times are on the session transcript's clock."""

    plan: ProxyPlan
    sent: bytes = b""  # header bytes actually sent (after truncation), trailing excluded
    local: Address | None = None  # the connection's real source, as the harness bound it
    t_connected: float = 0.0
    t_first: float | None = None  # first header byte sent
    t_last: float | None = None  # last header byte (or the trailing bytes) sent
    t_server_first: float | None = None  # first byte from the server, if during the send phase
    early: bytes = b""  # server bytes that arrived before the header was complete
    t_closed: float | None = None  # the server closed (FIN or RST) during the proxy phase
    observed: str | None = None  # after silent/close: "bytes", "closed" or "nothing"
    send_error: str | None = None
    oracle: ProxyHeader | None = None  # the strict decoder's reading of `sent`
    oracle_error: ProxyProtocolError | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.oracle is not None

    def expected_identity(self) -> Address | None:
        """The identity a conforming receiver uses: the header's source for a PROXY TCP header,
        the real connection's source otherwise (LOCAL, UNKNOWN, UNSPEC, UDP, UNIX)."""
        if self.oracle is None or self.local is None:
            return None
        return self.oracle.identity(self.local)

    def oracle_text(self) -> str:
        if self.plan.header is None:
            return "no header was sent"
        if self.oracle is not None:
            return f"valid: {self.oracle.describe()}"
        assert self.oracle_error is not None
        return f"invalid: {self.oracle_error}"


def judge(data: bytes) -> tuple[ProxyHeader | None, ProxyProtocolError | None]:
    """The oracle: what a strict receiver makes of DATA (the whole header as sent)."""
    try:
        header, _ = decode(data)
    except ProxyProtocolError as exc:
        return None, exc
    return header, None


class _Watch:
    """Reads whatever the server sends while the sender works, into the transcript."""

    def __init__(self, sock: socket.socket, transcript: Transcript, record: ProxyRecord) -> None:
        self.sock, self.transcript, self.record = sock, transcript, record
        self.received = bytearray()
        self.closed = False

    def now(self) -> float:
        return round(time.monotonic() - self.transcript.start, 6)

    def wait(self, seconds: float, *, until_event: bool = False) -> None:
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, OSError) as exc:
                self.transcript.note(f"connection reset by the server ({exc})")
                self._closed()
                return
            if not chunk:
                self.transcript.note("server closed the connection")
                self._closed()
                return
            ev = self.transcript.add("S", chunk)
            if self.record.t_server_first is None:
                self.record.t_server_first = ev.t
            if self.record.t_last is None:
                self.record.early += chunk
            self.received += chunk
            if until_event:
                return

    def _closed(self) -> None:
        self.closed = True
        self.record.t_closed = self.now()


def send_header(sock: socket.socket, transcript: Transcript, plan: ProxyPlan
                ) -> tuple[ProxyRecord, bytes, bool]:
    """Carry out PLAN on a connected socket. Returns the record, the server's bytes received
    meanwhile (for the SMTP parser) and whether the server closed the connection."""
    record = ProxyRecord(plan)
    name = sock.getsockname()
    if isinstance(name, tuple) and len(name) >= 2:  # an AF_UNIX socket pair (tests) has none
        record.local = Address(str(name[0]), int(name[1]))
    watch = _Watch(sock, transcript, record)
    record.t_connected = watch.now()
    record.sent = plan.sent_header
    if plan.header is not None:
        record.oracle, record.oracle_error = judge(record.sent + plan.trailing)
    if plan.wait_before:
        transcript.note(f"proxy: silent for {plan.wait_before:g} s before the header")
        watch.wait(plan.wait_before)
    segments = plan.segments()
    if plan.header is None:
        transcript.note("proxy: no header is sent")
    for i, piece in enumerate(segments):
        if watch.closed:
            record.send_error = "the server closed the connection before the header was sent"
            break
        ev = transcript.add("C", piece)
        if record.t_first is None:
            record.t_first = ev.t
        try:
            sock.sendall(piece)
        except OSError as exc:
            record.send_error = f"send failed: {exc}"
            transcript.note(f"proxy: {record.send_error}")
            watch.closed = True
            record.t_closed = watch.now()
            break
        if i < len(segments) - 1 and plan.delay:
            watch.wait(plan.delay)
    record.t_last = watch.now() if segments else record.t_connected
    if plan.truncate is not None and plan.header is not None:
        transcript.note(f"proxy: header cut after {len(record.sent)} of {len(plan.header)} bytes")
    if plan.then == "close" and not watch.closed:
        try:
            sock.shutdown(socket.SHUT_WR)
            transcript.note("proxy: half-closed (FIN) after the header")
        except OSError:
            pass
    if plan.then in ("silent", "close"):
        if not watch.closed:
            watch.wait(plan.observe, until_event=plan.then == "silent")
        record.observed = "closed" if watch.closed and not watch.received else \
            "bytes" if watch.received else "nothing"
        if record.observed == "nothing":
            transcript.note(f"proxy: nothing from the server within {plan.observe:g} s")
    else:
        watch.wait(0)  # collect anything already there (an early banner) without waiting
    return record, bytes(watch.received), watch.closed


def canonical_v1(source: Address = Address("203.0.113.7", 40123),
                 destination: Address = Address("198.51.100.25", 25)) -> bytes:
    return f"PROXY TCP4 {source.host} {destination.host} {source.port} {destination.port}\r\n".encode()


def canonical_v2(source: Address = Address("203.0.113.7", 40123),
                 destination: Address = Address("198.51.100.25", 25)) -> bytes:
    """The v2 twin of canonical_v1: PROXY, TCP over IPv4, no TLVs (§2.2)."""
    return encode_v2(source=source, destination=destination)


__all__ += ["canonical_v1", "canonical_v2", "judge", "unescape", "V2_SIGNATURE"]
