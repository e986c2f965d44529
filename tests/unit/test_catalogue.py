"""The requirement catalogue: the packaged data file and its loader/validator."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import pytest

from harness.engine.catalogue import (
    FEATURES,
    LEVELS,
    Catalogue,
    CatalogueError,
    Requirement,
    Source,
    load_catalogue,
)

PACKAGED = Path(__file__).resolve().parents[2] / "harness" / "engine" / "requirements.yaml"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# --------------------------------------------------------------------------------------------------
# The packaged catalogue against requirements.md


def test_packaged_catalogue_loads(catalogue):
    assert isinstance(catalogue, Catalogue)
    assert len(catalogue) == 123
    assert all(isinstance(r, Requirement) for r in catalogue)


def test_default_load_is_cached_and_equals_explicit_path(catalogue):
    assert load_catalogue() is catalogue
    assert load_catalogue(PACKAGED) == catalogue


# requirements.md §6 "Count".
@pytest.mark.parametrize(
    ("feature", "count"), [("dane", 32), ("prdr", 23), ("proxy", 25), ("ocsp", 14), ("dsn", 29)]
)
def test_counts_per_feature(catalogue, feature, count):
    assert len(catalogue.by_feature(feature)) == count


@pytest.mark.parametrize(
    ("feature", "sides"),
    [
        ("dane", {"client": 30, "server": 2}),
        ("prdr", {"server": 13, "client": 10}),
        ("proxy", {"server": 25}),
        ("ocsp", {"server": 5, "client": 9}),
        # §6 says "4 parsing, 25 generation", but DSN-09 (parameters forwarded to the next hop)
        # is marked *Side:* client in its entry; the entry wins.
        ("dsn", {"server": 4, "generator": 24, "client": 1}),
    ],
)
def test_side_counts(catalogue, feature, sides):
    assert Counter(r.side for r in catalogue.by_feature(feature)) == sides


def test_catalogue_order(catalogue):
    assert catalogue.features == FEATURES
    expected = [
        f"{feature.upper()}-{n:02d}"
        for feature in FEATURES
        for n in range(1, len(catalogue.by_feature(feature)) + 1)
    ]
    assert [r.id for r in catalogue] == expected


def test_every_entry_is_complete(catalogue):
    for r in catalogue:
        assert r.level in LEVELS
        assert r.strength in ("MUST", "SHOULD", "MAY")
        assert r.sources and all(s.doc for s in r.sources)
        assert r.citation.startswith(r.sources[0].doc)
        assert "\n" not in r.text and "\n" not in r.observe, r.id


@pytest.mark.parametrize(
    ("rid", "level", "level_note", "side", "read", "citation"),
    [
        ("DANE-01", "MUST", None, "client", "R", "RFC 7672 §2.2 (first bullet)"),
        ("DANE-09", "MUST", "MUST [M]", "client", "M", "RFC 6698 §2.1.1"),
        ("DANE-14", "SHOULD", None, "client", "R", "RFC 7672 §5"),
        ("DANE-31", "MUST NOT", "MUST NOT / MUST", "server", "R", "RFC 7672 §8.1"),
        ("PRDR-03", "MUST", "MUST (accept) / INFO (exact code)", "server", "R",
         "draft-hall-prdr-00 §4 (d)(e)"),
        ("PRDR-06", "MUST", "MUST / MUST NOT", "server", "R", "draft-hall-prdr-00 §4.5.1"),
        ("PRDR-07", "MUST", None, "server", "R", "draft-hall-prdr-00 §4.5.2"),
        ("PRDR-09", "MUST NOT", "SHOULD / MUST NOT", "server", "R", "draft-hall-prdr-00 §4.5.2"),
        ("PRDR-21", "MUST", None, "client", "R", "draft-hall-prdr-00 §4.5.1–4.5.3"),
        ("PROXY-01", "MUST", None, "server", "R", "haproxy proxy-protocol.txt L172–174"),
        ("PROXY-08", "MUST", "must", "server", "R", "haproxy proxy-protocol.txt L285–287"),
        ("OCSP-07", "MUST", "SHALL (1–5, 7), SHOULD (6)", "client", "R",
         "RFC 6960 §3.2 (items 1–6)"),
        ("OCSP-14", "INFO", None, "client", "R", "RFC 7672 §4"),
        ("DSN-09", "MUST", None, "client", "M", "RFC 3461 §5.2.1"),
        ("DSN-14", "MUST", None, "generator", "R", "RFC 3464 §2.2.2"),
        ("DSN-25", "SHOULD", "ABNF-implied → NON-STRICT", "generator", "R", "RFC 3464 §2.1"),
    ],
)
def test_spot_checks_against_the_markdown(catalogue, rid, level, level_note, side, read, citation):
    r = catalogue[rid]
    assert (r.level, r.level_note, r.side, r.read, r.citation) == (
        level, level_note, side, read, citation
    )


def test_spot_check_texts(catalogue):
    assert catalogue["PRDR-06"].title == "The 353 line"
    assert "enhanced status codes MUST NOT be used" in catalogue["PRDR-06"].text
    assert "MUST wait at least 10 minutes" in catalogue["PRDR-21"].text
    assert catalogue["DANE-10"].title == "`2 0 0` with the TA only in DNS"
    assert "\\x2" in catalogue["PROXY-11"].text  # block scalars keep backslashes literally
    assert "Exim" in catalogue["PRDR-01"].notes
    assert catalogue["PRDR-13"].sources[-1] == Source("RFC 3030", "")  # cited without a section


def test_proxy_is_server_side(catalogue):
    assert {r.side for r in catalogue.by_feature("proxy")} == {"server"}


@pytest.mark.parametrize(
    ("level", "strength"),
    [
        ("MUST", "MUST"), ("MUST NOT", "MUST"), ("SHALL", "MUST"),
        ("SHOULD", "SHOULD"), ("SHOULD NOT", "SHOULD"), ("RECOMMENDED", "SHOULD"),
        ("MAY", "MAY"), ("INFO", "MAY"),
    ],
)
def test_strength(catalogue, level, strength):
    r = dataclasses.replace(catalogue["DANE-01"], level=level)
    assert r.strength == strength


def test_lookup_api(catalogue):
    assert "PRDR-07" in catalogue
    assert "PRDR-99" not in catalogue
    assert 7 not in catalogue
    with pytest.raises(KeyError, match=r"PRDR-7.*did you mean.*PRDR-07"):
        catalogue["PRDR-7"]
    with pytest.raises(ValueError, match="unknown feature"):
        catalogue.by_feature("smtp")


def test_catalogue_is_immutable(catalogue):
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue.requirements = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue["DANE-01"].level = "MAY"
    with pytest.raises(TypeError):
        catalogue._index["X"] = catalogue["DANE-01"]


# --------------------------------------------------------------------------------------------------
# Malformed files: CatalogueError names the file and the line

VALID = """\
# a two-entry catalogue
- id: PRDR-06
  feature: prdr
  title: "The 353 line"
  text: >-
    A single line beginning with 353.
  source:
    - {doc: "draft-hall-prdr-00", section: "§4.5.1"}
  level: MUST
  level_note: "MUST / MUST NOT"
  side: server
  observe: One line matching ^353.
  read: R

