"""The requirement catalogue: every requirement a check can cite, loaded from ``requirements.yaml``.

The data file transcribes ``requirements.md`` one entry per requirement (see the comment at the top
of the file for the fields). :func:`load_catalogue` reads and validates it and returns an immutable
:class:`Catalogue`; any problem with the file raises :class:`CatalogueError`, whose message starts
with ``FILE:LINE:`` so that an editor or a terminal can jump to the offending entry.

The file is parsed with PyYAML's composer rather than ``safe_load`` so that every value keeps the
line it came from.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "FEATURES",
    "LEVELS",
    "READ_MARKS",
    "SIDES",
    "Catalogue",
    "CatalogueError",
    "Requirement",
    "Source",
    "load_catalogue",
]

#: Features, in the order of the catalogue, and the ID prefix of each.
FEATURES: tuple[str, ...] = ("dane", "prdr", "proxy", "ocsp", "dsn")
_PREFIX = {feature: feature.upper() for feature in FEATURES}

#: Levels an entry may carry. Compound catalogue levels are reduced to the strongest keyword and
#: the catalogue's wording is kept in ``level_note``.
LEVELS: tuple[str, ...] = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY", "INFO")

#: Sides of the MTA a requirement applies to.
SIDES: tuple[str, ...] = ("client", "server", "generator", "parser")

#: How the main source was read: R = read when the catalogue was written, M = from memory.
READ_MARKS: tuple[str, ...] = ("R", "M")

# Strength of a level: decides the verdict of a failed check (MUST → FAIL, SHOULD → NON-STRICT,
# MAY → INFO). Includes the RFC 2119 synonyms so that the mapping is complete, although the data
# file only uses LEVELS.
_STRENGTH: Mapping[str, str] = types.MappingProxyType(
    {
        "MUST": "MUST",
        "MUST NOT": "MUST",
        "SHALL": "MUST",
        "SHALL NOT": "MUST",
        "REQUIRED": "MUST",
        "SHOULD": "SHOULD",
        "SHOULD NOT": "SHOULD",
        "RECOMMENDED": "SHOULD",
        "NOT RECOMMENDED": "SHOULD",
        "MAY": "MAY",
        "OPTIONAL": "MAY",
        "INFO": "MAY",
    }
)

ID_PATTERN = re.compile(r"^(DANE|PRDR|PROXY|OCSP|DSN)-\d{2}$")

_REQUIRED_FIELDS = ("id", "feature", "title", "text", "source", "level", "side", "observe", "read")
_OPTIONAL_FIELDS = ("level_note", "notes")
_SOURCE_FIELDS = ("doc", "section")

_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"


class CatalogueError(Exception):
    """The catalogue file is unreadable or invalid.

    ``str(error)`` is ``"FILE:LINE: ID: problem"`` (the ID and the line when known).
    """

    def __init__(self, file: str, line: int | None, message: str, rid: str | None = None):
        self.file = file
        self.line = line
        self.rid = rid
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {rid}: {message}" if rid else f"{where}: {message}")


@dataclass(frozen=True)
class Source:
    """A normative source: ``doc`` such as "RFC 7672", ``section`` such as "§3.2" ("" if none)."""

    doc: str
    section: str = ""

    def __str__(self) -> str:
        return f"{self.doc} {self.section}" if self.section else self.doc


@dataclass(frozen=True)
class Requirement:
    id: str
    feature: str
    title: str
    text: str
    sources: tuple[Source, ...]
    level: str
    level_note: str | None
    side: str
    observe: str
    read: str
    notes: str | None = None

    @property
    def strength(self) -> str:
        """"MUST", "SHOULD" or "MAY": how much a failure of this requirement weighs."""
        try:
            return _STRENGTH[self.level]
        except KeyError:
            raise ValueError(f"{self.id}: level {self.level!r} has no strength") from None

    @property
    def citation(self) -> str:
        """The first source for display, e.g. "draft-hall-prdr-00 §4.5.2"."""
        return str(self.sources[0]) if self.sources else ""


@dataclass(frozen=True)
class Catalogue:
    requirements: tuple[Requirement, ...]
    _index: Mapping[str, Requirement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Requirement] = {}
        for requirement in self.requirements:
            if requirement.id in index:
                raise ValueError(f"duplicate requirement ID {requirement.id}")
            index[requirement.id] = requirement
        object.__setattr__(self, "_index", types.MappingProxyType(index))

    def __getitem__(self, rid: str) -> Requirement:
        try:
            return self._index[rid]
        except (KeyError, TypeError):
            pass
        message = f"no requirement {rid!r} in the catalogue"
        if isinstance(rid, str):
            close = difflib.get_close_matches(rid.upper(), self._index, n=3)
            if close:
                message += f"; did you mean {' or '.join(close)}?"
        raise KeyError(message)

    def __contains__(self, rid: object) -> bool:
        return isinstance(rid, str) and rid in self._index

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements)

    def __len__(self) -> int:
        return len(self.requirements)

    def by_feature(self, feature: str) -> tuple[Requirement, ...]:
        """The requirements of one feature, in catalogue order."""
        if feature not in FEATURES:
            raise ValueError(f"unknown feature {feature!r}; expected one of {', '.join(FEATURES)}")
        return tuple(r for r in self.requirements if r.feature == feature)

    @property
    def features(self) -> tuple[str, ...]:
        """The features present, in the order they first appear in the catalogue."""
        return tuple(dict.fromkeys(r.feature for r in self.requirements))


# --------------------------------------------------------------------------------------------------
# Loading


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Load and validate a catalogue file; by default the packaged ``requirements.yaml``.

    The packaged catalogue is parsed once and the (immutable) result is reused.
    """
    if path is None:
        return _packaged_catalogue()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(str(path), None, f"cannot read the catalogue: {exc}") from exc
    return _parse(text, str(path))


