"""What a target's processes are doing, read from /proc without touching them.

For MTAs whose daemons outlive their jobs (Postfix: qmgr, pickup, an smtpd waiting for its next
client), "a process besides the daemon exists" does not mean "work in progress". What does: a
process holding a TCP connection (an SMTP session in or out), or a message in a queue folder.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# /proc/net/tcp "st" column (include/net/tcp_states.h).
TCP_LISTEN = 0x0A
TCP_TIME_WAIT = 0x06


@dataclass(frozen=True)
class TcpSocket:
    inode: int
    state: int
    local_port: int


def _parse_tcp_table(text: str) -> list[TcpSocket]:
    """The rows of /proc/PID/net/tcp or tcp6: `sl local rem st … uid timeout inode …`."""
    out = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10:
            continue
        try:
            port = int(cols[1].rsplit(":", 1)[1], 16)
            out.append(TcpSocket(int(cols[9]), int(cols[3], 16), port))
        except (IndexError, ValueError):
            continue
    return out


def tcp_sockets(pid: int) -> list[TcpSocket]:
    """Every TCP socket of the network namespace PID lives in ([] if PID is gone)."""
    found: list[TcpSocket] = []
    for name in ("tcp", "tcp6"):
        try:
            found += _parse_tcp_table(Path(f"/proc/{pid}/net/{name}").read_text())
        except OSError:
            pass
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def connected(pids: Iterable[int]) -> set[int]:
    """The PIDs (all in one namespace) that hold a TCP connection: any socket not listening."""
    pids = list(pids)
    if not pids:
        return set()
    live = {s.inode for s in tcp_sockets(pids[0])
            if s.state not in (TCP_LISTEN, TCP_TIME_WAIT) and s.inode}
    return {pid for pid in pids if live and socket_inodes(pid) & live}


def files_below(root: Path, patterns: Iterable[str]) -> list[Path]:
    """Regular files below the folders matching PATTERNS (globs relative to ROOT), recursively."""
    out: list[Path] = []
    for pattern in patterns:
        for top in glob.glob(str(root / pattern)):
            for dirpath, _, names in os.walk(top):
                out += [Path(dirpath) / n for n in names]
    return [p for p in out if p.is_file()]


def stamps(paths: Iterable[Path]) -> dict[Path, float]:
    """Modification times of PATHS that still exist."""
    out = {}
    for p in paths:
        try:
            out[p] = p.stat().st_mtime
        except OSError:
            pass
    return out
