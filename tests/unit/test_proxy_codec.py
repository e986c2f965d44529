"""harness.proxy.codec: the strict PROXY v1/v2 decoder (the oracle) and the encoders.

Each case names the lines of proxy-protocol.txt (rev. 2026/04/27, as the catalogue cites them)
that decide it.
"""

from __future__ import annotations

import struct

import pytest

from harness.proxy.codec import (NEED_DATA, V2_SIGNATURE, Address, Command, Family, ProxyDecoder,
                                 ProxyHeader, ProxyProtocolError, ProxyUsageError, TLV, TLVType,
                                 Transport, crc32c, decode, encode_v1, encode_v2, format_ip,
                                 parse_ipv6_text, with_crc32c)

SRC, DST = Address("203.0.113.7", 40123), Address("198.51.100.25", 25)
V1 = b"PROXY TCP4 203.0.113.7 198.51.100.25 40123 25\r\n"
REAL = Address("192.0.2.11", 51000)


def v2(ver_cmd: int = 0x21, fam: int = 0x11, block: bytes | None = None, length: int | None = None) -> bytes:
    if block is None:
        block = bytes([203, 0, 113, 7, 198, 51, 100, 25]) + struct.pack("!HH", 40123, 25)
    return V2_SIGNATURE + bytes([ver_cmd, fam]) + struct.pack("!H", len(block) if length is None else length) + block


def rejected(data: bytes, **kw: bool) -> ProxyProtocolError:
    with pytest.raises(ProxyProtocolError) as info:
        decode(data, **kw)
    return info.value


# --- v1 ---------------------------------------------------------------------------------------

def test_v1_tcp4_identity() -> None:  # PROXY-04, §2.1
    header, rest = decode(V1 + b"EHLO x\r\n")
    assert (header.version, header.family, header.source, header.destination) == (1, Family.INET, SRC, DST)
    assert rest == b"EHLO x\r\n" and header.raw == V1
    assert header.identity(REAL) == SRC


@pytest.mark.parametrize(("line", "src"), [
    (b"PROXY TCP6 2001:db8::7 2001:db8::25 40123 25\r\n", "2001:db8::7"),
    (b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     b"65535 65535\r\n", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    (b"PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0007 2001:db8::25 1 2\r\n", "2001:db8::7"),
])
def test_v1_tcp6(line: bytes, src: str) -> None:  # PROXY-05, L230–239, L266–268
    header, _ = decode(line)
    assert header.family is Family.INET6 and header.source is not None
    assert header.source.ip == Address(src).ip


def test_v1_tcp6_longest_line_is_104_bytes() -> None:
    line = encode_v1("TCP6", Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
                     Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535))
    assert len(line) == 104 and decode(line)[0].source.port == 65535


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n",
                                  b"PROXY UNKNOWN " + b"f" * 90 + b"\r\n",
                                  b"PROXY UNKNOWN ffff:f::f:ffff whatever \x01\x7f 65535\r\n"])
def test_v1_unknown_keeps_the_real_endpoints(line: bytes) -> None:  # PROXY-06, L215–226, L294–297
    header, _ = decode(line)
    assert header.family is Family.UNSPEC and not header.carries_client
    assert header.identity(REAL) == REAL


def test_v1_107_bytes_is_the_limit() -> None:  # PROXY-07, L261–284
    longest = b"PROXY UNKNOWN " + b"f" * (107 - 16) + b"\r\n"
    assert len(longest) == 107
    decode(longest)
    err = rejected(b"PROXY UNKNOWN " + b"f" * (108 - 16) + b"\r\n")
    assert err.offset == 107 and "first 107 bytes" in err.message
    assert "107" in str(rejected(b"PROXY UNKNOWN " + b"f" * 4096))


def test_v1_no_crlf_is_rejected_once_107_bytes_arrived_not_before() -> None:
    dec = ProxyDecoder()
    dec.feed(b"PROXY UNKNOWN " + b"f" * 92)  # 106 bytes
    assert dec.next_event() is NEED_DATA
    dec.feed(b"f")
    with pytest.raises(ProxyProtocolError):
        dec.next_event()


