"""xtext (RFC 3461 §4): decode, encode, and what is malformed."""

from __future__ import annotations

import pytest

from harness.dsn import xtext
from harness.dsn.errors import DSNError


@pytest.mark.parametrize(("encoded", "decoded"), [
    ("", ""),
    ("abc", "abc"),
    ("ab+2Bc", "ab+c"),
    ("a+40b.test", "a@b.test"),
    ("x+2By+3Dz@d.test", "x+y=z@d.test"),
    ("+20+7E", " ~"),
])
def test_decode(encoded: str, decoded: str) -> None:
    assert xtext.decode(encoded) == decoded
    assert xtext.problem(encoded) is None


@pytest.mark.parametrize(("bad", "why"), [
    ("a+4", "without two hexadecimal digits"),
    ("a+", "without two hexadecimal digits"),
    ("a+zzb", "is not a hexchar"),
    ("a+2bc", "lower-case hexchar"),
    ("a b", "is not an xchar"),
    ("a=b", "'=' is not an xchar"),
    ("caf\u00e9", "is not an xchar"),
    ("tab\there", "is not an xchar"),
])
def test_malformed(bad: str, why: str) -> None:
    with pytest.raises(xtext.XtextError) as info:
        xtext.decode(bad)
    assert why in str(info.value)
    assert isinstance(info.value, DSNError)  # the package's one error type
    assert why in (xtext.problem(bad) or "")


def test_encode_round_trip() -> None:
    for value in ("ab+c", "a@b", "x y=z", "plain", "~!"):
        assert xtext.decode(xtext.encode(value)) == value
    assert xtext.encode("ab+c=d e") == "ab+2Bc+3Dd+20e"


def test_encode_refuses_what_xtext_cannot_carry() -> None:
    with pytest.raises(ValueError):
        xtext.encode("\u20ac")
