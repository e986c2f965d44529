"""aiosmtpd as a built-in managed target (`--target aiosmtpd`, fixtures/targets/aiosmtpd/).

The harness starts fixtures/targets/aiosmtpd/launch.py inside the lab from aiosmtpd.yaml: PROXY
headers from the listed proxy 192.0.2.11 only, a log with the client identity. It claims only
`proxy` and cannot send mail: the other features' server scenarios are unsupported and every
client-side scenario is skipped. tests/integration/test_proxy_aiosmtpd.py runs the whole PROXY
suite against the same server started by hand (the external mode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.runner import RunOptions, Runner
from harness.report.model import ScenarioResult
from harness.targets.spec import builtin_names, resolve
from support.harness import assert_pinned, needs_root, scenario
from support.leftovers import leftovers

pytestmark = [needs_root, pytest.mark.integration]

# scenario: (verdict, reason fragment or None, {(check, requirement): verdict} for non-passing checks)
EXPECTED: dict[str, tuple[str, str | None, dict[tuple[str, str], str]]] = {
    # PROXY: identity from the header in the EHLO greeting and the log, the proxy logged apart.
    "proxy-v1-tcp4": ("pass", None, {}),
    "proxy-v2-tcp4": ("pass", None, {}),
    # From 192.0.2.12 (not listed) the PROXY line is an unknown command, the real address kept.
    "proxy-unlisted-source": ("pass", None, {}),
    # A malformed header is refused and the connection closed.
    "proxy-v1-bare-lf": ("pass", None, {("proxy_identity", "PROXY-25"): "skip"}),
    # Features it does not claim, and mail it cannot send.
    "dsn-server-ehlo-keyword": ("unsupported", "does not claim the dsn feature", {}),
    "prdr-server-ehlo-keyword": ("unsupported", None, {}),
    "ocsp-server-bad-expired": ("unsupported", None, {}),
    "dsn-failure-rcpt": ("skip", "the target does not send mail", {}),
    "dane-01-usable-tlsa": ("skip", "the target does not send mail", {}),
}


@pytest.fixture(scope="module")
def aiosmtpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], ScenarioResult]]:
    runner = Runner([], [], load_catalogue(), all_checks(),
                    RunOptions(out_dir=tmp_path_factory.mktemp("aiosmtpd-managed")))
    with runner.open_target(resolve("aiosmtpd")) as run:
        if run.unavailable:
            pytest.skip(f"aiosmtpd not available: {run.unavailable}")
        yield lambda sid: runner.scenario(run, scenario(sid))


def test_builtin_spec() -> None:
    spec = resolve("aiosmtpd")
    assert "aiosmtpd" in builtin_names() and "proxy-target" not in builtin_names()
    assert (spec.kind, spec.features, spec.inject, spec.start["ready"]) == ("managed", ("proxy",), None, "pidfile")
    assert spec.logs == {"main": "log/aiosmtpd.log"}
    # The external example stays what the README and test_proxy_aiosmtpd.py use.
    external = resolve(str(Path(spec.folder or ".") / "proxy-target.yaml"))
    assert (external.kind, external.name, external.features) == ("external", "aiosmtpd", ("proxy",))


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_scenario(sid: str, aiosmtpd: Callable[[str], ScenarioResult]) -> None:
    verdict, reason, not_passing = EXPECTED[sid]
    res = aiosmtpd(sid)
    assert_pinned(res, verdict, not_passing, reason)
    if sid == "proxy-v1-tcp4":  # the log is evidence, and names client and proxy apart
        log = next(e.content for e in res.evidence if e.label == "target main log")
        assert "H=(client.test) [203.0.113.7]:40123 PRX=[192.0.2.11]:" in log, log


def test_start_probe_stop_leaves_nothing(tmp_path: Path) -> None:
    runner = Runner([], [], load_catalogue(), all_checks(), RunOptions(out_dir=tmp_path))
    with runner.open_target(resolve("aiosmtpd")) as run:
        if run.unavailable:
            pytest.skip(f"aiosmtpd not available: {run.unavailable}")
        assert run.lab is not None and run.driver is not None
        res = runner.scenario(run, scenario("proxy-v2-tcp4"))  # starts it, then the probe runs
        assert res.verdict == "pass", res.reason
        caps = run.info.capabilities
        assert caps["banner"].startswith("mta.target.test Python SMTP 1.4"), caps
        assert {"8BITMIME", "SIZE"} <= set(caps["ehlo"]), caps
        assert (run.info.version or "").startswith("1.4"), run.info.version
        assert run.driver.pidfile.read_text().strip() == str(run.driver.process.pid)  # type: ignore[union-attr]
        name, pids = run.lab.name, run.lab.pids()
        assert pids, "the launcher runs inside the lab"
    assert leftovers(name, pids) == []
