"""The outbound fuzz lanes without a target: strategies (they generate, their cases survive a
JSON round trip), the PRDR block judge, the DANE policy of a world, the OCSP staple judge, and
each oracle fired by a deliberately wrong client's observations (synthetic deliveries)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from harness.dns.mutate import RawReplies
from harness.dns.zone import World
from harness.engine.yamlsrc import InputError
from harness.fuzz import dane_policy
from harness.fuzz.lanes import make_lane
from harness.fuzz.lanes.dns import DNSCase
from harness.fuzz.lanes.ocsp import OCSPCase, mutate, staple_tls, unacceptable
from harness.fuzz.lanes.prdr_replies import PRDRCase, Piece, judge, judge_block
from harness.fuzz.model import Execution
from harness.fuzz.outbound import Delivery, read_log, record
from harness.pki.ca import PKI
from harness.pki.ocsp import build_response
from harness.smtp.codec import Command
from harness.smtp.peer import PeerSession, Transaction
from harness.smtp.transcript import Transcript

FAST = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


# -- strategies: they generate, and a case is its own JSON ------------------------------------


@pytest.mark.parametrize("name", ["prdr-replies", "dns", "ocsp"])
def test_cases_round_trip_through_json(name: str) -> None:
    lane = make_lane(name)
    seen = []

    @FAST
    @given(lane.strategy())
    def check(case: object) -> None:
        data = json.loads(json.dumps(lane.case_json(case)))
        again = lane.case_from_json(data)
        assert lane.case_json(again) == data
        assert lane.describe_case(data)
        seen.append(data)

    check()
    assert len(seen) >= 10


@pytest.mark.parametrize("name, data, message", [
    ("prdr-replies", {"rcpt": [], "block": []}, "1–10 recipients"),
    ("prdr-replies", {"rcpt": ["250 ok"], "block": [{"bytes": "!!"}]}, "not a prdr-replies case"),
    ("prdr-replies", {"rcpt": ["ok"], "block": []}, "no reply code"),
    ("dns", {"zone": {"name": "d.test", "records": [{"name": "x.d.test", "type": "BOGUS"}]}}, "unknown record type"),
    ("dns", {"zone": {"name": "d.test"}, "mutations": [{"name": "d.test", "type": "MX", "ops": [{"op": "x"}]}]},
     "mutations[0].ops[0]"),
    ("dns", {"zone": {"name": "d.test"}, "starttls": {"mx": "maybe"}}, "starttls"),
    ("dns", {"zone": {"name": "sender.test"}}, "the lane's zone is d.test"),
    ("dns", {"zone": {"name": "d.test", "records": [{"name": "t.d.test", "type": "TLSA", "value": {"tlsa": {
        "cert": "nope", "usage": 3, "selector": 1, "mtype": 1}}}]}}, "a TLSA reference needs cert"),
    ("ocsp", {"staple": {"status": "sideways"}}, "staple"),
    ("ocsp", {"staple": None, "max_version": "SSLv3"}, "max_version"),
    ("ocsp", {"staple": {}, "ops": [{"op": "xor", "offset": 1, "mask": 0}]}, "mask"),
])
def test_bad_replay_cases_are_input_errors(name: str, data: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_lane(name).case_from_json(data)


# -- the PRDR block judge (draft-hall-prdr-00 §4.5) -------------------------------------------

INTRO = b"353 PRDR content analysis beginning\r\n"


@pytest.mark.parametrize("block, accepted, closed, kind, may", [
    (INTRO + b"250 ok\r\n550 no\r\n250 final\r\n", 2, True, "aligned", [True, False]),
    (INTRO + b"250 ok\r\n250 ok\r\n451 later\r\n", 2, False, "aligned", [False, False]),
    (INTRO + b"354 what\r\n250 ok\r\n250 final\r\n", 2, True, "aligned", [False, True]),  # a 3xx verdict
    (b"353-multi\r\n353 2.0.0 line\r\n250 ok\r\n250 final\r\n", 1, True, "aligned", [True]),
    (INTRO + b"250 ok\r\n250 final\r\n", 2, False, "too-few", [False, False]),
    (INTRO + b"250 ok\r\n250 ok\r\n250 extra\r\n451 final\r\n", 2, True, "too-many", [False, False]),
    (INTRO + b"250 ok\r\n25", 2, True, "cut", [False, False]),
    (INTRO + b"250 ok\n250 ok\r\n250 final\r\n", 2, True, "malformed", [False, False]),  # bare LF
    (INTRO + b"250-ok\r\n550 no\r\n250 ok\r\n250 final\r\n", 2, True, "malformed", [False, False]),
    (b"", 2, True, "empty", [False, False]),
    (b"250 all of them\r\n221 bye\r\n", 2, True, "plain", [True, True]),  # §4.5: one ordinary reply
    (b"550 none of them\r\n", 2, True, "plain", [False, False]),
])
def test_judge_block(block: bytes, accepted: int, closed: bool, kind: str, may: list[bool]) -> None:
    j = judge_block(block, accepted, closed=closed)
    assert (j.kind, j.may_deliver) == (kind, may)
    assert (j.problem is None) == (kind in ("aligned", "plain"))


def _session(accepted: list[str], sent: bytes, *, rcpt_codes: list[int] | None = None) -> PeerSession:
    codes = rcpt_codes or [250] * len(accepted)
    txn = Transaction(Command("MAIL", "FROM:<sender@sender.test> PRDR", b""), "sender@sender.test",
                      {"PRDR": None}, True, [(a, {}, c) for a, c in zip(accepted, codes)], b"message",
                      "DATA", [sent])
    return PeerSession(0, "mx", ("192.0.2.25", 1025), Transcript("mx#0"), transactions=[txn])


def _log(*lines: str) -> dict[str, list[str]]:
    stamp = "2026-01-01 00:00:00.000 [1] 1xWAAA-000000-AA "
    return {"main": [stamp + line for line in lines]}


def _delivery(sessions: dict[str, list[PeerSession]], logs: dict[str, list[str]], rcpts: list[str],
              addresses: dict[str, str] | None = None) -> Delivery:
    return Delivery(rcpts, None, sessions, addresses or {"mx": "198.51.100.1"}, logs, read_log(logs))


def _prdr_case(block: bytes, n: int = 2) -> PRDRCase:
    return PRDRCase(("250 2.1.5 ok",) * n, (Piece(block),), "close")


@pytest.mark.parametrize("block, decisions, oracles", [
    # A wrong client that takes the extra line for the final reply (Exim 4.96 does, PRDR-22).
    (INTRO + b"250 a\r\n250 b\r\n250 extra\r\n451 final\r\n", ["=> r1@d.test", "-> r2@d.test"],
     ["prdr-misaligned-delivered"]),
    # One that bounces on the only line it got before the close (PRDR-20).
    (INTRO + b"550 a\r\n", ["** r1@d.test", "== r2@d.test"], ["prdr-misaligned-bounced"]),
    # A malformed block (bare LF): delivering comes before bouncing, one violation per case.
    (INTRO + b"250 a\n250 b\r\n250 final\r\n", ["=> r1@d.test", "** r2@d.test"], ["prdr-misaligned-delivered"]),
    (INTRO + b"250 a\n250 b\r\n250 final\r\n", ["== r1@d.test", "** r2@d.test"], ["prdr-misaligned-bounced"]),
    # One that ignores its own per-recipient refusal (draft §4.5.3).
    (INTRO + b"550 a\r\n250 b\r\n250 final\r\n", ["=> r1@d.test", "-> r2@d.test"], ["prdr-unconfirmed-delivered"]),
    # A right one: r1 refused, r2 delivered; and a plain reply for the whole message.
    (INTRO + b"550 a\r\n250 b\r\n250 final\r\n", ["** r1@d.test", "=> r2@d.test"], []),
    (b"451 later\r\n", ["== r1@d.test", "== r2@d.test"], []),
])
def test_prdr_oracles_on_synthetic_deliveries(block: bytes, decisions: list[str], oracles: list[str]) -> None:
    rcpts = ["r1@d.test", "r2@d.test"]
    delivery = _delivery({"mx": [_session(rcpts, block)]}, _log(*decisions), rcpts)
    ex = Execution()
    judge(_prdr_case(block), delivery, ex)
    assert [v.oracle for v in ex.violations] == oracles
    for v in ex.violations:
        assert v.cite.startswith("draft-hall-prdr-00") and v.evidence


def test_prdr_judges_only_a_block_sent_whole() -> None:
    block = INTRO + b"250 a\r\n250 extra\r\n250 b\r\n451 final\r\n"
    delivery = _delivery({"mx": [_session(["r1@d.test", "r2@d.test"], block[:20])]},
                         _log("=> r1@d.test"), ["r1@d.test", "r2@d.test"])
    ex = Execution()
    assert judge(_prdr_case(block), delivery, ex) is None
    assert not ex.violations and ex.states == {"block not sent whole"}


def test_hang_oracle() -> None:
    delivery = _delivery({}, {}, ["r1@d.test"])
    delivery.hung = "inject did not finish in 45 s"
    ex = Execution()
    record(ex, delivery)
    assert [v.oracle for v in ex.violations] == ["delivery-hang"] and ex.suspicious


# -- DANE: what a world requires (RFC 7672 §2) -------------------------------------------------

DIGEST = "ab" * 32


def _world(*extra: dict, state: str = "secure", tlsa: str | None = f"3 1 1 {DIGEST}") -> World:
    records = [{"name": "d.test", "type": "MX", "value": "10 mx.d.test"},
               {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"}, *extra]
    if tlsa:
        records.append({"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": tlsa})
    return World.from_data({"zones": [{"name": "d.test", "state": state, "records": records}]})


def _raw(name: str, qtype: str, *ops: dict) -> RawReplies:
    return RawReplies(RawReplies.rules_from_data([{"name": name, "type": qtype, "ops": list(ops)}]))


@pytest.mark.parametrize("world, raw, want", [
    (_world(), None, {"198.51.100.1": "tls"}),
    (_world(tlsa=f"0 1 1 {DIGEST}"), None, {"198.51.100.1": "tls"}),  # unusable only: TLS still
    (_world(tlsa="3 1 1 abcd"), None, {"198.51.100.1": "tls"}),  # a short digest: unusable, TLS
    (_world(state="insecure"), None, {}),  # insecure MX: DANE optional (§2.2.1)
    (_world({"name": "mx.d.test", "type": "A", "state": "insecure"}), None, {}),  # §2.2.2
    (_world({"name": "mx.d.test", "type": "AAAA", "state": "insecure"}), None, {}),
    (_world(tlsa=None), None, {}),  # secure denial: opportunistic TLS
    (_world({"name": "_25._tcp.mx.d.test", "type": "TLSA", "state": "bogus"}), None,
     {"198.51.100.1": "no-delivery"}),  # §2.1.2
    (_world(), _raw("_25._tcp.mx.d.test", "TLSA", {"op": "drop"}), {"198.51.100.1": "no-delivery"}),
    (_world(), _raw("_25._tcp.mx.d.test", "TLSA", {"op": "flags", "set": 0x0200}), {}),  # TC, TCP too
    (_world(), RawReplies(RawReplies.rules_from_data([{"name": "_25._tcp.mx.d.test", "type": "TLSA", "udp_only": True,
                                                       "ops": [{"op": "flags", "set": 0x0200}]}])),
     {"198.51.100.1": "tls"}),  # the stub asks again over TCP
    (_world(*({"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": f"3 0 0 {'cd' * 300}"} for _ in range(3))),
     None, {"198.51.100.1": "tls"}),  # too big for UDP: TCP
    (_world(), _raw("_25._tcp.mx.d.test", "TLSA", {"op": "append", "hex": "00"}), {}),  # trailing bytes
    (_world(), _raw("_25._tcp.mx.d.test", "TLSA", {"op": "rr", "type": "A", "rdata_hex": "c6336401"}), {}),
    (_world(), _raw("_25._tcp.mx.d.test", "TLSA", {"op": "flags", "set": 0, "clear": 0x0020}), {}),  # AD off
    (_world(), _raw("d.test", "MX", {"op": "flags", "set": 0x0002}), {}),  # MX SERVFAIL: nothing to judge
    # A second MX host whose address reply is ambiguous: it may lead to the same address.
    (_world({"name": "d.test", "type": "MX", "value": "20 mx2.d.test"},
            {"name": "mx2.d.test", "type": "A", "value": "198.51.100.1"}),
     _raw("mx2.d.test", "A", {"op": "append", "hex": "00"}), {}),
    (_world({"name": "d.test", "type": "MX", "value": "20 mx2.d.test"},
            {"name": "mx2.d.test", "type": "A", "value": "198.51.100.2"}),
     _raw("mx2.d.test", "A", {"op": "append", "hex": "00"}), {"198.51.100.1": "tls"}),
    (_world({"name": "d.test", "type": "MX", "value": "20 mx2.d.test"},
            {"name": "mx2.d.test", "type": "A", "value": "198.51.100.2"}),
     _raw("mx2.d.test", "A", {"op": "truncate", "length": 30}, {"op": "append", "hex": "ff"}), {}),
])
def test_dane_policy(world: World, raw: RawReplies | None, want: dict[str, str]) -> None:
    p = dane_policy.policy(world, raw, "d.test")
    assert p.by_address == want, p.describe()


def test_tlsa_rdata_too_short_is_ambiguous() -> None:
    world = _world({"name": "_25._tcp.mx.d.test", "type": "TLSA", "rdata_hex": "0301"}, tlsa=None)
    p = dane_policy.policy(world, None, "d.test")
    assert p.by_address == {} and p.hosts[0].tlsa is not None and p.hosts[0].tlsa.kind == "ambiguous"


def test_usable_records() -> None:
    for value, usable in ((f"3 1 1 {DIGEST}", True), (f"2 0 2 {DIGEST * 2}", True), ("3 1 0 01", True),
                          (f"1 1 1 {DIGEST}", False), (f"3 2 1 {DIGEST}", False), ("3 1 1 ab", False),
                          ("3 1 0 ", False)):
        w = World.from_data({"zones": [{"name": "d.test", "records": [
            {"name": "t.d.test", "type": "TLSA", "value": value}]}]})
        answer = dane_policy.lookup(w, None, "t.d.test", 52)
        assert answer.kind == "secure" and dane_policy.usable(answer.records[0]) is usable, value


def _mail_session(index: int, *, tls: bool) -> PeerSession:
    s = PeerSession(index, "mx", ("192.0.2.25", 1025), Transcript("mx"))
    s.mail = Command("MAIL", "FROM:<sender@sender.test>", b"")
    if tls:
        s.tls = {"handshake_ok": True, "tls_established_before_mail": True}
    return s


def test_dns_lane_oracles_on_synthetic_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong client delivers in clear despite usable TLSA, and through a host whose TLSA lookup
    fails; the dns lane's execute judges what it observed."""
    lane = make_lane("dns")
    case = DNSCase({"name": "d.test", "state": "secure", "records": [
        {"name": "d.test", "type": "MX", "value": "10 mx.d.test"},
        {"name": "d.test", "type": "MX", "value": "20 mx2.d.test"},
        {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"},
        {"name": "mx2.d.test", "type": "A", "value": "198.51.100.2"},
        {"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": f"3 1 1 {DIGEST}"},
        {"name": "_25._tcp.mx2.d.test", "type": "TLSA", "state": "bogus"}]})
    delivery = _delivery({"mx": [_mail_session(0, tls=False)], "mx2": [_mail_session(0, tls=True)]},
                         _log("=> r1@d.test"), ["r1@d.test"], {"mx": "198.51.100.1", "mx2": "198.51.100.2"})
    ex = _run_synthetic(monkeypatch, lane, case, delivery, "harness.fuzz.lanes.dns")
    assert sorted(v.oracle for v in ex.violations) == ["dane-cleartext", "dane-unusable-host-used"]
    # Over TLS to the TLSA host, nothing to the failed one: no violation.
    delivery = _delivery({"mx": [_mail_session(0, tls=True)], "mx2": []}, _log("=> r1@d.test"), ["r1@d.test"],
                         {"mx": "198.51.100.1", "mx2": "198.51.100.2"})
    assert not _run_synthetic(monkeypatch, lane, case, delivery, "harness.fuzz.lanes.dns").violations


class _FakeServices:
    class dns:  # noqa: N801 - stands in for DNSServer
        @staticmethod
        def set_world(world: object) -> None: ...

        @staticmethod
        def set_mutator(mutator: object) -> None: ...

    ocsp = None


class _FakeTarget:
    class run:  # noqa: N801
        services = _FakeServices
        lab = None


def _run_synthetic(monkeypatch: pytest.MonkeyPatch, lane: object, case: object, delivery: Delivery,
                   module: str) -> Execution:
    """LANE.execute with the delivery replaced by DELIVERY (what a wrong client would do)."""
    import contextlib

    monkeypatch.setattr(f"{module}.deliver", lambda *a, **k: delivery)
    monkeypatch.setattr(f"{module}.running_peers", lambda *a, **k: contextlib.nullcontext({}))
    monkeypatch.setattr(f"{module}.issue", lambda *a, **k: _leaves())
    from harness.fuzz.lanes.base import Context
    from harness.fuzz.model import Stats

    ctx = Context(lane, _FakeTarget, Stats("x", "y", 0))  # type: ignore[arg-type]
    return lane.execute(ctx, case)  # type: ignore[attr-defined]


_PKI: list[PKI] = []


def _leaves() -> dict:
    if not _PKI:
        _PKI.append(PKI("unit"))
    pki = _PKI[0]
    return {"mx": pki.issue(["mx.d.test"]), "mx2": pki.issue(["mx2.d.test"]), "other": pki.issue(["other.d.test"])}


# -- OCSP: the staple judge ---------------------------------------------------------------------


@pytest.mark.parametrize("spec, kinds", [
    ({"status": "good"}, []),
    ({"status": "unknown"}, []),  # policy (OCSP-08): not a violation
    ({"status": "good", "this_update": "+1d"}, []),  # a SHOULD (RFC 6960 §4.2.2.1): left out
    ({"status": "revoked"}, ["revoked"]),
    ({"status": "good", "corrupt": "signature"}, ["bad-signature"]),
    ({"status": "good", "signer": "unrelated"}, ["unauthorised-signer"]),  # its certificate included
    ({"status": "good", "signer": "unrelated", "include_signer": False}, ["bad-signature"]),
    ({"status": "good", "signer": "delegated_no_eku"}, ["unauthorised-signer"]),
    ({"status": "good", "serial": "other"}, ["other-certificate"]),
    ({"status": "good", "next_update": "-1h", "this_update": "-2d"}, ["expired"]),
    ({"response_status": "internal_error"}, ["unsuccessful"]),
    ({"status": "good", "corrupt": "der"}, ["unparseable"]),
])
def test_unacceptable_staples(spec: dict, kinds: list[str]) -> None:
    leaf = _leaves()["mx"]
    assert [k for k, _ in unacceptable(build_response(leaf, spec), leaf)] == kinds


def test_byte_mutations_and_how_a_staple_is_served() -> None:
    leaves = _leaves()
    der = build_response(leaves["mx"], {"status": "good"})
    assert mutate(der, [{"op": "truncate", "length": 10}]) == der[:10]
    assert mutate(der, [{"op": "xor", "offset": len(der), "mask": 1}])[0] == der[0] ^ 1
    assert mutate(b"", [{"op": "append", "hex": "0a0b"}]) == b"\n\x0b"
    assert "raw_flight" not in staple_tls(leaves, der, "TLSv1.3")  # OpenSSL staples a good one
    broken = mutate(der, [{"op": "truncate", "length": 10}])
    tls = staple_tls(leaves, broken, None)  # OpenSSL would drop it: the scripted TLS 1.2 server
    assert tls["raw_flight"]["staple"] == broken and tls["ocsp_staple"] == broken
    assert "ocsp_staple" not in staple_tls(leaves, None, None)


def test_ocsp_lane_oracles_on_synthetic_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    lane = make_lane("ocsp")
    leaves = _leaves()
    lane.leaves = leaves  # type: ignore[attr-defined]
    monkeypatch.setattr(type(lane), "der", lambda self, ctx, case: build_response(leaves["mx"], case.staple)
                        if case.staple is not None else None)

    def session(*, stapled: bool, tls: bool) -> PeerSession:
        s = _mail_session(0, tls=tls)
        if tls:
            s.tls = {**(s.tls or {}), "ocsp_stapled": stapled}
        return s

    revoked = OCSPCase({"status": "revoked"})
    cases = [
        (revoked, [session(stapled=True, tls=True)], ["ocsp-revoked-staple-accepted"]),
        (OCSPCase(None), [session(stapled=False, tls=True)], ["ocsp-missing-staple-accepted"]),
        (revoked, [_refused(), _mail_session(1, tls=False)], ["ocsp-cleartext-after-staple"]),
        (OCSPCase({"status": "good"}), [session(stapled=True, tls=True)], []),
        (revoked, [_refused()], []),
    ]
    for case, sessions, oracles in cases:
        delivery = _delivery({"mx": sessions}, _log("=> r1@d.test"), ["r1@d.test"])
        ex = _run_synthetic(monkeypatch, lane, case, delivery, "harness.fuzz.lanes.ocsp")
        assert [v.oracle for v in ex.violations] == oracles, case


def _refused() -> PeerSession:
    s = PeerSession(0, "mx", ("192.0.2.25", 1025), Transcript("mx"))
    s.tls = {"handshake_ok": True, "ocsp_stapled": True, "tls_established_before_mail": True}
    return s
