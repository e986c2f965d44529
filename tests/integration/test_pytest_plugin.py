"""`pytest --mta exim scenarios/`: scenarios as pytest items, one lab per xdist worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.harness import ROOT, needs_root

pytestmark = [needs_root, pytest.mark.integration]

PRDR = "scenarios/prdr"


def pytest_run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "--junitxml",
                           str(tmp_path / "junit.xml"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_scenarios_become_items_with_verdicts(tmp_path: Path) -> None:
    proc = pytest_run("--mta", "exim", "-q", "-rA",
                      f"{PRDR}/prdr-server-ehlo-keyword.yaml",       # Exim passes
                      f"{PRDR}/prdr-server-prerequisites.yaml",      # a MUST fails on Exim
                      f"{PRDR}/prdr-server-block.yaml",              # a SHOULD fails: a warning
                      f"{PRDR}/prdr-client-patience-slow.yaml",      # slow lane: skipped
                      tmp_path=tmp_path)
    out = proc.stdout
    assert "1 failed, 2 passed, 1 skipped" in out, out + proc.stderr
    assert "PASSED scenarios/prdr/prdr-server-ehlo-keyword.yaml::prdr-server-ehlo-keyword[exim]" in out
    assert "FAILED scenarios/prdr/prdr-server-prerequisites.yaml::prdr-server-prerequisites[exim]" in out
    assert "PRDR-02 MUST ehlo_keyword_implies: PRDR is advertised without ENHANCEDSTATUSCODES" in out
    assert "slow lane" in out
    assert "PRDR-08 (SHOULD)" in out  # the non-strict check is a warning, not a failure
    assert proc.returncode == 1


def test_xdist_workers_get_their_own_labs(tmp_path: Path) -> None:
    proc = pytest_run("--mta", "exim", "-q", "-n", "2", "--dist", "loadgroup",
                      f"{PRDR}/prdr-server-ehlo-keyword.yaml", f"{PRDR}/prdr-server-mail-param.yaml",
                      f"{PRDR}/prdr-client-offered.yaml", f"{PRDR}/prdr-client-not-offered.yaml",
                      tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


def test_a_malformed_scenario_is_a_collection_error(tmp_path: Path) -> None:
    bad = tmp_path / "scenarios" / "broken.yaml"
    bad.parent.mkdir()
    bad.write_text("id: broken\ntitle: a broken scenario\nfeature: prdr\nside: server\nrequirements: [PRDR-99]\n"
                   "expectation: xyz\naction: {session: [quit]}\nchecks: [{check: reply_is, requirement: PRDR-99}]\n")
    proc = pytest_run("--mta", "exim", "-q", str(bad), tmp_path=tmp_path)
    assert proc.returncode != 0
    assert f"{bad}:5: unknown requirement 'PRDR-99'" in proc.stdout + proc.stderr
