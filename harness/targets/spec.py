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
            },
        },
        "stop": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"signal": {"enum": ["TERM", "INT", "QUIT", "KILL"]}},
        },
        "inject": _command,
        "flush": _command,
        "queue": _command,
        "reset": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"remove": {"type": "array", "items": {"type": "string"}}},
        },
        "logs": {"type": "object", "additionalProperties": {"type": "string"}},
        "knobs": {"type": "object", "additionalProperties": {"type": "string"}},
        "settings": {"type": "object", "additionalProperties": _command},
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
    inject: CommandSpec | None = None
    flush: CommandSpec | None = None
    queue: CommandSpec | None = None
    reset_remove: tuple[str, ...] = ()
    logs: Mapping[str, str] = field(default_factory=dict)
    knobs: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, CommandSpec] = field(default_factory=dict)
    recipients: Mapping[str, str] = field(default_factory=dict)
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
    for key in ("version", "capabilities"):
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
        inject=_cmd(doc.get("inject")),
        flush=_cmd(doc.get("flush")),
        queue=_cmd(doc.get("queue")),
        reset_remove=tuple(doc.get("reset", {}).get("remove", ())),
        logs=dict(doc.get("logs", {})),
        knobs=dict(doc.get("knobs", {})),
        settings={k: _cmd(v) for k, v in doc.get("settings", {}).items()},  # type: ignore[misc]
        recipients=dict(doc.get("recipients", {})),
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
