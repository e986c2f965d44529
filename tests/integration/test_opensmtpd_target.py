"""OpenSMTPD 6.8 as a built-in managed target (`--target opensmtpd`, fixtures/targets/opensmtpd/).

Debian's package unpacked into /opt/mtaconform/opensmtpd by scripts/build-opensmtpd.sh, run in a
private mount namespace (opensmtpd-ns.sh) whose mounts must vanish with it. It claims proxy (v2
only) and dsn. Every verdict below is pinned; a verdict other than `pass` is OpenSMTPD's own,
with the evidence that shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.runner import RunOptions, Runner
from harness.report.model import ScenarioResult
from harness.targets.spec import resolve
from support.harness import assert_pinned, needs_root, scenario
from support.leftovers import leftovers

pytestmark = [needs_root, pytest.mark.integration]

# scenario: (verdict, reason fragment or None, {(check, requirement): verdict} for non-passing checks)
EXPECTED: dict[str, tuple[str, str | None, dict[tuple[str, str], str]]] = {
    # PROXY v2 on the listener of the listed proxy: the header's client in the EHLO greeting and
    # the log ("smtp connected address=…"), the proxy apart ("smtp event=proxy address=…").
    "proxy-v2-tcp4": ("pass", None, {}),
    # From 192.0.2.12 (the plain SMTP listener) the PROXY line is an unknown command.
    "proxy-unlisted-source": ("pass", None, {}),
    # A truncated header is refused; the probe after it speaks v2 and gets a banner.
    "proxy-v2-cut-12-fin": ("pass", None, {("proxy_identity", "PROXY-25"): "skip"}),
    # OpenSMTPD reads PROXY v2 only: a valid v1 header is dropped (the v1 requirements fail).
    "proxy-v1-tcp4": ("fail", None, {("proxy_accepted", "PROXY-04"): "fail",
                                     ("proxy_logged_separately", "PROXY-24"): "fail",
                                     ("proxy_identity", "PROXY-25"): "skip"}),
    # DSN: advertised; but a NOTIFY=NEVER recipient makes every later NOTIFY of the transaction
    # "553 NOTIFY option NEVER cannot be combined with other options" (the flags are not reset).
    "dsn-server-ehlo-keyword": ("pass", None, {}),
    "dsn-server-notify-valid": ("fail", None, {("dsn_param_replies", "DSN-02"): "fail"}),
    # Its bounce is multipart/mixed with a message/delivery-status part, not multipart/report
    # (RFC 6522 §3), so it is not a readable DSN; the report shows it decoded as far as it goes.
    "dsn-failure-rcpt": ("fail", None, {("dsn_arrived", "DSN-19"): "fail", ("dsn_structure", "DSN-12"): "fail",
                                        ("dsn_returned_content", "DSN-13"): "fail",
                                        ("dsn_reporting_mta", "DSN-14"): "fail",
                                        ("dsn_envelope_id", "DSN-15"): "fail",
                                        ("dsn_original_recipient", "DSN-18"): "skip",
                                        ("dsn_remote_mta", "DSN-21"): "skip",
                                        ("dsn_diagnostic_code", "DSN-22"): "skip",
                                        ("dsn_groups", "DSN-24"): "fail"}),
    # Relayed to a DSN-capable next hop: RET, ENVID and NOTIFY pass on, ORCPT is dropped.
    "dsn-relay-dsn-capable": ("fail", None, {("dsn_params_relayed", "DSN-09"): "fail"}),
    # Features it does not claim (PRDR: nor does its capability probe report it).
    "prdr-server-ehlo-keyword": ("unsupported", None, {}),
    "ocsp-server-bad-expired": ("unsupported", None, {}),
}


def open_opensmtpd(out: Path) -> tuple[Runner, object]:
    runner = Runner([], [], load_catalogue(), all_checks(), RunOptions(out_dir=out))
    return runner, runner.open_target(resolve("opensmtpd"))


@pytest.fixture(scope="module")
def opensmtpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], ScenarioResult]]:
    runner, target = open_opensmtpd(tmp_path_factory.mktemp("opensmtpd"))
    with target as run:  # type: ignore[attr-defined]
        if run.unavailable:
            pytest.skip(f"opensmtpd is not unpacked (scripts/build-opensmtpd.sh): {run.unavailable}")
        yield lambda sid: runner.scenario(run, scenario(sid))


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_scenario(sid: str, opensmtpd: Callable[[str], ScenarioResult]) -> None:
    verdict, reason, not_passing = EXPECTED[sid]
    res = opensmtpd(sid)
    assert_pinned(res, verdict, not_passing, reason)
    if sid == "dsn-failure-rcpt":  # the bounce went to the sink, named after the lab's host
        bounce = next(e.content for e in res.evidence if e.label.startswith("DSN sink"))
        text = "".join(str(ev["data"]) for ev in bounce)
        assert "Reporting-MTA: dns; mta.target.test" in text and "multipart/mixed" in text, text[:2000]


def test_start_probe_stop_leaves_nothing(tmp_path: Path) -> None:
    runner, target = open_opensmtpd(tmp_path)
    with target as run:  # type: ignore[attr-defined]
        if run.unavailable:
            pytest.skip(f"opensmtpd is not unpacked (scripts/build-opensmtpd.sh): {run.unavailable}")
        res = runner.scenario(run, scenario("dsn-server-ehlo-keyword"))  # starts it; the probe runs
        assert res.verdict == "pass", res.reason
        assert run.driver.process is None, "reset.restart: stopped after each scenario"
        assert run.driver.ensure({})
        caps = run.info.capabilities
        assert caps["banner"] == "mta.target.test ESMTP OpenSMTPD", caps
        assert "DSN" in caps["ehlo"] and run.info.version == "6.8.0p2", (caps, run.info.version)
        # Its paths are bind mounts in its own mount namespace, seen by it and by nobody else.
        name, pids = run.lab.name, run.lab.pids()
        smtpd = run.driver.process.pid
        own = (Path(f"/proc/{smtpd}/mountinfo")).read_text()
        assert f"{name}/opensmtpd/var /var " in own and "mtaconform-opensmtpd" in own, own[-2000:]
        assert f"{name}/opensmtpd/var" not in Path("/proc/self/mountinfo").read_text()
        assert len(pids) >= 7, pids  # the parent and its six resident processes
        assert run.driver.wait_quiet(5.0), "resident processes count as the daemon, not as work"
    assert leftovers(name, pids) == []  # its mounts among them: none names the lab any more
