"""Reading delivery status notifications (RFC 3464 inside an RFC 6522 multipart/report).

This module only reads: it turns a bounce into its MIME structure, per-message and per-recipient
field groups (fields in order, as written, duplicates kept) and the returned content. Judging a
DSN field by field against the RFC grammar is the validator's job (`validate.py`).

Built on the standard library's `email` package for header blocks, media-type parameters and
content-transfer-encodings. Multipart bodies are split here, so every part keeps the bytes it
arrived with (RFC 2046 §5.1.1 delimiters): a report must be able to show exactly what was sent,
and the `email` package rebuilds message/delivery-status parts from parsed headers.

Arbitrary input raises `DSNError` or returns a report; nothing else escapes (a Hypothesis
property in tests/property/test_dsn_props.py).
"""

from __future__ import annotations

import binascii
import email.parser
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message

from .errors import DSNError

__all__ = ["DSNError", "DeliveryReport", "Field", "FieldGroup", "Part", "RecipientGroup",
           "ReturnedContent", "STATUS_TYPES", "parse_dsn"]

#: The machine-readable part of a DSN (RFC 3464 §2; RFC 6533 §6.1 for the UTF-8 variant).
STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
#: Returned content (RFC 6522 §3 third part; RFC 6533 §6.3, §6.4 for the UTF-8 variants).
RETURNED_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers")

MAX_DEPTH = 8  # nested multiparts followed when looking for the multipart/report
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext


@dataclass(frozen=True)
class Field:
    """One field of a status group (RFC 3464 §2.1; header syntax of RFC 5322 §2.2)."""

    name: str  # as written
    value: str  # unfolded: the lines stripped and joined with one space
    raw: str  # the field's lines as written (no line ends), joined with "\n"
    line: int  # 1-based line number in the status part's body

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def lines(self) -> list[str]:
        return self.raw.split("\n")


@dataclass(frozen=True)
class FieldGroup:
    fields: dict[str, str]  # lower-cased field name → unfolded value (last one wins)
    items: tuple[Field, ...] = ()  # every field, in order, duplicates kept
    malformed: tuple[tuple[int, str], ...] = ()  # (line, text) of lines that are not a field
    line: int = 0  # first line of the group in the status part's body

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name.lower(), default)

    def all(self, name: str) -> list[Field]:
        return [f for f in self.items if f.key == name.lower()]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.items]


def split_typed(value: str | None) -> tuple[str | None, str]:
    """ "rfc822; a@b" → ("rfc822", "a@b"); a value without ";" → (None, value)."""
    if value is None:
        return None, ""
    kind, sep, rest = value.partition(";")
    if not sep:
        return None, value.strip()
    return kind.strip(), rest.strip()


@dataclass(frozen=True)
class RecipientGroup(FieldGroup):
    index: int = 0  # 1-based position among the per-recipient groups

    @property
    def final_recipient(self) -> str:
        """The address part of Final-Recipient (RFC 3464 §2.3.2: "type; address"), lower case."""
        return split_typed(self.get("final-recipient") or "")[1].strip("<>").lower()

    @property
    def original_recipient(self) -> str | None:
        value = self.get("original-recipient")
        return None if value is None else split_typed(value)[1]

    @property
    def action(self) -> str:
        return (self.get("action") or "").strip().lower()

    @property
    def status(self) -> str:
        """The status code without any trailing comment (RFC 3464 §2.3.4)."""
        return (self.get("status") or "").split("(", 1)[0].strip()


@dataclass(frozen=True)
class Part:
    """One body part of the multipart/report, with the bytes it arrived with."""

    index: int  # 1-based
    content_type: str  # lower case; text/plain when the part has no Content-Type
    headers: tuple[tuple[str, str], ...]
    body: bytes  # raw, before any content-transfer-encoding is undone
    cte: str | None  # Content-Transfer-Encoding, lower case
    charset: str | None
    explicit_type: bool  # the part carried a Content-Type field


@dataclass(frozen=True)
class ReturnedContent:
    """The third part: the message or its headers (RFC 6522 §3; RFC 3461 §4.3 RET)."""

    content_type: str
    headers: tuple[tuple[str, str], ...]  # the returned message's header fields
    body: bytes  # the returned message's body (empty for headers-only types)
    size: int  # bytes of the whole part body


