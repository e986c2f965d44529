"""Observations: everything recorded while a scenario ran. Checks read only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..smtp.codec import Reply
from ..smtp.esmtp import EhloInfo
from ..smtp.transcript import Transcript


@dataclass
class RcptRecord:
    index: int  # 1-based position among the session's RCPT commands
    address: str
    role: str | None  # the recipient role from the target's recipient map, if used
    params: dict[str, str | None]
    reply: Reply | None

    @property
    def accepted(self) -> bool:
        return self.reply is not None and self.reply.is_positive


@dataclass
class StepRecord:
    kind: str  # "ehlo", "mail", "rcpt", "data", "bdat", "send", "read", "rset", "noop", "quit"
    sent: bytes
    replies: list[Reply] = field(default_factory=list)
    error: str | None = None  # a protocol error, time-out or close while waiting for a reply


@dataclass
class SessionRecord:
    """One inbound session: the harness as client, the target as server."""

    transcript: Transcript
    banner: Reply | None = None
    ehlo_reply: Reply | None = None
    ehlo: EhloInfo | None = None
    used_helo: bool = False
    mail_params: dict[str, str | None] = field(default_factory=dict)
    mail_reply: Reply | None = None
    rcpts: list[RcptRecord] = field(default_factory=list)
    data_reply: Reply | None = None  # 354 (or the refusal of DATA)
    end_replies: list[Reply] = field(default_factory=list)  # every reply after end of data
    end_replies_expected: int = 0  # how many the client waited for before draining
    steps: list[StepRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    closed_by_peer: bool = False
    proxy: Any = None  # harness.proxy.client.ProxyRecord when the session began with a `proxy:` step
    tls: dict[str, Any] | None = None  # the STARTTLS handshake, if a step asked for one (DANE-31/32)

    @property
    def prdr_requested(self) -> bool:
        return "PRDR" in self.mail_params and bool(self.mail_reply and self.mail_reply.is_positive)

    @property
    def accepted_rcpts(self) -> list[RcptRecord]:
        return [r for r in self.rcpts if r.accepted]

    def steps_of(self, kind: str) -> list[StepRecord]:
        return [s for s in self.steps if s.kind == kind]


@dataclass
class Observations:
    scenario_id: str
    target: str
    sessions: list[SessionRecord] = field(default_factory=list)
    peers: dict[str, list[Any]] = field(default_factory=dict)  # name -> [PeerSession]
    sink: list[Any] = field(default_factory=list)  # PeerSessions of the DSN sink
    dns_log: list[Any] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)
    queue: list[Any] | None = None  # [QueueEntry] after the action, None if unknown
    queue_history: list[list[Any]] = field(default_factory=list)  # after each attempt
    injects: list[Any] = field(default_factory=list)  # [InjectResult]
    settings: dict[str, str | None] = field(default_factory=dict)
    sender: str | None = None
    recipients: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lingering: list[str] = field(default_factory=list)  # target processes killed after the action (hung)
    # DSN checks (issue #7): where each fake peer listened, and the scenario's world data
    # (its DNS names tell which name a Remote-MTA field should carry).
    peer_endpoints: dict[str, tuple[str, int]] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=dict)
    # OCSP (issue #5): what was set up to be stapled, by whom (label -> DER): the target's
    # tls_ocsp_file and each fake MX's staple. What was received is in SessionRecord.tls.
    staples: dict[str, bytes] = field(default_factory=dict)

    @property
    def session(self) -> SessionRecord | None:
        return self.sessions[0] if self.sessions else None

    def peer_sessions(self, name: str | None = None) -> list[Any]:
        if name is not None:
            return list(self.peers.get(name, []))
        return [s for sessions in self.peers.values() for s in sessions]

    def queued(self) -> set[str]:
        """Recipients still queued (not yet delivered or bounced) after the action."""
        return {r.lower() for e in (self.queue or []) for r in e.recipients}

    def sink_messages(self) -> list[bytes]:
        return [m for s in self.sink for m in s.messages]
