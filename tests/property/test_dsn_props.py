"""Hypothesis properties of harness/dsn: arbitrary input raises only DSNError, nothing else.

The DSN reader and validator face bytes written by the MTA under test: whatever they are, the
reader returns a report or raises `DSNError`, and the validator returns a list of violations
(STYLE.md point 2). Inputs are arbitrary bytes, mutations of the real-world samples in
fixtures/dsn, and DSNs assembled from generated fields.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.dsn import params, xtext
from harness.dsn.errors import DSNError
from harness.dsn.report import parse_dsn
from harness.dsn.validate import RULES, validate, validate_bytes

fixed = settings(derandomize=True, database=None, deadline=None, max_examples=300)

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "dsn").glob("*.eml"))
SAMPLE_BYTES = [p.read_bytes() for p in SAMPLES]

# Bytes biased toward what DSN parsing cares about (STYLE.md point 10).
edgy_bytes = st.lists(st.sampled_from([
    b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b"--", b"=", b"+", b"(", b")", b"<", b">",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
    b"Content-Type: message/delivery-status\r\n", b"Content-Type: message/global-delivery-status\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"--b\r\n", b"--b--\r\n", b"Reporting-MTA: dns; x.test\r\n", b"Final-Recipient: rfc822;a@b\r\n",
    b"Action: failed\r\n", b"Status: 5.0.0\r\n", b"Status: 9.99.999 (x\r\n", b"Remote-MTA: dns; m\r\n",
    b"Will-Retry-Until: Mon, 3 Jun 2024 10:00:01 +0200\r\n", b"Arrival-Date: 31 Feb 2024 99:99 Z\r\n",
    b"\xff\xfe", b"\x00", b"\xc3\xa9", b"=?utf-8?q?x?=", b"boundary*0=\"a\"; boundary*1=b",
    b"charset*=utf-8''%E2%82%AC", b"charset=x-unknown-charset",
]) | st.binary(max_size=40), max_size=60).map(b"".join)


def _judge(data: bytes) -> None:
    try:
        report = parse_dsn(data)
    except DSNError:
        return
    violations = validate(report)
    assert all(v.rule in RULES for v in violations)
    for v in violations:
        str(v)  # every violation can be shown


@fixed
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_dsnerror(data: bytes) -> None:
    _judge(data)


@fixed
@given(edgy_bytes)
def test_dsn_shaped_bytes_raise_only_dsnerror(data: bytes) -> None:
    _judge(b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\n"
           + data)
    _judge(data)


@fixed
@given(st.sampled_from(SAMPLE_BYTES), st.integers(min_value=0, max_value=100_000),
       st.integers(min_value=0, max_value=64), edgy_bytes)
def test_mutated_samples_raise_only_dsnerror(sample: bytes, at: int, cut: int, insert: bytes) -> None:
    at %= len(sample) + 1
    _judge(sample[:at] + insert + sample[at + cut:])
    _judge(sample[:at])  # truncated anywhere


field_names = st.sampled_from(["Reporting-MTA", "Final-Recipient", "Original-Recipient", "Action", "Status",
                               "Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date", "Will-Retry-Until",
                               "Arrival-Date", "Original-Envelope-Id", "X-Foo", "Foo"])
field_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                       max_size=80)
groups = st.lists(st.lists(st.tuples(field_names, field_values), max_size=8), min_size=0, max_size=4)


@fixed
@given(groups, st.sampled_from(["message/delivery-status", "message/global-delivery-status"]))
def test_generated_status_parts_validate(gs: list[list[tuple[str, str]]], ctype: str) -> None:
    status = "\r\n\r\n".join("\r\n".join(f"{n}: {v}" for n, v in g) for g in gs)
    data = ("Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nhuman\r\n"
            f"--b\r\nContent-Type: {ctype}\r\n\r\n{status}\r\n--b--\r\n").encode("utf-8")
    report, violations = validate_bytes(data)
    written = [g for g in gs if g]  # empty groups only add blank lines
    if not written:
        assert report is None and [v.rule for v in violations] == ["not-a-report"]
        return
    # Whatever the values, the groups read back are the groups written, names in order.
    assert report is not None
    assert report.per_message_group.names == [n for n, _ in written[0]]
    assert [g.names for g in report.recipients] == [[n for n, _ in g] for g in written[1:]]
    assert all(v.rule in RULES for v in violations)


@fixed
@given(st.text(max_size=60))
def test_xtext_decode_raises_only_xtexterror(text: str) -> None:
    try:
        decoded = xtext.decode(text)
    except xtext.XtextError:
        return
    assert xtext.decode(xtext.encode(decoded)) == decoded


@fixed
@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=60))
def test_xtext_round_trip(value: str) -> None:
    assert xtext.decode(xtext.encode(value)) == value


@fixed
@given(st.sampled_from(["MAIL FROM:<a@b> ", "RCPT TO:<a@b> ", "RCPT TO:<\"x>y\"@b> ", "RCPT TO:", ""]),
       st.text(max_size=80))
def test_parameter_judging_never_raises(prefix: str, rest: str) -> None:
    for problem in params.problems(prefix + rest):
        assert problem.section.startswith("RFC ")
