"""The target of a campaign: a managed MTA in its lab (with every feature switched on), or an
external server; connections to it, and the oracles that judge the target itself, not a reply.

The target-level oracles (issue #8): the process is alive and did not exit by a signal; a fresh
session gets a grammatical 220 banner in time; no new panic-log lines; no core file.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.catalogue import load_catalogue
from ..engine.checks import all_checks
from ..engine.runner import RunOptions, Runner, TargetRun
from ..report.model import Evidence
from ..smtp.client import ConnectionClosed, ReplyTimeout, SMTPClient
from ..smtp.codec import SMTPProtocolError
from ..smtp.transcript import Transcript
from ..targets.managed import LogMark, TargetError
from ..targets.spec import TargetSpec
from .model import Violation

BANNER_TIMEOUT_S = 5.0
CORE_GLOBS = ("core", "core.*", "*/core", "*/core.*", "**/vgcore.*")


class FuzzTargetError(RuntimeError):
    """The target cannot be fuzzed (not installed, will not start, unreachable)."""


def _signal_name(returncode: int | None) -> str:
    if returncode is None or returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


@dataclass
class FuzzTarget:
    spec: TargetSpec
    run: TargetRun
    knobs: dict[str, Any] = field(default_factory=dict)
    reply_timeout: float = 2.0
    banner_timeout: float = BANNER_TIMEOUT_S
    restarts: int = 0
    _known_cores: set[str] = field(default_factory=set)  # cores already reported

    @property
    def managed(self) -> bool:
        return self.run.driver is not None

    @property
    def describe(self) -> dict[str, Any]:
        source = str(self.spec.source) if self.spec.source else self.spec.name
        return {"name": self.spec.name, "source": source, "knobs": self.knobs}

    # -- connections --------------------------------------------------------------------------

    def connect(self, source: str = "client") -> socket.socket:
        """A connection from SOURCE: "client" (an ordinary SMTP client, not a listed proxy),
        "listed" (the lab's listed PROXY address) or "unlisted" (a proxy address not listed).
        An external target sees the harness's own address whatever SOURCE is."""
        # The engine's own connect: the listed proxy reaches the spec's PROXY listener
        # (`proxy_port`, Postfix's second smtpd), everything else the SMTP port.
        sock = self.run.connect(source if self.run.driver is not None and source != "client" else None)
        sock.settimeout(self.reply_timeout)
        return sock

    # -- target oracles -----------------------------------------------------------------------

    def mark(self) -> LogMark | None:
        return self.run.driver.log_mark() if self.run.driver else None

    def health(self, mark: LogMark | None, *, probe: bool) -> list[Violation]:
        """The target-level oracles, after a case: cheap ones always, the banner probe on demand."""
        found: list[Violation] = []
        driver = self.run.driver
        if driver is not None:
            if not driver.alive():
                return [self._exited()]  # no banner to probe
            if mark is not None:
                panic = self._panic_lines(mark)
                if panic:
                    found.append(Violation("panic-log", f"{len(panic)} new panic-log line(s): {panic[0][:200]}",
                                           "the MTA's own invariants (panic log)",
                                           (Evidence("panic log", "log", "\n".join(panic)),)))
            cores = self.cores()
            if cores:
                found.append(Violation("core-dump", f"core file(s) appeared: {', '.join(cores)}",
                                       "the MTA's own invariants (no crash)"))
        if probe:
            problem, transcript = self.banner_probe()
            # A daemon killed by a signal resets its connections a moment before it can be
            # reaped: a refused probe may be the death itself.
            if problem and driver is not None and self.run.lab is not None and \
                    self.run.lab.wait_for(lambda: not driver.alive(), 0.3):
                return [self._exited(), *found]
            if problem:
                found.append(Violation("no-banner", problem, "RFC 5321 §4.3.1, §4.5.3.2 (220 greeting)",
                                       (Evidence("fresh session", "transcript", transcript.to_evidence()),)))
        return found

    def _exited(self) -> Violation:
        driver = self.run.driver
        assert driver is not None
        code = driver.process.popen.returncode if driver.process else None
        return Violation("target-exited", f"the target daemon ended ({_signal_name(code)})",
                         "RFC 5321 §4.3.2 (a server stays available)",
                         (Evidence("target output", "log", driver.process_output()[-3000:]),))

    def _panic_lines(self, mark: LogMark) -> list[str]:
        assert self.run.driver is not None
        logs = self.run.driver.log_since(mark)
        return [line for line in logs.get("panic", []) if line.strip()]

    def cores(self) -> list[str]:
        if self.run.driver is None:
            return []
        base = self.run.driver.workdir
        seen = {str(p.relative_to(base)) for g in CORE_GLOBS for p in base.glob(g) if p.is_file()}
        return sorted(seen - self._known_cores)

    def banner_probe(self) -> tuple[str | None, Transcript]:
        """A fresh session from an ordinary client: its 220 must arrive within BANNER_TIMEOUT_S."""
        transcript = Transcript()
        try:
            sock = self.connect("client")
        except OSError as exc:
            transcript.note(f"connect failed: {exc}")
            return f"a fresh connection failed: {exc}", transcript
        client = SMTPClient(sock, transcript, reply_timeout=self.banner_timeout)
        try:
            client.read_reply()  # any grammatical reply will do: a 554 refusal is alive too
            return None, transcript
        except ReplyTimeout:
            return f"no banner within {self.banner_timeout:g} s on a fresh connection", transcript
        except ConnectionClosed as exc:
            return f"a fresh connection was closed before any banner ({exc})", transcript
        except SMTPProtocolError as exc:
            return f"a fresh connection got a malformed banner: {exc}", transcript
        finally:
            client.quit()
            client.close()

    def recover(self, restart: bool = False) -> None:
        """Bring a dead (or, with RESTART, a hung) managed target back: a crash is a finding,
        and the campaign goes on."""
        driver = self.run.driver
        if driver is None:
            return
        self._known_cores |= set(self.cores())
        if restart or not driver.alive():
            driver.stop()
            driver.ensure(self.knobs)
            self.restarts += 1
        driver.wait_quiet(5.0, kill=True)

    def logs_since(self, mark: LogMark | None) -> list[Evidence]:
        if self.run.driver is None or mark is None:
            return []
        return [Evidence(f"target {name} log", "log", "\n".join(lines[-200:]))
                for name, lines in self.run.driver.log_since(mark).items() if lines]


@contextlib.contextmanager
def open_fuzz_target(spec: TargetSpec, *, knobs: Mapping[str, Any] | None = None, out_dir: Path,
                     reply_timeout: float = 2.0, workdir: Path | None = None) -> Iterator[FuzzTarget]:
    """The target running with its spec's fuzz knobs (every feature on) plus KNOBS; its lab and
    everything in it are removed when the block ends, also on Ctrl-C."""
    runner = Runner([], [spec], load_catalogue(), all_checks(),
                    RunOptions(out_dir=out_dir, workdir=workdir))
    merged = {**spec.fuzz_knobs, **(knobs or {})}
    with runner.open_target(spec) as run:
        if run.unavailable:
            raise FuzzTargetError(f"target {spec.name} is not available: {run.unavailable}")
        target = FuzzTarget(spec, run, merged if run.driver else {}, reply_timeout)
        if run.driver is not None:
            missing = spec.unsupported_knobs(merged)
            if missing:
                raise FuzzTargetError(f"target {spec.name} has no knob {', '.join(missing)} "
                                      "(its spec's fuzz knobs or the lane's)")
            try:
                run.driver.ensure(merged)
            except TargetError as exc:
                raise FuzzTargetError(str(exc)) from None
        yield target