- id: PRDR-07
  feature: prdr
  title: "One reply per accepted recipient"
  text: One reply per accepted recipient, in RCPT order.
  source:
    - doc: "draft-hall-prdr-00"
      section: "§4.5.2"
  level: MUST
  side: server
  observe: Three replies after 353.
  read: R
  notes: Exim test 5500.
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the OCCURRENCE-th line containing NEEDLE."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def load_text(tmp_path: Path, text: str) -> Catalogue:
    path = tmp_path / "requirements.yaml"
    path.write_text(text, encoding="utf-8")
    return load_catalogue(path)


def assert_error(tmp_path: Path, text: str, line: int, *fragments: str) -> CatalogueError:
    with pytest.raises(CatalogueError) as info:
        load_text(tmp_path, text)
    err = info.value
    path = tmp_path / "requirements.yaml"
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    assert (err.file, err.line) == (str(path), line)
    for fragment in fragments:
        assert fragment in str(err), str(err)
    return err


def test_valid_small_file(tmp_path):
    cat = load_text(tmp_path, VALID)
    assert [r.id for r in cat] == ["PRDR-06", "PRDR-07"]
    assert cat["PRDR-07"].sources == (Source("draft-hall-prdr-00", "§4.5.2"),)
    assert cat["PRDR-07"].level_note is None
    assert cat["PRDR-07"].notes == "Exim test 5500."
    assert cat.features == ("prdr",)


def test_duplicate_id(tmp_path):
    text = VALID.replace("id: PRDR-07", "id: PRDR-06")
    err = assert_error(
        tmp_path, text, line_of(text, "id: PRDR-06", 2), "PRDR-06", "duplicate ID",
        f"line {line_of(text, 'id: PRDR-06')}",
    )
    assert err.rid == "PRDR-06"


def test_bad_level(tmp_path):
    text = VALID.replace("  level: MUST\n  side: server\n  observe: Three",
                         "  level: MUSTT\n  side: server\n  observe: Three")
    assert_error(
        tmp_path, text, line_of(text, "level: MUSTT"),
        "PRDR-07: level 'MUSTT' is not one of", "'MUST NOT'",
    )