@functools.lru_cache(maxsize=1)
def _packaged_catalogue() -> Catalogue:
    resource = resources.files(__package__).joinpath("requirements.yaml")
    return _parse(resource.read_text(encoding="utf-8"), str(resource))


def _parse(text: str, file: str) -> Catalogue:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise CatalogueError(file, line, f"invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(file, None, f"invalid YAML: {exc}") from exc
    return _Reader(file).catalogue(root)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    """Turns the composed node tree into a Catalogue; raises CatalogueError at the first problem."""

    def __init__(self, file: str):
        self.file = file

    def error(self, node: Node, message: str, rid: str | None = None) -> CatalogueError:
        return CatalogueError(self.file, _line(node), message, rid)

    def catalogue(self, root: Node | None) -> Catalogue:
        if root is None:
            raise CatalogueError(self.file, None, "the catalogue is empty")
        if not isinstance(root, SequenceNode):
            raise self.error(root, "the catalogue must be a list of requirement entries")
        if not root.value:
            raise self.error(root, "the catalogue has no requirements")
        requirements: list[Requirement] = []
        first_seen: dict[str, int] = {}
        for entry in root.value:
            requirement = self.requirement(entry)
            if requirement.id in first_seen:
                raise self.error(
                    entry,
                    f"duplicate ID (first defined at line {first_seen[requirement.id]})",
                    requirement.id,
                )
            first_seen[requirement.id] = _line(entry)
            requirements.append(requirement)
        return Catalogue(tuple(requirements))

    def mapping(
        self,
        node: Node,
        what: str,
        allowed: tuple[str, ...],
        rid: str | None = None,
    ) -> dict[str, tuple[Node, Node]]:
        """The entries of a mapping node as {key: (key node, value node)}, keys checked."""
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{what} must be a mapping", rid)
        fields: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _STR_TAG):
                raise self.error(key_node, f"{what}: field names must be strings", rid)
            key = key_node.value
            if key in fields:
                raise self.error(
                    key_node,
                    f"{what}: field {key!r} given twice (also at line {_line(fields[key][0])})",
                    rid,
                )
            if key not in allowed:
                raise self.error(
                    key_node,
                    f"{what}: unknown field {key!r}; allowed: {', '.join(allowed)}",
                    rid,
                )
            fields[key] = (key_node, value_node)
        return fields

    def string(
        self, node: Node, name: str, rid: str | None, *, optional: bool = False
    ) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            if optional:
                return None
            raise self.error(node, f"field {name!r} is empty", rid)
        if not (isinstance(node, ScalarNode) and node.tag == _STR_TAG):
            raise self.error(node, f"field {name!r} must be a string", rid)
        if not node.value.strip():
            raise self.error(node, f"field {name!r} is empty", rid)
        return node.value

    def choice(self, node: Node, name: str, rid: str | None, allowed: tuple[str, ...]) -> str:
        value = self.string(node, name, rid)
        assert value is not None
        if value not in allowed:
            raise self.error(
                node, f"{name} {value!r} is not one of {', '.join(map(repr, allowed))}", rid
            )
        return value

    def requirement(self, entry: Node) -> Requirement:
        # Read the ID first, so that every later message can name the entry.
        rid: str | None = None
        if isinstance(entry, MappingNode):
            for key_node, value_node in entry.value:
                if (
                    isinstance(key_node, ScalarNode)
                    and key_node.value == "id"
                    and isinstance(value_node, ScalarNode)
                    and value_node.tag == _STR_TAG
                ):
                    rid = value_node.value
                    break
        fields = self.mapping(entry, "requirement", _REQUIRED_FIELDS + _OPTIONAL_FIELDS, rid)
        missing = [name for name in _REQUIRED_FIELDS if name not in fields]
        if missing:
            raise self.error(entry, f"missing field(s): {', '.join(missing)}", rid)

        def value(name: str) -> Node:
            return fields[name][1]

        id_node = value("id")
        rid = self.string(id_node, "id", None)
        assert rid is not None
        match = ID_PATTERN.match(rid)
        if not match:
            raise self.error(id_node, f"ID does not match {ID_PATTERN.pattern}", rid)
        feature = self.choice(value("feature"), "feature", rid, FEATURES)
        if match.group(1) != _PREFIX[feature]:
            raise self.error(
                value("feature"),
                f"feature {feature!r} does not match the ID prefix {match.group(1)}",
                rid,
            )
        optional = {
            name: self.string(fields[name][1], name, rid, optional=True) if name in fields else None
            for name in _OPTIONAL_FIELDS
        }
        return Requirement(
            id=rid,
            feature=feature,
            title=self._required(value("title"), "title", rid),
            text=self._required(value("text"), "text", rid),
            sources=self.sources(value("source"), rid),
            level=self.choice(value("level"), "level", rid, LEVELS),
            level_note=optional["level_note"],
            side=self.choice(value("side"), "side", rid, SIDES),
            observe=self._required(value("observe"), "observe", rid),
            read=self.choice(value("read"), "read", rid, READ_MARKS),
            notes=optional["notes"],
        )

    def _required(self, node: Node, name: str, rid: str) -> str:
        value = self.string(node, name, rid)
        assert value is not None
        return value

    def sources(self, node: Node, rid: str) -> tuple[Source, ...]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, "field 'source' must be a list of {doc, section}", rid)
        if not node.value:
            raise self.error(node, "field 'source' is empty", rid)
        sources = []
        for item in node.value:
            fields = self.mapping(item, "source", _SOURCE_FIELDS, rid)
            if "doc" not in fields:
                raise self.error(item, "source: missing field 'doc'", rid)
            doc = self._required(fields["doc"][1], "doc", rid)
            section = ""
            if "section" in fields:
                section = self._required(fields["section"][1], "section", rid)
            sources.append(Source(doc=doc, section=section))
        return tuple(sources)
