"""Checks over what an outbound target did with a message: delivered, queued, bounced.

"Delivered" is what the target believes: the recipient left its queue without a failure DSN,
and a peer accepted a message for it. "Queued" means it is still the target's responsibility.
DSNs are read from the DSN sink, the lab's MX for the senders' domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...dsn.report import DeliveryReport, DSNError, parse_dsn
from ...report.model import Evidence
from ..observations import Observations
from .base import Verdict, check, failed, passed, skipped

_rcpts = {"type": "array", "items": {"type": "string", "pattern": "@"}, "minItems": 1}


def dsns(obs: Observations) -> tuple[list[DeliveryReport], list[str]]:
    """The DSNs that reached the sink, and what could not be read as one."""
    reports, problems = [], []
    for session in obs.sink:
        # session.messages holds each transaction's message in order: pair them for the sender.
        senders = [t.reverse_path for t in session.transactions if t.message is not None]
        for i, msg in enumerate(session.messages):
            try:
                reports.append(parse_dsn(msg, senders[i] if i < len(senders) else None))
            except DSNError as exc:
                problems.append(f"not a DSN ({exc}): {msg[:200]!r}")
    return reports, problems


def failed_groups(reports: list[DeliveryReport], address: str) -> list[tuple[DeliveryReport, Any]]:
    out = []
    for rep in reports:
        group = rep.group_for(address)
        if group is not None and group.action == "failed":
            out.append((rep, group))
    return out


def dsn_evidence(reports: list[DeliveryReport]) -> list[Evidence]:
    return [Evidence(f"DSN #{i} (per-recipient groups)", "json",
                     {"per_message": r.per_message, "recipients": [g.fields for g in r.recipients]})
            for i, r in enumerate(reports, 1)]


def queue_evidence(obs: Observations) -> Evidence:
    return Evidence("queued recipients after the last attempt", "text",
                    ", ".join(sorted(obs.queued())) or "(queue empty)")


def peer_accepted(obs: Observations, address: str) -> bool:
    """Some peer took responsibility for ADDRESS: a message arrived with ADDRESS accepted at RCPT,
    and the reply to the end of data was positive for it (with PRDR: its per-recipient reply and
    the final reply, draft-hall-prdr-00 §4.5.3)."""
    address = address.lower()
    for s in obs.peer_sessions():
        for t in s.transactions:
            accepted = [a.lower() for a, _, _ in t.accepted]
            if t.message is None or address not in accepted or not t.data_replies_sent:
                continue
            replies = t.data_replies_sent
            if t.prdr_requested and replies[0].startswith(b"353"):
                i = accepted.index(address)
                if len(replies) > len(accepted) + 1:
                    per, final = replies[1 + i], replies[1 + len(accepted)]
                    if per.startswith(b"2") and final.startswith(b"2"):
                        return True
            elif replies[0].startswith(b"2"):
                return True
    return False


@check(params={"recipients": _rcpts}, required=("recipients",))
def delivered(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each recipient was delivered: out of the queue, accepted by a peer, no failure DSN."""
    if obs.queue is None:
        return skipped("the target's queue cannot be read, so delivery cannot be judged")
    reports, _ = dsns(obs)
    queued = obs.queued()
    ev = [queue_evidence(obs), *dsn_evidence(reports)]
    for rcpt in p["recipients"]:
        if rcpt.lower() in queued:
            return failed(f"<{rcpt}> is still queued", expected="delivered", actual="queued", evidence=ev)
        if failed_groups(reports, rcpt):
            return failed(f"<{rcpt}> was bounced", expected="delivered", actual="failure DSN", evidence=ev)
        if not peer_accepted(obs, rcpt):
            return failed(f"no peer accepted a message for <{rcpt}>", expected="delivered to a peer",
                          actual="never accepted by a peer", evidence=ev)
    return passed(f"delivered: {', '.join(p['recipients'])}", evidence=ev)


@check(params={"recipients": _rcpts,
               "after_attempt": {"type": "integer", "minimum": 1,
                                 "description": "judge the queue after this attempt (default: the last)"}},
       required=("recipients",))
