"""What a check is: a named function over observations, with a schema for its parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from ...report.model import Evidence, Outcome
from ..observations import Observations


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str
    expected: str | None = None
    actual: str | None = None
    evidence: Sequence[Evidence] = ()


def passed(message: str, **kw: Any) -> Verdict:
    return Verdict(Outcome.PASS, message, **kw)


def failed(message: str, **kw: Any) -> Verdict:
    return Verdict(Outcome.FAIL, message, **kw)


def unsupported(message: str, **kw: Any) -> Verdict:
    return Verdict(Outcome.UNSUPPORTED, message, **kw)


def skipped(message: str, **kw: Any) -> Verdict:
    return Verdict(Outcome.SKIP, message, **kw)


CheckFunc = Callable[[Observations, Mapping[str, Any]], Verdict]


@dataclass(frozen=True)
class CheckDef:
    name: str
    func: CheckFunc
    params: Mapping[str, Any] = field(default_factory=dict)  # JSON schema "properties"
    required: tuple[str, ...] = ()
    doc: str = ""

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False,
                "properties": dict(self.params), "required": list(self.required)}

    def validate_params(self, params: Mapping[str, Any]) -> tuple[list[Any], str] | None:
        """None if PARAMS fit; else (path inside `with`, message)."""
        errors = sorted(jsonschema.Draft202012Validator(self.schema()).iter_errors(params),
                        key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        err = errors[0]
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            path += [k for k in err.instance if k not in self.params][:1]  # the unknown key's line
        return path, err.message.replace("Additional properties are not allowed", "unknown parameter(s)")

    def __call__(self, obs: Observations, params: Mapping[str, Any]) -> Verdict:
        return self.func(obs, params)


def check(*, params: Mapping[str, Any] | None = None, required: Sequence[str] = ()
          ) -> Callable[[CheckFunc], CheckDef]:
    """Declare a check; its name is the function's name, its doc the first docstring line."""

    def wrap(func: CheckFunc) -> CheckDef:
        doc = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
        return CheckDef(func.__name__, func, dict(params or {}), tuple(required), doc)

    return wrap


def registry(*modules: Any) -> dict[str, CheckDef]:
    """All CheckDefs found in MODULES, by name; a name defined twice is our own bug."""
    table: dict[str, CheckDef] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, CheckDef):
                if value.name in table and table[value.name] is not value:
                    raise RuntimeError(f"check {value.name} is defined twice")
                table[value.name] = value
    return table
