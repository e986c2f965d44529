"""Reading delivery status notifications (RFC 3464 inside an RFC 6522 multipart/report).

This module only reads: it turns a bounce into per-message and per-recipient field groups.
Judging a DSN field by field against the RFC grammar is the validator's job.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import Message


class DSNError(ValueError):
    """The bytes are not a readable delivery status notification."""


@dataclass(frozen=True)
class RecipientGroup:
    fields: dict[str, str]  # lower-cased field name → unfolded value (last one wins)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name.lower(), default)

    @property
    def final_recipient(self) -> str:
        """The address part of Final-Recipient (RFC 3464 §2.3.2: "type; address")."""
        value = self.get("final-recipient") or ""
        return value.split(";", 1)[-1].strip().strip("<>").lower()

    @property
    def action(self) -> str:
        return (self.get("action") or "").strip().lower()


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

    def group_for(self, address: str) -> RecipientGroup | None:
        address = address.lower()
        return next((g for g in self.recipients if g.final_recipient == address), None)


def _fields(block: str) -> list[dict[str, str]]:
    """Split a message/delivery-status body into groups of header-style fields (RFC 3464 §2.1)."""
    groups: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in block.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                groups.append(current)
            current, last = {}, None
            continue
        if line[0] in " \t" and last:
            current[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise DSNError(f"not a field: {line[:80]!r}")
        last = name.strip().lower()
        current[last] = value.strip()
    if current:
        groups.append(current)
    return groups


def _status_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        # The email package parses message/delivery-status into sub-messages, one per group.
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in p.items()) for p in payload if isinstance(p, Message))
    raw = part.get_payload(decode=True)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)


def parse_dsn(data: bytes, envelope_sender: str | None = None) -> DeliveryReport:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    headers = {k.lower(): str(v) for k, v in msg.items()}
    if msg.get_content_type() != "multipart/report":
        raise DSNError(f"Content-Type is {msg.get_content_type()}, not multipart/report")
    parts = msg.get_payload()
    if not isinstance(parts, list) or len(parts) < 2:
        raise DSNError("multipart/report without its parts")
    human = parts[0].get_payload(decode=True)
    status_part = next((p for p in parts if p.get_content_type() in
                        ("message/delivery-status", "message/global-delivery-status")), None)
    if status_part is None:
        raise DSNError("no message/delivery-status part")
    groups = _fields(_status_text(status_part))
    if not groups:
        raise DSNError("empty message/delivery-status part")
    returned = parts[2].get_content_type() if len(parts) > 2 else None
    return DeliveryReport(
        raw=data,
        headers=headers,
        envelope_sender=envelope_sender,
        report_type=msg.get_param("report-type"),  # type: ignore[arg-type]
        human_text=human.decode("utf-8", "replace") if isinstance(human, bytes) else "",
        per_message=groups[0],
        recipients=tuple(RecipientGroup(g) for g in groups[1:]),
        returned_type=returned,
        parts=tuple(p.get_content_type() for p in parts),
    )
