"""harness.engine.yamlsrc: YAML with line numbers, and input errors that say FILE:LINE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.engine import yamlsrc
from harness.engine.yamlsrc import InputError, LocatedDict, LocatedList, line_of

# Line numbers are 1-based; the comment on each line of DOC is its number.
DOC = """\
# 1 a comment
name: demo            # 2
nested:               # 3
  key: value          # 4
  deeper:             # 5
    leaf: 1           # 6
items:                # 7
  - first             # 8
  - {flow: 1, other: 2}  # 9
  -                   # 10
    block: 3          # 11
    more: 4           # 12
  - [a, b]            # 13
last: end             # 14
"""


@pytest.fixture
def doc() -> Any:
    return yamlsrc.loads(DOC, "demo.yaml")


def test_values_load_as_plain_containers(doc: Any) -> None:
    assert isinstance(doc, LocatedDict) and isinstance(doc, dict)
    assert isinstance(doc["items"], LocatedList) and isinstance(doc["items"], list)
    assert doc == {
        "name": "demo",
        "nested": {"key": "value", "deeper": {"leaf": 1}},
        "items": ["first", {"flow": 1, "other": 2}, {"block": 3, "more": 4}, ["a", "b"]],
        "last": "end",
    }


def test_key_lines_at_every_depth(doc: Any) -> None:
    assert doc.key_lines == {"name": 2, "nested": 3, "items": 7, "last": 14}
    assert doc["nested"].key_lines == {"key": 4, "deeper": 5}
    assert doc["nested"]["deeper"].key_lines == {"leaf": 6}
    assert doc["items"][1].key_lines == {"flow": 9, "other": 9}
    assert doc["items"][2].key_lines == {"block": 11, "more": 12}


def test_item_lines_of_block_and_flow_sequences(doc: Any) -> None:
    # An item written on the line after its "-" starts where its content starts.
    assert doc["items"].item_lines == [8, 9, 11, 13]
    assert doc["items"][3].item_lines == [13, 13]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (["name"], 2),
        (["nested", "key"], 4),
        (["nested", "deeper", "leaf"], 6),
        (["items", 0], 8),
        (["items", 1], 9),
        (["items", 1, "other"], 9),
        (["items", 2], 11),
        (["items", 2, "more"], 12),
        (["items", 3, 1], 13),
        (["last"], 14),
    ],
)
def test_line_of_scalars_and_items(doc: Any, path: list[Any], line: int) -> None:
    assert line_of(doc, path) == line


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (["nested", "missing"], 4),  # the deepest element found: the "nested" mapping
        (["items", 99], 8),  # past the end: the list itself
        (["items", 2, "missing", "x"], 11),
        (["name", "not-a-container"], 2),
    ],
)
def test_line_of_falls_back_to_the_deepest_known_element(doc: Any, path: list[Any], line: int) -> None:
    assert line_of(doc, path) == line


def test_line_of_a_value_without_line_information() -> None:
    assert line_of({"plain": "dict"}, ["plain"]) is None
    assert line_of("scalar", []) is None


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "a"),
        ("top:\n  x: 1\n  y: 2\n  x: 3\n", 4, "x"),
        ("list:\n  - {k: 1, k: 2}\n", 2, "k"),
        ("list:\n  - name: a\n    port: 1\n    name: b\n", 4, "name"),
    ],
)
def test_duplicate_key_is_an_input_error_with_its_line(text: str, line: int, key: str) -> None:
    with pytest.raises(InputError) as info:
        yamlsrc.loads(text, "dup.yaml")
    assert info.value.file == "dup.yaml"
    assert info.value.line == line
    assert str(info.value) == f"dup.yaml:{line}: duplicate key {key!r}"


def test_keys_that_differ_only_in_case_or_type_are_not_duplicates() -> None:
    assert yamlsrc.loads("a: 1\nA: 2\n1: x\n'1': y\n") == {"a": 1, "A": 2, 1: "x", "1": "y"}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\n  b: 2\n", 2),  # a mapping value where none may be
        ("a:\n  - 1\n - 2\n", 3),  # bad indentation
        ("a: [1,\n", 2),  # unterminated flow sequence
        ("a: 'open\n", 2),  # unterminated quote
        ("\ta: 1\n", 1),  # a tab cannot start a token
        ("ok: 1\nb: *nowhere\n", 2),  # undefined alias
        ("a: 1\n---\nb: 2\n", 2),  # a second document
        ("a: !!python/object/apply:os.system [true]\n", 1),  # not a safe tag
    ],
)
def test_yaml_syntax_error_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        yamlsrc.load(path)
    assert info.value.file == str(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: YAML syntax: ")


def test_unreadable_file_is_an_input_error_without_a_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(InputError) as info:
        yamlsrc.load(missing)
    assert info.value.line is None
    assert str(info.value).startswith(f"{missing}: cannot read: ")

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"title: caf\xe9\n")
    with pytest.raises(InputError, match="cannot read"):
        yamlsrc.load(latin1)


def test_empty_document_is_none() -> None:
    assert yamlsrc.loads("") is None
    assert yamlsrc.loads("# only a comment\n") is None


@pytest.mark.parametrize("text", ["? [a, b]\n: 1\n", "{[a]: 1}\n", "? {k: v}\n: 1\n"])
def test_unhashable_key_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError) as info:
        yamlsrc.loads(text, "key.yaml")
    assert info.value.line == 1


def test_merge_key_adds_keys() -> None:
    doc = yamlsrc.loads("base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n")
    assert doc["c"] == {"x": 1, "y": 2}


def test_merge_key_can_be_overridden() -> None:
    doc = yamlsrc.loads("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n")
    assert doc["c"] == {"x": 3, "y": 2}


# --- validate() -------------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "count": {"type": "integer"},
        "mode": {"enum": ["fast", "slow"]},
        "sub": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"kind": {"enum": ["a", "b"]}, "size": {"type": "integer"}},
        },
        "items": {
            "type": "array",
            "items": {"type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}},
        },
    },
}


def _validate(text: str) -> InputError | None:
    doc = yamlsrc.loads(text, "v.yaml")
    try:
        yamlsrc.validate(doc, SCHEMA, Path("v.yaml"))
    except InputError as exc:
        return exc
    return None


def test_validate_accepts_a_valid_document() -> None:
    assert _validate("id: x\ncount: 3\nsub: {kind: a}\nitems:\n  - name: n\n") is None


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id: x\ncount: many\n", 2, "count: 'many' is not of type 'integer'"),
        ("id: x\nmode: medium\n", 2, "mode: 'medium' is not one of fast, slow"),
        ("id: x\nsub:\n  size: 1\n  kind: c\n", 4, "sub/kind: 'c' is not one of a, b"),
        ("id: x\nitems:\n  - name: a\n  - port: 25\n", 4, "items/1: 'name' is a required property"),
        ("id: x\nitems:\n  - name: a\n    port: twenty\n", 4, "items/0/port: 'twenty' is not of type 'integer'"),
        ("count: 1\n", 1, "top level: 'id' is a required property"),
        ("id: x\nsub: {kind: a, colour: red}\n", 2, "sub: unknown field(s) ('colour' was unexpected)"),
    ],
)
def test_validate_error_points_at_the_offending_line(text: str, line: int, message: str) -> None:
    exc = _validate(text)
    assert exc is not None
    assert (exc.file, exc.line, exc.message) == ("v.yaml", line, message)
    assert str(exc) == f"v.yaml:{line}: {message}"


def test_validate_reports_the_first_error_by_position() -> None:
    exc = _validate("mode: medium\nid: 7\ncount: x\n")
    assert exc is not None
    assert exc.line == 1 and exc.message.startswith("mode:")
    exc = _validate("count: x\nid: 7\n")
    assert exc is not None
    assert exc.line == 1 and exc.message.startswith("count:")


def test_validate_unknown_top_level_field_points_at_that_field() -> None:
    exc = _validate("id: x\ncount: 1\ncolour: red\n")
    assert exc is not None
    assert exc.line == 3


def test_validate_unknown_nested_field_points_at_that_field() -> None:
    exc = _validate("id: x\nsub:\n  kind: a\n  colour: red\n")
    assert exc is not None
    assert exc.line == 4