def queued(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each recipient is still queued (the target kept responsibility), with no failure DSN."""
    if obs.queue is None:
        return skipped("the target's queue cannot be read")
    reports, _ = dsns(obs)
    ev = [queue_evidence(obs), *dsn_evidence(reports)]
    queued_now = obs.queued()
    if p.get("after_attempt"):
        if p["after_attempt"] > len(obs.queue_history):
            return skipped(f"only {len(obs.queue_history)} attempt(s) were made")
        queued_now = {r.lower() for e in obs.queue_history[p["after_attempt"] - 1] for r in e.recipients}
    for rcpt in p["recipients"]:
        if failed_groups(reports, rcpt):
            return failed(f"<{rcpt}> was bounced", expected="still queued", actual="failure DSN", evidence=ev)
        if rcpt.lower() not in queued_now:
            what = "delivered" if peer_accepted(obs, rcpt) else "gone from the queue"
            return failed(f"<{rcpt}> is not queued any more ({what})", expected="still queued",
                          actual=what, evidence=ev)
    return passed(f"still queued: {', '.join(p['recipients'])}", evidence=ev)


@check(
    params={
        "recipients": _rcpts,
        "contains": {"type": "string", "description": "text the DSN's Diagnostic-Code must contain"},
        "excludes": {"type": "string", "description": "text it must not contain"},
    },
    required=("recipients",),
)
def failure_dsn(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A failure DSN reached the sender for each recipient, with the remote reply's text."""
    reports, problems = dsns(obs)
    ev = dsn_evidence(reports) + [Evidence("unreadable messages at the sink", "text", "\n".join(problems))] * bool(problems)
    for rcpt in p["recipients"]:
        groups = failed_groups(reports, rcpt)
        if not groups:
            return failed(f"no failure DSN for <{rcpt}>", expected="a DSN with Action: failed",
                          actual=f"{len(reports)} DSN(s) at the sink", evidence=ev)
        diag = " ".join(g.get("diagnostic-code", "") or "" for _, g in groups)
        if p.get("contains") and p["contains"] not in diag:
            return failed(f"the DSN for <{rcpt}> does not carry {p['contains']!r}",
                          expected=f"Diagnostic-Code containing {p['contains']!r}", actual=diag or "(none)",
                          evidence=ev)
        if p.get("excludes") and p["excludes"] in diag:
            return failed(f"the DSN for <{rcpt}> carries {p['excludes']!r}",
                          expected=f"no {p['excludes']!r}", actual=diag, evidence=ev)
    return passed(f"failure DSN for {', '.join(p['recipients'])}", evidence=ev)


@check(params={"recipients": _rcpts})
def no_failure_dsn(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """No failure DSN for these recipients (or none at all) reached the sender."""
    reports, problems = dsns(obs)
    ev = dsn_evidence(reports)
    targets = p.get("recipients")
    for rep in reports:
        for group in rep.recipients:
            if group.action == "failed" and (not targets or group.final_recipient in {t.lower() for t in targets}):
                return failed(f"a failure DSN for <{group.final_recipient}>", expected="no failure DSN",
                              actual=group.get("diagnostic-code") or "Action: failed", evidence=ev)
    return passed("no failure DSN" + (f" for {', '.join(targets)}" if targets else ""), evidence=ev)


@check(params={"recipients": _rcpts}, required=("recipients",))
def dsn_codes_kept(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each failed recipient's DSN group carries its own reply code, not one code for all."""
    reports, _ = dsns(obs)
    ev = dsn_evidence(reports)
    wanted: dict[str, str] = {}
    for rcpt in p["recipients"]:
        code = _code_given(obs, rcpt)
        if code is None:
            return skipped(f"no peer refused <{rcpt}> in the transcript")
        wanted[rcpt] = code
    for rcpt, code in wanted.items():
        groups = failed_groups(reports, rcpt)
        if not groups:
            return failed(f"no per-recipient group for <{rcpt}>", expected=f"a group with {code}",
                          actual=f"{len(reports)} DSN(s)", evidence=ev)
        diag = " ".join(g.get("diagnostic-code", "") or "" for _, g in groups)
        if code not in diag:
            return failed(f"the group for <{rcpt}> does not carry its own code {code}",
                          expected=code, actual=diag or "(no Diagnostic-Code)", evidence=ev)
    return passed("each group carries its own code: " + ", ".join(f"{r} {c}" for r, c in wanted.items()),
                  evidence=ev)


def _code_given(obs: Observations, rcpt: str) -> str | None:
    """The negative code a peer gave RCPT: at RCPT time, or per recipient in a PRDR block."""
    for s in obs.peer_sessions():
        for t in s.transactions:
            for addr, _, code in t.rcpts:
                if addr.lower() == rcpt.lower() and code >= 400:
                    return str(code)
            replies = t.data_replies_sent
            if t.prdr_requested and replies and replies[0].startswith(b"353"):
                for (addr, _, _), reply in zip(t.accepted, replies[1:]):
                    code = reply[:3].decode("ascii", "replace")
                    if addr.lower() == rcpt.lower() and code[:1] in "45":
                        return code
    return None


@check(params={"recipients": _rcpts, "contains": {"type": "string"}, "excludes": {"type": "string"}},
       required=("recipients",))
def success_dsn(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A success DSN (Action: delivered/relayed) reached the sender for each recipient."""
    reports, _ = dsns(obs)
    ev = dsn_evidence(reports)
    for rcpt in p["recipients"]:
        groups = [g for r in reports if (g := r.group_for(rcpt)) and g.action in ("delivered", "relayed",
                                                                                   "expanded")]
        if not groups:
            return failed(f"no success DSN for <{rcpt}>", expected="Action: delivered",
                          actual=f"{len(reports)} DSN(s)", evidence=ev)
        if p.get("contains"):
            text = " ".join(" ".join(g.fields.values()) for g in groups)
            if p["contains"] not in text:
                return failed(f"the success DSN for <{rcpt}> does not carry {p['contains']!r}",
                              expected=p["contains"], actual=text, evidence=ev)
        if p.get("excludes"):
            text = " ".join(" ".join(g.fields.values()) for g in groups)
            if p["excludes"] in text:
                return failed(f"the success DSN for <{rcpt}> carries {p['excludes']!r}",
                              expected=f"not {p['excludes']!r}", actual=text, evidence=ev)
    return passed(f"success DSN for {', '.join(p['recipients'])}", evidence=ev)


@check(params={"setting": {"type": "string"}, "at_least_s": {"type": "number", "minimum": 0}},
       required=("setting", "at_least_s"))
def setting_at_least(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The target's effective SETTING (a duration) is at least AT_LEAST_S seconds."""
    raw = obs.settings.get(p["setting"])
    if raw is None:
        return skipped(f"the target spec cannot read {p['setting']}")
    seconds = parse_duration(raw)
    expected = f"{p['setting']} ≥ {p['at_least_s']:g} s"
    if seconds is None:
        return failed(f"cannot read {p['setting']} = {raw!r} as a duration", expected=expected, actual=raw)
    if seconds < p["at_least_s"]:
        return failed(f"{p['setting']} is {seconds:g} s", expected=expected, actual=raw)
    return passed(f"{p['setting']} is {seconds:g} s", expected=expected, actual=raw)


def parse_duration(text: str) -> float | None:
    """'10m', '1h30m', '600s', '600' → seconds (Exim and Postfix style)."""
    import re

    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([wdhms])", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def recipient_state(obs: Observations, rcpt: str, reports: list[DeliveryReport]) -> str:
    """delivered | queued | bounced | lost (gone without delivery or DSN)."""
    if failed_groups(reports, rcpt):
        return "bounced"
    if rcpt.lower() in obs.queued():
        return "queued"
    return "delivered" if peer_accepted(obs, rcpt) else "lost"


@check(
    params={"allow": {"type": "object", "minProperties": 1,
                      "additionalProperties": {"type": "array", "minItems": 1,
                                               "items": {"enum": ["delivered", "queued", "bounced"]}}}},
    required=("allow",),
)
def recipient_states(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each recipient ended in one of its allowed states (delivered, queued, bounced); never lost."""
    if obs.queue is None:
        return skipped("the target's queue cannot be read")
    reports, _ = dsns(obs)
    ev = [queue_evidence(obs), *dsn_evidence(reports)]
    states = {rcpt: recipient_state(obs, rcpt, reports) for rcpt in p["allow"]}
    actual = ", ".join(f"{r}: {s}" for r, s in states.items())
    expected = "; ".join(f"{r}: {' or '.join(a)}" for r, a in p["allow"].items())
    for rcpt, state in states.items():
        if state not in p["allow"][rcpt]:
            return failed(f"<{rcpt}> was {state}", expected=expected, actual=actual, evidence=ev)
    return passed(actual, expected=expected, actual=actual, evidence=ev)