@dataclass(frozen=True)
class DeliveryReport:
    raw: bytes
    headers: dict[str, str]
    envelope_sender: str | None  # from the sink transcript, when known
    report_type: str | None
    human_text: str
    per_message: dict[str, str]
    recipients: tuple[RecipientGroup, ...]
    returned_type: str | None  # message/rfc822, text/rfc822-headers, or None
    parts: tuple[str, ...] = field(default=())
    # -- the full structure (for the validator and the report) ----------------------------
    header_items: tuple[tuple[str, str], ...] = ()
    container: str = "top level"  # where the multipart/report sits: "top level", "part 2.1", …
    report_params: dict[str, str] = field(default_factory=dict)
    part_list: tuple[Part, ...] = ()
    status_type: str = "message/delivery-status"
    status_text: str = ""
    per_message_group: FieldGroup = field(default_factory=lambda: FieldGroup({}))
    leading_blank_lines: int = 0  # blank lines before the per-message fields
    returned: ReturnedContent | None = None
    closed: bool = True  # the close delimiter "--boundary--" was found

    def group_for(self, address: str) -> RecipientGroup | None:
        address = address.lower()
        return next((g for g in self.recipients if g.final_recipient == address), None)

    @property
    def is_global(self) -> bool:
        return self.status_type == "message/global-delivery-status"


# -- MIME ------------------------------------------------------------------------------------

_PARSER = email.parser.BytesParser(policy=email.policy.compat32)


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header block and body (RFC 5322 §2.1: separated by the first empty line)."""
    if data.startswith((b"\r\n", b"\n")):
        return b"", data[2 if data.startswith(b"\r\n") else 1:]
    m = re.search(rb"\r?\n\r?\n", data)
    if m is None:
        return data, b""
    return data[:m.start() + (2 if data[m.start()] == 13 else 1)], data[m.end():]


def _headers_of(head: bytes) -> Message:
    return _PARSER.parsebytes(head, headersonly=True)


def _param(msg: Message, name: str) -> str | None:
    value = msg.get_param(name)
    if value is None:
        return None
    return str(email.utils.collapse_rfc2231_value(value))  # type: ignore[arg-type]


def _content_type(msg: Message) -> str:
    return msg.get_content_type().lower()


def _split_multipart(body: bytes, boundary: str) -> tuple[list[bytes], bool]:
    """The body parts between delimiter lines (RFC 2046 §5.1.1), and whether it was closed.

    A delimiter line is "--" boundary with optional trailing white space; the line end before
    it belongs to the delimiter.
    """
    delim = b"--" + boundary.encode("utf-8", "surrogateescape")
    parts: list[bytes] = []
    current: list[bytes] | None = None
    for line in body.splitlines(keepends=True):
        bare = line.rstrip(b"\r\n").rstrip(b" \t")
        if bare == delim or bare == delim + b"--":
            if current is not None:
                chunk = b"".join(current)
                chunk = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1] if chunk.endswith(b"\n") else chunk
                parts.append(chunk)
            if bare.endswith(b"--") and bare != delim:
                return parts, True
            current = []
        elif current is not None:
            current.append(line)
    if current is not None:
        parts.append(b"".join(current))
    return parts, False


def _find_report(data: bytes) -> tuple[Message, bytes, str]:
    """The multipart/report's headers, its body bytes, and where it was found."""
    head, body = _split_head(data)
    msg = _headers_of(head)
    queue: list[tuple[Message, bytes, str, int]] = [(msg, body, "top level", 0)]
    while queue:
        node, node_body, where, depth = queue.pop(0)
        ctype = _content_type(node)
        if ctype == "multipart/report":
            return node, node_body, where
        if ctype.startswith("multipart/") and depth < MAX_DEPTH:
            boundary = _param(node, "boundary")
            if not boundary:
                continue
            subparts, _ = _split_multipart(node_body, boundary)
            for i, sub in enumerate(subparts, 1):
                sub_head, sub_body = _split_head(sub)
                label = f"part {i}" if where == "top level" else f"{where}.{i}"
                queue.append((_headers_of(sub_head), sub_body, label, depth + 1))
    raise DSNError(f"Content-Type is {_content_type(msg)}, not multipart/report "
                   "(and no multipart/report inside it)")


def _part(index: int, data: bytes) -> Part:
    head, body = _split_head(data)
    msg = _headers_of(head)
    explicit = msg.get("content-type") is not None
    cte = msg.get("content-transfer-encoding")
    charset = _param(msg, "charset")
    return Part(index, _content_type(msg) if explicit else "text/plain",
                tuple((k, str(v)) for k, v in msg.items()), body,
                str(cte).strip().lower() if cte is not None else None,
                charset.lower() if charset else None, explicit)


