"""The postfix target: Postfix 3.7 of Debian's postfix package, unpacked into /opt/mtaconform/postfix
by scripts/build-postfix.sh and run in a lab namespace from fixtures/targets/postfix/.

It starts, its capability probe and EHLO say what it has, one scenario or more per feature it
supports runs with its verdict pinned (a verdict other than `pass` is a known Postfix deviation,
with the string the report must show for it), PRDR and OCSP scenarios are `unsupported`, and
stopping it leaves no namespace, process or folder behind. Skipped when the prefix is missing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.runner import RunOptions, Runner, TargetRun
from harness.lab import netns, records
from harness.report.model import ScenarioResult
from harness.targets.spec import resolve
from support.harness import needs_root
from support.harness import scenario as load

pytestmark = [needs_root, pytest.mark.integration]
scenario = functools.cache(load)
PREFIX = Path("/opt/mtaconform/postfix")

# scenario: (verdict, {(check, requirement, level): verdict} for the checks that do not pass,
#            a string the report must show)
EXPECTED: dict[str, tuple[str, dict[tuple[str, str, str], str], str]] = {
    # DANE: a matching "3 1 1" record authenticates ("Matched DANE EE", "Verified"); a mismatch
    # defers without falling back; an insecure MX gets no DANE claim ("Trusted").
    "dane-01-usable-tlsa": ("pass", {}, "Matched DANE EE certificate"),
    "dane-02-mismatch-deferred": ("pass", {}, "no matching DANE TLSA records"),
    "dane-20-insecure-mx": ("pass", {}, "Trusted TLS connection established"),
    "dane-27-port": ("pass", {}, "_2525._tcp.mx.d.test"),
    # PROXY: the listed proxy's header is taken (log "connect from unknown[203.0.113.7]"), but
    # Postfix never logs the proxy's own address (PROXY-24: "logged separately").
    "proxy-v1-tcp4": ("fail", {("proxy_logged_separately", "PROXY-24", "MUST"): "fail"},
                      "connect from unknown[203.0.113.7]:40123"),
    # A bad header gets "421 4.3.0 … Server local error" before the close, not a silent abort.
    "proxy-v1-port-65536": ("fail", {("proxy_aborted", "PROXY-10", "MUST"): "fail",
                                     ("proxy_identity", "PROXY-25", "MUST"): "skip"},
                            "421 4.3.0 mta.target.test Server local error"),
    # From a host that is not the proxy, on the ordinary listener: an unknown command.
    "proxy-unlisted-source": ("pass", {}, "500 5.5.2 Error: command not recognized"),
    # DSN: EHLO keyword; a bounce for the refused recipient only, with Original-Recipient added
    # although no ORCPT was given (a SHOULD NOT); an alias's bounce names what it expanded to.
    "dsn-server-ehlo-keyword": ("pass", {}, "250-DSN"),
    # (and its Arrival-Date follows X-Postfix-Queue-ID, Original-Recipient follows Final-Recipient).
    "dsn-failure-rcpt": ("non-strict", {("dsn_original_recipient", "DSN-18", "SHOULD"): "non-strict",
                                        ("dsn_field_order", "DSN-25", "SHOULD"): "non-strict"},
                         "X-Postfix-Queue-ID"),
    "dsn-final-recipient-alias": ("pass", {}, "Original-Recipient: rfc822;dsn-alias@target.test"),
    # ENVID longer than 100 characters (RFC 3461 §4.4) is accepted.
    "dsn-server-envid-invalid": ("fail", {("dsn_param_replies", "DSN-04", "MUST"): "fail"}, "ENVID="),
}
# Found by the capability probe (capabilities.sh: no PRDR, no OCSP parameter in `postconf -d`).
UNSUPPORTED = ["prdr-client-final-permanent", "prdr-server-block", "ocsp-client-revoked-required"]


@pytest.fixture(scope="module")
def postfix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runner, TargetRun]]:
    """This worker's lab with Postfix running; it lives for the module."""
    if not (PREFIX / "usr/lib/postfix/sbin/master").exists():
        pytest.skip(f"{PREFIX} is missing: scripts/build-postfix.sh unpacks it")
    runner = Runner([], [], load_catalogue(), all_checks(),
                    RunOptions(out_dir=tmp_path_factory.mktemp("postfix-run")))
    with runner.open_target(resolve("postfix")) as run:
        if run.unavailable:
            pytest.skip(f"postfix not available: {run.unavailable}")
        yield runner, run


