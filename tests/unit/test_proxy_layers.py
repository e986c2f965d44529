"""harness.proxy.layers: building, mutating and dissecting v2 headers field by field."""

from __future__ import annotations

import struct

import pytest

from harness.proxy.codec import (Address, Command, Family, ProxyProtocolError, TLV, TLVType, Transport,
                                 decode, encode_v2)
from harness.proxy.layers import (ProxyV2, ProxyV2IPv4, ProxyV2IPv6, ProxyV2TLV, ProxyV2TLVSSL,
                                  ProxyV2Unix, from_header)

SRC, DST = Address("203.0.113.7", 40123), Address("198.51.100.25", 25)


def test_default_packet_is_the_canonical_tcp4_header() -> None:
    assert bytes(ProxyV2() / ProxyV2IPv4()) == encode_v2(Command.PROXY, Family.INET, Transport.STREAM, SRC, DST)


def test_fields_can_be_mutated_one_by_one() -> None:
    base = bytes(ProxyV2() / ProxyV2IPv4())
    assert bytes(ProxyV2(version=1) / ProxyV2IPv4())[12] == 0x11
    assert bytes(ProxyV2(cmd=0xF) / ProxyV2IPv4())[12] == 0x2F
    assert bytes(ProxyV2(family=4, transport=1) / ProxyV2IPv4())[13] == 0x41
    short = bytes(ProxyV2(len=4) / ProxyV2IPv4())
    assert struct.unpack("!H", short[14:16])[0] == 4 and short[16:] == base[16:]
    with pytest.raises(ProxyProtocolError):
        decode(short)


def test_tlvs_and_crc_are_computed() -> None:
    pkt = ProxyV2() / ProxyV2IPv6(tlvs=[ProxyV2TLV(type="ALPN", value=b"smtp"),
                                        ProxyV2TLVSSL(sub_tlvs=[ProxyV2TLV(type=0x22, value=b"cn")]),
                                        ProxyV2TLV(type="CRC32C", value=None)])
    header, _ = decode(bytes(pkt))
    assert header.crc_ok is True
    assert [t.type for t in header.tlvs] == [TLVType.ALPN, TLVType.SSL, TLVType.CRC32C]
    assert header.tlvs[1].ssl.sub_tlvs[0].value == b"cn"


def test_dissection_stops_at_len_and_keeps_the_session_bytes() -> None:
    data = encode_v2(Command.PROXY, Family.INET, Transport.STREAM, SRC, DST,
                     [TLV(TLVType.NOOP, b"abc"), TLV.ssl_tlv(5, 1, [TLV(0x21, b"TLSv1.2")])])
    pkt = ProxyV2(data + b"EHLO x\r\n")
    assert pkt[ProxyV2IPv4].src == "203.0.113.7" and pkt[ProxyV2IPv4].sport == 40123
    assert pkt[ProxyV2IPv4].tlvs[1].sub_tlvs[0].value == b"TLSv1.2"
    assert bytes(pkt.lastlayer()) == b"EHLO x\r\n"


def test_unix_and_local_headers() -> None:
    unix = decode(bytes(ProxyV2(family="UNIX") / ProxyV2Unix()))[0]
    assert unix.source == Address("/run/client.sock")
    from_local = from_header(decode(bytes(ProxyV2(cmd="LOCAL", family=0, transport=0)))[0])
    assert bytes(from_local) == bytes(ProxyV2(cmd="LOCAL", family=0, transport=0))


def test_v1_has_no_layer() -> None:
    with pytest.raises(ValueError):
        from_header(decode(b"PROXY UNKNOWN\r\n")[0])
