"""Network namespaces: create, enter for one thread, list processes, delete.

The harness process itself stays in the host namespace. Sockets that must live inside the lab
are created by a thread that has temporarily joined the lab namespace with setns(2); a socket
keeps the namespace it was created in for its whole life. This keeps an external target such as
``smtp://127.0.0.1:2525`` reachable while every lab socket stays sealed inside the lab.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NetnsError(RuntimeError):
    """A namespace operation failed (our environment, not the peer's fault)."""


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, CLONE_NEWNET)
        return
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(err)}")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; raise NetnsError with its stderr on failure when check is set."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def exists(name: str) -> bool:
    return (NETNS_RUN_DIR / name).exists()


def create(name: str) -> None:
    ip("netns", "add", name)


def delete(name: str) -> None:
    if exists(name):
        ip("netns", "del", name, check=False)


def pids(name: str) -> list[int]:
    """PIDs of all processes whose network namespace is NAME."""
    if not exists(name):
        return []
    proc = ip("netns", "pids", name, check=False)
    return [int(tok) for tok in proc.stdout.split() if tok.isdigit()]


def inode_of(path: str | Path) -> int:
    return os.stat(path).st_ino


def current_inode() -> int:
    """The network namespace of the calling thread."""
    return inode_of("/proc/thread-self/ns/net")


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the *calling thread* inside namespace NAME, then return to where it was.

    Only the calling thread moves; other threads and the process's child processes are not
    affected. Keep the body short: create sockets in it, don't block in it.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_RUN_DIR / name, os.O_RDONLY)
    try:
        _setns(target)
        try:
            if current_inode() != inode_of(NETNS_RUN_DIR / name):
                raise NetnsError(f"setns into {name} did not take effect")
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
