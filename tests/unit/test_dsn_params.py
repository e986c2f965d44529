"""The DSN parameters of MAIL and RCPT (RFC 3461 §4): what a conforming server must accept."""

from __future__ import annotations

import pytest

from harness.dsn import params

VALID = [
    "RCPT TO:<a@b.test> NOTIFY=NEVER",
    "RCPT TO:<a@b.test> NOTIFY=SUCCESS,FAILURE,DELAY",
    "RCPT TO:<a@b.test> NOTIFY=fAiLuRe,DELAY",
    "RCPT TO:<a@b.test> ORCPT=rfc822;a+40b.test",
    "RCPT TO:<a@b.test> ORCPT=rfc822;x+2By+3Dz@d.test NOTIFY=FAILURE",
    "RCPT TO:<\"odd > local\"@b.test> NOTIFY=NEVER",
    "MAIL FROM:<> RET=FULL",
    "MAIL FROM:<s@b.test> RET=hdrs ENVID=ab+2Bc SIZE=100",
    "MAIL FROM:<s@b.test> ENVID=" + "e" * 100,
    "MAIL FROM:<s@b.test> SIZE=100 BODY=8BITMIME",  # no DSN parameter at all
]

INVALID = [
    ("RCPT TO:<a@b.test> NOTIFY=foo", "NOTIFY", "is not NEVER or one of"),
    ("RCPT TO:<a@b.test> NOTIFY=NEVER,SUCCESS", "NOTIFY", "NEVER cannot be combined"),
    ("RCPT TO:<a@b.test> NOTIFY=", "NOTIFY", "no value"),
    ("RCPT TO:<a@b.test> NOTIFY", "NOTIFY", "no value"),
    ("RCPT TO:<a@b.test> NOTIFY=NEVER NOTIFY=FAILURE", "NOTIFY", "given twice"),
    ("RCPT TO:<a@b.test> ORCPT=rfc822;a+4", "ORCPT", "not xtext"),
    ("RCPT TO:<a@b.test> ORCPT=rfc822;a+zzb", "ORCPT", "not xtext"),
    ("RCPT TO:<a@b.test> ORCPT=rfc822;a b.test", "b.test", "not an esmtp-param"),
    ("RCPT TO:<a@b.test> ORCPT=a+40b.test", "ORCPT", "no ';'"),
    ("RCPT TO:<a@b.test> ORCPT=rfc 822;a", "822;a", "not an esmtp-param"),
    ("RCPT TO:<a@b.test> ORCPT=rfc822;", "ORCPT", "empty address"),
    ("RCPT TO:<a@b.test> ORCPT=rfc822;a+0Ab", "ORCPT", "non-printable"),
    ("RCPT TO:<a@b.test> RET=FULL", "RET", "not a parameter of RCPT"),
    ("MAIL FROM:<> NOTIFY=NEVER", "NOTIFY", "not a parameter of MAIL"),
    ("MAIL FROM:<> RET=BODY", "RET", "neither FULL nor HDRS"),
    ("MAIL FROM:<> RET=FULL RET=HDRS", "RET", "given twice"),
    ("MAIL FROM:<> ENVID=" + "e" * 101, "ENVID", "101 characters"),
    ("MAIL FROM:<> ENVID=ab+2", "ENVID", "not xtext"),
    ("MAIL FROM:<> ENVID=ab+2bc", "ENVID", "lower-case hexchar"),
    ("MAIL FROM:<> ENVID=a+00b", "ENVID", "non-printable"),
]


@pytest.mark.parametrize("line", VALID)
def test_valid(line: str) -> None:
    assert params.problems(line) == []
    assert params.problems(line + "\r\n") == []


@pytest.mark.parametrize(("line", "keyword", "why"), INVALID)
def test_invalid(line: str, keyword: str, why: str) -> None:
    found = params.problems(line)
    assert found, line
    assert any(p.keyword == keyword and why in p.message for p in found), [str(p) for p in found]
    assert all("RFC " in str(p) for p in found)  # every problem cites its section


def test_split_and_decode() -> None:
    verb, got = params.split_params("RCPT TO:<a@b> NOTIFY=NEVER ORCPT=rfc822;x+40y X")
    assert verb == "RCPT"
    assert [(p.keyword, p.value) for p in got] == [("NOTIFY", "NEVER"), ("ORCPT", "rfc822;x+40y"), ("X", None)]
    assert [p.keyword for p in params.dsn_params("RCPT TO:<a@b> NOTIFY=NEVER SIZE=1")] == ["NOTIFY"]
    assert params.decoded_orcpt("rfc822;orig+40d.test") == ("rfc822", "orig@d.test")
    assert params.decoded_orcpt("rfc822;a+4") is None and params.decoded_orcpt("x") is None
