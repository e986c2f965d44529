"""Target specs: YAML files that say how to configure, start, drive and stop an MTA.

Built-in specs live in ``fixtures/targets/<name>/<name>.yaml``. A user copies one to test their own
MTA or configuration. ``smtp://HOST:PORT`` is the external target: an SMTP server the harness does
not start, for inbound (server-side) scenarios only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..engine import yamlsrc
from ..engine.yamlsrc import InputError

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures"
BUILTIN_DIR = FIXTURES / "targets"

ROLES = ("accept", "reject_rcpt", "defer_rcpt", "reject_data", "defer_data", "full_data")

_argv = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_command = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {"command": _argv, "pattern": {"type": "string"}, "format": {"type": "string"}},
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "kind"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
        "description": {"type": "string"},
        "kind": {"enum": ["managed", "external"]},
        "features": {"type": "array", "items": {"enum": ["prdr", "dane", "ocsp", "proxy", "dsn"]}},
        "address": {"type": "string", "pattern": r"^smtp://"},
        "install_check": _argv,
        "version": _command,
        "capabilities": _command,
        "config": {
            "type": "object",
            "additionalProperties": False,
            "required": ["template", "file"],
            "properties": {
                "template": {"type": "string"},
                "file": {"type": "string"},
                "dirs": {"type": "array", "items": {"type": "string"}},
                "owner": {"type": "string"},
                # More files rendered beside the main one, with the same context (Postfix:
                # master.cf beside main.cf).
                "extra": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["template", "file"],
                    "properties": {"template": {"type": "string"}, "file": {"type": "string"}}}},
            },
        },
        "start": {
            "type": "object",
            "additionalProperties": False,
            "required": ["command"],
            "properties": {
                "command": _argv,
                "ready": {"enum": ["pidfile", "port"]},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
                # Processes (regular expression over their command line) that live as long as
                # the daemon and are not work in progress (OpenSMTPD's "smtpd: queue", …).
                "resident": {"type": "string"},
            },
        },
        # Where the lab's listed PROXY address connects: a listener that requires PROXY headers
        # (Postfix takes them per listener, not per client). Default: the SMTP port.
        "proxy_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        # How to tell that the MTA has finished what it was asked to do, for MTAs whose daemons
        # outlive their jobs (Postfix). Without it, any process beside the daemon is work.
        "quiet": {
            "type": "object",
            "additionalProperties": False,
            "required": ["queue"],
            "properties": {
                # Busy while a file lies below one of these (globs relative to the workdir)...
                "queue": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                # ...or a target process holds a TCP connection. After `flush`, wait until each
                # file below these has been taken up (moved, or its time stamp changed).
                "deferred": {"type": "array", "items": {"type": "string"}},
                # Seconds to let a log written by another process (Postfix's postlogd) catch up.
                "settle": {"type": "number", "minimum": 0, "maximum": 5},
            },
        },
        "stop": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"signal": {"enum": ["TERM", "INT", "QUIT", "KILL"]}},
        },
        "inject": _command,
        # The MTA still has work in hand while this command's output matches `pattern` (for MTAs
        # whose deliveries are not processes of their own: OpenSMTPD's queue listing).
        "busy": {**_command, "required": ["command", "pattern"]},
        "flush": _command,
        "queue": _command,
        "reset": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"remove": {"type": "array", "items": {"type": "string"}},
                           "command": _argv,
                           # Restart the MTA after each scenario: it keeps state between messages
                           # that the next scenario's world contradicts (OpenSMTPD caches MX
                           # answers and holds routes back after failures).
                           "restart": {"type": "boolean"}},
        },
        "logs": {"type": "object", "additionalProperties": {"type": "string"}},
        # Environment of every command the harness runs for the target (start, inject, flush,
        # queue, settings, probes), on top of the harness's own; ${NAME} / ${NAME:-default} in a
        # value is taken from the harness's environment when the target starts.
        "env": {
            "type": "object",
            "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {"type": "string"},
        },
        # Said with the install check's failure: how to get the MTA (e.g. the script that builds it).
        "install_hint": {"type": "string"},
        "knobs": {"type": "object", "additionalProperties": {"type": "string"}},
        "settings": {"type": "object", "additionalProperties": _command},
        # Fuzz campaigns (issue #8): the knobs that switch every feature on, so the fuzzer reaches
        # the code behind them (the default configuration leaves TLS, for one, off).
        "fuzz": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"knobs": {"type": "object"}},
        },
        "recipients": {
            "type": "object",
            "additionalProperties": False,
            "properties": {role: {"type": "string", "pattern": "@"} for role in ROLES},
        },
        "timeouts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "connect": {"type": "number", "exclusiveMinimum": 0},
                "reply": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    },
    "allOf": [
        {
            "if": {"properties": {"kind": {"const": "managed"}}},
            "then": {"required": ["config", "start", "install_check"]},
        },
        {
            "if": {"properties": {"kind": {"const": "external"}}},
            "then": {"required": ["address"]},
        },
    ],
}


@dataclass(frozen=True)
class CommandSpec:
    command: tuple[str, ...]
    pattern: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str
    source: Path | None
    description: str = ""
    features: tuple[str, ...] = ()
    address: tuple[str, int] | None = None
    install_check: tuple[str, ...] = ()
    version: CommandSpec | None = None
    capabilities: CommandSpec | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    start: Mapping[str, Any] = field(default_factory=dict)
    stop_signal: str = "TERM"
    proxy_port: int | None = None
    quiet: Mapping[str, Any] = field(default_factory=dict)
    reset_command: tuple[str, ...] = ()
    inject: CommandSpec | None = None
    busy: CommandSpec | None = None
    flush: CommandSpec | None = None
    queue: CommandSpec | None = None
    reset_remove: tuple[str, ...] = ()
    reset_restart: bool = False
    logs: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    install_hint: str = ""
    knobs: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, CommandSpec] = field(default_factory=dict)
    recipients: Mapping[str, str] = field(default_factory=dict)
    fuzz_knobs: Mapping[str, Any] = field(default_factory=dict)
    connect_timeout: float = 5.0
    reply_timeout: float = 10.0

    @property
    def managed(self) -> bool:
        return self.kind == "managed"

    @property
    def folder(self) -> Path | None:
        return self.source.parent if self.source else None

    def recipient(self, role: str, n: int) -> str | None:
        template = self.recipients.get(role)
        return template.replace("{n}", str(n)) if template else None

    def unsupported_knobs(self, knobs: Mapping[str, Any]) -> list[str]:
        return [k for k in knobs if k not in self.knobs]

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The spec's `env`, its ${NAME} / ${NAME:-default} references taken from ENVIRON.

        Raises ValueError naming the variable when one is unset and has no default."""
        return {name: expand_env(value, environ, name) for name, value in self.env.items()}


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, environ: Mapping[str, str], name: str = "") -> str:
    """VALUE with each ${VAR} (or ${VAR:-default}, used when VAR is unset or empty) replaced."""
    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if environ.get(var):
            return environ[var]
        if default is None:
            raise ValueError(f"env {name}: ${{{var}}} is not set in the environment and has no default")
        return default
    return _ENV_REF.sub(sub, value)


