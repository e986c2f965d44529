"""Parsers for an MTA's queue listing: which messages and recipients are still queued."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueEntry:
    id: str
    sender: str
    recipients: tuple[str, ...]  # still to be delivered
    delivered: tuple[str, ...]  # done (listed with D by Exim)
    frozen: bool = False


_EXIM_HEAD = re.compile(r"^\s*\S+\s+\S+\s+(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\s+<(?P<sender>[^>]*)>(?P<rest>.*)$")
_EXIM_RCPT = re.compile(r"^\s+(?P<flag>D\s+)?(?P<addr>\S+)")


def parse_exim(text: str) -> list[QueueEntry]:
    """Exim's ``-bp``: a head line per message, then its recipients (D = delivered)."""
    entries: list[QueueEntry] = []
    current: dict | None = None

    def flush() -> None:
        if current:
            entries.append(QueueEntry(current["id"], current["sender"], tuple(current["todo"]),
                                      tuple(current["done"]), current["frozen"]))

    for line in text.splitlines():
        if not line.strip():
            continue
        head = _EXIM_HEAD.match(line)
        if head:
            flush()
            current = {"id": head["id"], "sender": head["sender"], "todo": [], "done": [],
                       "frozen": "*** frozen ***" in head["rest"]}
            continue
        rcpt = _EXIM_RCPT.match(line)
        if rcpt and current is not None:
            (current["done"] if rcpt["flag"] else current["todo"]).append(rcpt["addr"])
    flush()
    return entries


def parse_postfix(text: str) -> list[QueueEntry]:
    """Postfix's ``postqueue -j``: one JSON object per message, with the recipients still to be
    delivered (``recipients[].address``); a message in the hold queue counts as frozen."""
    entries: list[QueueEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            rcpts = tuple(str(r["address"]) for r in msg.get("recipients", []))
            entries.append(QueueEntry(str(msg["queue_id"]), str(msg.get("sender", "")), rcpts, (),
                                      msg.get("queue_name") == "hold"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"postqueue -j line {number}: not a queue entry ({exc}): {line[:200]}") from None
    return entries


def parse_opensmtpd(text: str) -> list[QueueEntry]:
    """OpenSMTPD's ``smtpctl show queue``: one line per envelope (one recipient),
    ``evpid|src|agent|flags|sender|rcpt|dest|ctime|expire|lasttry|retry|runstate|…|error``,
    grouped by message (the evpid's first 8 hex digits). A ``bounce`` envelope is the DSN being
    made for a recipient that failed: that recipient is no longer queued for delivery."""
    by_msg: dict[str, tuple[str, list[str]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) < 12 or not re.fullmatch(r"[0-9a-f]{16}", cols[0]):
            raise ValueError(f"smtpctl show queue line {number}: not an envelope: {line[:200]}")
        sender, rcpts = by_msg.setdefault(cols[0][:8], (cols[4], []))
        if cols[2] != "bounce":
            rcpts.append(cols[5])
    return [QueueEntry(msgid, sender, tuple(rcpts), ()) for msgid, (sender, rcpts) in by_msg.items()]


PARSERS = {"exim": parse_exim, "postfix": parse_postfix, "opensmtpd": parse_opensmtpd}


def parse_queue(fmt: str, text: str) -> list[QueueEntry]:
    return PARSERS[fmt](text)