def decode_body(part: Part) -> bytes:
    """PART's body with its content-transfer-encoding undone (RFC 2045 §6)."""
    if part.cte == "base64":
        try:
            return binascii.a2b_base64(b"".join(part.body.split()), strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise DSNError(f"part {part.index}: bad base64: {exc}") from None
    if part.cte == "quoted-printable":
        try:
            return binascii.a2b_qp(part.body)
        except (binascii.Error, ValueError) as exc:  # pragma: no cover - a2b_qp is lenient
            raise DSNError(f"part {part.index}: bad quoted-printable: {exc}") from None
    return part.body


def lenient_body(part: Part) -> bytes:
    """decode_body, or the raw body when its encoding is broken (for parts shown, not judged)."""
    try:
        return decode_body(part)
    except DSNError:
        return part.body


def _text(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "us-ascii", "replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", "replace")


# -- message/delivery-status -------------------------------------------------------------------

def parse_groups(text: str) -> tuple[list[tuple[list[Field], list[tuple[int, str]], int]], int]:
    """Groups of header-style fields (RFC 3464 §2.1), and the blank lines before the first.

    Groups are separated by blank lines; a line starting with white space continues the field
    before it (RFC 5322 §2.2.3); any other line without a field name and ":" is malformed.
    """
    groups: list[tuple[list[Field], list[tuple[int, str]], int]] = []
    fields: list[Field] = []
    malformed: list[tuple[int, str]] = []
    start = 0
    leading = 0
    pending: list[str] = []  # lines of the field being read
    pending_line = 0

    def close_field() -> None:
        nonlocal pending
        if pending:
            name, _, first = pending[0].partition(":")
            value = " ".join(s for s in (first.strip(), *(p.strip() for p in pending[1:])) if s)
            fields.append(Field(name, value, "\n".join(pending), pending_line))
            pending = []

    def close_group() -> None:
        nonlocal fields, malformed
        close_field()
        if fields or malformed:
            groups.append((fields, malformed, start))
        fields, malformed = [], []

    lines = text.replace("\r\n", "\n").split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            if not groups and not fields and not malformed and not pending:
                leading += 1
            close_group()
            continue
        if not fields and not malformed and not pending:
            start = n
        if line[0] in " \t":
            if pending:
                pending.append(line)
            else:
                malformed.append((n, line))
            continue
        close_field()
        name, sep, _ = line.partition(":")
        if sep and _FIELD_NAME.fullmatch(name):
            pending, pending_line = [line], n
        else:
            malformed.append((n, line))
    close_group()
    # Blank lines at the very end are not "leading" ones.
    return groups, leading if groups else 0


def _group(kind: type[FieldGroup], items: list[Field], malformed: list[tuple[int, str]], line: int,
           **extra: int) -> FieldGroup:
    return kind({f.key: f.value for f in items}, tuple(items), tuple(malformed), line, **extra)


def parse_dsn(data: bytes, envelope_sender: str | None = None) -> DeliveryReport:
    """Read DATA (a whole message as it arrived) as a DSN; DSNError if it is none."""
    if not isinstance(data, bytes):
        raise TypeError("parse_dsn takes bytes")  # our own misuse, not the peer's
    report_node, body, container = _find_report(data)
    top = _headers_of(_split_head(data)[0])
    boundary = _param(report_node, "boundary")
    if not boundary:
        raise DSNError("multipart/report without a boundary parameter")
    chunks, closed = _split_multipart(body, boundary)
    if len(chunks) < 2:
        raise DSNError(f"multipart/report with {len(chunks)} part(s); a report needs at least 2")
    parts = [_part(i, c) for i, c in enumerate(chunks, 1)]
    status = next((p for p in parts if p.content_type in STATUS_TYPES), None)
    if status is None:
        raise DSNError("no message/delivery-status part (parts: "
                       + ", ".join(p.content_type for p in parts) + ")")
    status_bytes = decode_body(status)
    status_text = status_bytes.decode("utf-8", "surrogateescape")
    groups, leading = parse_groups(status_text)
    if not groups:
        raise DSNError("empty message/delivery-status part")
    per_message = _group(FieldGroup, *groups[0])
    recipients = tuple(_group(RecipientGroup, *g, index=i) for i, g in enumerate(groups[1:], 1))
    human = parts[0]
    returned = None
    if len(parts) > 2:
        third = parts[2]
        content = lenient_body(third)
        r_head, r_body = _split_head(content)
        r_msg = _headers_of(r_head)
        returned = ReturnedContent(third.content_type, tuple((k, str(v)) for k, v in r_msg.items()),
                                   r_body, len(third.body))
    params = {}
    for key, value in report_node.get_params() or []:
        if value and isinstance(key, str):
            params[key.lower()] = str(email.utils.collapse_rfc2231_value(value))  # type: ignore[arg-type]
    return DeliveryReport(
        raw=data,
        headers={k.lower(): str(v) for k, v in top.items()},
        envelope_sender=envelope_sender,
        report_type=params.get("report-type"),
        human_text=_text(lenient_body(human), human.charset),
        per_message=per_message.fields,
        recipients=recipients,  # type: ignore[arg-type]
        returned_type=parts[2].content_type if len(parts) > 2 else None,
        parts=tuple(p.content_type for p in parts),
        header_items=tuple((k, str(v)) for k, v in top.items()),
        container=container,
        report_params=params,
        part_list=tuple(parts),
        status_type=status.content_type,
        status_text=status_text,
        per_message_group=per_message,
        leading_blank_lines=leading,
        returned=returned,
        closed=closed,
    )
