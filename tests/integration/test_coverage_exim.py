"""`mtaconform coverage run` against the real exim-coverage target (Exim built with --coverage):
counters arrive from the daemon's session children and the delivery processes, and a PROXY
scenario raises the coverage of Exim's PROXY code. Skipped, saying so, where the optional target is
not built (MTACONFORM_BUILD_COVERAGE=1 scripts/setup.sh)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.harness import needs_root

ROOT = Path(__file__).resolve().parents[2]
MTACONFORM = ROOT / ".venv" / "bin" / "mtaconform"
BUILD_INFO = Path("/opt/mtaconform/exim-coverage/coverage-build.json")

pytestmark = [needs_root, pytest.mark.integration,
              pytest.mark.skipif(not BUILD_INFO.is_file(),
                                 reason="exim-coverage is not built (MTACONFORM_BUILD_COVERAGE=1 scripts/setup.sh)")]


def coverage_run(out: Path, *scenarios: str) -> dict[str, Any]:
    args = [a for s in scenarios for a in ("-s", s)]
    proc = subprocess.run([str(MTACONFORM), "coverage", "run", *args, "-q", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "Exim coverage (exim-coverage" in proc.stdout and "smtp_in.c" in proc.stdout
    return json.loads((out / "coverage.json").read_text())


def covered(data: dict[str, Any], *path: str) -> int:
    node: Any = data
    for key in path:
        node = node[key]
    return int(node["covered"])


def test_a_session_is_counted_and_a_proxy_scenario_reaches_the_proxy_code(tmp_path: Path) -> None:
    plain = coverage_run(tmp_path / "plain", "prdr-server-block")
    # The SMTP session runs in a child of the daemon that ends with _exit(); the local delivery in
    # another: both are counted (scripts/gcov-flush-on-exit.c).
    assert covered(plain, "feature_files", "smtp_in.c", "lines") > 300
    assert covered(plain, "feature_files", "receive.c", "lines") > 100
    assert covered(plain, "feature_files", "deliver.c", "lines") > 100
    assert covered(plain, "features", "prdr", "lines") > 20  # PRDR's 353 and per-recipient replies
    assert plain["counters"]["objects_counted"] > 50

    proxy = coverage_run(tmp_path / "proxy", "prdr-server-block", "proxy-v1-tcp4")
    before, after = covered(plain, "features", "proxy", "lines"), covered(proxy, "features", "proxy", "lines")
    assert after > before + 30, (before, after)  # the PROXY v1 header parser in smtp_in.c ran
    assert covered(proxy, "feature_files", "smtp_in.c", "lines") > covered(plain, "feature_files", "smtp_in.c", "lines")
    assert (tmp_path / "proxy" / "coverage" / "smtp_in.c.html").is_file()
