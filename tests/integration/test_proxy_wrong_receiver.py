"""Every PROXY check, failed on purpose by a deliberately wrong receiver.

Project rule: a check that cannot fail is a defect. tests/support/proxy_receiver.py is a small
PROXY + SMTP server on 127.0.0.1; without faults it is a correct receiver (built on the project's
strict decoder) and every PROXY scenario passes against it. Each entry of FAULTS switches on one
fault and names the checks it must trip: a MUST check's verdict becomes `fail`, a SHOULD/MAY
check's `non-strict`, and the message (or the "actual" it shows) says what went wrong. LEGIT lists
behaviour the spec allows, which must not fail.

The sessions run through the real SessionRunner and the checks through the real Runner, with two
things an external target cannot give: a second source address (127.0.0.2, "not a listed proxy",
for PROXY-03) and the receiver's log (for PROXY-24's "proxy logged apart").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.observations import Observations
from harness.engine.actions.session import SessionRunner
from harness.engine.runner import RunOptions, Runner, scenario_outcome
from harness.report.model import STRENGTH, CheckResult, ScenarioResult
from support.harness import SCENARIOS, check_result, scenario
from support.proxy_receiver import FAULTS as RECEIVER_FAULTS
from support.proxy_receiver import ProxyReceiver

CATALOGUE = load_catalogue()
CHECKS = all_checks()
ROLE = {"accept": "accept-{n}@faulty.test"}
# The receiver's own timeout: short, except where the scenario judges the timeout itself.
TIMEOUT = {"proxy-no-header-timeout": 3.0, "proxy-silence-then-header": 3.0, "proxy-v1-fragmented": 3.0,
           "proxy-v2-fragmented": 3.0}


def proxy_ids() -> list[str]:
    """PROXY scenarios that can run against an external receiver (no target knobs)."""
    return sorted(p.stem for p in (SCENARIOS / "proxy").glob("*.yaml") if not scenario(p.stem).knobs)


def play(sid: str, *faults: str, timeout: float | None = None, out: Path = Path("/tmp")) -> ScenarioResult:
    sc = scenario(sid)
    for f in [f for f in faults if f.startswith("timeout=")]:  # a receiver timeout, not a fault
        timeout, faults = float(f.split("=")[1]), tuple(x for x in faults if x != f)
    rx_timeout = timeout if timeout is not None else TIMEOUT.get(sid, 1.0)
    with ProxyReceiver(*faults, timeout=rx_timeout) as rx:
        runner = SessionRunner(rx.connector(), lambda role, n: ROLE.get(role, f"{role}-{{n}}@faulty.test")
                               .replace("{n}", str(n)), reply_timeout=rx_timeout + 1.5, label=sid)
        obs = Observations(sid, "proxy-receiver")
        start = time.monotonic()
        obs.sessions.append(runner.run(sc.action["session"]))
        time.sleep(0.02)  # the receiver logs a session as it answers QUIT
        obs.logs = {"main": list(rx.log)}
    check_runner = Runner([], [], CATALOGUE, CHECKS, RunOptions(out_dir=out))
    res = ScenarioResult(sc.id, sc.title, sc.feature, sc.side, "proxy-receiver", list(sc.requirements),
                         scenario_outcome([]))
    res.checks = [check_runner._run_check(sc, chk, obs) for chk in sc.checks]
    res.outcome = scenario_outcome([c.outcome for c in res.checks])
    res.duration_s = time.monotonic() - start
    return res


def seen(c: CheckResult) -> str:
    return f"{c.message} | {c.actual or ''}".lower()


def expect(check: str, says: str, level: str = "MUST") -> tuple[str, str, str]:
    return check, level, says


# (scenario, faults, [(check, level, words)], id); verdict: MUST → fail, SHOULD/MAY → non-strict.
FAULTS = [
    # PROXY-01
    pytest.param("proxy-silence-then-header", ["early_banner"], [expect("proxy_no_early_reply", "spoke")],
                 id="banner-during-the-silence"),
    # PROXY-02
    pytest.param("proxy-no-header-timeout", ["timeout=1"], [expect("proxy_timeout", "closed after only 1.0", "MAY")],
                 id="timeout-shorter-than-3s"),
    pytest.param("proxy-no-header-timeout", ["banner_on_reject"],
                 [expect("proxy_timeout", "sent a banner and went on", "MAY")], id="banner-after-timeout"),
    # PROXY-03
    pytest.param("proxy-unlisted-source", ["trust_everyone"],
                 [expect("proxy_unlisted_direct", "set its own client address")], id="proxy-line-from-anyone"),
    pytest.param("proxy-listed-without-header", ["guess"],
                 [expect("proxy_rejected", "was accepted")], id="guesses-no-header"),
    # PROXY-04, 05, 06, 07, 09: valid headers refused
    pytest.param("proxy-v1-port-zero", ["reject_port_zero"], [expect("proxy_accepted", "valid header was rejected")],
                 id="refuses-port-0"),
    pytest.param("proxy-v1-unknown-longest", ["reject_unknown"],
                 [expect("proxy_accepted", "valid header was rejected"),
                  expect("proxy_accepted", "valid header was rejected", "SHOULD")], id="refuses-unknown"),
    pytest.param("proxy-v1-tcp4", ["identity_real"],
                 [expect("proxy_identity", "misparsed: the bytes say client 203.0.113.7:40123")],
                 id="ignores-the-header-client"),
    # PROXY-07
    pytest.param("proxy-v1-no-crlf-in-107", ["no_line_limit"],
                 [expect("proxy_rejected", "accepted although no crlf in the first 107", "SHOULD")],
                 id="no-107-byte-limit"),
    pytest.param("proxy-v1-4096-bytes", ["slow_reject"], [expect("proxy_aborted", "closed only", "SHOULD")],
                 id="rejects-only-at-timeout"),
    # PROXY-08, 09, 10
    pytest.param("proxy-v1-bare-lf", ["bare_lf"], [expect("proxy_rejected", "bare lf")], id="accepts-bare-lf"),
    pytest.param("proxy-v1-tab", ["lenient_v1"], [expect("proxy_rejected", "exactly one space")], id="accepts-tab"),
    pytest.param("proxy-v1-leading-zero-octet", ["lenient_v1"], [expect("proxy_rejected", "203.0.113.007")],
                 id="accepts-heading-zero"),
    pytest.param("proxy-v1-tab", ["banner_on_reject"], [expect("proxy_aborted", "not aborted")],
                 id="banner-and-503-instead-of-abort"),
    # PROXY-11, 13, 14
    pytest.param("proxy-v2-version-1", ["any_version"], [expect("proxy_rejected", "version 1")], id="any-version"),
    pytest.param("proxy-v2-command-2", ["any_command"], [expect("proxy_rejected", "command 0x2")], id="any-command"),
    pytest.param("proxy-v2-family-13", ["any_family"], [expect("proxy_rejected", "0x13 is undefined")],
                 id="any-family"),
    pytest.param("proxy-v2-local-family-ff", ["any_family"],
                 [expect("proxy_rejected", "0xff is undefined", "SHOULD")], id="local-any-family"),
    # PROXY-12
    pytest.param("proxy-v2-local-empty", ["reject_local"], [expect("proxy_accepted", "valid header was rejected")],
                 id="refuses-local"),
    pytest.param("proxy-v2-local-addresses", ["local_uses_header"],
                 [expect("proxy_identity", "misparsed: the bytes say client 127.0.0.1")], id="local-uses-header"),
    # PROXY-15
    pytest.param("proxy-v2-udp4", ["udp_identity"],
                 [expect("proxy_fallback", "address from the header", "MAY"), expect("proxy_identity", "misparsed")],
                 id="udp-client-used"),
    # PROXY-16
    pytest.param("proxy-v2-tcp4", ["byteswap_port"], [expect("proxy_identity", "203.0.113.7:48028")],
                 id="port-byte-order"),
    pytest.param("proxy-v2-tcp4", ["use_destination"], [expect("proxy_identity", "198.51.100.25")],
                 id="destination-as-client"),
    # PROXY-17: the missing address bytes read from the EHLO that follows
    pytest.param("proxy-v2-tcp4-len-4", ["short_block_garbage"],
                 [expect("proxy_rejected", "needs 12 bytes"), expect("proxy_identity", "bytes that were not sent")],
                 id="short-block-read-from-session-bytes"),
    # PROXY-18
    pytest.param("proxy-v2-tlv-noop", ["ignore_length"], [expect("proxy_session_bytes", "leaked")],
                 id="tlvs-leak-into-smtp"),
    pytest.param("proxy-v2-tlv-len-300", ["max_232"], [expect("proxy_accepted", "valid header was rejected")],
                 id="232-byte-buffer"),
    # PROXY-19
    pytest.param("proxy-v2-crc32c-valid", ["reject_valid_crc"], [expect("proxy_accepted", "valid header was rejected")],
                 id="wrong-crc-algorithm"),
    pytest.param("proxy-v2-crc32c-invalid", ["banner_on_reject"], [expect("proxy_crc32c", "not aborted", "SHOULD")],
                 id="bad-crc-not-aborted"),
    # PROXY-20
    pytest.param("proxy-v1-fragmented", ["single_read"], [expect("proxy_accepted", "valid header was rejected", "SHOULD")],
                 id="one-recv-only"),
    pytest.param("proxy-v2-fragmented", ["early_banner"], [expect("proxy_no_early_reply", "before the header")],
                 id="fragmented-early-banner"),
    pytest.param("proxy-v2-cut-12-fin", ["hang_on_eof"], [expect("proxy_aborted", "still open")],
                 id="hangs-after-fin"),
    pytest.param("proxy-v2-cut-27-silent", ["banner_on_reject"], [expect("proxy_aborted", "not aborted")],
                 id="truncated-then-banner"),
    # PROXY-21, 22
    pytest.param("proxy-ehlo-before-header", ["guess"], [expect("proxy_rejected", "neither a v1 nor a v2")],
                 id="ehlo-first-served"),
    pytest.param("proxy-v1-prefix-silent", ["banner_on_reject"], [expect("proxy_aborted", "not aborted")],
                 id="prefix-then-banner"),
    # PROXY-23
    pytest.param("proxy-v1-ehlo-same-segment", ["swallow_trailing"], [expect("proxy_session_bytes", "lost")],
                 id="trailing-bytes-lost"),
    pytest.param("proxy-v2-ehlo-same-segment", ["duplicate_trailing"],
                 [expect("proxy_session_bytes", "duplicated")], id="trailing-bytes-twice"),
    # PROXY-24
    pytest.param("proxy-policy-relay-allowed", ["policy_by_proxy"],
                 [expect("proxy_policy", "made for 127.0.0.1, not the client 203.0.113.7")], id="relay-by-proxy"),
    pytest.param("proxy-policy-refused-range", ["policy_by_proxy"],
                 [expect("proxy_policy", "does not follow the client")], id="refused-range-by-proxy"),
    pytest.param("proxy-v1-tcp4", ["log_without_proxy"],
                 [expect("proxy_logged_separately", "does not name the proxy")], id="proxy-not-logged"),
    pytest.param("proxy-v2-tcp4", ["identity_real"],
                 [expect("proxy_logged_separately", "does not name the header's client"),
                  expect("proxy_identity", "misparsed")], id="client-not-logged"),
    # PROXY-25
    pytest.param("proxy-v2-len-65535", ["die_on_big"], [expect("proxy_survives", "fresh connection got")],
                 id="dies-on-a-big-header"),
]


@pytest.mark.parametrize(("sid", "faults", "expected"), FAULTS)
def test_wrong_receiver_fails_the_check(sid: str, faults: list[str], expected: list[tuple[str, str, str]],
                                        tmp_path: Path) -> None:
    res = play(sid, *faults, timeout=2.0 if "slow_reject" in faults else None, out=tmp_path)
    assert all(c.verdict != "error" for c in res.checks), [(c.check, c.message, c.evidence) for c in res.checks]
    for check, level, says in expected:
        c = check_result(res, check, level=level)
        assert c.verdict == ("fail" if level == "MUST" else "non-strict"), (check, c.verdict, c.message, c.actual)
        assert says in seen(c), (check, c.message, c.actual)


# Allowed behaviour: never a failure.
LEGIT = [
    pytest.param("proxy-v2-crc32c-invalid", ["no_crc"], [("proxy_crc32c", "SHOULD", "unsupported", "does not verify")],
                 id="crc-not-supported"),
    pytest.param("proxy-v2-udp4", [], [("proxy_fallback", "MAY", "pass", "accepted with the real endpoints")],
                 id="udp-with-real-endpoints"),
    pytest.param("proxy-v2-udp4", ["reject_local", "max_232", "any_family"],
                 [("proxy_identity", "MUST", "pass", "client 127.0.0.1")], id="udp-identity-is-real"),
    pytest.param("proxy-v1-prefix-silent", [], [("proxy_rejected", "MUST", "pass", "closed the connection")],
                 id="prefix-waits-then-closes"),
    pytest.param("proxy-no-header-timeout", ["hang_on_eof"], [("proxy_timeout", "MAY", "pass", "closed after 3.0")],
                 id="timeout-of-3s"),
    pytest.param("proxy-v1-tcp6-expanded", [], [("proxy_identity", "MUST", "pass", "2001:db8::7")],
                 id="expanded-ipv6-same-client"),
]


@pytest.mark.parametrize(("sid", "faults", "expected"), LEGIT)
def test_allowed_behaviour_does_not_fail(sid: str, faults: list[str], expected: list[tuple[str, str, str, str]],
                                         tmp_path: Path) -> None:
    res = play(sid, *faults, out=tmp_path)
    for check, level, verdict, says in expected:
        c = check_result(res, check, level=level)
        assert (c.verdict, says in seen(c)) == (verdict, True), (check, c.verdict, c.message, c.actual)


@pytest.mark.parametrize("sid", proxy_ids())
def test_correct_receiver_passes_every_scenario(sid: str, tmp_path: Path) -> None:
    res = play(sid, out=tmp_path)
    assert res.outcome.value == "pass", [(c.check, c.level, c.verdict, c.message) for c in res.checks]
    bad = [(c.check, c.verdict, c.message) for c in res.checks if c.verdict not in ("pass", "skip")]
    assert not bad, bad


def test_every_proxy_check_has_a_fault_that_trips_it() -> None:
    """Each (check, strength) used by a PROXY scenario is failed by some entry of FAULTS."""
    wanted = {(c.check, STRENGTH[c.level or CATALOGUE[c.requirement].strength])
              for sid in proxy_ids() for c in scenario(sid).checks}
    covered = {(check, level) for p in FAULTS for check, level, _ in p.values[2]}
    assert wanted - covered == set()
    assert {c for c, _ in wanted} == {name for name in CHECKS if name.startswith("proxy_")}


def test_every_receiver_fault_is_used() -> None:
    used = {f for p in FAULTS + LEGIT for f in p.values[1] if not f.startswith("timeout=")}
    assert used | {"hang_on_eof"} >= set(RECEIVER_FAULTS) - {"accept_truncated_v2"}, \
        set(RECEIVER_FAULTS) - used
