"""Each inbound fuzz lane runs briefly against the sandboxed Exim with a fixed seed (issue #8):
the CI smoke run of the campaigns; long campaigns are `mtaconform fuzz LANE --seconds N`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.harness import ROOT, needs_root

MTACONFORM = ROOT / ".venv" / "bin" / "mtaconform"


@needs_root
@pytest.mark.parametrize("lane, examples", [("proxy", 12), ("smtp", 4)])
def test_lane_runs_against_exim(lane: str, examples: int, tmp_path: Path) -> None:
    run = subprocess.run([str(MTACONFORM), "fuzz", lane, "--target", "exim", "--examples", str(examples),
                          "--seed", "1", "--shrink-seconds", "3", "--out", str(tmp_path), "-q"],
                         capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 1: Exim deviates (findings)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["target"] == "exim" and stats["seed"] == 1
    assert stats["executions"] >= examples and stats["executions_per_second"] > 0
    assert "220" in stats["reply_classes"] and stats["distinct_states"] >= 2
    assert (tmp_path / "index.html").read_text().count("Fuzz campaign") >= 1
    assert f"{lane} on exim:" in run.stdout
    for f in stats["findings"]:  # every finding saved is a replay file
        assert json.loads((tmp_path / f["file"]).read_text())["format"] == "mtaconform-fuzz-finding/1"


def test_self_lane_runs_in_process(tmp_path: Path) -> None:
    run = subprocess.run([str(MTACONFORM), "fuzz", "self", "--examples", "150", "--seed", "1",
                          "--out", str(tmp_path), "-q"], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr  # a finding here is a bug in the harness
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["executions"] >= 150 and stats["target"] == "harness (in-process)"
    assert {"smtp-replies", "smtp-commands", "proxy", "dsn", "ocsp"} <= set(stats["states"])
