"""Scenario files: schema, loading and validation.

A scenario is one YAML file under ``scenarios/<feature>/``. It says which world to build, which
target knobs it needs, which action to take and which checks to apply. See
``scenarios/README.md`` for the format with examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import yamlsrc
from .catalogue import Catalogue
from .tls_world import CERT_SCHEMA, PEER_TLS_SCHEMA
from .yamlsrc import InputError

ID_PATTERN = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
FEATURES = ["prdr", "dane", "ocsp", "proxy", "dsn", "smtp"]
SIDES = ["server", "client"]

_reply_action = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reply": {"type": "string"},
                "raw": {"type": "string"},
                "delay": {"type": "number", "minimum": 0},
                "close": {"type": "boolean"},
                "hang": {"type": "boolean"},
            },
        },
    ]
}

_peer_script = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "banner": _reply_action,
        "ehlo": {"type": "array", "items": {"type": "string"}},
        "helo_only": {"type": "boolean"},
        "mail": _reply_action,
        "rcpt": {
            "oneOf": [
                _reply_action,
                {"type": "object", "additionalProperties": _reply_action,
                 "description": "per recipient address, with 'default'"},
            ]
        },
        "data": _reply_action,
        "end_of_data": {"type": "array", "items": _reply_action, "minItems": 1},
        "prdr": {"type": "array", "items": _reply_action, "minItems": 1},
        "rset": _reply_action,
        "quit": _reply_action,
        "starttls": _reply_action,
        "bdat": _reply_action,
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "feature", "side", "requirements", "expectation", "action",
                 "checks"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "title": {"type": "string", "minLength": 3},
        "feature": {"enum": FEATURES},
        "side": {"enum": SIDES},
        "requirements": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "description": {"type": "string"},
        "expectation": {"type": "string", "minLength": 3},
        "slow": {"type": "boolean"},
        "requires": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ehlo": {"type": "array", "items": {"type": "string"}},
                "features": {"type": "array", "items": {"type": "string"}},
                "managed": {"type": "boolean"},
                "capabilities": {"type": "array", "items": {"type": "string"},
                                 "description": "words the target's capability probe must report"},
            },
        },
        "target": {"type": "object", "description": "knobs for the target's configuration"},
        "world": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "dns": {"type": "object"},
                "pki": {"type": "object", "additionalProperties": CERT_SCHEMA},
                "peers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "address": {"type": "string"},
                            "port": {"type": "integer"},
                            **_peer_script["properties"],
                            "sessions": {"type": "array", "items": _peer_script},
                            "tls": PEER_TLS_SCHEMA,
                        },
                    },
                },
            },
        },
        "action": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {
                "session": {"type": "array", "minItems": 1},
                "outbound": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["to"],
                    "properties": {
                        "from": {"type": "string"},
                        "to": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "subject": {"type": "string"},
                        "body": {"type": "string"},
                        "retries": {"type": "integer", "minimum": 0, "maximum": 5},
                        "via": {"enum": ["command", "smtp"]},
                        "notify": {"type": "string", "pattern": "^(NEVER|((SUCCESS|FAILURE|DELAY),?)+)$"},
                        "ret": {"enum": ["FULL", "HDRS"]},
                        "envid": {"type": "string"},
                        # DSN scenarios (issue #7): per-recipient RCPT parameters (ORCPT, NOTIFY)
                        # merged over `notify`; seconds to wait before each forced queue run
                        # (message age for delay warnings); a body padded to this many bytes.
                        "rcpt_params": {"type": "object", "additionalProperties": {
                            "type": "object", "additionalProperties": {"type": ["string", "null"]}}},
                        "retry_wait": {"type": "number", "minimum": 0, "maximum": 30},
                        "body_bytes": {"type": "integer", "minimum": 0, "maximum": 20000000},
                    },
                },
            },
        },
        "checks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["check", "requirement"],
                "properties": {
                    "check": {"type": "string"},
                    "requirement": {"type": "string"},
                    "with": {"type": "object"},
                    "level": {"enum": ["SHOULD", "MAY"],
                              "description": "a weaker level than the requirement's, for one part of a compound requirement"},
                    "note": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class CheckSpec:
    check: str
    requirement: str
    params: Mapping[str, Any]
    line: int | None = None
    level: str | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    feature: str
    side: str
    requirements: tuple[str, ...]
    expectation: str
    action: Mapping[str, Any]
    checks: tuple[CheckSpec, ...]
    source: Path
    description: str = ""
    knobs: Mapping[str, Any] = field(default_factory=dict)
    world: Mapping[str, Any] = field(default_factory=dict)
    requires: Mapping[str, Any] = field(default_factory=dict)
    slow: bool = False

    @property
    def action_kind(self) -> str:
        return next(iter(self.action))

    def knob_key(self) -> str:
        """Scenarios with equal keys can share one running target."""
        return json.dumps(self.knobs, sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    """LocatedDict/LocatedList → plain containers (line info is only for loading)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_scenario(path: Path, catalogue: Catalogue, check_registry: Mapping[str, Any],
                  action_validators: Mapping[str, Any] | None = None) -> Scenario:
    doc = yamlsrc.load(path)
    if not isinstance(doc, dict):
        raise InputError(path, 1, "a scenario file is a YAML mapping (id, title, feature, …)")
    yamlsrc.validate(doc, SCHEMA, path)
    loc = yamlsrc.Located(path, doc)

    for i, rid in enumerate(doc["requirements"]):
        if rid not in catalogue:
            raise loc.error(["requirements", i], f"unknown requirement {rid!r}")
        req = catalogue[rid]
        if req.feature != doc["feature"] and doc["feature"] != "smtp":
            raise loc.error(["requirements", i],
                            f"{rid} belongs to feature {req.feature!r}, not {doc['feature']!r}")
    specs = []
    for i, chk in enumerate(doc["checks"]):
        name = chk["check"]
        if name not in check_registry:
            known = ", ".join(sorted(check_registry))
            raise loc.error(["checks", i, "check"], f"unknown check {name!r} (known: {known})")
        if chk["requirement"] not in doc["requirements"]:
            raise loc.error(["checks", i, "requirement"],
                            f"{chk['requirement']} is not in this scenario's requirements list")
        params = chk.get("with", {})
        problem = check_registry[name].validate_params(params)
        if problem:
            path_in, message = problem
            raise loc.error(["checks", i, "with", *path_in], f"check {name}: {message}")
        specs.append(CheckSpec(name, chk["requirement"], _plain(params),
                               yamlsrc.line_of(doc, ["checks", i]), chk.get("level")))
    if action_validators:
        kind = next(iter(doc["action"]))
        problem = action_validators[kind](doc["action"][kind])
        if problem:
            path_in, message = problem
            raise loc.error(["action", kind, *path_in], message)
    expected_stem = doc["id"]
    if path.stem != expected_stem:
        raise loc.error(["id"], f"id {doc['id']!r} must match the file name ({path.stem}.yaml)")
    return Scenario(
        id=doc["id"],
        title=doc["title"],
        feature=doc["feature"],
        side=doc["side"],
        requirements=tuple(doc["requirements"]),
        expectation=doc["expectation"].strip(),
        description=doc.get("description", "").strip(),
        action=_plain(doc["action"]),
        checks=tuple(specs),
        source=path,
        knobs=_plain(doc.get("target", {})),
        world=_plain(doc.get("world", {})),
        requires=_plain(doc.get("requires", {})),
        slow=bool(doc.get("slow", False)),
    )


def find_scenario_files(roots: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(sorted(p for p in root.rglob("*.yaml") if p.is_file()))
        else:
            raise InputError(root, None, "no such scenario file or folder")
    return files


def load_scenarios(roots: Iterable[Path], catalogue: Catalogue, check_registry: Mapping[str, Any],
                   action_validators: Mapping[str, Any] | None = None) -> list[Scenario]:
    scenarios: list[Scenario] = []
    seen: dict[str, Path] = {}
    for path in find_scenario_files(roots):
        sc = load_scenario(path, catalogue, check_registry, action_validators)
        if sc.id in seen:
            raise InputError(path, yamlsrc.line_of(yamlsrc.load(path), ["id"]),
                             f"scenario id {sc.id!r} is also used by {seen[sc.id]}")
        seen[sc.id] = path
        scenarios.append(sc)
    return scenarios
