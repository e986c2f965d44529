"""Ownership records for labs, so that a run can remove the labs of runs that were killed.

A record names the namespace and its owner (pid and the kernel's start time of that pid, so a
reused pid is not mistaken for a live owner). Records live in ``/run/mtaconform/labs``: a tmpfs,
so a reboot forgets them together with the namespaces.
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import netns

RECORD_DIR = Path("/run/mtaconform/labs")
RUN_DIR = Path("/run/mtaconform/run")  # per-lab runtime folders (MTA spool, logs), world-traversable
NAME_PREFIX = "mtac-"


def process_start_time(pid: int) -> int | None:
    """Start time of PID in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


@dataclass(frozen=True)
class LabRecord:
    name: str
    owner_pid: int
    owner_start: int
    workdir: str

    def owner_alive(self) -> bool:
        return process_start_time(self.owner_pid) == self.owner_start

    def path(self) -> Path:
        return RECORD_DIR / f"{self.name}.json"

    def write(self) -> None:
        RECORD_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(self.path())

    def remove(self) -> None:
        self.path().unlink(missing_ok=True)


def read_records() -> list[LabRecord]:
    records = []
    if not RECORD_DIR.exists():
        return records
    for path in RECORD_DIR.glob("*.json"):
        try:
            records.append(LabRecord(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            path.unlink(missing_ok=True)  # a half-written record: its lab is removed below
    return records


def kill_namespace_processes(name: str, grace: float = 2.0) -> None:
    """SIGTERM every process in namespace NAME, then SIGKILL what is left after GRACE seconds.

    Every process in a lab namespace was started by the harness: the namespace is ours.
    """
    pids = netns.pids(name)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.02)
        pids = netns.pids(name)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while netns.pids(name) and time.monotonic() < deadline:
        time.sleep(0.02)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def destroy(name: str, workdir: str | None = None) -> None:
    """Remove a lab completely: its processes, namespace, /etc/netns entry and record."""
    kill_namespace_processes(name)
    netns.delete(name)
    shutil.rmtree(netns.NETNS_ETC_DIR / name, ignore_errors=True)
    shutil.rmtree(RUN_DIR / name, ignore_errors=True)
    (RECORD_DIR / f"{name}.json").unlink(missing_ok=True)


def remove_stale_labs() -> list[str]:
    """Destroy labs whose owner is gone; also lab namespaces with no record at all.

    Returns the names removed, so the caller can say so.
    """
    removed: list[str] = []
    records = read_records()
    owned = {r.name for r in records if r.owner_alive()}
    for record in records:
        if record.name not in owned:
            destroy(record.name, record.workdir)
            removed.append(record.name)
    # Namespaces or /etc/netns entries of ours without a live record (killed between
    # `ip netns add` and writing the record).
    names: set[str] = set()
    for d in (netns.NETNS_RUN_DIR, netns.NETNS_ETC_DIR, RUN_DIR):
        if d.exists():
            names |= {p.name for p in d.iterdir() if p.name.startswith(NAME_PREFIX)}
    for name in sorted(names - owned - set(removed)):
        pid_part = name[len(NAME_PREFIX) :].split("-")[0]
        if pid_part.isdigit() and process_start_time(int(pid_part)) is not None:
            continue  # being set up by a live process right now
        destroy(name)
        removed.append(name)
    return removed
