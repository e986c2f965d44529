"""The DSN reader (harness/dsn/report.py): structure, groups, raw bytes kept, compatibility."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.dsn.report import DSNError, parse_dsn, parse_groups

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "dsn"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_exim_failure_fields_in_order_with_line_numbers() -> None:
    rep = parse_dsn(sample("exim-4.96-failure.eml"), "sender@sender.test")
    assert rep.report_type == "delivery-status" and rep.container == "top level" and rep.closed
    assert rep.parts == ("text/plain", "message/delivery-status", "message/rfc822")
    assert rep.per_message == {"reporting-mta": "dns; mta.target.test"}
    [group] = rep.recipients
    assert group.names == ["Action", "Final-Recipient", "Status", "Remote-MTA", "Diagnostic-Code"]
    assert (group.index, group.final_recipient, group.action, group.status) == (1, "r2@d.test", "failed", "5.0.0")
    assert group.items[0].line == 3 and group.line == 3
    assert rep.returned is not None and rep.returned.content_type == "message/rfc822"
    assert ("Message-ID", "<dsn-failure-rcpt@mtaconform.test>") in rep.returned.headers
    assert rep.envelope_sender == "sender@sender.test"
    assert "could not be delivered" in rep.human_text


def test_folded_fields_are_unfolded_and_kept_as_written() -> None:
    text = "Reporting-MTA: dns; a.test\n\nFinal-Recipient: rfc822;r@d.test\nAction: failed\n" \
           "Status: 5.0.0\nDiagnostic-Code: smtp; 550-a\n 550-b\n\t550 c\n"
    groups, leading = parse_groups(text)
    assert leading == 0 and len(groups) == 2
    diag = groups[1][0][-1]
    assert diag.value == "smtp; 550-a 550-b 550 c"
    assert diag.raw == "Diagnostic-Code: smtp; 550-a\n 550-b\n\t550 c" and diag.lines[2] == "\t550 c"


def test_malformed_lines_and_leading_blank_lines_are_recorded() -> None:
    groups, leading = parse_groups("\n\nReporting-MTA: dns; a.test\nno field here\n  orphan\n")
    assert leading == 2
    fields, malformed, start = groups[0]
    assert [f.name for f in fields] == ["Reporting-MTA"] and start == 3
    assert malformed == [(4, "no field here"), (5, "  orphan")]  # a continuation of no field


def test_nested_report_is_found() -> None:
    rep = parse_dsn(sample("mailing-list-nested-report.eml"))
    assert rep.container == "part 2" and rep.recipients[0].final_recipient == "nobody@example.net"


def test_global_variant() -> None:
    rep = parse_dsn(sample("postfix-3.7-smtputf8.eml"))
    assert rep.is_global and rep.status_type == "message/global-delivery-status"
    assert rep.recipients[0].get("final-recipient") == "utf-8; Ünicode@example.net"
    assert rep.returned is not None and rep.returned.content_type == "message/global-headers"


def test_base64_status_part_is_decoded() -> None:
    rep = parse_dsn(sample("broken-encoding.eml"))
    assert rep.part_list[1].cte == "base64" and rep.recipients[0].action == "failed"
    assert not rep.closed and len(rep.part_list) == 4


def test_crlf_and_lf_give_the_same_report() -> None:
    crlf = sample("postfix-3.7-failure.eml")
    lf = crlf.replace(b"\r\n", b"\n")
    a, b = parse_dsn(crlf), parse_dsn(lf)
    assert [g.fields for g in a.recipients] == [g.fields for g in b.recipients]
    assert a.per_message == b.per_message and a.returned_type == b.returned_type


@pytest.mark.parametrize(("data", "why"), [
    (sample("qmail-1.03-bounce.eml"), "not multipart/report"),
    (b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nx\r\n", "without a boundary"),
    (b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\nonly one\r\n--b--\r\n", "1 part(s)"),
    (b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\n",
     "no message/delivery-status part"),
    (b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\n"
     b"Content-Type: message/delivery-status\r\n\r\n\r\n--b--\r\n", "empty message/delivery-status"),
    (b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\n"
     b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n*\r\n--b--\r\n",
     "bad base64"),
])
def test_unreadable_input_raises_dsnerror(data: bytes, why: str) -> None:
    with pytest.raises(DSNError) as info:
        parse_dsn(data)
    assert why in str(info.value)


def test_misuse_is_not_a_dsnerror() -> None:
    with pytest.raises(TypeError):
        parse_dsn("text, not bytes")  # type: ignore[arg-type]
