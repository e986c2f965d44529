"""Sans-I/O PROXY protocol codec, versions 1 and 2 (haproxy doc/proxy-protocol.txt).

Bytes in, a header out; a header in, bytes out. ``ProxyDecoder`` is incremental (feed any
fragmentation, get ``NEED_DATA`` until the header is complete) and *strict to the letter of the
spec*: it is the oracle for what a receiver must accept. Bad bytes raise ``ProxyProtocolError``
(with the offset and the spec lines it breaks) and nothing else; our own misuse of the encoders
raises ``ProxyUsageError``.

Line numbers ``L…`` refer to proxy-protocol.txt revision 2026/04/27 as cited by the project's
requirement catalogue (requirements.md §3).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Final, Literal

__all__ = [
    "ADDRESS_LENGTH",
    "NEED_DATA",
    "V1_MAX_LENGTH",
    "V1_PREFIX",
    "V2_SIGNATURE",
    "Address",
    "ClientFlags",
    "Command",
    "Family",
    "NeedData",
    "ProxyDecoder",
    "ProxyHeader",
    "ProxyProtocolError",
    "ProxyUsageError",
    "SSLInfo",
    "SSLSubtype",
    "TLV",
    "TLVType",
    "Transport",
    "crc32c",
    "decode",
    "encode_tlvs",
    "encode_v1",
    "encode_v2",
    "format_ip",
    "iter_tlvs",
    "parse_ipv4_text",
    "parse_ipv6_text",
    "with_crc32c",
]

V1_PREFIX: Final = b"PROXY"
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"  # L340: 12 bytes, a NUL at the 5th position
V1_MAX_LENGTH: Final = 107  # L261–279: the longest valid line, CRLF included
V2_HEADER_LENGTH: Final = 16


class Command(enum.IntEnum):
    """v2 command nibble (L354–366)."""

    LOCAL = 0x0
    PROXY = 0x1


class Family(enum.IntEnum):
    """v2 address family nibble (L368–392); v1 TCP4 → INET, TCP6 → INET6, UNKNOWN → UNSPEC."""

    UNSPEC = 0x0
    INET = 0x1
    INET6 = 0x2
    UNIX = 0x3


class Transport(enum.IntEnum):
    """v2 transport protocol nibble (L394–413)."""

    UNSPEC = 0x0
    STREAM = 0x1
    DGRAM = 0x2


class TLVType(enum.IntEnum):
    """Registered PP2_TYPE_* values (§2.2)."""

    ALPN = 0x01
    AUTHORITY = 0x02
    CRC32C = 0x03
    NOOP = 0x04
    UNIQUE_ID = 0x05
    SSL = 0x20
    NETNS = 0x30


class SSLSubtype(enum.IntEnum):
    """PP2_SUBTYPE_SSL_* values: sub-TLVs inside PP2_TYPE_SSL (§2.2.6)."""

    VERSION = 0x21
    CN = 0x22
    CIPHER = 0x23
    SIG_ALG = 0x24
    KEY_ALG = 0x25


class ClientFlags(enum.IntFlag):
    """The <client> bit field of PP2_TYPE_SSL (§2.2.6)."""

    SSL = 0x01
    CERT_CONN = 0x02
    CERT_SESS = 0x04


TLV_CUSTOM = range(0xE0, 0xF0)  # PP2_TYPE_MIN_CUSTOM..MAX_CUSTOM (§2.2.8)
TLV_EXPERIMENT = range(0xF0, 0xF8)
TLV_FUTURE = range(0xF8, 0x100)
UNIQUE_ID_MAX = 128  # §2.2.5: "up to 128 bytes"

# Address block length per family (L425–432, L468–496); UNSPEC has none.
ADDRESS_LENGTH: Final = {Family.INET: 12, Family.INET6: 36, Family.UNIX: 216}
UNIX_PATH_LENGTH: Final = 108


class NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA


class ProxyProtocolError(Exception):
    """Bad bytes from the peer: what a strict receiver must reject.

    ``offset`` is where in the received bytes the problem lies, ``rule`` the spec lines broken,
    and ``incomplete`` tells a header that was cut short from one that is wrong.
    """

    def __init__(self, message: str, *, offset: int | None = None, rule: str = "",
                 data: bytes = b"", incomplete: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.rule = rule
        self.data = bytes(data[:256])
        self.incomplete = incomplete

    def __str__(self) -> str:
        text = self.message
        if self.offset is not None:
            text += f" (at byte {self.offset})"
        if self.rule:
            text += f" [{self.rule}]"
        return text


class ProxyUsageError(ValueError):
    """Our own misuse: an encoder asked for something the protocol cannot express."""


# -- addresses ---------------------------------------------------------------------------------

_V4_OCTET = r"(?:0|[1-9][0-9]{0,2})"
_V4_RE = re.compile(rf"{_V4_OCTET}\.{_V4_OCTET}\.{_V4_OCTET}\.{_V4_OCTET}")
_HEX_GROUP = re.compile(r"[0-9A-Fa-f]{1,4}")
_PORT_RE = re.compile(r"0|[1-9][0-9]{0,4}")


def parse_ipv4_text(text: str) -> ipaddress.IPv4Address | None:
    """L240–245: exactly 4 decimal integers 0..255, one dot between, no heading zeroes."""
    if not _V4_RE.fullmatch(text):
        return None
    if any(int(part) > 255 for part in text.split(".")):
        return None
    return ipaddress.IPv4Address(text)


def parse_ipv6_text(text: str) -> ipaddress.IPv6Address | None:
    """L245–250: groups of hex digits separated by colons, at most one "::", exactly 128 bits.

    Groups of 1–4 digits are accepted (the catalogue's own example is ``2001:db8::7``); embedded
    dotted IPv4 and zone ids (``%lo``) are not in the grammar and are refused.
    """
    if not text or text.count("::") > 1 or ":::" in text:
        return None
    if "::" in text:
        head, tail = text.split("::")
        groups = [g for g in head.split(":") if head] + [g for g in tail.split(":") if tail]
        if len(groups) > 7:
            return None
    else:
        groups = text.split(":")
        if len(groups) != 8:
            return None
    if not all(_HEX_GROUP.fullmatch(g) for g in groups):
        return None
    return ipaddress.IPv6Address(text)


def format_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address in the text form v1 requires: IPv6 as hex groups with the longest run of
    zero groups compressed (never the dotted IPv4 tail Python prints for ::ffff:a.b.c.d)."""
    if ip.version == 4:
        return str(ip)
    groups = [g.lstrip("0") or "0" for g in ip.exploded.split(":")]
    best, best_len, run_start, run_len = -1, 0, -1, 0
    for i, g in enumerate(groups + ["x"]):
        if g == "0":
            if run_len == 0:
                run_start = i
            run_len += 1
        else:
            if run_len > best_len and run_len >= 2:
                best, best_len = run_start, run_len
            run_len = 0
    if best < 0:
        return ":".join(groups)
    return ":".join(groups[:best]) + "::" + ":".join(groups[best + best_len:])


@dataclass(frozen=True)
class Address:
    """One endpoint. ``host`` is an IP address in its standard text form, or for AF_UNIX the
    path (bytes up to the first NUL, decoded latin-1); ``port`` is None for AF_UNIX."""

    host: str
    port: int | None = None

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


# -- TLVs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SSLInfo:
    """The value of a PP2_TYPE_SSL TLV: client flags, verify result, sub-TLVs (§2.2.6)."""

    client: int
    verify: int
    sub_tlvs: tuple[TLV, ...] = ()


@dataclass(frozen=True)
class TLV:
    """One type-length-value vector; ``offset`` is where it starts in the header (0 = first
    byte of the signature), or None for a TLV built rather than decoded."""

    type: int
    value: bytes
    offset: int | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        for enum_cls in (TLVType, SSLSubtype):
            try:
                return enum_cls(self.type).name
            except ValueError:
                pass
        if self.type in TLV_CUSTOM:
            return f"CUSTOM_{self.type:#04x}"
        if self.type in TLV_EXPERIMENT:
            return f"EXPERIMENT_{self.type:#04x}"
        return f"{self.type:#04x}"

    @property
    def ssl(self) -> SSLInfo:
        """The decoded PP2_TYPE_SSL value; ProxyProtocolError if it is malformed."""
        if len(self.value) < 5:
            raise ProxyProtocolError("PP2_TYPE_SSL value shorter than client + verify (5 bytes)",
                                     rule="§2.2.6")
        client, verify = struct.unpack("!BI", self.value[:5])
        base = None if self.offset is None else self.offset + 3 + 5
        subs = tuple(iter_tlvs(self.value[5:], base=base))
        return SSLInfo(client, verify, subs)

    def encode(self) -> bytes:
        if len(self.value) > 0xFFFF:
            raise ProxyUsageError(f"TLV {self.name}: value longer than 65535 bytes")
        return struct.pack("!BH", self.type, len(self.value)) + self.value

    @classmethod
    def ssl_tlv(cls, client: int, verify: int, sub_tlvs: Iterable[TLV] = ()) -> TLV:
        return cls(TLVType.SSL, struct.pack("!BI", client, verify) + encode_tlvs(sub_tlvs))


def encode_tlvs(tlvs: Iterable[TLV]) -> bytes:
    return b"".join(t.encode() for t in tlvs)


def iter_tlvs(block: bytes, *, base: int | None = None) -> Iterator[TLV]:
    """The TLVs in BLOCK, in order; ProxyProtocolError if one runs past the end (L522–542)."""
    i = 0
    while i < len(block):
        if len(block) - i < 3:
            raise ProxyProtocolError("TLV area ends inside a TLV's type/length",
                                     offset=None if base is None else base + i, rule="L522–542")
        typ, length = struct.unpack_from("!BH", block, i)
        if i + 3 + length > len(block):
            raise ProxyProtocolError(f"TLV {typ:#04x} of length {length} runs past the header",
                                     offset=None if base is None else base + i, rule="L522–542")
        yield TLV(typ, bytes(block[i + 3:i + 3 + length]), None if base is None else base + i)
        i += 3 + length


# -- CRC32C (RFC 4960 Appendix B, Castagnoli, reflected 0x82F63B78) ----------------------------

def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc_tlv_offsets(header: bytes) -> list[int]:
    """Offsets of the 4-byte values of every well-formed CRC32C TLV of a complete v2 header."""
    fam = Family(header[13] >> 4) if header[13] >> 4 in Family._value2member_map_ else None
    start = V2_HEADER_LENGTH + ADDRESS_LENGTH.get(fam, 0) if fam is not None else V2_HEADER_LENGTH
    try:
        tlvs = list(iter_tlvs(header[start:], base=start))
    except ProxyProtocolError:
        return []
    return [t.offset + 3 for t in tlvs if t.type == TLVType.CRC32C and len(t.value) == 4
            and t.offset is not None]


def with_crc32c(header: bytes) -> bytes:
    """HEADER with its CRC32C TLV filled in (§2.2.3: computed with the field zeroed)."""
    offsets = _crc_tlv_offsets(header)
    if not offsets:
        raise ProxyUsageError("the header has no 4-byte CRC32C TLV to fill in")
    buf = bytearray(header)
    for off in offsets:
        buf[off:off + 4] = b"\0\0\0\0"
    value = crc32c(bytes(buf))
    for off in offsets:
        buf[off:off + 4] = struct.pack("!I", value)
    return bytes(buf)


# -- the decoded header ------------------------------------------------------------------------

@dataclass(frozen=True)
class ProxyHeader:
    """A header, decoded or to be encoded. ``raw`` keeps the exact bytes it was decoded from
    (STYLE.md 9), so a report can show them next to what the MTA made of them."""

    version: Literal[1, 2]
    command: Command = Command.PROXY
    family: Family = Family.INET
    transport: Transport = Transport.STREAM
    source: Address | None = None
    destination: Address | None = None
    tlvs: tuple[TLV, ...] = ()
    raw: bytes = field(default=b"", compare=False)
    extra: bytes = b""  # v1 UNKNOWN: what followed the keyword; v2: bytes the receiver skips
    tlv_error: str | None = field(default=None, compare=False)

    @property
    def carries_client(self) -> bool:
        """True when a receiver must take the client identity from the header (L120–124):
        a PROXY command for TCP over IPv4/IPv6. LOCAL (L354–359), UNKNOWN/UNSPEC (L294–297,
        L374–378) and families a TCP receiver cannot use as a client address (UDP, UNIX:
        L444–447 "falls back to the UNSPEC mode") keep the real connection's endpoints."""
        return (self.command is Command.PROXY and self.family in (Family.INET, Family.INET6)
                and self.transport is Transport.STREAM and self.source is not None)

    def identity(self, real: Address) -> Address:
        """The client identity a conforming receiver uses for this header."""
        return self.source if self.carries_client and self.source else real

    def tlv(self, typ: int) -> TLV | None:
        return next((t for t in self.tlvs if t.type == typ), None)

    @property
    def crc_ok(self) -> bool | None:
        """None without a CRC32C TLV; else whether its checksum matches (§2.2.3)."""
        crc = self.tlv(TLVType.CRC32C)
        if crc is None or not self.raw:
            return None
        if len(crc.value) != 4 or crc.offset is None:
            return False
        buf = bytearray(self.raw)
        buf[crc.offset + 3:crc.offset + 7] = b"\0\0\0\0"
        return crc32c(bytes(buf)) == struct.unpack("!I", crc.value)[0]

    def describe(self) -> str:
        """One line for reports: what the header says."""
        if self.version == 1:
            if self.family is Family.UNSPEC:
                return "v1 UNKNOWN"
            return f"v1 TCP{'4' if self.family is Family.INET else '6'} {self.source} → {self.destination}"
        what = f"v2 {self.command.name} {self.family.name}/{self.transport.name}"
        if self.source is not None:
            what += f" {self.source} → {self.destination}"
        if self.tlvs:
            what += " TLVs " + ",".join(t.name for t in self.tlvs)
        return what

    def encode(self) -> bytes:
        if self.version == 1:
            return encode_v1(self.family, self.source, self.destination, extra=self.extra)
        return encode_v2(self.command, self.family, self.transport, self.source, self.destination,
                         self.tlvs, extra=self.extra)


# -- encoders ----------------------------------------------------------------------------------

def _check_port(port: int | None, what: str) -> int:
    if port is None or not 0 <= port <= 0xFFFF:
        raise ProxyUsageError(f"{what} port {port!r} is not in 0..65535")
    return port


def encode_v1(family: Family | str, source: Address | None = None, destination: Address | None = None,
              *, extra: bytes = b"") -> bytes:
    """A valid v1 line (§2.1). FAMILY is INET/"TCP4", INET6/"TCP6" or UNSPEC/"UNKNOWN"; for
    UNKNOWN, EXTRA is sent after the keyword (e.g. b" 2001:db8::1 2001:db8::2 1 2")."""
    if isinstance(family, str):
        family = {"TCP4": Family.INET, "TCP6": Family.INET6, "UNKNOWN": Family.UNSPEC}[family]
    if family is Family.UNSPEC:
        if b"\r" in extra or b"\n" in extra or (extra and not extra.startswith(b" ")):
            raise ProxyUsageError("UNKNOWN extra must start with a space and hold no CR/LF")
        line = b"PROXY UNKNOWN" + extra + b"\r\n"
    elif family in (Family.INET, Family.INET6):
        if source is None or destination is None:
            raise ProxyUsageError("TCP4/TCP6 need a source and a destination")
        want = 4 if family is Family.INET else 6
        parts = []
        for addr, what in ((source, "source"), (destination, "destination")):
            ip = addr.ip
            if ip is None or ip.version != want:
                raise ProxyUsageError(f"{what} {addr.host!r} is not an IPv{want} address")
            parts.append(format_ip(ip))
        keyword = "TCP4" if want == 4 else "TCP6"
        line = (f"PROXY {keyword} {parts[0]} {parts[1]} {_check_port(source.port, 'source')} "
                f"{_check_port(destination.port, 'destination')}\r\n").encode()
    else:
        raise ProxyUsageError(f"v1 cannot express family {family!r}")
    if len(line) > V1_MAX_LENGTH:
        raise ProxyUsageError(f"v1 line of {len(line)} bytes exceeds {V1_MAX_LENGTH}")
    return line


def _address_block(family: Family, source: Address | None, destination: Address | None) -> bytes:
    if family is Family.UNSPEC:
        return b""
    if source is None or destination is None:
        raise ProxyUsageError(f"family {family.name} needs a source and a destination")
    if family is Family.UNIX:
        paths = []
        for addr in (source, destination):
            path = addr.host.encode("latin-1")
            if len(path) > UNIX_PATH_LENGTH:
                raise ProxyUsageError(f"UNIX path longer than {UNIX_PATH_LENGTH} bytes")
            paths.append(path.ljust(UNIX_PATH_LENGTH, b"\0"))
        return paths[0] + paths[1]
    want = 4 if family is Family.INET else 6
    packed = []
    for addr, what in ((source, "source"), (destination, "destination")):
        ip = addr.ip
        if ip is None or ip.version != want:
            raise ProxyUsageError(f"{what} {addr.host!r} is not an IPv{want} address")
        packed.append(ip.packed)
    return packed[0] + packed[1] + struct.pack("!HH", _check_port(source.port, "source"),
                                                _check_port(destination.port, "destination"))


def encode_v2(command: Command = Command.PROXY, family: Family = Family.INET,
              transport: Transport = Transport.STREAM, source: Address | None = None,
              destination: Address | None = None, tlvs: Iterable[TLV] = (), *,
              extra: bytes = b"", crc: bool = False) -> bytes:
    """A valid v2 header (§2.2). EXTRA is appended to the block after the TLVs (for UNSPEC, the
    whole block). With CRC, a CRC32C TLV is appended and filled in (§2.2.3)."""
    tlvs = list(tlvs)
    if crc and not any(t.type == TLVType.CRC32C for t in tlvs):
        tlvs.append(TLV(TLVType.CRC32C, b"\0\0\0\0"))
    block = _address_block(family, source, destination) + encode_tlvs(tlvs) + extra
    if len(block) > 0xFFFF:
        raise ProxyUsageError(f"v2 block of {len(block)} bytes exceeds 65535")
    header = V2_SIGNATURE + bytes([0x20 | command, (family << 4) | transport]) \
        + struct.pack("!H", len(block)) + block
    return with_crc32c(header) if crc else header


# -- the incremental decoder -------------------------------------------------------------------

_V2_PREFIX = V2_SIGNATURE + b"\x20"  # L505–520: v2 is the signature followed by version 2


class ProxyDecoder:
    """Incremental, strict decoder: ``feed()`` bytes, ``next_event()`` → NEED_DATA or a
    ProxyHeader (once); then ``trailing`` holds the bytes that followed the header.

    ``verify_crc`` (default True) makes a CRC32C mismatch an error, as a receiver that supports
    the checksum MUST (§2.2.3); ``close()`` marks the end of input (an incomplete header then
    raises). Once it has raised, the decoder stays failed.
    """

    def __init__(self, *, verify_crc: bool = True) -> None:
        self.verify_crc = verify_crc
        self._buf = bytearray()
        self._header: ProxyHeader | None = None
        self._error: ProxyProtocolError | None = None
        self._closed = False
        self._delivered = False
        self.header_length: int | None = None

    def feed(self, data: bytes) -> None:
        if self._closed:
            raise ProxyUsageError("feed() after close()")
        self._buf += data

    def close(self) -> None:
        self._closed = True

    @property
    def trailing(self) -> bytes:
        if self.header_length is None:
            return b""
        return bytes(self._buf[self.header_length:])

    def next_event(self) -> ProxyHeader | NeedData:
        if self._error is not None:
            raise self._error
        if self._header is not None:
            return NEED_DATA if self._delivered else self._deliver()
        try:
            result = self._try_parse()
        except ProxyProtocolError as exc:
            self._error = exc
            raise
        if result is NEED_DATA:
            if self._closed:
                self._error = ProxyProtocolError(
                    f"the connection ended after {len(self._buf)} bytes of an incomplete header",
                    offset=len(self._buf), rule="L498–503 (partial headers must be rejected)",
                    data=bytes(self._buf), incomplete=True)
                raise self._error
            return NEED_DATA
        self._header = result
        return self._deliver()

    def _deliver(self) -> ProxyHeader:
        self._delivered = True
        assert self._header is not None
        return self._header

    # -- version detection (L505–520) --------------------------------------------------------

    def _try_parse(self) -> ProxyHeader | NeedData:
        buf = bytes(self._buf)
        n = len(buf)
        if buf[:min(n, 12)] == V2_SIGNATURE[:min(n, 12)]:
            if n < 13:
                return NEED_DATA
            if buf[12] >> 4 != 2:
                # L340–351: the version "must always be sent as \x2 and the receiver must only
                # accept this value".
                raise ProxyProtocolError(f"v2 signature with version {buf[12] >> 4}, not 2",
                                         offset=12, rule="L340–351", data=buf[:16])
            return self._v2(buf)
        if buf[:min(n, 5)] == V1_PREFIX[:min(n, 5)]:
            return self._v1(buf)
        bad = max(_mismatch(buf, V2_SIGNATURE), _mismatch(buf, V1_PREFIX))
        raise ProxyProtocolError("neither a v1 nor a v2 PROXY header", offset=bad,
                                 rule="L505–520 (must be dropped)", data=buf[:16])

    # -- v1 (§2.1) ---------------------------------------------------------------------------

    def _v1(self, buf: bytes) -> ProxyHeader | NeedData:
        limit = min(len(buf), V1_MAX_LENGTH)
        for i in range(limit):
            c = buf[i]
            if c == 0x0A:
                # L285–287: "must not tolerate a single CR or LF character to end the line".
                raise ProxyProtocolError("v1 line ends with a bare LF", offset=i, rule="L285–287",
                                         data=buf[:i + 1])
            if c == 0x0D:
                if i + 2 > V1_MAX_LENGTH:  # the LF would be byte 108
                    break
                if i + 1 >= len(buf):
                    return NEED_DATA
                if buf[i + 1] != 0x0A:
                    raise ProxyProtocolError("v1 line ends with a bare CR", offset=i,
                                             rule="L285–287", data=buf[:i + 2])
                self.header_length = i + 2
                return self._v1_line(buf[:i], buf[:i + 2])
        if len(buf) >= V1_MAX_LENGTH:
            # L281–284: "If the CRLF sequence is not found in the first 107 characters, the
            # receiver should declare the line invalid."
            raise ProxyProtocolError("no CRLF in the first 107 bytes of a v1 line",
                                     offset=V1_MAX_LENGTH, rule="L261–284", data=buf[:V1_MAX_LENGTH])
        return NEED_DATA

    def _v1_line(self, line: bytes, raw: bytes) -> ProxyHeader:
        def bad(message: str, offset: int) -> ProxyProtocolError:
            # L289–290: "Any sequence which does not exactly match the protocol must be discarded".
            return ProxyProtocolError(message, offset=offset, rule="L210–258, L289–290", data=raw)

        if line[5:6] != b" ":
            raise bad("PROXY is not followed by exactly one space", 5)
        rest = line[6:]
        if rest == b"UNKNOWN" or rest.startswith(b"UNKNOWN "):
            # L215–226: "the receiver must ignore anything presented before the CRLF".
            return ProxyHeader(1, Command.PROXY, Family.UNSPEC, Transport.UNSPEC, raw=raw,
                               extra=rest[7:])
        fields = rest.split(b" ")
        if fields[0] not in (b"TCP4", b"TCP6"):
            raise bad(f"unknown protocol {fields[0][:16]!r} (only TCP4, TCP6, UNKNOWN)", 6)
        if len(fields) != 5:
            raise bad(f"{len(fields) - 1} fields after {fields[0].decode()} separated by single "
                      "spaces, not 4", 6)
        try:
            text = [f.decode("ascii") for f in fields[1:]]
        except UnicodeDecodeError:
            raise bad("non-ASCII bytes in the v1 line", 6) from None
        family = Family.INET if fields[0] == b"TCP4" else Family.INET6
        parse = parse_ipv4_text if family is Family.INET else parse_ipv6_text
        offset = 6 + 5
        ips = []
        for value, what in ((text[0], "source"), (text[1], "destination")):
            ip = parse(value)
            if ip is None:
                raise bad(f"{what} {value!r} is not an IPv{4 if family is Family.INET else 6} "
                          "address in the required format", offset)
            ips.append(ip)
            offset += len(value) + 1
        ports = []
        for value, what in ((text[2], "source"), (text[3], "destination")):
            if not _PORT_RE.fullmatch(value) or int(value) > 0xFFFF:
                raise bad(f"{what} port {value!r} is not a decimal in 0..65535 without heading "
                          "zeroes", offset)
            ports.append(int(value))
            offset += len(value) + 1
        return ProxyHeader(1, Command.PROXY, family, Transport.STREAM,
                           Address(format_ip(ips[0]), ports[0]), Address(format_ip(ips[1]), ports[1]),
                           raw=raw)

    # -- v2 (§2.2) ---------------------------------------------------------------------------

    def _v2(self, buf: bytes) -> ProxyHeader | NeedData:
        if len(buf) < V2_HEADER_LENGTH:
            return NEED_DATA
        ver_cmd, fam, length = struct.unpack_from("!BBH", buf, 12)
        cmd = ver_cmd & 0x0F
        if cmd not in (Command.LOCAL, Command.PROXY):
            # L365–366: "Receivers must drop connections presenting unexpected values here."
            raise ProxyProtocolError(f"v2 command {cmd:#x} is neither LOCAL nor PROXY", offset=12,
                                     rule="L365–366", data=buf[:16])
        family_n, transport_n = fam >> 4, fam & 0x0F
        if family_n not in Family._value2member_map_ or transport_n not in Transport._value2member_map_:
            # L391–392, L412–413: other values "must be rejected as invalid by receivers" (the
            # letter applies to LOCAL too; the catalogue grades LOCAL acceptance NON-STRICT).
            raise ProxyProtocolError(f"v2 family/transport byte {fam:#04x} is undefined", offset=13,
                                     rule="L391–392, L412–413", data=buf[:16])
        command, family, transport = Command(cmd), Family(family_n), Transport(transport_n)
        total = V2_HEADER_LENGTH + length
        if len(buf) < total:
            # L498–503: "must not start to parse an address before the whole address block is
            # received".
            return NEED_DATA
        self.header_length = total
        raw, block = buf[:total], buf[V2_HEADER_LENGTH:total]
        if command is Command.LOCAL:
            # L354–359: accept, use the real endpoints, "discard the protocol block including
            # the family which is ignored"; L452–455: skip `len` bytes whatever they are.
            return self._v2_block(raw, block, command, family, transport, strict=False)
        need = ADDRESS_LENGTH.get(family, 0)
        if len(block) < need:
            raise ProxyProtocolError(
                f"v2 {family.name} address block needs {need} bytes, the header has {len(block)}",
                offset=V2_HEADER_LENGTH + len(block), rule="L498–503", data=raw)
        return self._v2_block(raw, block, command, family, transport, strict=True)

    def _v2_block(self, raw: bytes, block: bytes, command: Command, family: Family,
                  transport: Transport, *, strict: bool) -> ProxyHeader:
        need = ADDRESS_LENGTH.get(family, 0)
        source = destination = None
        if need and len(block) >= need:
            source, destination = _unpack_addresses(family, block[:need])
            rest_at = need
        else:
            rest_at = 0 if family is Family.UNSPEC else len(block)
        tlvs: tuple[TLV, ...] = ()
        tlv_error = None
        extra = b""
        if family is Family.UNSPEC and command is Command.PROXY:
            # L374–378: the receiver "should ignore address information"; the block is skipped.
            extra = block
        elif need and len(block) < need:  # LOCAL with a short block: skipped whole (L452–455)
            extra = block
        else:
            try:
                tlvs = tuple(iter_tlvs(block[rest_at:], base=V2_HEADER_LENGTH + rest_at))
                for t in tlvs:
                    _check_tlv(t)
            except ProxyProtocolError as exc:
                # L522–542: a receiver may skip the TLV bytes entirely, so malformed TLVs never
                # make a header one that must be rejected; they are reported.
                tlvs, tlv_error, extra = (), str(exc), block[rest_at:]
        header = ProxyHeader(2, command, family, transport, source, destination, tlvs, raw=raw,
                             extra=extra, tlv_error=tlv_error)
        if strict and self.verify_crc and header.crc_ok is False:
            crc = header.tlv(TLVType.CRC32C)
            raise ProxyProtocolError("CRC32C does not match the header", rule="§2.2.3 (L596–608)",
                                     offset=None if crc is None else crc.offset, data=raw)
        return header


def _mismatch(buf: bytes, prefix: bytes) -> int:
    """The first index at which BUF stops following PREFIX."""
    return next((i for i in range(min(len(buf), len(prefix))) if buf[i] != prefix[i]),
                min(len(buf), len(prefix)))


def _unpack_addresses(family: Family, block: bytes) -> tuple[Address, Address]:
    if family is Family.INET:
        s, d, sp, dp = struct.unpack("!4s4sHH", block)
        return (Address(str(ipaddress.IPv4Address(s)), sp), Address(str(ipaddress.IPv4Address(d)), dp))
    if family is Family.INET6:
        s, d, sp, dp = struct.unpack("!16s16sHH", block)
        return (Address(format_ip(ipaddress.IPv6Address(s)), sp),
                Address(format_ip(ipaddress.IPv6Address(d)), dp))
    s, d = block[:UNIX_PATH_LENGTH], block[UNIX_PATH_LENGTH:]
    return (Address(s.split(b"\0", 1)[0].decode("latin-1")),
            Address(d.split(b"\0", 1)[0].decode("latin-1")))


def _check_tlv(t: TLV) -> None:
    if t.type == TLVType.CRC32C and len(t.value) != 4:
        raise ProxyProtocolError("CRC32C TLV value is not 4 bytes", offset=t.offset, rule="§2.2.3")
    if t.type == TLVType.UNIQUE_ID and len(t.value) > UNIQUE_ID_MAX:
        raise ProxyProtocolError("UNIQUE_ID longer than 128 bytes", offset=t.offset, rule="§2.2.5")
    if t.type == TLVType.SSL:
        t.ssl  # noqa: B018 — raises if the sub-TLVs are malformed


def decode(data: bytes, *, verify_crc: bool = True) -> tuple[ProxyHeader, bytes]:
    """One-shot: the header at the start of DATA and the bytes after it. An incomplete header
    raises ProxyProtocolError with ``incomplete`` set."""
    dec = ProxyDecoder(verify_crc=verify_crc)
    dec.feed(data)
    dec.close()
    event = dec.next_event()
    assert isinstance(event, ProxyHeader)
    return event, dec.trailing


def header_with(header: ProxyHeader, **changes: object) -> ProxyHeader:
    """HEADER with fields replaced (``raw`` is cleared: it no longer describes the bytes)."""
    return replace(header, raw=b"", **changes)  # type: ignore[arg-type]
