"""PRDR checks with the target as SMTP client (draft-hall-prdr-00 §4.2, §4.6, §4.7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...report.model import Evidence
from ..observations import Observations
from .base import Verdict, check, failed, passed, skipped


def _mail_sessions(obs: Observations, peer: str | None) -> list[Any]:
    return [s for s in obs.peer_sessions(peer) if s.mail is not None]


def _mail_evidence(sessions: list[Any]) -> list[Evidence]:
    return [Evidence("MAIL commands the peer received", "text",
                     "\n".join(f"connection {s.index + 1}: {t.mail.raw.decode(errors='replace').rstrip()}"
                               for s in sessions for t in s.transactions))]


@check(params={"param": {"type": "string"}, "present": {"type": "boolean"},
               "peer": {"type": "string"}},
       required=("param", "present"))
def peer_mail_param(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every MAIL command a peer received carries (or lacks) the ESMTP parameter PARAM."""
    sessions = _mail_sessions(obs, p.get("peer"))
    if not sessions:
        return failed("no MAIL command reached the peer", expected="a delivery attempt",
                      actual="; ".join(getattr(s, "error", "") or "" for s in obs.peer_sessions()) or None)
    name = p["param"].upper()
    want = "with" if p["present"] else "without"
    ev = _mail_evidence(sessions)
    for s in sessions:
        for t in s.transactions:
            has = name in {k.upper() for k in t.mail_params}
            if has != p["present"]:
                return failed(f"MAIL {'lacks' if p['present'] else 'carries'} {name}",
                              expected=f"MAIL {want} {name}",
                              actual=t.mail.raw.decode(errors="replace").strip(), evidence=ev)
    return passed(f"MAIL {want} {name} in {len(sessions)} attempt(s)", expected=f"MAIL {want} {name}",
                  evidence=ev)


@check(params={"peer": {"type": "string"}, "connection": {"type": "integer", "minimum": 1},
               "recipients": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
       required=("peer", "connection", "recipients"))
def peer_rcpts(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Connection N to PEER offered exactly these recipients (e.g. a retry of only the deferred)."""
    sessions = [s for s in obs.peer_sessions(p["peer"]) if s.rcpts]
    want = sorted(r.lower() for r in p["recipients"])
    if len(sessions) < p["connection"]:
        return failed(f"only {len(sessions)} delivery attempt(s) reached {p['peer']}",
                      expected=f"attempt {p['connection']} with {', '.join(want)}",
                      actual=f"{len(sessions)} attempt(s)")
    got = sorted(a.lower() for a, _, _ in sessions[p["connection"] - 1].rcpts)
    ev = [Evidence("RCPTs per attempt", "json",
                   [[a for a, _, _ in s.rcpts] for s in sessions])]
    if got != want:
        return failed(f"attempt {p['connection']} offered {', '.join(got)}", expected=", ".join(want),
                      actual=", ".join(got), evidence=ev)
    return passed(f"attempt {p['connection']} offered only {', '.join(got)}", evidence=ev)


@check(params={"peer": {"type": "string"}})
def pipelined(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """MAIL and RCPT reached the peer before it answered MAIL (§4.7: clients MUST pipeline)."""
    sessions = _mail_sessions(obs, p.get("peer"))
    if not sessions:
        return failed("no MAIL command reached the peer")
    s = sessions[0]
    events = s.transcript.events
    mail_at = next((i for i, e in enumerate(events) if e.dir == "C" and b"MAIL FROM" in e.data.upper()), None)
    if mail_at is None:
        return skipped("the MAIL command is not in the transcript")
    reply_at = next((i for i in range(mail_at + 1, len(events)) if events[i].dir == "S"), len(events))
    early = b"".join(e.data for e in events[mail_at:reply_at] if e.dir == "C")
    ev = [Evidence("peer transcript", "transcript", s.transcript.to_evidence())]
    if b"RCPT TO" in early.upper():
        together = b"RCPT TO" in events[mail_at].data.upper()
        how = "in the same segment as MAIL" if together else "before the MAIL reply"
        return passed(f"RCPT arrived {how}", expected="RCPT sent without waiting for the MAIL reply",
                      evidence=ev)
    return failed("the client waited for the MAIL reply before sending RCPT",
                  expected="RCPT sent without waiting for the MAIL reply (PIPELINING)",
                  actual="MAIL, reply, then RCPT", evidence=ev)
