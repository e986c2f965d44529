"""The validator (harness/dsn/validate.py) on real-world style samples and broken ones.

fixtures/dsn/samples.yaml says, for each sample, which rules it breaks and which recipients its
groups name; every rule of the table is broken by at least one sample.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.dsn.validate import RULES, Violation, date_problem, is_fqdn, validate_bytes
from harness.engine.catalogue import load_catalogue

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "dsn"
MANIFEST = yaml.safe_load((SAMPLES / "samples.yaml").read_text(encoding="utf-8"))


def test_every_sample_is_listed() -> None:
    assert set(MANIFEST) == {p.name for p in SAMPLES.glob("*.eml")}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_sample(name: str) -> None:
    want = MANIFEST[name]
    data = (SAMPLES / name).read_bytes()
    for variant in (data, data.replace(b"\r\n", b"\n")):  # as received by SMTP, and with bare LF
        report, violations = validate_bytes(variant)
        assert sorted({v.rule for v in violations}) == sorted(want["violations"]), \
            [str(v) for v in violations]
        if want["groups"] is None:
            assert report is None
        elif isinstance(want["groups"], int):
            assert report is not None and len(report.recipients) == want["groups"]
        else:
            assert report is not None and [g.get("final-recipient") or "" for g in report.recipients] == want["groups"]


def test_every_rule_is_broken_by_some_sample() -> None:
    broken = {rule for entry in MANIFEST.values() for rule in entry["violations"]}
    assert broken == set(RULES)


def test_rules_cite_a_section_and_a_dsn_requirement() -> None:
    catalogue = load_catalogue()
    for rule_id, rule in RULES.items():
        assert rule.section.startswith("RFC "), rule_id
        assert rule.requirement in catalogue and rule.requirement.startswith("DSN-"), rule_id
        assert rule.level in ("MUST", "SHOULD", "MAY")


def test_a_violation_names_field_rule_and_section() -> None:
    _, violations = validate_bytes((SAMPLES / "broken-bad-values.eml").read_bytes())
    v = next(v for v in violations if v.rule == "status-syntax")
    assert isinstance(v, Violation)
    assert (v.field, v.section, v.requirement, v.level) == ("Status", "RFC 3464 §2.3.4", "DSN-20", "MUST")
    assert str(v) == ("recipient 1 <a@example.net>: Status: a sub-field has a leading zero "
                      "[RFC 3464 §2.3.4; status-syntax, MUST]")


@pytest.mark.parametrize(("value", "rule"), [
    ("Mon, 3 Jun 2024 10:00:01 +0200", None),
    ("3 Jun 2024 10:00 -0000", None),
    ("Mon,  3 Jun 2024 10:00:00 +0200 (CEST)", None),
    ("Mon, 03 Jun 24 10:00:00 +0000", None),
    ("Mon, 3 Jun 2024 10:00:01 GMT", "date-zone"),
    ("Mon, 31 Feb 2024 10:00:01 +0000", "date-syntax"),
    ("Mon, 3 Foo 2024 10:00:01 +0000", "date-syntax"),
    ("yesterday", "date-syntax"),
    ("Mon, 3 Jun 2024 25:00:01 +0000", "date-syntax"),
    ("Mon, 3 Jun 2024 10:00:01 +2460", "date-syntax"),
])
def test_dates(value: str, rule: str | None) -> None:
    got = date_problem(value)
    assert (got[0] if got else None) == rule


def test_fqdn() -> None:
    assert is_fqdn("mta.target.test") and is_fqdn("mx.example.net.")
    assert not is_fqdn("localhost") and not is_fqdn("-a.b") and not is_fqdn("a..b") and not is_fqdn("[192.0.2.1]")