def _cmd(data: Mapping[str, Any] | None) -> CommandSpec | None:
    if not data:
        return None
    return CommandSpec(tuple(data["command"]), data.get("pattern"), data.get("format"))


def parse_smtp_url(url: str, file: str | Path = "--target", line: int | None = None) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme.lower() != "smtp" or not parts.hostname:
        raise InputError(file, line, f"{url!r}: expected smtp://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = 25
    if not 1 <= port <= 65535:
        raise InputError(file, line, f"{url!r}: the port is not a number from 1 to 65535")
    return parts.hostname, port


def spec_from_data(doc: Any, source: Path) -> TargetSpec:
    yamlsrc.validate(doc, SCHEMA, source)
    loc = yamlsrc.Located(source, doc)
    if doc.get("config"):
        tpl = source.parent / doc["config"]["template"]
        if not tpl.is_file():
            raise loc.error(["config", "template"], f"template {tpl} does not exist")
        for i, extra in enumerate(doc["config"].get("extra", [])):
            if not (source.parent / extra["template"]).is_file():
                raise loc.error(["config", "extra", i, "template"],
                                f"template {source.parent / extra['template']} does not exist")
    if doc.get("start", {}).get("resident"):
        try:
            re.compile(doc["start"]["resident"])
        except re.error as exc:
            raise loc.error(["start", "resident"], f"bad regular expression: {exc}") from None
    for key in ("version", "capabilities", "busy"):
        if doc.get(key, {}).get("pattern"):
            try:
                re.compile(doc[key]["pattern"])
            except re.error as exc:
                raise loc.error([key, "pattern"], f"bad regular expression: {exc}") from None
    address = (parse_smtp_url(doc["address"], source, yamlsrc.line_of(doc, ["address"]))
               if doc.get("address") else None)
    timeouts = doc.get("timeouts", {})
    return TargetSpec(
        name=doc["name"],
        kind=doc["kind"],
        source=source,
        description=doc.get("description", ""),
        features=tuple(doc.get("features", ())),
        address=address,
        install_check=tuple(doc.get("install_check", ())),
        version=_cmd(doc.get("version")),
        capabilities=_cmd(doc.get("capabilities")),
        config=dict(doc.get("config", {})),
        start=dict(doc.get("start", {})),
        stop_signal=doc.get("stop", {}).get("signal", "TERM"),
        proxy_port=doc.get("proxy_port"),
        quiet=dict(doc.get("quiet", {})),
        reset_command=tuple(doc.get("reset", {}).get("command", ())),
        inject=_cmd(doc.get("inject")),
        busy=_cmd(doc.get("busy")),
        flush=_cmd(doc.get("flush")),
        queue=_cmd(doc.get("queue")),
        reset_remove=tuple(doc.get("reset", {}).get("remove", ())),
        reset_restart=bool(doc.get("reset", {}).get("restart", False)),
        logs=dict(doc.get("logs", {})),
        env=dict(doc.get("env", {})),
        install_hint=doc.get("install_hint", ""),
        knobs=dict(doc.get("knobs", {})),
        settings={k: _cmd(v) for k, v in doc.get("settings", {}).items()},  # type: ignore[misc]
        recipients=dict(doc.get("recipients", {})),
        fuzz_knobs=dict(doc.get("fuzz", {}).get("knobs", {})),
        connect_timeout=float(timeouts.get("connect", 5.0)),
        reply_timeout=float(timeouts.get("reply", 10.0)),
    )


def builtin_names() -> list[str]:
    return sorted(p.parent.name for p in BUILTIN_DIR.glob("*/*.yaml") if p.stem == p.parent.name)


def external_spec(url: str, recipients: Mapping[str, str] | None = None) -> TargetSpec:
    """``smtp://HOST:PORT``, with the recipient addresses the user gives for each role."""
    host, port = parse_smtp_url(url)
    return TargetSpec(name=f"smtp://{host}:{port}", kind="external", source=None, address=(host, port),
                      recipients=dict(recipients or {}))


def with_base(doc: Any, path: Path, depth: int = 0) -> Any:
    """DOC merged over the spec it `extends` (a path relative to DOC's file): a variant of a
    target (exim-dsninfo: another Exim binary) states only what differs. Top-level keys are
    replaced, not merged; `config.template` stays relative to the variant's own folder."""
    if not isinstance(doc, dict) or "extends" not in doc:
        return doc
    ref = doc["extends"]
    line = yamlsrc.line_of(doc, ["extends"])
    if not isinstance(ref, str) or depth >= 3:
        raise InputError(path, line, "extends: the path of another target spec (at most 3 levels deep)")
    base_path = path.parent / ref
    if not base_path.is_file():
        raise InputError(path, line, f"extends: {base_path} does not exist")
    base = with_base(yamlsrc.load(base_path), base_path, depth + 1)
    if not isinstance(base, dict):
        raise InputError(base_path, 1, "a target file is a YAML mapping (name, kind, …)")
    merged = yamlsrc.LocatedDict({**base, **{k: v for k, v in doc.items() if k != "extends"}})
    merged.line = getattr(doc, "line", 1)
    merged.key_lines = {**getattr(base, "key_lines", {}), **getattr(doc, "key_lines", {})}
    return merged


def resolve(name: str, recipients: Mapping[str, str] | None = None) -> TargetSpec:
    """A built-in name, a spec file's path, or an smtp:// URL."""
    if name.lower().startswith("smtp://"):
        return external_spec(name, recipients)
    path = Path(name)
    if not path.suffix:
        path = BUILTIN_DIR / name / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(builtin_names())
            raise InputError("--target", None,
                             f"unknown target {name!r} (built-in: {known}; or a spec file, or smtp://HOST:PORT)")
    if not path.is_file():
        raise InputError(path, None, "no such target file")
    doc = yamlsrc.load(path)
    if not isinstance(doc, dict):
        raise InputError(path, 1, "a target file is a YAML mapping (name, kind, …)")
    spec = spec_from_data(with_base(doc, path), path.resolve())
    if recipients:
        spec = TargetSpec(**{**spec.__dict__, "recipients": {**spec.recipients, **recipients}})
    return spec
