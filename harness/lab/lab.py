"""A sealed lab: one network namespace with the lab's addresses, resolver files and processes."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import addresses, netns, records

_counter = itertools.count(1)


def resolv_conf(nameserver: str) -> str:
    # glibc 2.36 strips the AD bit unless trust-ad is set (LAB-NOTES: "DNS as MTAs see it").
    return f"nameserver {nameserver}\noptions trust-ad timeout:1 attempts:2\n"


def hosts_file() -> str:
    return (
        "127.0.0.1 localhost\n::1 localhost\n"
        f"{addresses.TARGET_V4} {addresses.TARGET_HOSTNAME}\n"
        f"{addresses.TARGET_V6} {addresses.TARGET_HOSTNAME}\n"
    )


@dataclass
class Process:
    """A process started inside the lab; its output goes to a file, never a pipe."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    output: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 3.0) -> int | None:
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(grace)
        return self.popen.returncode


@dataclass
class Lab:
    """One network namespace per run (per worker under xdist).

    Use as a context manager: entering builds the lab (after removing stale labs of killed runs),
    leaving destroys it — processes, namespace, /etc/netns entry and ownership record.
    """

    workdir: Path | None = None  # process output files; default: inside the lab's run folder
    name: str = ""
    plan: addresses.AddressPlan = field(default_factory=addresses.AddressPlan)
    processes: list[Process] = field(default_factory=list)
    stale_removed: list[str] = field(default_factory=list)
    _record: records.LabRecord | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{records.NAME_PREFIX}{os.getpid()}-{next(_counter)}"
        self.workdir = Path(self.workdir) if self.workdir is not None else self.rundir / "out"

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if os.geteuid() != 0:
            raise netns.NetnsError("the lab needs root (network namespaces); run as root")
        self.stale_removed = records.remove_stale_labs()
        start = records.process_start_time(os.getpid())
        assert start is not None
        self._record = records.LabRecord(self.name, os.getpid(), start, str(self.workdir))
        # Record first: a run killed during set-up still leaves a record for the next run.
        self._record.write()
        try:
            netns.create(self.name)
            self._configure()
        except BaseException:
            self.close()
            raise

    @property
    def rundir(self) -> Path:
        """Runtime files of the lab's processes (an MTA's spool and logs).

        Under /run so that an MTA's unprivileged user can reach it whatever the permissions of
        the user's report folder; removed with the lab, also when a later run cleans up after a
        killed one.
        """
        return records.RUN_DIR / self.name

    def _configure(self) -> None:
        batch = [f"link set lo up"]
        batch += [f"addr add {a}/32 dev lo" for a in self.plan.v4]
        batch += [f"addr add {a}/128 dev lo nodad" for a in self.plan.v6]
        proc = subprocess.run(
            ["ip", "-n", self.name, "-batch", "-"],
            input="\n".join(batch) + "\n",
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise netns.NetnsError(f"configuring lab addresses: {proc.stderr.strip()}")
        self.run(["sysctl", "-q", "-w", "net.ipv4.ip_unprivileged_port_start=0"], check=True)
        for d in (records.RUN_DIR.parent, records.RUN_DIR, self.rundir):
            d.mkdir(mode=0o755, exist_ok=True)
            d.chmod(0o755)
        self.workdir.mkdir(parents=True, exist_ok=True)
        etc = netns.NETNS_ETC_DIR / self.name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(resolv_conf(addresses.DNS_V4))
        (etc / "hosts").write_text(hosts_file())

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        records.destroy(self.name)
        self._record = None

    # -- sockets and processes --------------------------------------------------------------

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A socket that lives inside the lab namespace."""
        with netns.entered(self.name):
            return socket.socket(family, type, proto)

    def connect(self, host: str, port: int, *, source: str | None = None,
                timeout: float = 10.0) -> socket.socket:
        """A TCP connection made from inside the lab, optionally from a chosen lab address."""
        if not addresses.is_lab_address(host):
            raise ValueError(f"{host} is not a lab address: lab sockets only reach the lab")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
            if source:
                sock.bind((source, 0))
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def command(self, argv: list[str]) -> list[str]:
        """ARGV wrapped so that it runs in the lab, with the lab's /etc/resolv.conf and hosts."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], *, input: bytes | str | None = None, timeout: float = 60.0,
            check: bool = False, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[bytes]:
        if isinstance(input, str):
            input = input.encode()
        proc = subprocess.run(self.command(argv), input=input, capture_output=True,
                              timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise netns.NetnsError(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}")
        return proc

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Process:
        """Start ARGV in the lab in its own session, stdout and stderr to a file in workdir."""
        out = self.workdir / f"{name}.out"
        with open(out, "ab") as fh:
            popen = subprocess.Popen(self.command(argv), stdin=subprocess.DEVNULL, stdout=fh,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                     cwd=cwd)
        proc = Process(name, argv, popen, out)
        self.processes.append(proc)
        return proc

    def wait_for(self, predicate, timeout: float, interval: float = 0.005) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    def pids(self) -> list[int]:
        return netns.pids(self.name)
