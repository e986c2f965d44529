"""Nothing is left behind: not after a normal run, not after Ctrl-C, not after SIGKILL.

A lab is a network namespace, an /etc/netns entry, a runtime folder under /run/mtaconform and
the processes inside the namespace (the MTA and its children).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lab import netns, records
from harness.lab.lab import Lab
from support.harness import ROOT, needs_root
from support.leftovers import alive

pytestmark = [needs_root, pytest.mark.integration]

MTACONFORM = [sys.executable, "-m", "harness.cli"]
# A scenario that keeps Exim busy: the peer delays its replies by 30 s (the PRDR-21 fast lane).
BUSY = "prdr-client-patience"


def labs_of(pid: int) -> set[str]:
    """Namespaces, /etc/netns entries and run folders that belong to the run with PID."""
    prefix = f"{records.NAME_PREFIX}{pid}-"
    found: set[str] = set()
    for d in (netns.NETNS_RUN_DIR, netns.NETNS_ETC_DIR, records.RUN_DIR):
        if d.exists():
            found |= {p.name for p in d.iterdir() if p.name.startswith(prefix)}
    return found


def processes_in(names: set[str]) -> list[int]:
    return [pid for name in names for pid in netns.pids(name)]


def wait_gone(pids: list[int], timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def start_run(out: Path, *extra: str, quiet: bool = True) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*MTACONFORM, "run", *(["--quiet"] if quiet else []), "--out", str(out),
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_busy_lab(proc: subprocess.Popen[bytes], timeout: float = 30) -> tuple[set[str], list[int]]:
    """The run's lab once Exim and a delivery process are running inside it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = labs_of(proc.pid)
        pids = processes_in(names)
        if len(pids) >= 2:  # the daemon and the delivery that waits for the slow peer
            return names, pids
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the run never got busy: {proc.communicate()}")


def test_sigkill_then_next_run_removes_everything(tmp_path: Path) -> None:
    victim = start_run(tmp_path / "killed", "--scenario", BUSY)
    names, pids = wait_for_busy_lab(victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    # Killed: its lab and its MTA daemon are still there …
    assert labs_of(victim.pid) == names
    assert any(alive(p) for p in pids)

    # … until the next run (here just opening a lab) cleans up after it.
    with Lab(tmp_path / "next") as lab:
        assert set(lab.stale_removed) >= names
    assert labs_of(victim.pid) == set()
    assert wait_gone(pids) == [], "processes of the killed run survive"
    assert not list((records.RECORD_DIR).glob(f"{records.NAME_PREFIX}{victim.pid}-*.json"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_cleans_up_and_keeps_the_reports(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    # Sorted by id, these two run before the busy one.
    proc = start_run(out, "--scenario", "prdr-client-not-offered", "--scenario", "prdr-client-offered",
                     "--scenario", BUSY, quiet=False)
    assert proc.stderr is not None
    for line in proc.stderr:  # one progress line per finished scenario (stderr is not a terminal)
        if b"prdr-client-offered" in line:
            break
    names, pids = wait_for_busy_lab(proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()
    assert labs_of(proc.pid) == set()
    assert wait_gone(pids) == []
    results = json.loads((out / "results.json").read_text())
    assert results["stopped_early"] == "interrupted"
    assert (out / "index.html").exists() and (out / "junit.xml").exists()
    assert any(s["outcome"] == "pass" for s in results["scenarios"]), "what ran before is kept"


def test_normal_run_leaves_nothing(tmp_path: Path) -> None:
    proc = subprocess.run([*MTACONFORM, "run", "--quiet", "--out", str(tmp_path),
                           "--scenario", "prdr-server-ehlo-keyword"], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    for d in (netns.NETNS_RUN_DIR, netns.NETNS_ETC_DIR, records.RUN_DIR):
        leftovers = [p.name for p in d.iterdir()] if d.exists() else []
        mine = [n for n in leftovers if n.startswith(records.NAME_PREFIX) and
                records.process_start_time(int(n[len(records.NAME_PREFIX):].split("-")[0])) is None]
        assert mine == [], f"{d} still holds {mine}"
