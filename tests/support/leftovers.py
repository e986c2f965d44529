"""What a lab leaves behind once it is closed: namespace, /etc/netns entry, run folder, processes
and — for targets that run in a mount namespace of their own (OpenSMTPD) — mounts."""

from __future__ import annotations

import time
from pathlib import Path

from harness.lab import netns, records


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a parent that may never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def mounts_naming(text: str) -> list[str]:
    """Every mount, in any process's mount namespace, whose line in /proc/PID/mountinfo names
    TEXT (a lab's name: its run folder is the source of the target's bind mounts)."""
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            lines = (proc / "mountinfo").read_text().splitlines()
        except OSError:
            continue
        found += [f"pid {proc.name}: {line}" for line in lines if text in line]
    return found


def leftovers(lab_name: str, pids: list[int], timeout: float = 5.0) -> list[str]:
    """What is left of the closed lab LAB_NAME whose processes were PIDS ([] when nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    left = [f"process {p}" for p in pids if alive(p)]
    left += [f"{d / lab_name}" for d in (netns.NETNS_RUN_DIR, netns.NETNS_ETC_DIR, records.RUN_DIR)
             if (d / lab_name).exists()]
    return left + mounts_naming(lab_name)
