"""Hypothesis strategies for PROXY v1/v2 headers, reusable by property tests and fuzzers.

Like Hypothesis's own, arguments are keyword-only and checked when the strategy is built, and
the values lean towards edges: ports 0 and 65535, the longest v1 lines (fully expanded IPv6,
107-byte UNKNOWN), empty and 64 KiB TLV values, LOCAL with an address block, CRC32C TLVs.
``headers()`` draws valid ProxyHeader objects (``encode()`` gives their bytes); ``mutated()``
turns valid bytes into near-misses, field by field through the scapy layers or byte by byte.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .codec import (ADDRESS_LENGTH, format_ip, UNIX_PATH_LENGTH, V1_MAX_LENGTH, Address, ClientFlags, Command,
                    Family, ProxyHeader, SSLSubtype, TLV, TLVType, Transport)

__all__ = ["addresses", "headers", "mutated", "ports", "tlvs", "v1_headers", "v2_headers"]

EDGE_PORTS = (0, 1, 25, 465, 587, 65535)
EDGE_V4 = ("0.0.0.0", "255.255.255.255", "203.0.113.7", "127.0.0.1", "10.0.0.1")
EDGE_V6 = ("::", "::1", "2001:db8::7", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1",
           "::ffff:203.0.113.7", "2001:db8:0:0:1:0:0:1")


def ports() -> SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_PORTS), st.integers(0, 65535))


def _ip(version: int) -> SearchStrategy[str]:
    edges = EDGE_V4 if version == 4 else EDGE_V6
    return st.one_of(st.sampled_from(edges),
                     st.ip_addresses(v=version).map(str)).map(lambda a: format_ip(ipaddress.ip_address(a)))


def addresses(*, family: Family) -> SearchStrategy[Address]:
    """Endpoints of FAMILY: IPv4/IPv6 with a port, or an AF_UNIX path (no port)."""
    if family is Family.INET:
        return st.builds(Address, _ip(4), ports())
    if family is Family.INET6:
        return st.builds(Address, _ip(6), ports())
    if family is Family.UNIX:
        path = st.binary(min_size=0, max_size=UNIX_PATH_LENGTH).map(
            lambda b: b.replace(b"\0", b"").decode("latin-1"))
        return st.builds(Address, st.one_of(st.just("/run/x.sock"), path))
    raise InvalidArgument(f"family {family!r} has no addresses")


def _sub_tlv() -> SearchStrategy[TLV]:
    return st.builds(TLV, st.sampled_from(list(SSLSubtype)).map(int),
                     st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
                     .map(str.encode))


def tlvs(*, max_value: int = 300) -> SearchStrategy[TLV]:
    """One well-formed TLV: registered types (SSL with sub-TLVs), custom, experimental."""
    if not 0 <= max_value <= 0xFFFF:
        raise InvalidArgument(f"max_value={max_value} is not in 0..65535")
    value = st.binary(max_size=max_value)
    plain = st.builds(TLV, st.sampled_from([TLVType.ALPN, TLVType.AUTHORITY, TLVType.NOOP,
                                            TLVType.NETNS]).map(int), value)
    unique = st.builds(TLV, st.just(int(TLVType.UNIQUE_ID)), st.binary(max_size=min(128, max_value)))
    other = st.builds(TLV, st.one_of(st.integers(0xE0, 0xEF), st.integers(0xF0, 0xF7)), value)
    ssl = st.builds(lambda c, v, subs: TLV.ssl_tlv(c, v, subs),
                    st.integers(0, 7).map(lambda f: int(ClientFlags(f))), st.sampled_from([0, 1]),
                    st.lists(_sub_tlv(), max_size=4))
    return st.one_of(plain, unique, other, ssl)


def v1_headers() -> SearchStrategy[ProxyHeader]:
    """Valid v1 headers: TCP4, TCP6 (compressed and fully expanded), UNKNOWN (short and long)."""
    def tcp(family: Family) -> SearchStrategy[ProxyHeader]:
        return st.builds(lambda s, d: ProxyHeader(1, Command.PROXY, family, Transport.STREAM, s, d),
                         addresses(family=family), addresses(family=family))

    long_unknown = st.text(st.characters(min_codepoint=32, max_codepoint=126),
                           max_size=V1_MAX_LENGTH - len("PROXY UNKNOWN \r\n")).map(
        lambda t: b" " + t.encode())
    unknown = st.builds(lambda extra: ProxyHeader(1, Command.PROXY, Family.UNSPEC, Transport.UNSPEC,
                                                  extra=extra),
                        st.one_of(st.just(b""), long_unknown))
    return st.one_of(tcp(Family.INET), tcp(Family.INET6), unknown)


def v2_headers(*, commands: Sequence[Command] = tuple(Command),
               families: Sequence[Family] = tuple(Family),
               transports: Sequence[Transport] = tuple(Transport), max_tlvs: int = 4
               ) -> SearchStrategy[ProxyHeader]:
    """Valid v2 headers with any command, family and transport, with TLVs after the address."""
    if not commands or not families or not transports:
        raise InvalidArgument("commands, families and transports must not be empty")
    if max_tlvs < 0:
        raise InvalidArgument(f"max_tlvs={max_tlvs} < 0")

    @st.composite
    def build(draw: st.DrawFn) -> ProxyHeader:
        command = draw(st.sampled_from(list(commands)))
        family = draw(st.sampled_from(list(families)))
        transport = draw(st.sampled_from(list(transports)))
        if family is Family.UNSPEC:
            if command is Command.PROXY:  # the block is skipped whole
                return ProxyHeader(2, command, family, transport, extra=draw(st.binary(max_size=40)))
            return ProxyHeader(2, command, family, transport,
                               tlvs=tuple(draw(st.lists(tlvs(), max_size=max_tlvs))))
        src = draw(addresses(family=family))
        dst = draw(addresses(family=family))
        chosen = tuple(draw(st.lists(tlvs(), max_size=max_tlvs)))
        return ProxyHeader(2, command, family, transport, src, dst, chosen)

    return build()


def headers() -> SearchStrategy[ProxyHeader]:
    return st.one_of(v1_headers(), v2_headers())


# -- mutations -------------------------------------------------------------------------------

def _set_len(data: bytes, value: int) -> bytes:
    return data[:14] + struct.pack("!H", value) + data[16:] if len(data) >= 16 else data


@st.composite
def _mutation(draw: st.DrawFn, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "len", "fam", "ver_cmd",
                                 "byte"]))
    if not data:
        return draw(st.binary(max_size=16))
    i = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        bit = draw(st.integers(0, 7))
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:]
    if kind == "insert":
        return data[:i] + draw(st.sampled_from([b" ", b"\t", b"0", b"\r", b"\n", b"\0", b":"])) + data[i:]
    if kind == "delete":
        return data[:i] + data[i + 1:]
    if kind == "truncate":
        return data[:i]
    if kind == "byte":
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    if len(data) < 16 or not data.startswith(b"\r\n\r\n"):
        return data[:i] + data[i + 1:]
    if kind == "len":
        fam = data[13] >> 4
        need = ADDRESS_LENGTH.get(Family(fam), 0) if fam < 4 else 0
        choices = [0, max(0, need - 1), need, len(data) - 16 + 1, 0xFFFF]
        return _set_len(data, draw(st.sampled_from(choices) | st.integers(0, 0xFFFF)))
    if kind == "fam":
        return data[:13] + bytes([draw(st.sampled_from([0x00, 0x03, 0x12, 0x13, 0x31, 0x41, 0xFF])
                                       | st.integers(0, 255))]) + data[14:]
    return data[:12] + bytes([draw(st.integers(0, 255))]) + data[13:]


def mutated(data: bytes, *, max_edits: int = 3) -> SearchStrategy[bytes]:
    """DATA with 1..MAX_EDITS edits: bit flips, inserted separators, deletions, truncation, and
    v2 field changes (len, family/transport, version/command)."""
    if max_edits < 1:
        raise InvalidArgument(f"max_edits={max_edits} < 1")

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        out = data
        for _ in range(draw(st.integers(1, max_edits))):
            out = draw(_mutation(out))
        return out

    return build()
