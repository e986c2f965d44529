"""The generic driver for a managed target: one spec, any MTA.

It renders the spec's config template for this lab and these knobs, starts the MTA inside the
lab, injects messages, reads its queue and logs, and stops it by pid. It restarts the MTA only
when the knobs change.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ..lab import addresses
from ..lab.lab import Lab, Process
from .queue import QueueEntry, parse_queue
from .spec import TargetSpec


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
        template = Path(spec.config.get("template", "")) if spec.config else Path()
        self._template_name = template.name
        self._jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str((Path(spec.folder or ".") / template).parent),
                                            str(spec.folder)]),
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

    def dir(self, name: str) -> Path:
        return self.workdir / name

    def _fmt(self, argv: Sequence[str], **extra: Any) -> list[str]:
        values = {"config": str(self.config_path), "pidfile": str(self.pidfile),
                  "workdir": str(self.workdir), **extra}
        out: list[str] = []
        for arg in argv:
            if arg == "{recipients}":
                out.extend(extra.get("recipients", []))
            else:
                out.append(arg.format(**values))
        return out

    def render(self, knobs: Mapping[str, Any]) -> str:
        try:
            files = dict(self.knob_files(knobs, self.workdir)) if self.knob_files else {}
        except ValueError as exc:
            raise TargetError(f"{self.spec.name}: {exc}") from None
        context = {
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
            "knobs": dict(knobs),
            "tls": {"cert": self.tls_files.cert, "key": self.tls_files.key, "ca": self.tls_files.ca,
                    "full_chain": getattr(self.tls_files, "full_chain", None)}
            if self.tls_files else {},
        }
        try:
            return self._jinja.get_template(self._template_name).render(**context)
        except jinja2.TemplateError as exc:
            where = f"{self.spec.config['template']}:{getattr(exc, 'lineno', '?')}"
            raise TargetError(f"{where}: cannot render the config template: {exc}") from None

    # -- life cycle -------------------------------------------------------------------------

    def check_installed(self) -> str | None:
        """None if the MTA is installed, else a reason (scenarios will be skipped with it)."""
        try:
            proc = subprocess.run(list(self.spec.install_check), capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(self.spec.install_check)}: {exc}"
        if proc.returncode != 0:
            return f"{' '.join(self.spec.install_check)} exited {proc.returncode}"
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
        self.start()
        self.knob_key = key
        return True

    def start(self) -> None:
        self.pidfile.unlink(missing_ok=True)
        argv = self._fmt(self.spec.start["command"])
        self.process = self.lab.spawn(f"target-{self.spec.name}", argv)
        self.restarts += 1
        timeout = float(self.spec.start.get("timeout", 10))
        ready = self.lab.wait_for(
            lambda: self.pidfile.exists() or not self.process.alive(), timeout  # type: ignore[union-attr]
        )
        if not self.process.alive() or not ready:
            out = self.process.output.read_text(errors="replace")[-2000:]
            status = "did not become ready" if self.process.alive() else "exited"
            self.stop()
            raise TargetError(f"{self.spec.name} {status} on start ({' '.join(argv)}):\n{out}")

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

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
        daemon = {self.process.pid} if self.process and self.process.alive() else set()
        others = {p.pid for p in self.lab.processes}

        def quiet() -> bool:
            return not (set(self.lab.pids()) - daemon - others)

        ok = self.lab.wait_for(quiet, timeout, interval=0.01)
        if not ok and kill:
            for pid in set(self.lab.pids()) - daemon - others:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return ok

    # -- driving ----------------------------------------------------------------------------

    def inject(self, sender: str, recipients: Sequence[str], message: bytes,
               timeout: float = 900.0) -> InjectResult:
        if not self.spec.inject:
            raise TargetError(f"{self.spec.name}: the spec has no inject command")
        argv = self._fmt(self.spec.inject.command, sender=sender, recipients=list(recipients))
        start = time.monotonic()
        try:
            proc = self.lab.run(argv, input=message, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TargetError(f"inject did not finish in {timeout:.0f} s: {' '.join(argv)}") from None
        return InjectResult(argv, proc.returncode, proc.stdout.decode(errors="replace"),
                            proc.stderr.decode(errors="replace"), time.monotonic() - start)

    def flush(self) -> None:
        if self.spec.flush:
            self.lab.run(self._fmt(self.spec.flush.command), timeout=900)

    def queue(self) -> list[QueueEntry] | None:
        if not self.spec.queue:
            return None
        proc = self.lab.run(self._fmt(self.spec.queue.command), timeout=60)
        return parse_queue(self.spec.queue.format or "exim", proc.stdout.decode(errors="replace"))

    def reset(self) -> None:
        for pattern in self.spec.reset_remove:
            for path in glob.glob(str(self.workdir / pattern)):
                p = Path(path)
                if p.is_file() or p.is_symlink():
                    p.unlink(missing_ok=True)

    def run_pattern(self, spec_cmd: Any) -> str | None:
        proc = self.lab.run(self._fmt(spec_cmd.command), timeout=60)
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