def test_missing_field(tmp_path):
    text = VALID.replace("  observe: Three replies after 353.\n", "")
    assert_error(
        tmp_path, text, line_of(text, "id: PRDR-07"), "PRDR-07", "missing field(s): observe"
    )


def test_unknown_field(tmp_path):
    text = VALID + "  verdict: FAIL\n"
    assert_error(
        tmp_path, text, line_of(text, "verdict: FAIL"), "PRDR-07", "unknown field 'verdict'"
    )


def test_unknown_source_field(tmp_path):
    text = VALID.replace('      section: "§4.5.2"', '      section: "§4.5.2"\n      page: 3')
    assert_error(tmp_path, text, line_of(text, "page: 3"), "PRDR-07", "unknown field 'page'")


def test_repeated_field(tmp_path):
    text = VALID.replace("  read: R\n  notes", "  read: R\n  side: client\n  notes")
    assert_error(tmp_path, text, line_of(text, "side: client"), "PRDR-07", "'side' given twice")


# Each case edits the second entry (PRDR-07); NEEDLE finds the line the error must name
# (its OCCURRENCE-th match in the edited text).
@pytest.mark.parametrize(
    ("old", "new", "needle", "occurrence", "fragment"),
    [
        ("id: PRDR-07", "id: PRDR-7", "id: PRDR-7", 1, "does not match"),
        ("id: PRDR-07", "id: DANE-07", "feature: prdr", 2, "does not match the ID prefix DANE"),
        ('feature: prdr\n  title: "One', 'feature: smtp\n  title: "One', "feature: smtp", 1,
         "feature 'smtp' is not one of"),
        ("side: server\n  observe: Three", "side: both\n  observe: Three", "side: both", 1,
         "side 'both' is not one of"),
        ("read: R\n  notes", "read: X\n  notes", "read: X", 1, "read 'X' is not one of"),
        ('title: "One reply per accepted recipient"', 'title: "  "', "title:", 2,
         "'title' is empty"),
        ("title: \"One reply per accepted recipient\"", "title:", "title:", 2, "'title' is empty"),
        ("text: One reply", "text: 42 # One reply", "text: 42", 1, "'text' must be a string"),
        ("notes: Exim test 5500.", "notes: [a, b]", "notes: [a, b]", 1, "'notes' must be a string"),
        ('  source:\n    - doc: "draft-hall-prdr-00"\n      section: "§4.5.2"\n',
         "  source: []\n", "source: []", 1, "'source' is empty"),
        ('    - doc: "draft-hall-prdr-00"\n      section', "    - section",
         '- section: "§4.5.2"', 1, "missing field 'doc'"),
    ],
)
def test_invalid_values(tmp_path, old, new, needle, occurrence, fragment):
    assert old in VALID
    text = VALID.replace(old, new)
    rid = re.findall(r"- id: (\S+)", text)[1]  # the edited entry's ID, as the message names it
    err = assert_error(tmp_path, text, line_of(text, needle, occurrence), f": {rid}: ", fragment)
    assert err.rid == rid


def test_invalid_yaml_syntax(tmp_path):
    text = VALID.replace("  side: server\n  observe: Three", "  side: [server\n  observe: Three")
    with pytest.raises(CatalogueError, match=r"requirements\.yaml:\d+: invalid YAML") as info:
        load_text(tmp_path, text)
    # PyYAML notices the unclosed flow sequence at the next key, one or two lines on.
    assert line_of(text, "side: [server") <= info.value.line <= line_of(text, "side: [server") + 2


def test_not_a_list(tmp_path):
    assert_error(tmp_path, "\n\nrequirements:\n  - id: DANE-01\n", 3, "must be a list")


def test_empty_file(tmp_path):
    with pytest.raises(CatalogueError, match=r"requirements\.yaml: the catalogue is empty"):
        load_text(tmp_path, "# nothing here\n")


def test_missing_file(tmp_path):
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "absent.yaml")


def test_packaged_file_error_lines_point_into_it(tmp_path):
    """An error in the real file reports the line of the real entry."""
    text = PACKAGED.read_text(encoding="utf-8")
    broken = re.sub(r"(- id: PRDR-07\n(?:  .*\n)*?  level: )MUST", r"\1MUSTT", text, count=1)
    assert broken != text
    err = assert_error(tmp_path, broken, line_of(broken, "level: MUSTT"), "PRDR-07: level 'MUSTT'")
    assert err.line > line_of(broken, "id: PRDR-07")
