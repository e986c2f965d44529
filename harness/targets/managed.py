"""The generic driver for a managed target: one spec, any MTA.

It renders the spec's config template for this lab and these knobs, starts the MTA inside the
lab, injects messages, reads its queue and logs, and stops it by pid. It restarts the MTA only
when the knobs change.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ..lab import addresses
from ..lab.lab import Lab, Process
from . import activity
from .queue import QueueEntry, parse_queue
from .spec import TargetSpec


BUSY_SETTLE_S = 0.2


class TargetError(RuntimeError):
    """The target could not be configured, started or driven (not a conformance failure)."""


@dataclass
class LogMark:
    offsets: dict[str, int] = field(default_factory=dict)


@dataclass
class InjectResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float


class ManagedTarget:
    def __init__(self, spec: TargetSpec, lab: Lab, workdir: Path, *, port: int = 25) -> None:
        self.spec = spec
        self.lab = lab
        self.workdir = Path(workdir)
        self.port = port
        self.process: Process | None = None
        self.knob_key: str | None = None
        self.restarts = 0
        self.tls_files: Any = None  # the target's certificate, key and trusted CA (LeafFiles)
        # Files some knobs need (OCSP, issue #5: the staple DER for tls_ocsp_file): called with
        # (knobs, workdir) at each render; the mapping it returns is `files` in the template.
        self.knob_files: Callable[[Mapping[str, Any], Path], Mapping[str, Any]] | None = None
        # The template may live in another spec's folder ("../exim/exim.conf.j2": exim-dsninfo
        # reuses Exim's): search the template's own folder first, then the spec's.
        # `config.extra` templates (Postfix's master.cf) are found the same way.
        template = Path(spec.config.get("template", "")) if spec.config else Path()
        self._template_name = template.name
        folder = Path(spec.folder or ".")
        extra = [Path(e["template"]) for e in spec.config.get("extra", [])] if spec.config else []
        search = [str((folder / t).parent) for t in (template, *extra)] + [str(folder)]
        self._jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(list(dict.fromkeys(search))),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    # -- paths and rendering ----------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.workdir / self.spec.config["file"]

    @property
    def pidfile(self) -> Path:
        return self.workdir / "target.pid"

    @property
    def proxy_port(self) -> int:
        """Where the lab's listed PROXY address connects (spec `proxy_port`, else the SMTP port)."""
        return self.spec.proxy_port or self.port

    def extra_files(self) -> list[tuple[str, Path]]:
        """(template, rendered file) for each of the spec's `config.extra`."""
        return [(e["template"], self.workdir / e["file"]) for e in self.spec.config.get("extra", [])]

    def dir(self, name: str) -> Path:
        return self.workdir / name

    def env(self) -> dict[str, str] | None:
        """The environment of the target's commands: the harness's own plus the spec's `env`
        (None, i.e. inherited unchanged, when the spec has none)."""
        if not self.spec.env:
            return None
        try:
            return {**os.environ, **self.spec.environment(os.environ)}
        except ValueError as exc:
            raise TargetError(f"{self.spec.source or self.spec.name}: {exc}") from None

    def _fmt(self, argv: Sequence[str], **extra: Any) -> list[str]:
        # {python}: the harness's own interpreter (a target written in Python, like aiosmtpd's
        # launcher, uses the venv's packages); {spec_dir}: the spec's folder (helper scripts).
        values = {"config": str(self.config_path), "config_dir": str(self.config_path.parent),
                  "pidfile": str(self.pidfile),
                  "workdir": str(self.workdir), "python": sys.executable,
                  "spec_dir": str(self.spec.folder or "."), **extra}
        out: list[str] = []
        for arg in argv:
            if arg == "{recipients}":
                out.extend(extra.get("recipients", []))
            else:
                out.append(arg.format(**values))
        return out

    def render(self, knobs: Mapping[str, Any], template: str | None = None) -> str:
        """The config template (or TEMPLATE, one of `config.extra`) for this lab and KNOBS."""
        try:
            files = dict(self.knob_files(knobs, self.workdir)) if self.knob_files else {}
        except ValueError as exc:
            raise TargetError(f"{self.spec.name}: {exc}") from None
        context = {
            # The variables the spec's `env` sets, for a template that must pass them on to the
            # MTA's own children (Exim's keep_environment).
            "env": {name: value for name, value in (self.env() or {}).items() if name in self.spec.env},
            "files": files,
            "lab": {
                "target_hostname": addresses.TARGET_HOSTNAME,
                "target_domain": addresses.TARGET_DOMAIN,
                "target_v4": addresses.TARGET_V4,
                "target_v6": addresses.TARGET_V6,
                "client_v4": addresses.CLIENT_V4,
                "submitter_v4": addresses.SUBMITTER_V4,
                "proxy_v4": addresses.PROXY_LISTED_V4,
                "dns_v4": addresses.DNS_V4,
            },
            "paths": {name: self.dir(name) for name in self.spec.config.get("dirs", [])}
            | {"pidfile": self.pidfile, "workdir": self.workdir},
            "port": self.port,
            "proxy_port": self.proxy_port,
            "owner": self._owner(),
            "knobs": dict(knobs),
            "tls": {"cert": self.tls_files.cert, "key": self.tls_files.key, "ca": self.tls_files.ca,
                    "full_chain": getattr(self.tls_files, "full_chain", None)}
            if self.tls_files else {},
        }
        name = Path(template).name if template else self._template_name
        try:
            return self._jinja.get_template(name).render(**context)
        except jinja2.TemplateError as exc:
            where = f"{template or self.spec.config['template']}:{getattr(exc, 'lineno', '?')}"
            raise TargetError(f"{where}: cannot render the config template: {exc}") from None

    def _owner(self) -> dict[str, Any]:
        """The spec's `config.owner` with its uid and gid (Postfix's virtual delivery needs them)."""
        name = self.spec.config.get("owner") if self.spec.config else None
        if not name:
            return {}
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise TargetError(f"{self.spec.name}: config.owner {name!r} is not a user on this machine") from None
        return {"name": name, "uid": pw.pw_uid, "gid": pw.pw_gid}

    # -- life cycle -------------------------------------------------------------------------

    def check_installed(self) -> str | None:
        """None if the MTA is installed, else a reason (scenarios will be skipped with it)."""
        argv = self._fmt(self.spec.install_check)
        hint = f" ({self.spec.install_hint})" if self.spec.install_hint else ""
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=30, env=self.env())
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(argv)}: {exc}{hint}"
        except TargetError as exc:
            return str(exc)
        if proc.returncode != 0:
            return f"{' '.join(argv)} exited {proc.returncode}{hint}"
        return None

    def _prepare_dirs(self) -> None:
        owner = self.spec.config.get("owner")
        for name in self.spec.config.get("dirs", []):
            d = self.dir(name)
            d.mkdir(parents=True, exist_ok=True)
            if owner:
                shutil.chown(d, owner, owner)

    def ensure(self, knobs: Mapping[str, Any]) -> bool:
        """Run the target with these knobs; restart only if they changed. True if (re)started."""
        key = json.dumps(dict(knobs), sort_keys=True, default=str)
        if self.process is not None and self.process.alive() and key == self.knob_key:
            return False
        self.stop()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._prepare_dirs()
        self.config_path.write_text(self.render(knobs))
        for template, path in self.extra_files():
            path.write_text(self.render(knobs, template))
        self.start()
        self.knob_key = key
        return True

    def start(self) -> None:
        self.pidfile.unlink(missing_ok=True)
        argv = self._fmt(self.spec.start["command"])
        self.process = self.lab.spawn(f"target-{self.spec.name}", argv, env=self.env())
        self.restarts += 1
        timeout = float(self.spec.start.get("timeout", 10))
        is_ready = self._listening if self.spec.start.get("ready") == "port" else self.pidfile.exists
        ready = self.lab.wait_for(
            lambda: is_ready() or not self.process.alive(), timeout  # type: ignore[union-attr]
        )
        if not self.process.alive() or not ready:
            out = self.process.output.read_text(errors="replace")[-2000:]
            status = "did not become ready" if self.process.alive() else "exited"
            self.stop()
            raise TargetError(f"{self.spec.name} {status} on start ({' '.join(argv)}):\n{out}")

    def _listening(self) -> bool:
        """`ready: port`: the target's address and port are in LISTEN state in the lab — read from
        the daemon's /proc/PID/net/tcp (its network namespace's table), so no probe connection
        ends up in the MTA's log. The port may be opened by a child of the daemon. With a spec
        `proxy_port`, that listener too."""
        assert self.process is not None
        rows: list[list[str]] = []
        for table in ("tcp", "tcp6"):
            try:
                rows += [r.split() for r in
                         Path(f"/proc/{self.process.pid}/net/{table}").read_text().splitlines()[1:]]
            except OSError:
                continue
        for number in {self.port, self.proxy_port}:
            port = f"{number:04X}"
            wanted = {socket.inet_aton(addresses.TARGET_V4)[::-1].hex().upper() + ":" + port,
                      "00000000:" + port, "0" * 32 + ":" + port}
            if not any(len(f) > 3 and f[3] == "0A" and f[1] in wanted for f in rows):
                return False
        return True

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def daemon_pids(self) -> set[int]:
        """The running daemon and its resident processes: those whose command line matches the
        spec's `start.resident` pattern (OpenSMTPD's "smtpd: queue", "smtpd: pony express", …,
        which live as long as the daemon and are not work in progress)."""
        if self.process is None or not self.process.alive():
            return set()
        pids = {self.process.pid}
        pattern = self.spec.start.get("resident")
        if pattern:
            for pid in self.lab.pids():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                if re.search(pattern, cmd.decode(errors="replace")):
                    pids.add(pid)
        return pids

    def busy(self) -> bool:
        """The spec's `busy` command says the MTA still has work in hand (OpenSMTPD: an envelope
        in flight or not tried yet) — for MTAs whose deliveries are not processes of their own."""
        cmd = self.spec.busy
        if cmd is None or not self.alive():
            return False
        proc = self.lab.run(self._fmt(cmd.command), timeout=60, env=self.env())
        text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        return re.search(cmd.pattern or ".", text, re.MULTILINE) is not None

    def stop(self) -> None:
        if self.process is None:
            return
        sig = getattr(signal, f"SIG{self.spec.stop_signal}")
        self.process.stop(sig)
        if self.process in self.lab.processes:
            self.lab.processes.remove(self.process)
        self.process = None
        self.knob_key = None
        # Children of the daemon (deliveries in flight) leave with it or are killed here.
        self.wait_quiet(timeout=3.0, kill=True)

    def wait_quiet(self, timeout: float = 30.0, kill: bool = False) -> bool:
        """Wait until the only target process left in the lab is the daemon itself.

        Deliveries, bounces and queue runs are separate processes; once they are gone, what the
        MTA will do about the last action is done.
        """
        def quiet() -> bool:
            return not self.working_pids() and not self.queue_busy() and not self.busy()

        deadline = time.monotonic() + timeout
        ok = self.lab.wait_for(quiet, timeout, interval=0.01)
        # A `busy` listing can miss work for a moment (OpenSMTPD: a message just committed is not
        # yet in its scheduler's listing), so "done" must still hold BUSY_SETTLE_S later.
        while ok and self.spec.busy is not None and self.alive():
            time.sleep(BUSY_SETTLE_S)
            if quiet():
                break
            ok = self.lab.wait_for(quiet, max(0.0, deadline - time.monotonic()), interval=0.01)
        if not ok and kill:
            for pid in self.working_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if ok and self.spec.quiet.get("settle") and self.alive():
            time.sleep(float(self.spec.quiet["settle"]))  # a log another process writes (postlogd)
        return ok

    def working_pids(self) -> set[int]:
        """The target's processes at work: every one besides the daemon's, or, while a daemon
        whose spec has `quiet` runs (its processes outlive their jobs: Postfix's idle smtpd,
        qmgr, pickup), those holding a TCP connection — an SMTP session in or out."""
        others = set(self.lab.pids()) - self.daemon_pids() - {p.pid for p in self.lab.processes}
        return activity.connected(others) if self.spec.quiet and self.alive() else others

    def queue_busy(self) -> bool:
        """A message lies in one of the spec's `quiet.queue` folders (Postfix: maildrop, incoming,
        active): the MTA has it in hand. A message moves from one to the next without a gap."""
        return bool(self.spec.quiet and self.alive()
                    and activity.files_below(self.workdir, self.spec.quiet["queue"]))

    # -- driving ----------------------------------------------------------------------------

    def inject(self, sender: str, recipients: Sequence[str], message: bytes,
               timeout: float = 900.0) -> InjectResult:
        if not self.spec.inject:
            raise TargetError(f"{self.spec.name}: the spec has no inject command")
        argv = self._fmt(self.spec.inject.command, sender=sender, recipients=list(recipients))
        start = time.monotonic()
        try:
            proc = self.lab.run(argv, input=message, timeout=timeout, env=self.env())
        except subprocess.TimeoutExpired:
            raise TargetError(f"inject did not finish in {timeout:.0f} s: {' '.join(argv)}") from None
        return InjectResult(argv, proc.returncode, proc.stdout.decode(errors="replace"),
                            proc.stderr.decode(errors="replace"), time.monotonic() - start)

    def flush(self, timeout: float = 10.0) -> None:
        """Force a queue run. With the spec's `quiet.deferred`, wait until the MTA has taken up
        every message waiting there: Postfix serves `postqueue -f` after it returns."""
        if not self.spec.flush:
            return
        before = activity.stamps(activity.files_below(self.workdir, self.spec.quiet.get("deferred", [])))
        self.lab.run(self._fmt(self.spec.flush.command), timeout=900, env=self.env())

        def taken_up() -> bool:
            now = activity.stamps(before)
            return all(now.get(p) != t for p, t in before.items())

        if before and not self.lab.wait_for(taken_up, timeout, interval=0.01):
            raise TargetError(f"{self.spec.name}: queued messages not taken up {timeout:.0f} s after "
                              f"{' '.join(self.spec.flush.command)}")

    def queue(self) -> list[QueueEntry] | None:
        if not self.spec.queue:
            return None
        proc = self.lab.run(self._fmt(self.spec.queue.command), timeout=60, env=self.env())
        return parse_queue(self.spec.queue.format or "exim", proc.stdout.decode(errors="replace"))

    def reset(self) -> None:
        for pattern in self.spec.reset_remove:
            for path in glob.glob(str(self.workdir / pattern), recursive=True):
                p = Path(path)
                if p.is_file() or p.is_symlink():
                    p.unlink(missing_ok=True)
        if self.spec.reset_command and self.alive():  # a queue held by the daemon (OpenSMTPD)
            self.lab.run(self._fmt(self.spec.reset_command), timeout=60, env=self.env())
        if self.spec.reset_restart:
            self.stop()  # the next ensure() starts it afresh

    def run_pattern(self, spec_cmd: Any) -> str | None:
        proc = self.lab.run(self._fmt(spec_cmd.command), timeout=60, env=self.env())
        text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if spec_cmd.pattern:
            m = re.search(spec_cmd.pattern, text)
            return m.group(1).strip() if m else None
        return text.strip()

    def setting(self, name: str) -> str | None:
        cmd = self.spec.settings.get(name)
        return self.run_pattern(cmd) if cmd else None

    def version(self) -> str | None:
        return self.run_pattern(self.spec.version) if self.spec.version else None

    def capabilities(self) -> list[str]:
        if not self.spec.capabilities:
            return []
        text = self.run_pattern(self.spec.capabilities) or ""
        return text.split()

    # -- logs -------------------------------------------------------------------------------

    def log_paths(self) -> dict[str, Path]:
        return {name: self.workdir / rel for name, rel in self.spec.logs.items()}

    def log_mark(self) -> LogMark:
        return LogMark({name: p.stat().st_size if p.exists() else 0
                        for name, p in self.log_paths().items()})

    def log_since(self, mark: LogMark) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, path in self.log_paths().items():
            if not path.exists():
                out[name] = []
                continue
            with open(path, "rb") as fh:
                fh.seek(mark.offsets.get(name, 0))
                out[name] = fh.read().decode(errors="replace").splitlines()
        return out

    def process_output(self) -> str:
        return self.process.output.read_text(errors="replace") if self.process else ""
