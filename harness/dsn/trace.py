"""What the fake MX really said: peer transcripts turned into per-recipient events.

A DSN is true to the remote server when its Diagnostic-Code, Remote-MTA and (with Exim's
DSN_INFO) greeting and EHLO fields repeat what the peer sent. The FakeMX records every reply as
one transcript event and every command it parsed; pairing the two in order gives, for each
recipient, the reply that decided its fate: the RCPT refusal, the refusal of DATA, the reply to
the end of data, or its PRDR per-recipient reply and the final reply (draft-hall-prdr-00 §4.5).

Works on `PeerSession` objects (harness/smtp/peer.py); pure, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PeerEvent:
    peer: str
    connection: int  # 1-based, in the order the peer accepted connections
    stage: str  # "greeting", "EHLO", "MAIL", "RCPT", "DATA", "end of data", "PRDR", "PRDR final"
    recipient: str | None  # None for a connection-wide event
    reply: bytes  # as sent, CRLFs included
    started: float = 0.0  # the connection's start (monotonic), for ordering

    @property
    def code(self) -> int:
        return int(self.reply[:3]) if self.reply[:3].isdigit() else 0

    @property
    def outcome(self) -> str:
        return {2: "accepted", 3: "accepted", 4: "deferred", 5: "refused"}.get(self.code // 100, "unknown")

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.reply.decode("utf-8", "replace").replace("\r\n", "\n").split("\n") if ln]

    @property
    def text(self) -> str:
        """The reply on one line: its lines joined with one space."""
        return " ".join(self.lines)

    @property
    def enhanced_code(self) -> str | None:
        """The RFC 3463 code after the reply code of the last line (RFC 2034 §4), if any."""
        last = self.lines[-1] if self.lines else ""
        m = re.match(r"\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})(?:\s|$)", last)
        return m.group(1) if m else None

    def describe(self) -> str:
        who = f" for <{self.recipient}>" if self.recipient else ""
        return f"peer {self.peer}, connection {self.connection}, {self.stage}{who}: {self.text}"


@dataclass
class Conversation:
    """One connection to a fake MX, as the target saw it."""

    peer: str
    connection: int
    started: float
    greeting: bytes | None = None
    ehlo_reply: bytes | None = None
    events: list[PeerEvent] = field(default_factory=list)

    @staticmethod
    def first_line(reply: bytes | None) -> str | None:
        if reply is None:
            return None
        return reply.decode("utf-8", "replace").replace("\r\n", "\n").split("\n", 1)[0]


def _replies(session: Any) -> list[bytes]:
    return [e.data for e in session.transcript.events if e.dir == "S"]


def _code(reply: bytes | None) -> int:
    return int(reply[:3]) if reply and reply[:3].isdigit() else 0


def conversation(peer: str, session: Any) -> Conversation:
    """Pair the replies a FakeMX sent with the commands it read (one reply per command, the end
    of data answered by the transaction's recorded replies)."""
    conv = Conversation(peer, session.index + 1, getattr(session, "started", 0.0))
    replies = _replies(session)
    if not replies:
        return conv
    conv.greeting = replies[0]
    pos = 1

    def take() -> bytes | None:
        nonlocal pos
        if pos < len(replies):
            pos += 1
            return replies[pos - 1]
        return None

    def add(stage: str, rcpt: str | None, reply: bytes | None) -> None:
        if reply is not None:
            conv.events.append(PeerEvent(peer, conv.connection, stage, rcpt, reply, conv.started))

    if 400 <= _code(conv.greeting) < 600:
        add("greeting", None, conv.greeting)
    txns = list(getattr(session, "transactions", []))
    txn_i = -1
    txn = None
    mail_refusal: bytes | None = None
    for cmd in session.commands:
        verb = cmd.verb
        if verb in ("EHLO", "HELO"):
            reply = take()
            if conv.ehlo_reply is None:
                conv.ehlo_reply = reply
            if _code(reply) >= 400:
                add(verb if verb == "EHLO" else "HELO", None, reply)
        elif verb == "MAIL":
            reply = take()
            if 200 <= _code(reply) < 300:
                txn_i += 1
                txn = txns[txn_i] if txn_i < len(txns) else None
                mail_refusal = None
            else:
                txn, mail_refusal = None, reply
                add("MAIL", None, reply)
        elif verb == "RCPT":
            reply = take()
            addr = cmd.args.partition("<")[2].partition(">")[0]
            if mail_refusal is not None:
                add("MAIL", addr, mail_refusal)
            elif _code(reply) >= 400:
                add("RCPT", addr, reply)
        elif verb in ("DATA", "BDAT"):
            reply = take()
            last = verb == "DATA" or cmd.args.upper().split()[-1:] == ["LAST"]
            accepted = [a for a, _, c in txn.accepted] if txn is not None else []
            if verb == "DATA" and _code(reply) != 354:
                for a in accepted:
                    add("DATA", a, reply)
                continue
            if not last or txn is None:
                continue
            if verb == "DATA":
                pass  # the 354 was the reply to DATA; the end of data follows
            else:
                pos -= 1  # BDAT LAST: its reply is the end-of-data reply
            sent = list(txn.data_replies_sent)
            for _ in sent:
                take()
            if txn.prdr_requested and sent and sent[0].startswith(b"353"):
                for a, reply_i in zip(accepted, sent[1:1 + len(accepted)]):
                    add("PRDR", a, reply_i)
                if len(sent) > len(accepted) + 1:
                    final = sent[len(accepted) + 1]
                    for a in accepted:
                        add("PRDR final", a, final)
            elif sent:
                for a in accepted:
                    add("end of data", a, sent[0])
            txn = None
        else:
            take()
    return conv


def conversations(peers: Mapping[str, Sequence[Any]]) -> list[Conversation]:
    """Every connection to every peer, oldest first."""
    out = [conversation(name, s) for name, sessions in peers.items() for s in sessions]
    return sorted(out, key=lambda c: c.started)


def fate(convs: Iterable[Conversation], recipient: str) -> PeerEvent | None:
    """The last peer reply that decided RECIPIENT's delivery (refusal or acceptance), or the last
    connection-wide refusal when no reply names the recipient."""
    recipient = recipient.lower()
    named: list[PeerEvent] = []
    general: list[PeerEvent] = []
    for conv in convs:
        for ev in conv.events:
            if ev.recipient is not None and ev.recipient.lower() == recipient:
                named.append(ev)
            elif ev.recipient is None:
                general.append(ev)
    if named:
        # With PRDR the final reply governs an accepted per-recipient reply (§4.5.3).
        last = named[-1]
        if last.stage == "PRDR final" and len(named) > 1 and named[-2].stage == "PRDR" \
                and named[-2].outcome != "accepted":
            return named[-2]
        return last
    return general[-1] if general else None


def conversation_of(convs: Iterable[Conversation], event: PeerEvent) -> Conversation | None:
    return next((c for c in convs if c.peer == event.peer and c.connection == event.connection), None)


def accepted_by_peer(peers: Mapping[str, Sequence[Any]], recipient: str) -> list[tuple[str, Any]]:
    """(peer name, transaction) for every message a peer took for RECIPIENT."""
    out = []
    for name, sessions in peers.items():
        for s in sessions:
            for t in getattr(s, "transactions", []):
                if t.message is not None and recipient.lower() in (a.lower() for a, _, _ in t.accepted):
                    out.append((name, t))
    return out
