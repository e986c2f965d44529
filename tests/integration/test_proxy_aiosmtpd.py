"""The PROXY scenarios against aiosmtpd 1.4, a second and independent PROXY v1/v2 receiver.

aiosmtpd runs as an *external* target (fixtures/targets/aiosmtpd/launch.py on 127.0.0.1, with
proxy_protocol_timeout = 3 s), exactly as a user would run it next to Exim:

    mtaconform run --feature proxy --target exim --target fixtures/targets/aiosmtpd/proxy-target.yaml

so each PROXY check is seen on two implementations. aiosmtpd's parser is strict: it passes every
scenario it can run. The two it cannot: PROXY-03's unlisted source (an external target sees only
the harness's address) and the TLS-on-connect case (no knob). It does not verify CRC32C (allowed),
and its log is not readable from outside (proxy_logged_separately is skipped).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.runner import RunOptions, Runner
from harness.engine.scenario import Scenario
from harness.report.model import ScenarioResult
from harness.targets.spec import resolve
from support.harness import ROOT, SCENARIOS, scenario

LAUNCHER = ROOT / "fixtures" / "targets" / "aiosmtpd" / "launch.py"
TARGET_FILE = ROOT / "fixtures" / "targets" / "aiosmtpd" / "proxy-target.yaml"

NOT_PASSING: dict[str, tuple[str, dict[tuple[str, str, str], str]]] = {
    "proxy-unlisted-source": ("skip", {}),
    "proxy-v2-tls-on-connect": ("skip", {}),
    "proxy-v2-crc32c-invalid": ("pass", {("proxy_crc32c", "PROXY-19", "SHOULD"): "unsupported"}),
    "proxy-v1-tcp4": ("pass", {("proxy_logged_separately", "PROXY-24", "MUST"): "skip"}),
    "proxy-v2-tcp4": ("pass", {("proxy_logged_separately", "PROXY-24", "MUST"): "skip"}),
}


def proxy_ids() -> list[str]:
    return sorted(p.stem for p in (SCENARIOS / "proxy").glob("*.yaml"))


@pytest.fixture(scope="session")
def aiosmtpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Scenario], ScenarioResult]]:
    """aiosmtpd on a free port for this worker, and a runner with it as an external target."""
    proc = subprocess.Popen([sys.executable, str(LAUNCHER), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[:1] == ["ready"], ready
        spec = dataclasses.replace(resolve(str(TARGET_FILE)), address=("127.0.0.1", int(ready[2])))
        runner = Runner([], [], load_catalogue(), all_checks(),
                        RunOptions(out_dir=tmp_path_factory.mktemp("aiosmtpd-run")))
        with runner.open_target(spec) as run:
            assert run.info.capabilities.get("banner"), run.info.capabilities

            def play(sc: Scenario) -> ScenarioResult:
                return runner.scenario(run, sc)

            yield play
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.integration
@pytest.mark.parametrize("sid", proxy_ids())
def test_proxy_scenario_on_aiosmtpd(sid: str, aiosmtpd: Callable[[Scenario], ScenarioResult]) -> None:
    verdict, not_passing = NOT_PASSING.get(sid, ("pass", {}))
    res = aiosmtpd(scenario(sid))
    got = {(c.check, c.requirement, c.level): c.verdict for c in res.checks
           if c.verdict != "pass" and not (c.check == "proxy_identity" and c.verdict == "skip")}
    detail = [(c.check, c.requirement, c.level, c.verdict, c.message) for c in res.checks]
    assert (res.verdict, got) == (verdict, not_passing), (res.reason, res.traceback, detail)


def test_target_file_claims_proxy() -> None:
    spec = resolve(str(TARGET_FILE))
    assert (spec.kind, spec.features, spec.address) == ("external", ("proxy",), ("127.0.0.1", 2526))


def test_plain_smtp_targets_skip_proxy_scenarios(tmp_path: Path) -> None:
    """An smtp:// target that does not claim PROXY is never sent headers (PROXY-03: configured)."""
    runner = Runner([scenario("proxy-v1-tcp4")], [resolve("smtp://127.0.0.1:1")], load_catalogue(),
                    all_checks(), RunOptions(out_dir=tmp_path))
    [res] = runner.run().scenarios
    assert res.verdict == "skip" and "does not claim the proxy feature" in (res.reason or "")
