"""Scapy layers for the PROXY protocol v2 header and its TLVs (§2.2).

Scenarios and fuzzers build, dissect and mutate headers field by field with these::

    pkt = ProxyV2(cmd="PROXY") / ProxyV2IPv4(src="203.0.113.7", sport=40123)
    pkt[ProxyV2].version = 1          # a wrong version nibble (PROXY-11)
    pkt[ProxyV2].len = 4              # a length that cuts the address block (PROXY-17)
    raw = bytes(pkt)

Left at None, ``len`` is computed from the payload, TLV lengths from their values, and a CRC32C
TLV whose value is None is filled in last (§2.2.3). The strict decoder in ``codec`` — not these
layers — decides what a receiver must accept; dissection here is best effort, so that broken
headers can still be taken apart and shown.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from scapy.fields import (BitEnumField, ByteEnumField, FieldLenField, FlagsField, IntField,
                          IP6Field, IPField, PacketListField, ShortField, StrFixedLenField,
                          StrLenField)
from scapy.packet import Packet, Raw, bind_layers

from .codec import (ADDRESS_LENGTH, UNIX_PATH_LENGTH, V2_HEADER_LENGTH, V2_SIGNATURE, Address,
                    Command, Family, ProxyHeader, SSLSubtype, TLV, TLVType, Transport, iter_tlvs)
from .codec import ProxyProtocolError, crc32c

__all__ = [
    "ProxyV2",
    "ProxyV2IPv4",
    "ProxyV2IPv6",
    "ProxyV2TLV",
    "ProxyV2TLVSSL",
    "ProxyV2Unix",
    "from_header",
    "tlv_layer",
]

TLV_NAMES: dict[int, str] = {**{t.value: t.name for t in TLVType},
                             **{t.value: f"SSL_{t.name}" for t in SSLSubtype}}
COMMAND_NAMES = {c.value: c.name for c in Command}
FAMILY_NAMES = {f.value: f.name for f in Family}
TRANSPORT_NAMES = {t.value: t.name for t in Transport}


class ProxyV2TLV(Packet):
    """One TLV (§2.2): type, 16-bit length, value. A CRC32C TLV with value None is computed by
    the enclosing ProxyV2 when it is built."""

    name = "PROXYv2 TLV"
    fields_desc = [
        ByteEnumField("type", TLVType.NOOP, TLV_NAMES),
        FieldLenField("length", None, length_of="value", fmt="!H"),
        StrLenField("value", b"", length_from=lambda p: p.length),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def self_build(self, *args: Any, **kwargs: Any) -> bytes:
        if self.type == TLVType.CRC32C and self.value is None:
            return struct.pack("!BH", TLVType.CRC32C, 4 if self.length is None else self.length) + b"\0" * 4
        return super().self_build(*args, **kwargs)

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> type[Packet]:
        if _pkt and _pkt[0] == TLVType.SSL:
            return ProxyV2TLVSSL
        return cls


class ProxyV2TLVSSL(Packet):
    """PP2_TYPE_SSL (§2.2.6): client flags, verify, then sub-TLVs (VERSION, CN, CIPHER, …)."""

    name = "PROXYv2 TLV SSL"
    fields_desc = [
        ByteEnumField("type", TLVType.SSL, TLV_NAMES),
        FieldLenField("length", None, fmt="!H",
                      adjust=lambda p, x: x, length_of="sub_tlvs"),
        FlagsField("client", 0x01, 8, ["SSL", "CERT_CONN", "CERT_SESS"]),
        IntField("verify", 0),
        PacketListField("sub_tlvs", [], ProxyV2TLV, length_from=lambda p: (p.length or 5) - 5),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:1] + struct.pack("!H", len(pkt) - 3) + pkt[3:]
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class _AddressLayer(Packet):
    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        return Raw


class ProxyV2IPv4(_AddressLayer):
    """AF_INET address block (12 bytes) and the TLVs after it."""

    name = "PROXYv2 IPv4"
    fields_desc = [
        IPField("src", "203.0.113.7"),
        IPField("dst", "198.51.100.25"),
        ShortField("sport", 40123),
        ShortField("dport", 25),
        PacketListField("tlvs", [], ProxyV2TLV),
    ]


class ProxyV2IPv6(_AddressLayer):
    """AF_INET6 address block (36 bytes) and the TLVs after it."""

    name = "PROXYv2 IPv6"
    fields_desc = [
        IP6Field("src", "2001:db8::7"),
        IP6Field("dst", "2001:db8::25"),
        ShortField("sport", 40123),
        ShortField("dport", 25),
        PacketListField("tlvs", [], ProxyV2TLV),
    ]


class ProxyV2Unix(_AddressLayer):
    """AF_UNIX address block (2 × 108 bytes, NUL-padded paths) and the TLVs after it."""

    name = "PROXYv2 UNIX"
    fields_desc = [
        StrFixedLenField("src", b"/run/client.sock", UNIX_PATH_LENGTH),
        StrFixedLenField("dst", b"/run/server.sock", UNIX_PATH_LENGTH),
        PacketListField("tlvs", [], ProxyV2TLV),
    ]


class ProxyV2TLVs(_AddressLayer):
    """The block of a header without addresses (UNSPEC family, or LOCAL): TLVs only."""

    name = "PROXYv2 TLVs"
    fields_desc = [PacketListField("tlvs", [], ProxyV2TLV)]


_ADDRESS_LAYERS: Mapping[int, type[Packet]] = {Family.INET: ProxyV2IPv4, Family.INET6: ProxyV2IPv6,
                                               Family.UNIX: ProxyV2Unix}


class ProxyV2(Packet):
    """The fixed 16-byte v2 header (§2.2): signature, version/command, family/transport, len."""

    name = "PROXYv2"
    fields_desc = [
        StrFixedLenField("sig", V2_SIGNATURE, 12),
        BitEnumField("version", 2, 4, {2: "v2"}),
        BitEnumField("cmd", Command.PROXY, 4, COMMAND_NAMES),
        BitEnumField("family", Family.INET, 4, FAMILY_NAMES),
        BitEnumField("transport", Transport.STREAM, 4, TRANSPORT_NAMES),
        ShortField("len", None),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.len is None:
            pkt = pkt[:14] + struct.pack("!H", len(pay) & 0xFFFF)
        whole = pkt + pay
        return _fill_crc(whole)

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        # The block is `len` bytes (L449–452); whatever follows belongs to the session.
        return s[: self.len], s[self.len:]

    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        layer = _ADDRESS_LAYERS.get(self.family)
        if self.cmd == Command.PROXY and self.family == Family.UNSPEC:
            return Raw
        if layer is not None and len(payload) >= ADDRESS_LENGTH[Family(self.family)]:
            return layer
        if layer is None and self.family == Family.UNSPEC:
            return ProxyV2TLVs
        return Raw


# ProxyV2() / ProxyV2IPv6() sets family INET6 unless the family was given (scapy overloading).
bind_layers(ProxyV2, ProxyV2IPv4, family=Family.INET)
bind_layers(ProxyV2, ProxyV2IPv6, family=Family.INET6)
bind_layers(ProxyV2, ProxyV2Unix, family=Family.UNIX)


def _fill_crc(header: bytes) -> bytes:
    """Compute a CRC32C TLV built with value None (left as zeros, marked by a zero value)."""
    if len(header) < V2_HEADER_LENGTH:
        return header
    fam = header[13] >> 4
    start = V2_HEADER_LENGTH + (ADDRESS_LENGTH.get(Family(fam), 0) if fam in FAMILY_NAMES else 0)
    try:
        tlvs = list(iter_tlvs(header[start:], base=start))
    except ProxyProtocolError:
        return header
    zeros = [t for t in tlvs if t.type == TLVType.CRC32C and t.value == b"\0\0\0\0"]
    if not zeros:
        return header
    value = struct.pack("!I", crc32c(header))  # the field is zero while computing (§2.2.3)
    buf = bytearray(header)
    for t in zeros:
        assert t.offset is not None
        buf[t.offset + 3:t.offset + 7] = value
    return bytes(buf)


def tlv_layer(tlv: TLV) -> Packet:
    """A scapy layer for one codec TLV (SSL with its sub-TLVs dissected)."""
    if tlv.type == TLVType.SSL and len(tlv.value) >= 5:
        try:
            info = tlv.ssl
        except ProxyProtocolError:
            return ProxyV2TLV(type=tlv.type, value=tlv.value)
        return ProxyV2TLVSSL(client=info.client, verify=info.verify,
                             sub_tlvs=[ProxyV2TLV(type=s.type, value=s.value) for s in info.sub_tlvs])
    return ProxyV2TLV(type=tlv.type, value=tlv.value)


def from_header(header: ProxyHeader) -> Packet:
    """The scapy packet of a v2 ProxyHeader; ``bytes()`` of it equals ``header.encode()``."""
    if header.version != 2:
        raise ValueError("only v2 headers have scapy layers (v1 is a text line)")
    base = ProxyV2(cmd=header.command, family=header.family, transport=header.transport)
    tlvs = [tlv_layer(t) for t in header.tlvs]
    layer_cls = _ADDRESS_LAYERS.get(header.family)
    src, dst = header.source, header.destination
    if header.family == Family.UNSPEC and header.command == Command.PROXY:
        return base / Raw(load=header.extra) if header.extra else base
    if layer_cls is None or src is None or dst is None:
        body: Packet = ProxyV2TLVs(tlvs=tlvs)
    elif layer_cls is ProxyV2Unix:
        body = ProxyV2Unix(src=src.host.encode("latin-1"), dst=dst.host.encode("latin-1"), tlvs=tlvs)
    else:
        body = layer_cls(src=src.host, dst=dst.host, sport=src.port, dport=dst.port, tlvs=tlvs)
    pkt = base / body
    if header.extra:
        pkt = pkt / Raw(load=header.extra)
    return pkt


def to_address(value: Any, port: int | None = None) -> Address:
    if isinstance(value, bytes):
        return Address(value.split(b"\0", 1)[0].decode("latin-1"), port)
    return Address(str(value), port)