@pytest.mark.parametrize(("line", "what"), [(V1[:-2] + b"\n", "bare LF"), (V1[:-2] + b"\rX", "bare CR"),
                                            (V1[:-2] + b"\r\r\n", "bare CR")])
def test_v1_crlf_only(line: bytes, what: str) -> None:  # PROXY-08, L285–287
    assert what in rejected(line).message


def test_v1_bare_cr_at_the_end_waits_for_the_next_byte() -> None:
    dec = ProxyDecoder()
    dec.feed(V1[:-1])
    assert dec.next_event() is NEED_DATA


V1_BAD = {
    "two spaces after PROXY": b"PROXY  TCP4 203.0.113.7 198.51.100.25 40123 25\r\n",
    "two spaces between ports": b"PROXY TCP4 203.0.113.7 198.51.100.25 40123  25\r\n",
    "TAB after PROXY": b"PROXY\tTCP4 203.0.113.7 198.51.100.25 40123 25\r\n",
    "TAB between addresses": b"PROXY TCP4 203.0.113.7\t198.51.100.25 40123 25\r\n",
    "leading zero in an octet": b"PROXY TCP4 203.0.113.007 198.51.100.25 40123 25\r\n",
    "leading zero in a port": b"PROXY TCP4 203.0.113.7 198.51.100.25 40123 0025\r\n",
    "plus sign": b"PROXY TCP4 203.0.113.7 198.51.100.25 40123 +25\r\n",
    "port 65536": b"PROXY TCP4 203.0.113.7 198.51.100.25 65536 25\r\n",
    "TCP4 with IPv6": b"PROXY TCP4 2001:db8::7 2001:db8::25 40123 25\r\n",
    "TCP6 with IPv4": b"PROXY TCP6 203.0.113.7 198.51.100.25 40123 25\r\n",
    "zone id": b"PROXY TCP6 fe80::1%lo 2001:db8::25 40123 25\r\n",
    "lower-case tcp4": b"PROXY tcp4 203.0.113.7 198.51.100.25 40123 25\r\n",
    "octet 256": b"PROXY TCP4 203.0.113.256 198.51.100.25 40123 25\r\n",
    "three octets": b"PROXY TCP4 203.0.113 198.51.100.25 40123 25\r\n",
    "missing port": b"PROXY TCP4 203.0.113.7 198.51.100.25 40123\r\n",
    "extra field": b"PROXY TCP4 203.0.113.7 198.51.100.25 40123 25 x\r\n",
    "trailing space": b"PROXY TCP4 203.0.113.7 198.51.100.25 40123 25 \r\n",
    "embedded IPv4 in TCP6": b"PROXY TCP6 ::ffff:203.0.113.7 2001:db8::25 1 2\r\n",
    "UNKNOWN glued": b"PROXY UNKNOWNX\r\n",
    "UDP4": b"PROXY UDP4 203.0.113.7 198.51.100.25 40123 25\r\n",
    "PROXY then v2 signature": b"PROXY" + V2_SIGNATURE + b"\x21\x11\x00\x0c",
}


@pytest.mark.parametrize("line", list(V1_BAD.values()), ids=list(V1_BAD))
def test_v1_strict_field_syntax(line: bytes) -> None:  # PROXY-09, L210–258, L289–290
    err = rejected(line)
    assert err.rule and not err.incomplete


def test_v1_port_zero_is_valid() -> None:  # PROXY-09: [0..65535] inclusive
    header, _ = decode(b"PROXY TCP4 203.0.113.7 198.51.100.25 0 25\r\n")
    assert header.source == Address("203.0.113.7", 0)


# --- v2 ---------------------------------------------------------------------------------------

def test_v2_tcp4_and_tcp6() -> None:  # PROXY-16, L425–432, L468–496
    header, rest = decode(v2() + b"EHLO x\r\n")
    assert (header.command, header.family, header.transport) == (Command.PROXY, Family.INET, Transport.STREAM)
    assert header.identity(REAL) == SRC and rest == b"EHLO x\r\n"
    six = encode_v2(Command.PROXY, Family.INET6, Transport.STREAM, Address("2001:db8::7", 40123),
                    Address("2001:db8::25", 25))
    assert len(six) == 16 + 36
    assert decode(six)[0].identity(REAL) == Address("2001:db8::7", 40123)


