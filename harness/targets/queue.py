"""Parsers for an MTA's queue listing: which messages and recipients are still queued."""

from __future__ import annotations

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


PARSERS = {"exim": parse_exim}


def parse_queue(fmt: str, text: str) -> list[QueueEntry]:
    return PARSERS[fmt](text)
