"""Hypothesis properties of harness.proxy: codec round trips, arbitrary bytes, scapy layers, and
agreement with an independent parser (aiosmtpd's) on valid headers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.proxy import strategies as pst
from harness.proxy.codec import (NEED_DATA, Address, Command, Family, ProxyDecoder, ProxyHeader,
                                 ProxyProtocolError, Transport, decode)
from harness.proxy.layers import ProxyV2, from_header

fixed = settings(derandomize=True, database=None, deadline=None, max_examples=200)
REAL = Address("192.0.2.11", 50000)


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def feed(chunks: Sequence[bytes]) -> tuple[ProxyHeader, bytes]:
    dec = ProxyDecoder()
    got = None
    for chunk in chunks:
        dec.feed(chunk)
        event = dec.next_event()
        if event is not NEED_DATA:
            assert got is None, "a header is reported once"
            got = event
    assert isinstance(got, ProxyHeader)
    return got, dec.trailing


@fixed
@given(pst.headers(), st.lists(st.integers(0, 2000), max_size=6), st.binary(max_size=20))
def test_round_trip_whole_bytewise_cut_and_with_trailing_bytes(header: ProxyHeader, cuts: list[int],
                                                               trailing: bytes) -> None:
    data = header.encode()
    whole, rest = decode(data)
    assert whole == header and whole.raw == data and rest == b""
    assert feed([data[i:i + 1] for i in range(len(data))])[0] == header  # STYLE.md 3
    got, rest = feed(split(data + trailing, cuts))
    assert got == header and rest == trailing
    assert got.identity(REAL) == (header.source if header.carries_client else REAL)


@fixed
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_the_documented_error(data: bytes) -> None:
    dec = ProxyDecoder()
    dec.feed(data)
    try:
        event = dec.next_event()
        dec.close()
        if event is NEED_DATA:
            event = dec.next_event()
    except ProxyProtocolError:
        return
    assert isinstance(event, ProxyHeader) and data.startswith(event.raw)


@fixed
@given(st.data())
def test_mutated_headers_decode_or_raise_and_never_invent_bytes(data: st.DataObject) -> None:
    header = data.draw(pst.headers())
    mutated = data.draw(pst.mutated(header.encode()))
    try:
        got, rest = decode(mutated)
    except ProxyProtocolError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(mutated) + 1
        return
    assert got.raw + rest == mutated
    if got.carries_client and got.version == 2:  # the identity is made of bytes that were sent
        assert got.source is not None and got.source.ip is not None
        assert got.source.ip.packed in got.raw


@fixed
@given(pst.v2_headers())
def test_scapy_layers_build_the_same_bytes_and_dissect_them(header: ProxyHeader) -> None:
    data = header.encode()
    assert bytes(from_header(header)) == data
    pkt = ProxyV2(data + b"EHLO x\r\n")
    assert (pkt.version, pkt.cmd, pkt.family, pkt.transport, pkt.len) == (
        2, header.command, header.family, header.transport, len(data) - 16)
    assert bytes(pkt) == data + b"EHLO x\r\n"


def _aiosmtpd(data: bytes):  # type: ignore[no-untyped-def]
    from aiosmtpd.proxy_protocol import get_proxy

    async def go():  # type: ignore[no-untyped-def]
        reader = asyncio.StreamReader()
        reader.feed_data(data + b"QUIT\r\n")
        reader.feed_eof()
        return await get_proxy(reader)

    return asyncio.run(go())


@settings(derandomize=True, database=None, deadline=None, max_examples=60)
@given(st.one_of(pst.v1_headers(), pst.v2_headers(commands=[Command.PROXY],
                                                  families=[Family.INET, Family.INET6],
                                                  transports=[Transport.STREAM])))
def test_an_independent_parser_reads_the_same_client(header: ProxyHeader) -> None:
    """Differential: aiosmtpd 1.4 accepts every valid TCP header we encode, with our identity."""
    data = header.encode()
    theirs = _aiosmtpd(data)
    assert theirs.valid, (data, theirs.error)
    if header.carries_client:
        assert header.source is not None
        assert (str(theirs.src_addr), theirs.src_port) == (str(header.source.ip), header.source.port)