@pytest.mark.parametrize("data", [v2(0x20, 0x00, b""), v2(0x20, 0x11), v2(0x20, 0x11, v2()[16:] + bytes([4, 0, 2]) + b"ab"),
                                  v2(0x20, 0x11, b"\xff" * 5), v2(0x20, 0x00, b"\x01\x02")])
def test_v2_local_uses_the_real_endpoints_and_skips_len(data: bytes) -> None:  # PROXY-12
    header, rest = decode(data + b"EHLO x\r\n")
    assert header.command is Command.LOCAL and header.identity(REAL) == REAL
    assert rest == b"EHLO x\r\n"


@pytest.mark.parametrize("version", [0x1, 0x3, 0xF])
def test_v2_version_must_be_2(version: int) -> None:  # PROXY-11, L340–351
    assert "version" in rejected(v2(version << 4 | 1)).message


@pytest.mark.parametrize("index", range(12))
def test_v2_signature_byte_flipped(index: int) -> None:
    data = bytearray(v2())
    data[index] ^= 0x40
    with pytest.raises(ProxyProtocolError):
        decode(bytes(data))


@pytest.mark.parametrize("command", range(2, 16))
def test_v2_unknown_command(command: int) -> None:  # PROXY-13, L365–366
    assert "command" in rejected(v2(0x20 | command)).message


@pytest.mark.parametrize("fam", [0x13, 0x03, 0x41, 0xFF])
@pytest.mark.parametrize("ver_cmd", [0x21, 0x20])
def test_v2_undefined_family_or_transport(fam: int, ver_cmd: int) -> None:  # PROXY-14
    assert "undefined" in rejected(v2(ver_cmd, fam)).message


@pytest.mark.parametrize(("fam", "length"), [(0x00, 0), (0x12, 12), (0x22, 36), (0x31, 216), (0x32, 216)])
def test_v2_valid_families_a_tcp_receiver_cannot_use(fam: int, length: int) -> None:  # PROXY-15
    header, _ = decode(v2(0x21, fam, b"\x07" * length))
    assert not header.carries_client and header.identity(REAL) == REAL


@pytest.mark.parametrize(("fam", "length"), [(0x11, 0), (0x11, 4), (0x11, 11), (0x21, 12), (0x21, 35),
                                              (0x31, 215)])
def test_v2_address_block_too_short(fam: int, length: int) -> None:  # PROXY-17, L498–503
    err = rejected(v2(0x21, fam, b"\x07" * length))
    assert "address block" in err.message and not err.incomplete


def test_v2_waits_for_the_whole_block() -> None:  # L498–503
    dec = ProxyDecoder()
    dec.feed(v2(length=300))
    assert dec.next_event() is NEED_DATA
    dec.close()
    with pytest.raises(ProxyProtocolError) as info:
        dec.next_event()
    assert info.value.incomplete


def test_v2_tlvs_are_decoded_and_skipped() -> None:  # PROXY-18
    tlvs = [TLV(TLVType.NOOP, b""), TLV(TLVType.NOOP, b"12345"), TLV(TLVType.ALPN, b"smtp"),
            TLV(TLVType.AUTHORITY, b"mx.example"), TLV(TLVType.UNIQUE_ID, b"u" * 128),
            TLV.ssl_tlv(1, 0, [TLV(0x21, b"TLSv1.3"), TLV(0x22, b"client.example")]),
            TLV(TLVType.NETNS, b"ns1"), TLV(0xE0, b"custom"), TLV(0xF0, b"experiment")]
    data = encode_v2(Command.PROXY, Family.INET, Transport.STREAM, SRC, DST, tlvs)
    header, rest = decode(data + b"QUIT\r\n")
    assert [t.type for t in header.tlvs] == [t.type for t in tlvs] and rest == b"QUIT\r\n"
    ssl = header.tlvs[5].ssl
    assert (ssl.client, ssl.verify, [s.value for s in ssl.sub_tlvs]) == (1, 0, [b"TLSv1.3", b"client.example"])
    assert [t.name for t in header.tlvs][-2:] == ["CUSTOM_0xe0", "EXPERIMENT_0xf0"]


