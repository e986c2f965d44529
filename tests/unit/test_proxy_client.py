"""harness.proxy.client: building headers from scenario data, planning segments, sending them
while watching the socket; the `proxy:` step's validation; scenarios agree with the oracle."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from harness.engine.actions import VALIDATORS
from harness.engine.actions.session import proxy_source, validate_steps
from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.scenario import load_scenarios
from harness.proxy.client import ProxyPlan, build_header, judge, plan_from_step, send_header
from harness.proxy.codec import Address, Command, Family, TLVType, decode
from harness.smtp.transcript import Transcript

ROOT = Path(__file__).resolve().parents[2]
V1 = "PROXY TCP4 203.0.113.7 198.51.100.25 40123 25\\r\\n"


def test_v1_text_is_unescaped() -> None:
    assert build_header({"v1": V1}) == b"PROXY TCP4 203.0.113.7 198.51.100.25 40123 25\r\n"


def test_v2_defaults_are_the_canonical_tcp4_header() -> None:
    header, _ = decode(build_header({"v2": {}}) or b"")
    assert header.identity(Address("192.0.2.11", 1)) == Address("203.0.113.7", 40123)


@pytest.mark.parametrize(("fields", "offset", "value"), [
    ({"version": 1}, 12, 0x11), ({"command": 15}, 12, 0x2F), ({"command": "LOCAL"}, 12, 0x20),
    ({"family": 4, "transport": 1}, 13, 0x41), ({"family": "UNIX", "transport": "DGRAM"}, 13, 0x32)])
def test_v2_fields_can_be_set_to_anything(fields: dict, offset: int, value: int) -> None:
    assert (build_header({"v2": fields}) or b"")[offset] == value


def test_v2_len_block_and_crc() -> None:
    data = build_header({"v2": {"len": 4}}) or b""
    assert struct.unpack("!H", data[14:16])[0] == 4 and len(data) == 28
    data = build_header({"v2": {"family": "INET", "block": "\\x01\\x02"}}) or b""
    assert data[16:] == b"\x01\x02" and struct.unpack("!H", data[14:16])[0] == 2
    good = build_header({"v2": {"tlvs": [{"type": "CRC32C"}]}}) or b""
    assert decode(good)[0].crc_ok is True
    bad = build_header({"v2": {"tlvs": [{"type": "CRC32C", "bad": True}]}}) or b""
    assert judge(bad)[0] is None and decode(bad, verify_crc=False)[0].crc_ok is False
    ssl = build_header({"v2": {"tlvs": [{"type": "SSL", "client": 7, "sub": [{"type": "CN", "value": "x"}]}]}})
    assert decode(ssl or b"")[0].tlv(TLVType.SSL).ssl.sub_tlvs[0].value == b"x"  # type: ignore[union-attr]


def test_segments() -> None:
    plan = ProxyPlan(b"abcdefgh", fragments=(1, 2), trailing=b"XY")
    assert plan.segments() == [b"a", b"bc", b"defghXY"]
    assert ProxyPlan(b"abcde", fragment_size=2).segments() == [b"ab", b"cd", b"e"]
    assert ProxyPlan(b"abcdef", truncate=3, trailing=b"!").segments() == [b"abc!"]
    assert ProxyPlan(None, trailing=b"EHLO").segments() == [b"EHLO"]
    assert plan_from_step({"none": True, "from": "unlisted"}).source == "unlisted"


def _pair(server: "callable") -> socket.socket:  # type: ignore[valid-type]
    a, b = socket.socketpair()
    threading.Thread(target=server, args=(b,), daemon=True).start()
    return a


def test_send_header_sees_an_early_banner_with_its_time() -> None:
    def server(sock: socket.socket) -> None:
        sock.sendall(b"220 too early\r\n")
        time.sleep(0.5)
        sock.close()

    sock = _pair(server)
    t = Transcript("x")
    time.sleep(0.05)
    record, received, closed = send_header(sock, t, plan_from_step(
        {"v1": V1, "fragment_size": 10, "delay": 0.02}))
    assert record.early == b"220 too early\r\n" and received == record.early and not closed
    assert record.t_server_first is not None and record.t_last is not None
    assert record.t_server_first < record.t_last
    assert record.oracle is not None and record.oracle.source == Address("203.0.113.7", 40123)
    sock.close()


def test_send_header_silent_then_close_is_recorded() -> None:
    def server(sock: socket.socket) -> None:
        sock.recv(100)
        time.sleep(0.2)
        sock.close()

    sock = _pair(server)
    t = Transcript("x")
    record, received, closed = send_header(sock, t, plan_from_step(
        {"v2": {}, "truncate": 13, "then": "silent", "observe": 3}))
    assert (received, closed, record.observed) == (b"", True, "closed")
    assert record.t_closed is not None and 0.15 < record.t_closed - (record.t_last or 0) < 2
    assert record.oracle is None and record.oracle_error is not None and record.oracle_error.incomplete
    assert any(e.dir == "note" and b"closed" in e.data for e in t.events)
    sock.close()


def test_proxy_step_must_come_first() -> None:
    assert validate_steps([{"proxy": {"v1": V1}}, {"ehlo": "x"}]) is None
    problem = validate_steps([{"ehlo": "x"}, {"proxy": {"v1": V1}}])
    assert problem is not None and "first step" in problem[1]
    problem = validate_steps([{"proxy": {"v1": V1, "raw": "x"}}])
    assert problem is not None
    problem = validate_steps([{"proxy": {"v2": {"family": "CHAOS"}}}])
    assert problem is not None
    assert proxy_source([{"proxy": {"v1": V1}}]) == "listed"
    assert proxy_source([{"proxy": {"none": True, "from": "unlisted"}}]) == "unlisted"
    assert proxy_source([{"ehlo": "x"}]) is None


ACCEPTING = {"proxy_accepted", "proxy_session_bytes", "proxy_policy", "proxy_logged_separately"}


def test_every_proxy_scenario_agrees_with_the_oracle() -> None:
    """A scenario that expects acceptance sends bytes the strict decoder accepts, and one that
    expects a rejection sends bytes it refuses (or none, or from an unlisted source)."""
    scenarios = load_scenarios([ROOT / "scenarios" / "proxy"], load_catalogue(), all_checks(), VALIDATORS)
    assert len(scenarios) >= 80
    for sc in scenarios:
        step = sc.action["session"][0]["proxy"]
        plan = plan_from_step(step)
        header, error = judge(plan.sent_header + plan.trailing) if plan.header is not None else (None, None)
        names = {c.check for c in sc.checks}
        if names & ACCEPTING or "proxy_fallback" in names:
            assert header is not None, (sc.id, error)
        if "proxy_rejected" in names and step.get("from", "listed") == "listed" and plan.header is not None:
            assert header is None, sc.id
        if header is not None and header.command is Command.PROXY and header.family is Family.INET:
            assert header.carries_client or header.transport != 1, sc.id
