"""YAML that remembers where each value came from, so input errors can say FILE:LINE.

Mappings load as `LocatedDict`, sequences as `LocatedList`; both are ordinary dicts and lists
that also carry the 1-based line of each key or item. `line_of(doc, path)` walks a path such
as ("checks", 2, "requirement") and returns the closest line it can find.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class InputError(Exception):
    """Bad user input (a scenario, target or baseline file): FILE:LINE: message. Exit status 2."""

    def __init__(self, file: str | Path, line: int | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.message = message
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {message}")


class LocatedDict(dict):
    line: int = 0
    key_lines: dict[Any, int]


class LocatedList(list):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LocatedDict:
    explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)  # merged (<<) pairs first; explicit keys may override them
    result = LocatedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    seen_explicit: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise InputError(loader.name, line, "a key must be a plain value, not a list or mapping") from None
        if id(key_node) in explicit:
            if key in seen_explicit:
                raise InputError(loader.name, line, f"duplicate key {key!r}")
            seen_explicit.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load(path: Path) -> Any:
    """Load one YAML document with line information; syntax errors become InputError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read: {exc}") from None
    return loads(text, path)


def loads(text: str, name: str | Path = "<string>") -> Any:
    loader = _Loader(text)
    loader.name = str(name)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(name, line, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(name, None, f"YAML: {exc}") from None
    finally:
        loader.dispose()


def line_of(doc: Any, path: Sequence[Any]) -> int | None:
    """The line of the deepest element of PATH that carries a line number."""
    line = getattr(doc, "line", None) or None
    node = doc
    for step in path:
        if isinstance(node, LocatedDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LocatedList) and isinstance(step, int) and step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
        line = getattr(node, "line", None) or line
    return line


@dataclass(frozen=True)
class Located:
    """A file and a path inside it: the address of a value, for error messages."""

    file: Path
    doc: Any

    def error(self, path: Sequence[Any], message: str) -> InputError:
        return InputError(self.file, line_of(self.doc, path), message)


def validate(doc: Any, schema: dict[str, Any], file: Path) -> None:
    """Validate DOC against a JSON schema; the first error (by position) becomes an InputError."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (line_of(doc, list(e.absolute_path)) or 0))
    if not errors:
        return
    err = errors[0]
    best = jsonschema.exceptions.best_match([err]) or err
    path = list(best.absolute_path)
    if best.validator == "additionalProperties" and isinstance(best.instance, dict):
        known = set(best.schema.get("properties", {}))
        extra = [k for k in best.instance if k not in known]
        if extra:
            path.append(extra[0])  # point at the unknown key itself, not at its parent
    where = "/".join(str(p) for p in best.absolute_path) or "top level"
    raise InputError(file, line_of(doc, path), f"{where}: {_describe(best)}")


def _describe(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown field(s)")
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    return err.message
