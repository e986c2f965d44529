"""Judging a DSN against RFC 6522 (structure), RFC 3464 (fields) and RFC 6533 (UTF-8 variant).

`validate(report)` lists every violation it finds. Each names its rule (a stable ID from
`RULES`), the RFC section, the catalogue requirement it belongs to, its level, the field and
where it sits ("per-message fields", "recipient 2 <r2@d.test>", "part 3", "line 41").

Only what can be judged from the DSN alone lives here. Whether a field is *true* — the
Diagnostic-Code the remote server really gave, the envelope id the client really sent — needs
the transcripts and is judged by the checks in harness/engine/checks/dsn.py.

Sections marked [M] in the comments are from knowledge of the RFC, not re-read (see
requirements.md "How the sources were read"); the RFC 3464 §2.3 texts were read in a quoting
source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .errors import DSNError
from .report import RETURNED_TYPES, DeliveryReport, Field, FieldGroup, RecipientGroup, parse_dsn, split_typed

MAX_LINE = 998  # RFC 5322 §2.1.1: "Each line of characters MUST be no more than 998 characters"


@dataclass(frozen=True)
class Rule:
    section: str
    requirement: str  # catalogue ID
    level: str  # MUST | SHOULD | MAY
    text: str


#: Every rule the validator applies, in one table: id → (section, requirement, level, what it says).
RULES: dict[str, Rule] = {
    # RFC 6522 §3 and RFC 2046 §5.1: the multipart/report container.
    "not-a-report": Rule("RFC 6522 §3", "DSN-12", "MUST", "a DSN is a multipart/report"),
    "report-type-missing": Rule("RFC 6522 §3", "DSN-12", "MUST", "multipart/report has a report-type parameter"),
    "report-type-wrong": Rule("RFC 6522 §3", "DSN-12", "MUST",
                              "report-type is the subtype of the second part (delivery-status)"),
    "part-count": Rule("RFC 6522 §3", "DSN-12", "MUST", "two or three body parts"),
    "status-not-second": Rule("RFC 6522 §3", "DSN-12", "MUST", "the machine-readable part is the second part"),
    "human-part-not-text": Rule("RFC 6522 §3", "DSN-12", "SHOULD",
                                "the first part is human-readable text"),  # [M]
    "returned-type": Rule("RFC 6522 §3", "DSN-12", "MUST",
                          "the third part is message/rfc822 or text/rfc822-headers (RFC 6533: global variants)"),
    "unclosed": Rule("RFC 2046 §5.1.1", "DSN-12", "MUST", "the multipart body ends with the close delimiter"),
    "status-encoding": Rule("RFC 3464 §6.2", "DSN-12", "MUST",
                            "message/delivery-status uses 7bit encoding"),  # [M] media type registration
    "status-non-ascii": Rule("RFC 3464 §2.1", "DSN-12", "MUST",
                             "message/delivery-status is US-ASCII (UTF-8 only in message/global-delivery-status)"),
    "status-bad-utf8": Rule("RFC 6533 §6.1", "DSN-12", "MUST",
                            "message/global-delivery-status is UTF-8"),  # [M]
    # RFC 3464 §2.1: groups.
    "leading-blank-line": Rule("RFC 3464 §2.1", "DSN-24", "MUST",
                               "the per-message fields come first, with no blank line before them"),
    "no-recipient-group": Rule("RFC 3464 §2.1", "DSN-24", "MUST",
                               "at least one group of per-recipient fields follows the per-message fields"),
    "malformed-line": Rule("RFC 3464 §2.1", "DSN-24", "MUST",
                           "every line is a field (name \":\" value) or its continuation"),
    "misplaced-field": Rule("RFC 3464 §2.1", "DSN-24", "MUST",
                            "per-message fields only in the first group, per-recipient fields only after it"),
    "duplicate-field": Rule("RFC 3464 §2.1", "DSN-24", "MUST",
                            "each standard field at most once per group (ABNF: [ field CRLF ])"),
    "field-order": Rule("RFC 3464 §2.1", "DSN-25", "SHOULD", "fields in the order of the ABNF"),
    # RFC 3464 §2.2 per-message fields.
    "reporting-mta-missing": Rule("RFC 3464 §2.2.2", "DSN-14", "MUST", "Reporting-MTA is required"),
    "mta-name-syntax": Rule("RFC 3464 §2.2.2", "DSN-14", "MUST", "mta-name-type \";\" mta-name"),
    "mta-name-not-domain": Rule("RFC 3464 §2.2.2", "DSN-14", "SHOULD",
                                "with type dns the mta-name is a fully qualified domain name"),  # [M]
    "received-from-syntax": Rule("RFC 3464 §2.2.4", "DSN-16", "MUST", "mta-name-type \";\" mta-name"),
    "date-syntax": Rule("RFC 3464 §2.2.5", "DSN-23", "MUST",
                        "date-time of RFC 822 as modified by RFC 1123 (RFC 5322 §3.3)"),
    "date-zone": Rule("RFC 3464 §2.3.7", "DSN-23", "MUST", "numeric time zones ([+/-]HHMM) MUST be used"),
    # RFC 3464 §2.3 per-recipient fields.
    "final-recipient-missing": Rule("RFC 3464 §2.3.2", "DSN-17", "MUST",
                                    "Final-Recipient MUST be present in each set of per-recipient data"),
    "address-syntax": Rule("RFC 3464 §2.3.2", "DSN-17", "MUST", "address-type \";\" generic-address"),
    "address-brackets": Rule("RFC 3464 §2.3.2", "DSN-17", "SHOULD",
                             "an rfc822 generic-address is an addr-spec, without angle brackets"),  # [M]
    "action-missing": Rule("RFC 3464 §2.3.3", "DSN-19", "MUST",
                           "Action MUST be present for each recipient named in the DSN"),
    "action-value": Rule("RFC 3464 §2.3.3", "DSN-19", "MUST",
                         "action-value is failed / delayed / delivered / relayed / expanded"),
    "status-missing": Rule("RFC 3464 §2.3.4", "DSN-20", "MUST",
                           "Status MUST be present for each delivery attempt described"),
    "status-syntax": Rule("RFC 3464 §2.3.4", "DSN-20", "MUST",
                          "status-code = DIGIT \".\" 1*3DIGIT \".\" 1*3DIGIT, no leading zeros, optional comment"),
    "status-class": Rule("RFC 3463 §3.1", "DSN-20", "MUST", "the class is 2, 4 or 5"),  # [M]
    "status-action": Rule("RFC 3464 §2.3.4", "DSN-20", "MUST",
                          "the class agrees with Action (failed: 4/5, delayed: 4, delivered/expanded: 2)"),
    "remote-mta-syntax": Rule("RFC 3464 §2.3.5", "DSN-21", "MUST", "mta-name-type \";\" mta-name"),
    "remote-mta-duplicate": Rule("RFC 3464 §2.1", "DSN-21", "MUST",
                                 "at most one Remote-MTA per recipient (ABNF [ remote-mta-field CRLF ])"),
    "diagnostic-syntax": Rule("RFC 3464 §2.3.6", "DSN-22", "MUST", "diagnostic-type \";\" *text"),
    "line-too-long": Rule("RFC 5322 §2.1.1", "DSN-22", "MUST", "no line longer than 998 characters"),
    "will-retry-not-delayed": Rule("RFC 3464 §2.3.9", "DSN-23", "MUST",
                                   "Will-Retry-Until MUST NOT appear in DSNs other than \"delayed\""),
    # RFC 3464 §2.4 extensions.
    "extension-name": Rule("RFC 3464 §2.4", "DSN-26", "MAY",
                           "unregistered field names begin with X-"),
    "extension-type": Rule("RFC 3464 §2.1", "DSN-26", "MAY",
                           "unregistered address, MTA-name and diagnostic types begin with X-"),  # [M]
}


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str  # "message", "part 3", "per-message fields", "recipient 1 <r@d.test>", "line 12"
    message: str
    field: str | None = None
    value: str | None = None

    @property
    def section(self) -> str:
        return RULES[self.rule].section

    @property
    def requirement(self) -> str:
        return RULES[self.rule].requirement

    @property
    def level(self) -> str:
        return RULES[self.rule].level

    def __str__(self) -> str:
        name = f"{self.field}: " if self.field else ""
        return f"{self.where}: {name}{self.message} [{self.section}; {self.rule}, {self.level}]"


PER_MESSAGE = ("original-envelope-id", "reporting-mta", "dsn-gateway", "received-from-mta", "arrival-date")
PER_RECIPIENT = ("original-recipient", "final-recipient", "action", "status", "remote-mta",
                 "diagnostic-code", "last-attempt-date", "final-log-id", "will-retry-until")
ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")
# Which classes each Action allows (RFC 3464 §2.3.3 "NOTE ON ACTION VS. STATUS CODES": a 4xx
# status may go with "failed"; "relayed" with some loss of information may carry any status).
ACTION_CLASSES = {"failed": "45", "delayed": "4", "delivered": "2", "expanded": "2", "relayed": "245"}
# Types with a registered meaning (RFC 3464 §2.1, §2.3.6; RFC 6533 §3 "utf-8"); others use X-.
KNOWN_TYPES = {"address": {"rfc822", "utf-8", "x400", "unknown"}, "mta": {"dns", "x400"},
               "diagnostic": {"smtp", "x400"}}

STATUS_CODE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\s*(\(.*\))?\s*")
_ANY_CODE = re.compile(r"(\d)\.(\d{1,3})\.(\d{1,3})\s*(\(.*\))?\s*")
_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5322 atom
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATE = re.compile(
    r"\s*(?:(?:mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?(\d{1,2})\s+([a-z]{3})\s+(\d{2}|\d{4})\s+"
    r"(\d{2}):(\d{2})(?::(\d{2}))?\s+([+-]\d{4}|[a-z]{1,5})\s*(?:\(.*\))?\s*", re.IGNORECASE)


def is_fqdn(name: str) -> bool:
    name = name.rstrip(".")
    labels = name.split(".")
    return len(labels) >= 2 and len(name) <= 253 and all(_LABEL.fullmatch(lab) for lab in labels)


def date_problem(value: str) -> tuple[str, str] | None:
    """(rule, message) if VALUE is not an RFC 5322 date-time with a numeric zone, else None."""
    m = _DATE.fullmatch(value)
    if m is None or m.group(2).lower() not in _MONTHS:
        return "date-syntax", f"{value!r} is not an RFC 5322 date-time"
    day, _, year, hour, minute, second, zone = m.groups()
    year_n = int(year) + (1900 if len(year) == 2 and int(year) >= 50 else 2000 if len(year) == 2 else 0)
    try:
        datetime(year_n, _MONTHS.index(m.group(2).lower()) + 1, int(day), int(hour), int(minute),
                 int(second or 0))
    except ValueError as exc:
        return "date-syntax", f"{value!r} is not a real date ({exc})"
    if not zone[0] in "+-":
        return "date-zone", f"zone {zone!r} is not numeric"
    if int(zone[1:3]) > 23 or int(zone[3:5]) > 59:
        return "date-syntax", f"zone {zone!r} is out of range"
    return None


def _where(group: FieldGroup) -> str:
    if isinstance(group, RecipientGroup):
        who = group.final_recipient
        return f"recipient {group.index}" + (f" <{who}>" if who else "")
    return "per-message fields"


def _typed(group: FieldGroup, f: Field, syntax_rule: str, kind: str, out: list[Violation]) -> str | None:
    """Check "type ; value"; the type (lower case) when it parses."""
    addr_type, value = split_typed(f.value)
    if addr_type is None or not _TYPE.fullmatch(addr_type):
        out.append(Violation(syntax_rule, _where(group), "no valid type before ';'", f.name, f.value))
        return None
    if addr_type.lower() not in KNOWN_TYPES[kind] and not addr_type.lower().startswith("x-"):
        out.append(Violation("extension-type", _where(group),
                             f"type {addr_type!r} is neither registered nor an X- type", f.name, f.value))
    if not value and kind != "diagnostic":
        out.append(Violation(syntax_rule, _where(group), "nothing after the type", f.name, f.value))
    return addr_type.lower()


def _common(group: FieldGroup, expected: Sequence[str], other: Sequence[str], out: list[Violation]) -> None:
    where = _where(group)
    for line, text in group.malformed:
        out.append(Violation("malformed-line", f"line {line}", f"not a field: {text[:80]!r}", None, text))
    counts: dict[str, int] = {}
    for f in group.items:
        counts[f.key] = counts.get(f.key, 0) + 1
        if f.key in other:
            out.append(Violation("misplaced-field", where,
                                 "belongs to the other kind of group (a missing blank line?)", f.name, f.value))
    for key, n in counts.items():
        if n > 1 and key in expected:
            rule = "remote-mta-duplicate" if key == "remote-mta" else "duplicate-field"
            name = next(f.name for f in group.items if f.key == key)
            out.append(Violation(rule, where, f"appears {n} times",
                                 name, " | ".join(f.value for f in group.all(key))))
        elif key not in expected and key not in other and not key.startswith("x-"):
            name = next(f.name for f in group.items if f.key == key)
            out.append(Violation("extension-name", where,
                                 "an unregistered field whose name does not begin with X-", name))
    # ABNF order: known fields in the listed order, extension fields after them.
    rank = {k: i for i, k in enumerate(expected)}
    last, last_name, seen_ext = -1, None, None
    for f in group.items:
        if f.key in rank:
            if rank[f.key] < last or seen_ext:
                after = seen_ext or last_name
                out.append(Violation("field-order", where, f"comes after {after}", f.name))
                break
            last, last_name = rank[f.key], f.name
        elif f.key not in other:
            seen_ext = seen_ext or f.name


def _per_message(report: DeliveryReport, out: list[Violation]) -> None:
    group = report.per_message_group
    _common(group, PER_MESSAGE, PER_RECIPIENT, out)
    rep = group.all("reporting-mta")
    if not rep:
        out.append(Violation("reporting-mta-missing", "per-message fields", "absent", "Reporting-MTA"))
    for f in rep[:1]:
        kind = _typed(group, f, "mta-name-syntax", "mta", out)
        name = split_typed(f.value)[1].split("(")[0].strip()
        if kind == "dns" and name and not is_fqdn(name):
            out.append(Violation("mta-name-not-domain", "per-message fields",
                                 f"{name!r} is not a fully qualified domain name", f.name, f.value))
    for key in ("received-from-mta", "dsn-gateway"):
        for f in group.all(key)[:1]:
            _typed(group, f, "received-from-syntax", "mta", out)
    for f in group.all("arrival-date")[:1]:
        problem = date_problem(f.value)
        if problem:
            out.append(Violation(problem[0], "per-message fields", problem[1], f.name, f.value))


def _per_recipient(group: RecipientGroup, out: list[Violation]) -> None:
    where = _where(group)
    _common(group, PER_RECIPIENT, PER_MESSAGE, out)
    final = group.all("final-recipient")
    if not final:
        out.append(Violation("final-recipient-missing", where, "absent", "Final-Recipient"))
    for key in ("final-recipient", "original-recipient"):
        for f in group.all(key)[:1]:
            kind = _typed(group, f, "address-syntax", "address", out)
            addr = split_typed(f.value)[1]
            if kind == "rfc822" and addr.startswith("<") and addr.endswith(">"):
                out.append(Violation("address-brackets", where, "address in angle brackets", f.name, f.value))
    action = group.all("action")
    if not action:
        out.append(Violation("action-missing", where, "absent", "Action"))
    elif action[0].value.lower() not in ACTIONS:
        out.append(Violation("action-value", where, f"{action[0].value!r} is not one of {', '.join(ACTIONS)}",
                             action[0].name, action[0].value))
    status = group.all("status")
    if not status:
        out.append(Violation("status-missing", where, "absent", "Status"))
    else:
        f = status[0]
        m = _ANY_CODE.fullmatch(f.value)
        if m is None:
            out.append(Violation("status-syntax", where, f"{f.value!r} is not DIGIT.1*3DIGIT.1*3DIGIT",
                                 f.name, f.value))
        else:
            parts = m.groups()[:3]
            if any(len(p) > 1 and p.startswith("0") for p in parts[1:]):
                out.append(Violation("status-syntax", where, "a sub-field has a leading zero", f.name, f.value))
            if parts[0] not in "245":
                out.append(Violation("status-class", where, f"class {parts[0]} is not 2, 4 or 5", f.name, f.value))
            elif action and action[0].value.lower() in ACTION_CLASSES and \
                    parts[0] not in ACTION_CLASSES[action[0].value.lower()]:
                out.append(Violation("status-action", where,
                                     f"class {parts[0]} contradicts Action: {action[0].value}", f.name, f.value))
    for f in group.all("remote-mta")[:1]:
        _typed(group, f, "remote-mta-syntax", "mta", out)
    for f in group.all("diagnostic-code")[:1]:
        _typed(group, f, "diagnostic-syntax", "diagnostic", out)
    for key in ("last-attempt-date", "will-retry-until"):
        for f in group.all(key)[:1]:
            problem = date_problem(f.value)
            if problem:
                out.append(Violation(problem[0], where, problem[1], f.name, f.value))
    if group.all("will-retry-until") and action and action[0].value.lower() != "delayed":
        f = group.all("will-retry-until")[0]
        out.append(Violation("will-retry-not-delayed", where, f"present with Action: {action[0].value}",
                             f.name, f.value))


def _structure(report: DeliveryReport, out: list[Violation]) -> None:
    rtype = report.report_type
    if rtype is None:
        out.append(Violation("report-type-missing", report.container, "no report-type parameter",
                             "Content-Type"))
    else:
        allowed = ("delivery-status", "global-delivery-status") if report.is_global else ("delivery-status",)
        if rtype.lower() not in allowed:
            out.append(Violation("report-type-wrong", report.container,
                                 f"report-type={rtype} for a {report.status_type} part", "Content-Type", rtype))
    n = len(report.part_list)
    if n not in (2, 3):
        out.append(Violation("part-count", report.container, f"{n} body parts", "Content-Type"))
    if report.part_list[1].content_type != report.status_type:
        status_index = next(p.index for p in report.part_list if p.content_type == report.status_type)
        out.append(Violation("status-not-second", f"part {status_index}",
                             f"{report.status_type} is part {status_index}", "Content-Type"))
    first = report.part_list[0]
    if not first.content_type.startswith("text/") and not first.content_type.startswith("multipart/"):
        out.append(Violation("human-part-not-text", "part 1", f"{first.content_type} is not text",
                             "Content-Type", first.content_type))
    if n > 2 and report.part_list[2].content_type not in RETURNED_TYPES:
        out.append(Violation("returned-type", "part 3", f"{report.part_list[2].content_type}",
                             "Content-Type", report.part_list[2].content_type))
    if not report.closed:
        out.append(Violation("unclosed", report.container, "no close delimiter --boundary--"))
    status = next(p for p in report.part_list if p.content_type == report.status_type)
    if not report.is_global and status.cte not in (None, "7bit", "8bit", "binary"):
        out.append(Violation("status-encoding", f"part {status.index}",
                             f"Content-Transfer-Encoding: {status.cte}", "Content-Transfer-Encoding", status.cte))
    text = report.status_text
    if not report.is_global and any(ord(c) > 0x7E or (ord(c) < 0x20 and c not in "\t\r\n") for c in text):
        out.append(Violation("status-non-ascii", f"part {status.index}",
                             "characters outside printable US-ASCII"))
    if report.is_global and any(0xDC80 <= ord(c) <= 0xDCFF for c in text):
        out.append(Violation("status-bad-utf8", f"part {status.index}", "bytes that are not UTF-8"))
    if report.leading_blank_lines:
        out.append(Violation("leading-blank-line", f"part {status.index}",
                             f"{report.leading_blank_lines} blank line(s) before the per-message fields"))
    if not report.recipients:
        out.append(Violation("no-recipient-group", f"part {status.index}", "only per-message fields"))


def long_lines(raw: bytes) -> list[tuple[int, int]]:
    """(line number, length) of every line longer than 998 octets, line end excluded."""
    return [(n, len(line)) for n, line in enumerate(raw.replace(b"\r\n", b"\n").split(b"\n"), 1)
            if len(line) > MAX_LINE]


def validate(report: DeliveryReport) -> list[Violation]:
    """Every violation of RFC 6522 / RFC 3464 / RFC 5322 §2.1.1 the DSN shows on its own."""
    out: list[Violation] = []
    _structure(report, out)
    _per_message(report, out)
    for group in report.recipients:
        _per_recipient(group, out)
    for n, length in long_lines(report.raw):
        out.append(Violation("line-too-long", f"line {n}", f"{length} characters"))
    return out


def validate_bytes(data: bytes) -> tuple[DeliveryReport | None, list[Violation]]:
    """Parse and validate; a message that is no readable DSN gives one `not-a-report` violation."""
    try:
        report = parse_dsn(data)
    except DSNError as exc:
        return None, [Violation("not-a-report", "message", str(exc))]
    return report, validate(report)


def of(violations: Iterable[Violation], *, requirement: str | None = None,
       rules: Iterable[str] | None = None) -> list[Violation]:
    """The violations of one requirement, or of the listed rules."""
    wanted = set(rules) if rules is not None else None
    return [v for v in violations
            if (requirement is None or v.requirement == requirement) and (wanted is None or v.rule in wanted)]