def test_v2_malformed_tlvs_do_not_make_the_header_invalid() -> None:  # L522–542: may be skipped
    header, _ = decode(v2(block=v2()[16:] + b"\x04\x00\x09ab"))
    assert header.tlvs == () and header.tlv_error and "runs past" in header.tlv_error
    assert header.identity(REAL) == SRC


def test_crc32c_vectors() -> None:  # RFC 3720 B.4
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43


def test_v2_crc32c() -> None:  # PROXY-19, §2.2.3
    good = encode_v2(Command.PROXY, Family.INET, Transport.STREAM, SRC, DST, [TLV(TLVType.NOOP, b"x")], crc=True)
    header, _ = decode(good)
    assert header.crc_ok is True
    bad = good[:-1] + bytes([good[-1] ^ 1])
    assert "CRC32C" in rejected(bad).message
    assert decode(bad, verify_crc=False)[0].crc_ok is False
    assert with_crc32c(bad) == good


def test_not_a_header_at_all() -> None:  # PROXY-21, L505–520
    for data in (b"EHLO x\r\n" + V1, b" " + V1, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        err = rejected(data)
        assert "neither" in err.message and err.offset is not None


@pytest.mark.parametrize("prefix", [b"PROXY TC", V2_SIGNATURE + b"\x21", V2_SIGNATURE[:12]])
def test_prefixes_wait_for_more(prefix: bytes) -> None:  # PROXY-22
    dec = ProxyDecoder()
    dec.feed(prefix)
    assert dec.next_event() is NEED_DATA


def test_decoder_reports_each_header_once_and_keeps_the_rest() -> None:
    dec = ProxyDecoder()
    dec.feed(V1 + b"EH")
    assert isinstance(dec.next_event(), ProxyHeader)
    assert dec.next_event() is NEED_DATA
    dec.feed(b"LO x\r\n")
    assert dec.trailing == b"EHLO x\r\n"


def test_decoder_stays_failed() -> None:
    dec = ProxyDecoder()
    dec.feed(b"GET / HTTP/1.0\r\n")
    for _ in range(2):
        with pytest.raises(ProxyProtocolError):
            dec.next_event()


def test_encoder_misuse_is_a_usage_error() -> None:
    with pytest.raises(ProxyUsageError):
        encode_v1("TCP4", Address("2001:db8::1", 1), DST)
    with pytest.raises(ProxyUsageError):
        encode_v1("TCP4", Address("203.0.113.7", 70000), DST)
    with pytest.raises(ProxyUsageError):
        encode_v2(Command.PROXY, Family.INET, Transport.STREAM, SRC, None)
    with pytest.raises(ProxyUsageError):
        encode_v2(tlvs=[TLV(TLVType.NOOP, b"x" * 0x10000)], source=SRC, destination=DST)
    with pytest.raises(ProxyUsageError):
        with_crc32c(v2())


def test_format_ip_never_prints_dotted_ipv6() -> None:
    for text in ("::ffff:203.0.113.7", "::1", "2001:db8:0:0:1:0:0:1", "1:0:0:2:0:0:0:3", "::"):
        out = format_ip(Address(text).ip)  # type: ignore[arg-type]
        assert "." not in out and parse_ipv6_text(out) == Address(text).ip
    assert format_ip(Address("2001:db8:0:0:1:0:0:1").ip) == "2001:db8::1:0:0:1"  # type: ignore[arg-type]


def test_describe() -> None:
    assert decode(V1)[0].describe() == "v1 TCP4 203.0.113.7:40123 → 198.51.100.25:25"
    assert decode(v2(0x20, 0x00, b""))[0].describe() == "v2 LOCAL UNSPEC/UNSPEC"