def play(postfix: tuple[Runner, TargetRun], sid: str) -> ScenarioResult:
    runner, run = postfix
    return runner.scenario(run, scenario(sid))


def shown(res: ScenarioResult) -> str:
    parts = [f"{c.message} {c.actual or ''}" for c in res.checks]
    parts += [str(e.content) for c in res.checks for e in c.evidence]
    parts += [str(e.content) for e in res.evidence]
    return "\n".join(parts)


def test_version_and_capability_probe(postfix: tuple[Runner, TargetRun]) -> None:
    _, run = postfix
    assert (run.info.version or "").startswith("3.")
    probed = set(run.info.capabilities["features"])
    assert {"DANE", "PROXY", "DSN"} <= probed and not {"PRDR", "OCSP"} & probed
    res = play(postfix, "dsn-server-ehlo-keyword")  # starts the daemon; the EHLO probe follows
    assert res.verdict == "pass", res.reason
    assert {"DSN", "PIPELINING", "8BITMIME"} <= set(run.info.capabilities["ehlo"])
    assert "PRDR" not in run.info.capabilities["ehlo"]


@pytest.mark.parametrize("sid", sorted(EXPECTED, key=lambda s: (str(sorted(scenario(s).knobs.items())), s)))
def test_scenario_on_postfix(sid: str, postfix: tuple[Runner, TargetRun]) -> None:
    verdict, not_passing, needle = EXPECTED[sid]
    res = play(postfix, sid)
    detail = [(c.check, c.requirement, c.level, c.verdict, c.message) for c in res.checks]
    assert res.verdict == verdict, (res.reason, res.traceback, detail)
    got = {(c.check, c.requirement, c.level): c.verdict for c in res.checks if c.verdict != "pass"}
    assert got == not_passing, detail
    assert needle in shown(res), (needle, detail)


@pytest.mark.parametrize("sid", UNSUPPORTED)
def test_prdr_and_ocsp_are_unsupported(sid: str, postfix: tuple[Runner, TargetRun]) -> None:
    res = play(postfix, sid)
    assert res.verdict == "unsupported" and not res.checks
    assert "capability probe does not report" in (res.reason or ""), res.reason


def test_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    if not (PREFIX / "usr/lib/postfix/sbin/master").exists():
        pytest.skip(f"{PREFIX} is missing: scripts/build-postfix.sh unpacks it")
    runner = Runner([], [], load_catalogue(), all_checks(), RunOptions(out_dir=tmp_path))
    with runner.open_target(resolve("postfix")) as run:
        assert run.unavailable is None and run.lab is not None and run.driver is not None
        res = runner.scenario(run, scenario("dsn-failure-rcpt"))  # a delivery and a bounce
        assert res.verdict == "non-strict", res.reason
        name, master = run.lab.name, run.driver.process.pid  # type: ignore[union-attr]
        pids = run.lab.pids()
        assert master in pids and len(pids) > 2  # master, qmgr, pickup, …
        assert not run.driver.working_pids() and not run.driver.queue_busy()
    assert not netns.exists(name)
    assert not (netns.NETNS_ETC_DIR / name).exists() and not (records.RUN_DIR / name).exists()
    left = [p for p in pids if os.path.exists(f"/proc/{p}") and "postfix" in
            Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert left == []
