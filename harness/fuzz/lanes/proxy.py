"""The `proxy` lane: PROXY v1/v2 headers — valid, near-valid and garbage, whole and fragmented —
sent to the inbound listener from the lab's listed proxy address (and sometimes an unlisted one).

Headers come from the project's own strategies (harness.proxy.strategies: valid headers and
byte-level near-misses), from v2 field values drawn by Hypothesis and assembled by the scapy
layers (harness.proxy.client.build_v2: any nibble, family byte, length, signature or TLV), and
from raw bytes behind a PROXY prefix.

Oracle (haproxy proxy-protocol.txt §2.1/§2.2, "the receiver MUST … abort on an invalid header";
PROXY-25 "never accept a header whose identity differs from the bytes sent"): what the strict
decoder (harness.proxy.codec) rejects is not accepted; a header the MTA accepts yields the client
identity the decoder gives for the same bytes; from an unlisted address no header is honoured.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ...engine.checks.proxy import BRACKETED
from ...proxy.client import build_v2, judge
from ...proxy.codec import V1_MAX_LENGTH, V2_SIGNATURE, Address, ProxyHeader
from ...proxy.strategies import headers
from ...report.model import Evidence
from ...smtp.codec import Reply
from ...smtp.transcript import visible
from ..model import Execution, Violation, b64, unb64
from ..mutate import mutate
from ..script import Script, Step, judge as judge_replies, play
from .base import Context, Lane

CITE = "haproxy proxy-protocol.txt §2 (PROXY-10, PROXY-25)"
HELO = "fuzz.client.test"


def _esc(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


NIBBLE = st.integers(0, 15)
VERSIONS = st.sampled_from([2, 2, 2, 1, 3]) | NIBBLE
COMMANDS = st.sampled_from([1, 1, 0]) | NIBBLE
FAMILIES = st.sampled_from([1, 1, 2, 0, 3]) | NIBBLE
TRANSPORTS = st.sampled_from([1, 1, 2, 0]) | NIBBLE
IPS = {4: st.ip_addresses(v=4).map(str) | st.sampled_from(["0.0.0.0", "203.0.113.7"]),
       6: st.ip_addresses(v=6).map(str) | st.sampled_from(["::", "2001:db8::7"])}
PORTS = st.integers(0, 65535)
DPORTS = st.sampled_from([25, 0, 65535]) | PORTS
TLV_TYPES = st.sampled_from([1, 2, 3, 4, 5, 0x20, 0x30, 0xE0]) | st.integers(0, 255)
TLV_VALUES = st.binary(max_size=40)
LENGTHS = st.sampled_from([0, 11, 12, 0xFFFF]) | st.integers(0, 0x200)
SIGNATURES = st.binary(min_size=12, max_size=12)
TAILS = st.binary(min_size=4, max_size=40)
CUTS = st.lists(st.integers(1, 4096), max_size=3)
DELAYS = st.sampled_from([0.0, 0.0, 0.02])
SOURCES = st.sampled_from(["listed"] * 7 + ["unlisted"])
SMALL = st.integers(0, 19)


@st.composite
def v2_fields(draw: st.DrawFn) -> bytes:
    """A v2 header with every field drawn (edges first), built by the scapy layers."""
    fam = draw(FAMILIES)
    spec: dict[str, Any] = {"version": draw(VERSIONS), "command": draw(COMMANDS), "family": fam,
                            "transport": draw(TRANSPORTS)}
    if fam in (1, 2):
        ip = IPS[4 if fam == 1 else 6]
        spec |= {"src": draw(ip), "dst": draw(ip), "sport": draw(PORTS), "dport": draw(DPORTS)}
    elif fam == 3:
        spec |= {"src": "/run/x.sock", "dst": "/run/y.sock"}
    tlvs: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 3))):
        t: dict[str, Any] = {"type": draw(TLV_TYPES)}
        if t["type"] == 3 and draw(st.booleans()):
            t["bad"] = True  # CRC32C: a wrong checksum
        elif t["type"] != 0x20:  # SSL: the layer builds client/verify and sub-TLVs
            t["value"] = _esc(draw(TLV_VALUES))
        tlvs.append(t)
    if tlvs:
        spec["tlvs"] = tlvs
    if draw(SMALL) < 2:
        spec["len"] = draw(LENGTHS)
    if draw(SMALL) == 0:
        spec["sig"] = _esc(draw(SIGNATURES))
    try:
        return build_v2(spec)
    except Exception:  # noqa: BLE001 - fields the layers cannot pack (or checksum): raw bytes then
        return V2_SIGNATURE + draw(TAILS)


@functools.cache
def header_bytes() -> SearchStrategy[bytes]:
    valid = headers().map(ProxyHeader.encode)

    @st.composite
    def near_valid(draw: st.DrawFn) -> bytes:
        return mutate(draw, draw(valid), max_edits=3)

    return st.one_of(
        valid,
        near_valid(),
        v2_fields(),
        st.binary(max_size=V1_MAX_LENGTH + 10).map(lambda b: b"PROXY " + b + b"\r\n"),
        st.binary(max_size=60).map(lambda b: V2_SIGNATURE + b),
        st.binary(max_size=40),
    )


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    header = draw(header_bytes())
    source = draw(SOURCES)
    cuts = sorted({c % len(header) for c in draw(CUTS)} - {0}) if len(header) > 1 and draw(SMALL) < 5 else []
    delay = draw(DELAYS)
    pieces = [header[a:b] for a, b in zip([0, *cuts], [*cuts, len(header)])]
    together = draw(SMALL) < 4  # EHLO in the header's last segment (PROXY-23)
    ehlo = f"EHLO {HELO}\r\n".encode()
    steps = [Step(p, 0, delay if i else 0.0) for i, p in enumerate(pieces)]
    if together:
        steps[-1] = Step(steps[-1].send + ehlo, 0, steps[-1].delay)
        steps += [Step(b"", 2)]  # banner, EHLO reply
    else:
        steps += [Step(b"", 1), Step(ehlo, 1)]
    steps.append(Step(b"QUIT\r\n", 1, shut=True))
    return Script(tuple(steps), source, {"header": b64(header), "header_text": visible(header)})


def greeting_identity(reply: Reply) -> Address | None:
    """The client an EHLO greeting names: "Hello name [ip]" (Exim, Postfix, aiosmtpd's launcher)."""
    if not reply.is_positive or not reply.lines:
        return None
    m = BRACKETED.search(reply.lines[0])
    if not m:
        return None
    try:
        return Address(str(ipaddress.ip_address(m.group(1))), int(m.group(2)) if m.group(2) else None)
    except ValueError:
        return None


class ProxyLane(Lane):
    name = "proxy"
    description = "PROXY v1/v2 headers, valid, near-valid and garbage, whole and fragmented"
    batch = 30

    def strategy(self) -> SearchStrategy[Script]:
        return scripts()

    def case_json(self, case: Script) -> Any:
        return case.to_json()

    def case_from_json(self, data: Any) -> Script:
        return Script.from_json(data)

    def describe_case(self, case_json: Any) -> str:
        return f"from {case_json.get('source')}: {case_json.get('meta', {}).get('header_text', '')[:160]}"

    def execute(self, ctx: Context, case: Script) -> Execution:
        assert ctx.target is not None
        header = unb64(case.meta["header"])
        played = play(case, ctx.target.connect, ctx.reply_timeout)
        ex = Execution()
        judge_replies(played, ex)
        ex.evidence.append(played.evidence())
        decoded, error = judge(header)
        ehlo = next((r for r in played.replies[1:2]), None)
        banner = played.replies[0] if played.replies else None
        accepted = banner is not None and banner.code == 220 and ehlo is not None and ehlo.code == 250
        kind = "v2" if header.startswith(V2_SIGNATURE) else "v1" if header.startswith(b"PROXY") else "raw"
        ex.states.add(f"{case.source}/{kind}/{'valid' if decoded else 'invalid'}/"
                      f"{'accepted' if accepted else played.ended if played.ended != 'done' else 'refused'}")
        if not accepted or ehlo is None:
            return ex
        shown = greeting_identity(ehlo)
        oracle = (f"strict decoder: valid, {decoded.describe()}" if decoded
                  else f"strict decoder: invalid: {error}")
        facts = Evidence("header", "text", f"{visible(header)}\n{oracle}\n"
                                           f"EHLO greeting: {ehlo.code} {ehlo.lines[0] if ehlo.lines else ''}")
        listed = case.source == "listed" or not ctx.target.managed
        if listed and decoded is None:
            ex.violations.append(Violation("proxy-invalid-accepted",
                                           f"a header the strict decoder rejects was accepted ({error})",
                                           CITE, (facts,)))
            return ex
        real = played.local
        want = decoded.identity(real) if (listed and decoded and real) else real
        if shown is not None and want is not None and shown.ip != want.ip:
            why = "from an unlisted address the header was honoured" if not listed else "misparsed"
            ex.violations.append(Violation("proxy-identity",
                                           f"{why}: the MTA names client {shown.host}, the bytes carry {want.host}",
                                           CITE, (facts,)))
        return ex


__all__ = ["ProxyLane", "greeting_identity", "header_bytes", "scripts", "v2_fields"]
