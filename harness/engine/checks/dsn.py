"""DSN checks (issue #7): the DSN parameters the target accepts, and the DSNs it generates.

Server side (RFC 3461 §4): `dsn_param_replies` judges every MAIL/RCPT with DSN parameters
against the parameter grammar. Generator side: every message that reached the DSN sink (the MX
of the original sender's domain) is parsed and validated by harness/dsn, and the checks compare
it with what really happened — the submission's parameters (ENVID, ORCPT, RET, NOTIFY) and the
fake MX's transcript (what the remote server said, its greeting and EHLO reply).

Each check cites its requirement next to the code; evidence is the decoded DSN and the peer
reply that caused it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...dsn import params as dsn_params
from ...dsn import xtext
from ...dsn.render import Arrival, arrivals, decoded, evidence_items
from ...dsn.report import RecipientGroup, split_typed
from ...dsn.trace import Conversation, PeerEvent, conversation_of, conversations, fate
from ...dsn.validate import Violation, date_problem, long_lines, of
from ...lab import addresses
from ...report.model import Evidence
from ...smtp.transcript import visible
from ..observations import Observations, SessionRecord
from .base import Verdict, check, failed, passed, skipped

KINDS = ("failure", "delay", "success")
KIND_ACTIONS = {"failure": ("failed",), "delay": ("delayed",), "success": ("delivered", "relayed", "expanded")}
_kind = {"enum": [*KINDS, "any"], "description": "which DSNs to judge (default: any)"}
_kinds = {"type": "array", "items": {"enum": list(KINDS)}, "minItems": 1}
_rcpts = {"type": "array", "items": {"type": "string", "pattern": "@"}, "minItems": 1}


# -- shared helpers ----------------------------------------------------------------------------

def dsn_evidence(obs: Observations) -> list[Evidence]:
    """Scenario evidence: every message at the DSN sink decoded, beside the peer replies that
    caused it (the runner shows these after the sink transcripts)."""
    return [Evidence(label, kind, content) for label, kind, content in evidence_items(obs.sink, obs.peers)]


def all_arrivals(obs: Observations) -> list[Arrival]:
    return arrivals(obs.sink)


def _of_kind(items: Iterable[Arrival], kind: str | None) -> list[Arrival]:
    """The DSNs of KIND, and those that cannot be classified (unreadable, or an Action that is no
    action-value): a broken DSN is judged by every check rather than hidden from all of them."""
    if not kind or kind == "any":
        return list(items)
    return [a for a in items if kind in a.kinds or a.report is None or "other" in a.kinds]


def _unreadable(items: Iterable[Arrival], what: str) -> Verdict | None:
    """A failed verdict when a DSN cannot be read, so WHAT cannot be found in it."""
    bad = [a for a in items if a.report is None]
    if not bad:
        return None
    a = bad[0]
    return failed(f"DSN #{a.number} is not readable, so it has no {what}: {a.violations[0]}",
                  expected=what, actual=a.violations[0].message, evidence=ev_dsns([a]))


def _groups(a: Arrival, kind: str | None = None, recipients: Sequence[str] | None = None) -> list[RecipientGroup]:
    if a.report is None:
        return []
    wanted = {r.lower() for r in recipients} if recipients else None
    out = []
    for g in a.report.recipients:
        if kind and kind != "any" and g.action not in KIND_ACTIONS[kind]:
            continue
        if wanted is not None and g.final_recipient not in wanted:
            continue
        out.append(g)
    return out


def ev_dsns(items: Iterable[Arrival]) -> list[Evidence]:
    return [Evidence(f"{a.label}, decoded", "text", decoded(a)) for a in items]


def ev_peer(events: Iterable[PeerEvent | None]) -> list[Evidence]:
    seen = [e for e in events if e is not None]
    if not seen:
        return []
    return [Evidence("what the fake MX said", "text",
                     "\n".join(f"{e.describe()}\n    raw: {visible(e.reply).rstrip()}" for e in seen))]


def none_arrived(kind: str | None) -> Verdict:
    what = f"no {kind} DSN" if kind and kind != "any" else "no DSN"
    return skipped(f"{what} arrived at the sink, so there is nothing to judge (the scenario's "
                   "arrival check says whether one should have)")


def submission(obs: Observations) -> SessionRecord | None:
    """The SMTP submission of an outbound scenario (None when injected on the command line)."""
    if obs.injects or not obs.sessions:
        return None
    return obs.sessions[0]


def submitted_rcpt_params(obs: Observations, address: str) -> dict[str, str | None] | None:
    sub = submission(obs)
    if sub is None:
        return None
    for r in sub.rcpts:
        if r.address.lower() == address.lower():
            return r.params
    return None


def _violations(selected: Iterable[Arrival], requirement: str | None = None,
                rules: Iterable[str] | None = None, levels: Sequence[str] = ("MUST",)) -> list[tuple[Arrival, Violation]]:
    return [(a, v) for a in selected for v in of(a.violations, requirement=requirement, rules=rules)
            if v.level in levels]


def _show(found: Sequence[tuple[Arrival, Violation]]) -> str:
    return "\n".join(f"DSN #{a.number}: {v}" for a, v in found)


def _rule_verdict(selected: list[Arrival], found: list[tuple[Arrival, Violation]], what: str,
                  expected: str, extra_ev: Sequence[Evidence] = ()) -> Verdict:
    ev = [*ev_dsns(selected), *extra_ev]
    if found:
        return failed(f"{len(found)} violation(s) of {what}: {found[0][1]}", expected=expected,
                      actual=_show(found), evidence=ev)
    return passed(f"{what}: no violations in {len(selected)} DSN(s)", expected=expected,
                  actual="no violations", evidence=ev)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def peer_names(obs: Observations, address: str) -> set[str]:
    """DNS names the scenario's world gives ADDRESS (A/AAAA records), lower case, no final dot."""
    names = set()
    for zone in obs.world.get("dns", {}).get("zones", []) if isinstance(obs.world, Mapping) else []:
        for rec in zone.get("records", []) if isinstance(zone, Mapping) else []:
            if isinstance(rec, Mapping) and str(rec.get("type", "")).upper() in ("A", "AAAA") \
                    and str(rec.get("value", "")).strip() == address:
                names.add(str(rec.get("name", "")).lower().rstrip("."))
    return names


# -- server side: the DSN parameters (RFC 3461 §4) -------------------------------------------

@check(params={})
def dsn_param_replies(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every MAIL/RCPT with DSN parameters: 2xx when they are valid and DSN was advertised, 5xx
    otherwise (RFC 3461 §2 gating, §4.1–§4.4 grammar)."""
    s = obs.session
    if s is None:
        return skipped("no inbound session was recorded")
    advertised = bool(s.ehlo and "DSN" in s.ehlo.keywords)
    rows, wrong = [], []
    for step in s.steps:
        if step.kind not in ("mail", "rcpt"):
            continue
        line = step.sent.decode("utf-8", "surrogateescape").rstrip("\r\n")
        given = dsn_params.dsn_params(line)
        if not given:
            continue
        problems = dsn_params.problems(line)
        if not advertised:
            # RFC 3461 §2 [M]: the parameters exist only once the server offered the keyword
            # (an unoffered parameter: RFC 5321 §4.1.1.11, 555).
            want, why = "5xx", "DSN was not advertised"
        elif problems:
            want, why = "5xx", "; ".join(str(x) for x in problems)
        else:
            want, why = "2xx", "valid"
        reply = step.replies[0] if step.replies else None
        got = f"{reply.code} {reply.lines[0] if reply.lines else ''}".strip() if reply else (step.error or "no reply")
        ok = reply is not None and reply.code // 100 == int(want[0])
        rows.append({"command": line, "expected": want, "because": why, "reply": got,
                     "verdict": "ok" if ok else "WRONG"})
        if not ok:
            wrong.append(f"{line} → {got} (expected {want}: {why})")
    if not rows:
        return skipped("the session sent no MAIL or RCPT with DSN parameters")
    ev = [Evidence("DSN parameters and the replies to them", "table", rows)]
    expected = "; ".join(f"{r['command'].split(' ', 1)[1][:60]} → {r['expected']}" for r in rows)
    actual = "; ".join(f"{r['command'].split(' ', 1)[1][:60]} → {r['reply']}" for r in rows)
    if wrong:
        return failed(f"{len(wrong)} of {len(rows)} replies wrong: {wrong[0]}", expected=expected,
                      actual=actual, evidence=ev)
    return passed(f"{len(rows)} command(s) with DSN parameters answered as the grammar requires"
                  + ("" if advertised else " (DSN not advertised)"), expected=expected, actual=actual,
                  evidence=ev)


# -- generator side: arrival ------------------------------------------------------------------

@check(params={"kind": {"enum": list(KINDS)}, "recipients": _rcpts,
               "actions": {"type": "array", "items": {"enum": ["failed", "delayed", "delivered", "relayed",
                                                               "expanded"]}, "minItems": 1},
               "allow": {"type": "object", "additionalProperties": _rcpts,
                         "description": "recipient → other Final-Recipient addresses that also count "
                                        "for it (an alias and what it expanded to, RFC 3464 §2.3.2)"}},
       required=("kind", "recipients"))
def dsn_arrived(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A DSN of KIND reached the sender for each recipient, with an allowed Action
    (RFC 3461 §4.1 NOTIFY; RFC 3464 §2.3.3 action values)."""
    allowed = tuple(p.get("actions") or KIND_ACTIONS[p["kind"]])
    items = all_arrivals(obs)
    ev = ev_dsns(items)
    expected = f"a DSN with Action: {' or '.join(allowed)} for " + ", ".join(p["recipients"])
    aliases = {k.lower(): v for k, v in p.get("allow", {}).items()}
    for rcpt in p["recipients"]:
        names = [rcpt, *aliases.get(rcpt.lower(), [])]
        groups = [(a, g) for a in items for g in _groups(a, recipients=names)]
        good = [(a, g) for a, g in groups if g.action in allowed]
        if not good:
            actual = (", ".join(f"DSN #{a.number}: Action: {g.get('action')}" for a, g in groups)
                      or f"{len(items)} DSN(s), none for <{rcpt}>")
            return failed(f"no DSN with Action: {' or '.join(allowed)} for <{rcpt}>", expected=expected,
                          actual=actual, evidence=ev)
    return passed(f"{p['kind']} DSN for {', '.join(p['recipients'])}", expected=expected,
                  actual="; ".join(f"DSN #{a.number} ({'/'.join(sorted(a.kinds))})" for a in items), evidence=ev)


def _premise(obs: Observations, rcpt: str, after: str, convs: list[Conversation]) -> str | None:
    """None if the event AFTER happened to RCPT, else why not."""
    ev = fate(convs, rcpt)
    if after == "refused":
        if ev is None or ev.outcome != "refused":
            return f"no peer refused <{rcpt}> permanently" + (f" (last reply: {ev.text})" if ev else "")
        if rcpt.lower() in obs.queued():
            return f"<{rcpt}> is still queued: the target has not given up on it yet"
    elif after == "deferred":
        if ev is None or ev.outcome != "deferred":
            return f"no peer deferred <{rcpt}>" + (f" (last reply: {ev.text})" if ev else "")
    elif after == "delivered":
        if ev is not None and ev.outcome != "accepted":
            return f"<{rcpt}> was not accepted by a peer (last reply: {ev.text})"
        if ev is None and not any(rcpt.lower() in (a.lower() for a, _, _ in t.accepted)
                                  for s in obs.peer_sessions() for t in s.transactions if t.message):
            if not any(f"=> {rcpt.lower()}" in line.lower() for lines in obs.logs.values() for line in lines):
                return f"no delivery of <{rcpt}> was observed"
    return None


@check(params={"kinds": _kinds, "recipients": _rcpts,
               "after": {"enum": ["refused", "deferred", "delivered"],
                         "description": "the event that happened to the recipients (checked first)"}})
def dsn_none(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """No DSN of these kinds (for these recipients) arrived, although the event that could have
    caused one happened (RFC 3461 §4.1 NEVER / only requested kinds; RFC 5321 §4.5.5 no DSN to
    the null reverse-path)."""
    items = all_arrivals(obs)
    convs = conversations(obs.peers)
    rcpts = p.get("recipients") or []
    if p.get("after"):
        for r in rcpts or obs.recipients:
            why = _premise(obs, r, p["after"], convs)
            if why:
                return skipped(f"the scenario's premise did not hold: {why}",
                               evidence=ev_peer(fate(convs, x) for x in rcpts or obs.recipients))
    kinds = p.get("kinds") or list(KINDS)
    bad = []
    for a in items:
        if a.report is None:
            bad.append((a, "a message that is not a readable DSN"))
            continue
        for g in _groups(a, recipients=rcpts or None):
            kind = next((k for k, acts in KIND_ACTIONS.items() if g.action in acts), "other")
            if kind in kinds or kind == "other":
                bad.append((a, f"Action: {g.get('action')} for <{g.final_recipient}>"))
    what = "/".join(kinds) + " DSN" + (f" for {', '.join(rcpts)}" if rcpts else "")
    ev = ev_dsns(items) + ev_peer(fate(convs, r) for r in rcpts or obs.recipients)
    if bad:
        return failed(f"a {what} arrived: DSN #{bad[0][0].number}, {bad[0][1]}", expected=f"no {what}",
                      actual="; ".join(f"DSN #{a.number}: {w}" for a, w in bad), evidence=ev)
    premise = f" after the peer {p['after']} the message" if p.get("after") else ""
    return passed(f"no {what}{premise} ({len(items)} message(s) at the sink)", expected=f"no {what}",
                  actual=f"{len(items)} message(s) at the sink", evidence=ev)


@check(params={"kind": {"enum": list(KINDS)}, "count": {"type": "integer", "minimum": 0},
               "recipients": _rcpts}, required=("kind", "count"))
def dsn_count(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Exactly COUNT DSN messages of KIND (naming these recipients) arrived: one DSN may report
    several recipients (RFC 3461 §6.2 [M]; catalogue DSN-29)."""
    items = [a for a in _of_kind(all_arrivals(obs), p["kind"])
             if not p.get("recipients") or _groups(a, p["kind"], p["recipients"])]
    expected = f"{p['count']} {p['kind']} DSN message(s)"
    actual = f"{len(items)}: " + ", ".join(
        f"#{a.number} for {', '.join(g.final_recipient for g in _groups(a, p['kind']))}" for a in items)
    verdict = passed if len(items) == p["count"] else failed
    return verdict(f"{len(items)} {p['kind']} DSN message(s)", expected=expected, actual=actual,
                   evidence=ev_dsns(items))


# -- generator side: the envelope and the container --------------------------------------------

@check(params={"kind": _kind})
def dsn_envelope(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each DSN came with the null reverse-path, to the original reverse-path alone
    (RFC 3461 §6.1 [M]; RFC 5321 §4.5.5)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    sender = obs.sender or ""
    expected = f"MAIL FROM:<> RCPT TO:<{sender}>"
    for a in items:
        actual = f"MAIL FROM:<{a.reverse_path}> RCPT TO:" + ", ".join(f"<{r}>" for r in a.recipients)
        if a.reverse_path != "":
            return failed(f"DSN #{a.number} has reverse-path <{a.reverse_path}>", expected=expected,
                          actual=actual, evidence=ev_dsns([a]))
        if [r.lower() for r in a.recipients] != [sender.lower()]:
            return failed(f"DSN #{a.number} went to {', '.join(a.recipients) or 'nobody'}", expected=expected,
                          actual=actual, evidence=ev_dsns([a]))
    return passed(f"{len(items)} DSN(s) with MAIL FROM:<> to <{sender}>", expected=expected,
                  actual=expected, evidence=ev_dsns(items))


@check(params={"kind": _kind, "strict": {"type": "boolean", "description": "also SHOULD-level rules"}})
def dsn_structure(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each DSN is an RFC 6522 multipart/report: report-type=delivery-status, human-readable part,
    message/delivery-status second, optional returned message third (RFC 3461 §6.2, RFC 3464 §2,
    RFC 6522 §3)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    levels = ("MUST", "SHOULD") if p.get("strict") else ("MUST",)
    found = _violations(items, "DSN-12", levels=levels)
    return _rule_verdict(items, found, "the multipart/report structure",
                         "multipart/report; report-type=delivery-status: text part, "
                         "message/delivery-status, [message/rfc822 | text/rfc822-headers]")


def _returned_expectation(obs: Observations, p: Mapping[str, Any]) -> str:
    if p.get("ret"):
        return str(p["ret"]).upper()
    sub = submission(obs)
    ret = (sub.mail_params.get("RET") if sub else None) or "none"
    return ret.upper()


@check(params={"kind": _kind, "ret": {"enum": ["FULL", "HDRS", "none"]},
               "marker": {"type": "string", "description": "text of the body that FULL returns and HDRS must not"}})
def dsn_returned_content(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The returned content follows RET: HDRS → text/rfc822-headers without the body, FULL → the
    whole message (RFC 3461 §4.3); a DSN without failures returns headers only (§4.3 [M])."""
    kind = p.get("kind") or "failure"
    items = _of_kind(all_arrivals(obs), kind)
    if not items:
        return none_arrived(kind)
    if (bad := _unreadable(items, "returned content")) is not None:
        return bad
    ret = _returned_expectation(obs, p)
    marker = p.get("marker", "Test message from mtaconform.")
    headers_only = ret == "HDRS" or kind != "failure"
    msgid = f"<{obs.scenario_id}@mtaconform.test>"
    if headers_only:
        expected = "a third part text/rfc822-headers (or message/global-headers) without the body"
    elif ret == "FULL":
        expected = "a third part message/rfc822 (or message/global) with the whole message"
    else:
        expected = "no RET: the whole message or its headers"
    for a in items:
        assert a.report is not None
        r = a.report.returned
        actual = "no third part" if r is None else (
            f"{r.content_type}: {len(r.headers)} header fields, body {len(r.body)} bytes"
            + (", body carries the marker" if marker.encode() in r.body else ""))
        ev = ev_dsns([a])
        if r is None:
            if ret in ("FULL", "HDRS"):
                return failed(f"DSN #{a.number} returns nothing although RET={ret}", expected=expected,
                              actual=actual, evidence=ev)
            continue
        returned_ids = [v.strip() for k, v in r.headers if k.lower() == "message-id"]
        if msgid not in returned_ids:
            return failed(f"DSN #{a.number} returns another message (Message-ID {returned_ids or 'none'})",
                          expected=f"the original message {msgid}", actual=actual, evidence=ev)
        if headers_only:
            if r.content_type not in ("text/rfc822-headers", "message/global-headers") or \
                    marker.encode() in r.body:
                why = f"RET={ret}" if ret == "HDRS" else f"a {kind} DSN"
                return failed(f"DSN #{a.number} returns more than the headers ({why})", expected=expected,
                              actual=actual, evidence=ev)
        elif ret == "FULL":
            if r.content_type not in ("message/rfc822", "message/global") or marker.encode() not in r.body:
                return failed(f"DSN #{a.number} does not return the whole message although RET=FULL",
                              expected=expected, actual=actual, evidence=ev)
    return passed(f"returned content as RET={ret} asks in {len(items)} DSN(s)", expected=expected,
                  actual=actual, evidence=ev_dsns(items))


# -- per-message fields -------------------------------------------------------------------------

@check(params={"kind": _kind, "name": {"type": "string", "description": "the MTA's FQDN (default: the lab's)"}})
def dsn_reporting_mta(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Reporting-MTA is present once, as `dns; <FQDN of the MTA>` (RFC 3464 §2.2.2)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    if (bad := _unreadable(items, "Reporting-MTA")) is not None:
        return bad
    name = (p.get("name") or addresses.TARGET_HOSTNAME).lower()
    expected = f"Reporting-MTA: dns; {name}"
    found = _violations(items, "DSN-14", levels=("MUST", "SHOULD"))
    found += [(a, v) for a, v in _violations(items, rules=["duplicate-field"]) if v.field and
              v.field.lower() == "reporting-mta"]
    if found:
        return _rule_verdict(items, found, "the Reporting-MTA field", expected)
    for a in items:
        assert a.report is not None
        value = a.report.per_message.get("reporting-mta", "")
        kind, mta = split_typed(value)
        mta = mta.split("(")[0].strip().lower().rstrip(".")
        if (kind or "").lower() != "dns" or mta != name:
            return failed(f"DSN #{a.number} names Reporting-MTA: {value}", expected=expected,
                          actual=f"Reporting-MTA: {value}", evidence=ev_dsns(items))
    return passed(f"Reporting-MTA: dns; {name} in {len(items)} DSN(s)", expected=expected,
                  actual=expected, evidence=ev_dsns(items))


@check(params={"kind": _kind})
def dsn_envelope_id(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Original-Envelope-Id is the ENVID decoded from xtext, and absent without ENVID
    (RFC 3464 §2.2.1 [M]; RFC 3461 §6.3 [M])."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    if (bad := _unreadable(items, "Original-Envelope-Id to judge")) is not None:
        return bad
    sub = submission(obs)
    envid = sub.mail_params.get("ENVID") if sub else None
    if envid is not None:
        try:
            want: str | None = xtext.decode(envid)
        except xtext.XtextError as exc:
            return skipped(f"the submitted ENVID is not valid xtext ({exc})")
        expected = f"Original-Envelope-Id: {want} (ENVID={envid} decoded from xtext)"
    else:
        want, expected = None, "no Original-Envelope-Id (no ENVID was given)"
    for a in items:
        assert a.report is not None
        fields = a.report.per_message_group.all("original-envelope-id")
        got = fields[0].value if fields else None
        actual = f"Original-Envelope-Id: {got}" if fields else "no Original-Envelope-Id"
        if len(fields) > 1:
            return failed(f"DSN #{a.number} has {len(fields)} Original-Envelope-Id fields", expected=expected,
                          actual=actual, evidence=ev_dsns([a]))
        if got != want:
            hint = " (still xtext-encoded)" if envid is not None and got == envid and envid != want else ""
            return failed(f"DSN #{a.number}: {actual}{hint}", expected=expected, actual=actual,
                          evidence=ev_dsns([a]))
    return passed(f"{expected} in {len(items)} DSN(s)", expected=expected, actual=expected,
                  evidence=ev_dsns(items))


@check(params={"kind": _kind})
def dsn_received_from(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Arrival-Date, if present, is a valid date-time; Received-From-MTA, if present, is the
    EHLO name with the client's address as a comment (RFC 3464 §2.2.4, §2.2.5)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    sub = submission(obs)
    helo = None
    if sub is not None:
        step = next((st for st in sub.steps if st.kind in ("ehlo", "helo")), None)
        if step is not None:
            helo = step.sent.decode(errors="replace").split(" ", 1)[-1].strip().lower()
    ip = addresses.SUBMITTER_V4
    expected = ("if present: Arrival-Date a date-time with a numeric zone; Received-From-MTA: "
                f"dns; {helo or '<EHLO name>'} ({ip})")
    present = []
    for a in items:
        if a.report is None:
            continue
        group = a.report.per_message_group
        for f in group.all("arrival-date"):
            present.append(f"{f.name}: {f.value}")
            problem = date_problem(f.value)
            if problem:
                return failed(f"DSN #{a.number}: {problem[1]}", expected=expected, actual=f.value,
                              evidence=ev_dsns([a]))
        for f in group.all("received-from-mta"):
            present.append(f"{f.name}: {f.value}")
            kind, rest = split_typed(f.value)
            name = rest.split("(")[0].strip().lower().rstrip(".")
            comment = rest[len(rest.split("(")[0]):]
            if (kind or "").lower() != "dns":
                return failed(f"DSN #{a.number}: Received-From-MTA type is {kind!r}, not dns",
                              expected=expected, actual=f.value, evidence=ev_dsns([a]))
            if helo is not None and name != helo:
                return failed(f"DSN #{a.number}: Received-From-MTA names {name!r}, the client said EHLO {helo}",
                              expected=expected, actual=f.value, evidence=ev_dsns([a]))
            if sub is not None and ip not in comment:
                return failed(f"DSN #{a.number}: Received-From-MTA lacks the client address ({ip}) as a comment",
                              expected=expected, actual=f.value, evidence=ev_dsns([a]))
    actual = "; ".join(present) or "neither field present (both are optional)"
    return passed(actual, expected=expected, actual=actual, evidence=ev_dsns(items))


# -- per-recipient fields -----------------------------------------------------------------------

def _same_address(got: str, want: str) -> bool:
    """RFC 3464 §2.3.2: the case of the address MUST be preserved; the domain is compared
    case-insensitively (domain names are case-insensitive, RFC 5321 §2.4)."""
    g_local, _, g_domain = got.rpartition("@")
    w_local, _, w_domain = want.rpartition("@")
    return g_local == w_local and g_domain.lower() == w_domain.lower()


@check(params={"kind": _kind, "allow": {"type": "object", "additionalProperties": {
    "type": "array", "items": {"type": "string"}}, "description": "recipient → other acceptable addresses"}})
def dsn_final_recipient(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every group has one Final-Recipient `rfc822;<address>`, the envelope address as the
    reporting MTA accepted it, case preserved (RFC 3464 §2.3.2)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    found = _violations(items, "DSN-17")
    found += [(a, v) for a, v in _violations(items, rules=["duplicate-field"])
              if v.field and v.field.lower() == "final-recipient"]
    sent = list(obs.recipients)
    allow = {k.lower(): v for k, v in (p.get("allow") or {}).items()}
    expected = "Final-Recipient: rfc822;<one of " + ", ".join(sent) + ">"
    if found:
        return _rule_verdict(items, found, "the Final-Recipient field", expected)
    seen = []
    for a in items:
        for g in _groups(a):
            kind, addr = split_typed(g.get("final-recipient"))
            addr = addr.strip()
            seen.append(f"{g.get('final-recipient')}")
            if (kind or "").lower() not in ("rfc822", "utf-8"):
                return failed(f"DSN #{a.number}: address type {kind!r}", expected=expected,
                              actual=g.get("final-recipient"), evidence=ev_dsns([a]))
            bare = addr[1:-1] if addr.startswith("<") and addr.endswith(">") else addr
            ok = any(_same_address(bare, s) for s in sent) or any(
                _same_address(bare, alt) for s in sent for alt in allow.get(s.lower(), []))
            if not ok:
                near = [s for s in sent if s.lower() == bare.lower()]
                why = " (case changed)" if near else ""
                return failed(f"DSN #{a.number}: Final-Recipient {addr!r} is not an envelope recipient{why}",
                              expected=expected, actual=g.get("final-recipient"), evidence=ev_dsns([a]))
    return passed(f"{len(seen)} group(s) name an envelope recipient", expected=expected,
                  actual="; ".join(seen), evidence=ev_dsns(items))


@check(params={"kind": _kind, "case": {"enum": ["given", "absent", "both"],
                                        "description": "judge recipients with ORCPT, without, or both"}})
def dsn_original_recipient(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """With ORCPT, Original-Recipient carries its type and the address decoded from xtext;
    without ORCPT it is absent (RFC 3464 §2.3.1; RFC 3461 §6.3 [M])."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    case = p.get("case", "both")
    judged, rows = 0, []
    for a in items:
        for g in _groups(a):
            params = submitted_rcpt_params(obs, g.final_recipient) or {}
            orcpt = params.get("ORCPT")
            fields = g.all("original-recipient")
            got = fields[0].value if fields else None
            if orcpt is not None and case in ("given", "both"):
                judged += 1
                want = dsn_params.decoded_orcpt(orcpt)
                if want is None:
                    return skipped(f"the submitted ORCPT={orcpt} is not valid")
                expected = f"Original-Recipient: {want[0]};{want[1]} (ORCPT={orcpt} decoded)"
                rows.append(f"<{g.final_recipient}>: ORCPT={orcpt} → {got}")
                gk, gaddr = split_typed(got)
                if got is None or len(fields) > 1 or (gk or "").lower() != want[0].lower() or gaddr != want[1]:
                    hint = " (still xtext-encoded)" if got is not None and gaddr == orcpt.partition(";")[2] else ""
                    return failed(f"DSN #{a.number}, <{g.final_recipient}>: "
                                  f"{'no Original-Recipient' if got is None else repr(got)}{hint}",
                                  expected=expected, actual=" | ".join(f.value for f in fields) or "(absent)",
                                  evidence=ev_dsns([a]))
            elif orcpt is None and case in ("absent", "both"):
                judged += 1
                rows.append(f"<{g.final_recipient}>: no ORCPT → {got}")
                if fields:
                    return failed(f"DSN #{a.number}, <{g.final_recipient}>: Original-Recipient {got!r} "
                                  "although no ORCPT was given", expected="no Original-Recipient",
                                  actual=got, evidence=ev_dsns([a]))
    if not judged:
        return skipped(f"no group for a recipient {'with' if case == 'given' else 'without'} ORCPT")
    return passed(f"Original-Recipient right in {judged} group(s)", actual="; ".join(rows),
                  expected="with ORCPT: Original-Recipient = the ORCPT decoded; without: none",
                  evidence=ev_dsns(items))


def _expected_action(obs: Observations, rcpt: str, ev: PeerEvent | None) -> tuple[str, ...] | None:
    if ev is None:
        return None
    if ev.outcome == "refused":
        return ("failed",)
    if ev.outcome == "deferred":
        return ("delayed",) if rcpt.lower() in obs.queued() else ("failed", "delayed")
    if ev.outcome == "accepted":
        return ("delivered", "relayed", "expanded")
    return None


@check(params={"kind": _kind})
def dsn_action(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every group has one valid Action, consistent with what the peer did: refused → failed,
    deferred and still queued → delayed, accepted → delivered/relayed (RFC 3464 §2.3.3)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    found = _violations(items, "DSN-19")
    found += [(a, v) for a, v in _violations(items, rules=["duplicate-field"]) if v.field and v.field.lower() == "action"]
    if found:
        return _rule_verdict(items, found, "the Action field", "Action: failed / delayed / delivered / relayed / expanded")
    convs = conversations(obs.peers)
    rows, events = [], []
    for a in items:
        for g in _groups(a):
            ev = fate(convs, g.final_recipient)
            events.append(ev)
            allowed = _expected_action(obs, g.final_recipient, ev)
            rows.append(f"<{g.final_recipient}>: Action: {g.get('action')}"
                        + (f" after the peer {ev.outcome} it ({ev.stage})" if ev else ""))
            if allowed is not None and g.action not in allowed:
                assert ev is not None
                return failed(f"DSN #{a.number}: Action: {g.get('action')} for <{g.final_recipient}>, but the "
                              f"peer {ev.outcome} it", expected=f"Action: {' or '.join(allowed)}",
                              actual=f"Action: {g.get('action')}", evidence=ev_dsns([a]) + ev_peer([ev]))
    return passed(f"Action valid and consistent in {len(rows)} group(s)", actual="; ".join(rows),
                  expected="refused → failed; deferred and queued → delayed; accepted → delivered/relayed",
                  evidence=ev_dsns(items) + ev_peer(events))


@check(params={"kind": _kind, "copies_remote": {"type": "boolean",
                                                 "description": "Status equals the remote's enhanced code"}})
def dsn_status(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every group has one Status `class.subject.detail` (class 2/4/5, agreeing with Action;
    RFC 3464 §2.3.4, RFC 3463); with copies_remote, the remote server's enhanced code."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    found = _violations(items, "DSN-20")
    found += [(a, v) for a, v in _violations(items, rules=["duplicate-field"]) if v.field and v.field.lower() == "status"]
    if found:
        return _rule_verdict(items, found, "the Status field",
                             "Status: DIGIT.1*3DIGIT.1*3DIGIT, class agreeing with Action")
    if not p.get("copies_remote"):
        statuses = [f"<{g.final_recipient}>: {g.get('status')}" for a in items for g in _groups(a)]
        return passed(f"Status valid in {len(statuses)} group(s)", actual="; ".join(statuses),
                      expected="Status: DIGIT.1*3DIGIT.1*3DIGIT, class agreeing with Action",
                      evidence=ev_dsns(items))
    convs = conversations(obs.peers)
    judged = []
    for a in items:
        for g in _groups(a):
            ev = fate(convs, g.final_recipient)
            if ev is None or ev.enhanced_code is None:
                continue
            judged.append(f"<{g.final_recipient}>: remote {ev.enhanced_code}, DSN {g.status}")
            if g.status != ev.enhanced_code:
                return failed(f"DSN #{a.number}: Status {g.status} for <{g.final_recipient}>, the remote said "
                              f"{ev.enhanced_code}", expected=f"Status: {ev.enhanced_code}",
                              actual=f"Status: {g.get('status')}", evidence=ev_dsns([a]) + ev_peer([ev]))
    if not judged:
        return skipped("no peer reply with an enhanced status code names a recipient of the DSNs")
    return passed("Status copies the remote's enhanced code", expected="Status = the remote's enhanced code",
                  actual="; ".join(judged), evidence=ev_dsns(items))


@check(params={"kind": _kind, "expect": {"enum": ["remote", "none"]}}, required=("expect",))
def dsn_remote_mta(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """remote: each group has exactly one Remote-MTA `dns; <the MX that answered>`; none: no
    Remote-MTA when no remote MTA was involved (RFC 3464 §2.3.5, ABNF §2.1)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    if p["expect"] == "none":
        for a in items:
            for g in _groups(a):
                if g.all("remote-mta"):
                    return failed(f"DSN #{a.number}: Remote-MTA for <{g.final_recipient}> although no remote MTA "
                                  "was involved", expected="no Remote-MTA",
                                  actual=" | ".join(f.value for f in g.all("remote-mta")), evidence=ev_dsns([a]))
        return passed("no Remote-MTA field", expected="no Remote-MTA", actual="no Remote-MTA",
                      evidence=ev_dsns(items))
    found = _violations(items, "DSN-21")
    if found:
        return _rule_verdict(items, found, "the Remote-MTA field", "exactly one Remote-MTA: dns; <MX name>")
    convs = conversations(obs.peers)
    rows = []
    for a in items:
        for g in _groups(a):
            ev = fate(convs, g.final_recipient)
            if ev is None:
                continue
            endpoint = obs.peer_endpoints.get(ev.peer)
            names = peer_names(obs, endpoint[0]) if endpoint else set()
            expected = "Remote-MTA: dns; " + (" or ".join(sorted(names)) or "<the MX's name>")
            fields = g.all("remote-mta")
            if not fields:
                return failed(f"DSN #{a.number}: no Remote-MTA for <{g.final_recipient}> although {ev.peer} answered",
                              expected=expected, actual="(absent)", evidence=ev_dsns([a]) + ev_peer([ev]))
            kind, name = split_typed(fields[0].value)
            name = name.split("(")[0].strip().lower().rstrip(".")
            rows.append(f"<{g.final_recipient}>: {fields[0].value}")
            if (kind or "").lower() != "dns" or (names and name not in names):
                return failed(f"DSN #{a.number}: Remote-MTA: {fields[0].value} for <{g.final_recipient}>",
                              expected=expected, actual=fields[0].value, evidence=ev_dsns([a]) + ev_peer([ev]))
    if not rows:
        return skipped("no DSN group names a recipient a peer answered for")
    return passed(f"one Remote-MTA naming the MX in {len(rows)} group(s)", actual="; ".join(rows),
                  expected="exactly one Remote-MTA: dns; <the MX that answered>",
                  evidence=ev_dsns(items))


def _diagnostic_matches(diag: str, reply: PeerEvent) -> bool:
    kind, text = split_typed(diag)
    if (kind or "").lower() != "smtp":
        return False
    got, want = _normalise(text), _normalise(reply.text)
    if got == want:
        return True
    # RFC 3464 §2.3.6: "additional textual description ... MAY appear in a comment".
    rest = got[len(want):].strip() if got.startswith(want) else None
    return rest is not None and rest.startswith("(") and rest.endswith(")")


@check(params={"kind": _kind})
def dsn_diagnostic_code(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """For failed and delayed recipients, Diagnostic-Code is `smtp; <the remote reply>`, every
    line of it, as the peer sent it (RFC 3464 §2.3.6)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    found = _violations(items, rules=["diagnostic-syntax"])
    if found:
        return _rule_verdict(items, found, "the Diagnostic-Code syntax", "diagnostic-type \";\" *text")
    convs = conversations(obs.peers)
    rows, events = [], []
    for a in items:
        for g in _groups(a):
            if g.action not in ("failed", "delayed"):
                continue
            ev = fate(convs, g.final_recipient)
            if ev is None or ev.outcome == "accepted":
                continue
            events.append(ev)
            expected = f"Diagnostic-Code: smtp; {ev.text}"
            diag = g.get("diagnostic-code")
            rows.append(f"<{g.final_recipient}>: {diag}")
            if diag is None:
                return failed(f"DSN #{a.number}: no Diagnostic-Code for <{g.final_recipient}>", expected=expected,
                              actual="(absent)", evidence=ev_dsns([a]) + ev_peer([ev]))
            if not _diagnostic_matches(diag, ev):
                return failed(f"DSN #{a.number}: the Diagnostic-Code for <{g.final_recipient}> is not what the "
                              "peer said", expected=expected, actual=f"Diagnostic-Code: {diag}",
                              evidence=ev_dsns([a]) + ev_peer([ev]))
    if not rows:
        return skipped("no failed or delayed group for a recipient a peer refused")
    return passed(f"Diagnostic-Code carries the remote reply in {len(rows)} group(s)", actual="; ".join(rows),
                  expected="Diagnostic-Code: smtp; <every line of the remote reply>",
                  evidence=ev_dsns(items) + ev_peer(events))


@check(params={"kind": _kind})
def dsn_line_length(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """No line of a DSN is longer than 998 characters (RFC 5322 §2.1.1), however long the
    remote reply it quotes."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    worst = [(a, n, length) for a in items for n, length in long_lines(a.raw)]
    longest = max((max((len(line) for line in a.raw.replace(b"\r\n", b"\n").split(b"\n")), default=0), a.number)
                  for a in items)
    if worst:
        a, n, length = worst[0]
        return failed(f"DSN #{a.number}, line {n}: {length} characters", expected="lines ≤ 998 characters",
                      actual=f"{len(worst)} longer line(s), the first {length} characters", evidence=ev_dsns([a]))
    return passed(f"longest line {longest[0]} characters (DSN #{longest[1]})", expected="lines ≤ 998 characters",
                  actual=f"{longest[0]} characters", evidence=ev_dsns(items))


@check(params={"kind": _kind})
def dsn_dates(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Arrival-Date, Last-Attempt-Date and Will-Retry-Until, where present, are date-times with
    numeric zones; Will-Retry-Until only for delayed recipients (RFC 3464 §2.3.7, §2.3.9)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    found = _violations(items, "DSN-23")
    present = [f"{f.name}: {f.value}" for a in items if a.report for grp in (a.report.per_message_group,
                                                                              *a.report.recipients)
               for f in grp.items if f.key in ("arrival-date", "last-attempt-date", "will-retry-until")]
    verdict = _rule_verdict(items, found, "the date fields",
                            "date-time with numeric zone; Will-Retry-Until only with Action: delayed")
    if not found:
        return passed("date fields valid: " + ("; ".join(present) or "none present (all are optional)"),
                      expected=verdict.expected, actual="; ".join(present) or "none present",
                      evidence=verdict.evidence)
    return verdict


@check(params={"kind": _kind, "recipients": _rcpts})
def dsn_groups(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """One per-message group, then one per-recipient group per recipient, blank lines between
    (RFC 3464 §2.1); with RECIPIENTS: exactly those recipients, once each."""
    kind = p.get("kind")
    items = _of_kind(all_arrivals(obs), kind)
    if not items:
        return none_arrived(kind)
    found = _violations(items, "DSN-24")
    if found:
        return _rule_verdict(items, found, "the group layout",
                             "per-message fields, blank line, one group per recipient")
    listed = [g.final_recipient for a in items for g in _groups(a, kind)]
    if p.get("recipients"):
        want = sorted(r.lower() for r in p["recipients"])
        expected = f"one {kind or ''} group each for {', '.join(want)}".replace("  ", " ")
        if sorted(listed) != want:
            return failed(f"groups for {', '.join(listed) or 'nobody'}", expected=expected,
                          actual=", ".join(listed) or "(none)", evidence=ev_dsns(items))
        return passed(f"one group each for {', '.join(want)}", expected=expected, actual=", ".join(listed),
                      evidence=ev_dsns(items))
    return passed(f"{len(items)} DSN(s) laid out in groups: {', '.join(listed)}",
                  expected="per-message fields, blank line, one group per recipient",
                  actual=", ".join(listed), evidence=ev_dsns(items))


@check(params={"kind": _kind})
def dsn_field_order(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Fields appear in the order of the RFC 3464 §2.1 ABNF (per-recipient: Original-Recipient,
    Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code, …, extensions last)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    found = _violations(items, rules=["field-order"], levels=("SHOULD",))
    return _rule_verdict(items, found, "the ABNF field order",
                         "Original-Recipient, Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code, "
                         "Last-Attempt-Date, Final-Log-ID, Will-Retry-Until, extensions")


@check(params={"kind": _kind})
def dsn_extension_fields(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Unregistered fields and types are recognisable as private: they begin with X-
    (RFC 3464 §2.4)."""
    items = _of_kind(all_arrivals(obs), p.get("kind"))
    if not items:
        return none_arrived(p.get("kind"))
    found = _violations(items, "DSN-26", levels=("MAY",))
    ext = sorted({f.name for a in items if a.report for grp in (a.report.per_message_group, *a.report.recipients)
                  for f in grp.items if f.key.startswith("x-")})
    verdict = _rule_verdict(items, found, "the X- convention", "unregistered field names and types begin with X-")
    if not found:
        return passed("extension fields: " + (", ".join(ext) or "none"), expected=verdict.expected,
                      actual=", ".join(ext) or "none", evidence=verdict.evidence)
    return verdict


# -- Exim DSN_INFO (experimental-spec.txt "DSN extra information") -----------------------------

@check(params={"greeting": {"type": "boolean", "description": "the peer sent a greeting (default true)"},
               "helo": {"type": "boolean", "description": "the peer answered EHLO/HELO (default true)"}})
def dsn_info(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Exim DSN_INFO fields equal the fake MX's transcript: Remote-MTA `X-ip; [addr]` (`:port`
    when not 25), X-Remote-MTA-smtp-greeting (its greeting), X-Remote-MTA-helo-response (the first
    line of its EHLO reply, absent when it never answered), X-Exim-Diagnostic (its reply)."""
    items = _of_kind(all_arrivals(obs), "failure")
    if not items:
        return none_arrived("failure")
    convs = conversations(obs.peers)
    rows: list[dict[str, str]] = []
    problems: list[str] = []
    judged = 0
    for a in items:
        for g in _groups(a, "failure"):
            ev = fate(convs, g.final_recipient)
            if ev is None:
                continue
            judged += 1
            conv = conversation_of(convs, ev)
            host, port = obs.peer_endpoints.get(ev.peer, ("?", 25))
            ip_want = f"X-ip; [{host}]" + ("" if port == 25 else f":{port}")
            want = {
                "remote-mta (X-ip)": ip_want,
                "x-remote-mta-smtp-greeting": (f"X-str; {Conversation.first_line(conv.greeting)}"
                                               if conv and conv.greeting and p.get("greeting", True) else None),
                "x-remote-mta-helo-response": (f"X-str; {Conversation.first_line(conv.ehlo_reply)}"
                                               if conv and conv.ehlo_reply and p.get("helo", True) else None),
            }
            xip = [f.value for f in g.all("remote-mta") if (split_typed(f.value)[0] or "").lower() == "x-ip"]
            got = {"remote-mta (X-ip)": xip[0] if xip else None,
                   "x-remote-mta-smtp-greeting": g.get("x-remote-mta-smtp-greeting"),
                   "x-remote-mta-helo-response": g.get("x-remote-mta-helo-response")}
            for key, w in want.items():
                rows.append({"recipient": g.final_recipient, "field": key, "expected": w or "(absent)",
                             "actual": got[key] or "(absent)"})
                if _normalise(got[key] or "") != _normalise(w or ""):
                    problems.append(f"<{g.final_recipient}> {key}: {got[key] or '(absent)'} — expected {w or '(absent)'}")
            diag = g.get("x-exim-diagnostic")
            first = ev.lines[0] if ev.lines else ev.text
            rows.append({"recipient": g.final_recipient, "field": "x-exim-diagnostic",
                         "expected": f"X-str; … {first}", "actual": diag or "(absent)"})
            if diag is None or (split_typed(diag)[0] or "").lower() != "x-str" or first[:40] not in diag:
                problems.append(f"<{g.final_recipient}> X-Exim-Diagnostic: {diag or '(absent)'} — expected "
                                f"X-str; with the peer's reply {first!r}")
    if not judged:
        return skipped("no failed group for a recipient a peer answered")
    ev_list = [Evidence("DSN_INFO fields beside the fake MX's transcript", "table", rows), *ev_dsns(items)]
    if all(r["actual"] == "(absent)" for r in rows):
        return failed("no DSN_INFO field at all", expected="Remote-MTA X-ip, X-Remote-MTA-*, X-Exim-Diagnostic",
                      actual="(absent)", evidence=ev_list)
    if problems:
        return failed(f"{len(problems)} DSN_INFO value(s) differ from the transcript: {problems[0]}",
                      expected="values equal to the fake MX's transcript", actual="\n".join(problems), evidence=ev_list)
    return passed(f"DSN_INFO fields equal the transcript in {judged} group(s)",
                  expected="values equal to the fake MX's transcript",
                  actual="; ".join(f"{r['field']}: {r['actual']}" for r in rows), evidence=ev_list)


# -- PRDR (draft-hall-prdr-00 §4.6) ------------------------------------------------------------

@check(params={"peer": {"type": "string"}})
def dsn_prdr_groups(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """After a PRDR block, each recipient refused in it has its own failed group carrying its own
    per-recipient reply, and no recipient the block accepted is reported failed (draft-hall-prdr-00
    §4.6)."""
    refused, accepted = {}, set()
    for conv in conversations({k: v for k, v in obs.peers.items() if not p.get("peer") or k == p["peer"]}):
        for ev in conv.events:
            if ev.stage == "PRDR" and ev.recipient:
                if ev.code >= 500:
                    refused[ev.recipient.lower()] = ev
                elif ev.code < 400:
                    accepted.add(ev.recipient.lower())
    if not refused:
        return skipped("no recipient was refused inside a PRDR block")
    items = _of_kind(all_arrivals(obs), "failure")
    ev = ev_dsns(items) + ev_peer(refused.values())
    for rcpt, pe in refused.items():
        groups = [(a, g) for a in items for g in _groups(a, "failure", [rcpt])]
        if len(groups) != 1:
            return failed(f"{len(groups)} failed group(s) for <{rcpt}>", expected=f"one group carrying {pe.text}",
                          actual=f"{len(groups)} group(s)", evidence=ev)
        diag = groups[0][1].get("diagnostic-code") or ""
        if _normalise(pe.lines[0]) not in _normalise(diag):
            return failed(f"the group for <{rcpt}> does not carry its own reply", expected=pe.text,
                          actual=diag or "(no Diagnostic-Code)", evidence=ev)
    wrong = [g.final_recipient for a in items for g in _groups(a, "failure") if g.final_recipient in accepted]
    if wrong:
        return failed(f"<{wrong[0]}> is reported failed although the PRDR block accepted it",
                      expected="no failed group for accepted recipients", actual=", ".join(wrong), evidence=ev)
    replies = ", ".join(f"{r}: {e.text}" for r, e in refused.items())
    return passed(f"one group per refused recipient, each with its own reply: {replies}",
                  expected="one failed group per refused recipient, with its own reply; none for accepted ones",
                  actual=replies, evidence=ev)


# -- relaying the parameters (RFC 3461 §5.2.1) -------------------------------------------------

def same_orcpt(a: str, b: str | None) -> bool:
    """Two ORCPT values with the same address type (case-insensitive) and the same decoded address."""
    da, db = dsn_params.decoded_orcpt(a), dsn_params.decoded_orcpt(b) if b is not None else None
    return da is not None and db is not None and da[0].lower() == db[0].lower() and da[1] == db[1]


@check(params={"peer": {"type": "string"}})
def dsn_params_relayed(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Relaying to a next hop that advertises DSN, the target passes on RET and ENVID on MAIL and
    NOTIFY and ORCPT on RCPT unchanged; ORCPT may be added when the client gave none
    (RFC 3461 §5.2.1 [M], §4.2 [M])."""
    sub = submission(obs)
    if sub is None:
        return skipped("the message was not submitted by SMTP, so it carried no DSN parameters")
    sessions = [s for s in obs.peer_sessions(p.get("peer")) if s.transactions]
    if not sessions:
        return failed("no MAIL transaction reached a peer", expected="a relayed message")
    convs = conversations({k: v for k, v in obs.peers.items() if not p.get("peer") or k == p["peer"]})
    if not any(c.ehlo_reply and re.search(rb"^250[ -]DSN\s*$", c.ehlo_reply, re.M | re.I) for c in convs):
        return skipped("the next hop did not advertise DSN, so RFC 3461 §5.2.1 does not apply (§5.2.2 does)")
    rows, wrong = [], []
    for s in sessions:
        for t in s.transactions:
            for key in ("RET", "ENVID"):
                want, got = sub.mail_params.get(key), t.mail_params.get(key)
                ok = (want == got) if key == "ENVID" else ((want or "").upper() == (got or "").upper())
                rows.append({"command": "MAIL", "parameter": key, "submitted": str(want), "relayed": str(got),
                             "verdict": "ok" if ok else "WRONG"})
                if not ok:
                    wrong.append(f"MAIL {key}: submitted {want}, relayed {got}")
            for addr, params, _ in t.rcpts:
                given = submitted_rcpt_params(obs, addr) or {}
                for key in ("NOTIFY", "ORCPT"):
                    want, got = given.get(key), params.get(key)
                    if key == "NOTIFY":
                        ok = sorted((want or "").upper().split(",")) == sorted((got or "").upper().split(","))
                    elif want is None:
                        ok = got is None or (dsn_params.decoded_orcpt(got) or ("", ""))[1].lower() == addr.lower()
                    else:
                        # The same value (§4.2), not the same bytes: xtext may spell a character
                        # encoded or not ("orig+40d.test" and "orig@d.test" are one address).
                        ok = want == got or same_orcpt(want, got)
                    rows.append({"command": f"RCPT <{addr}>", "parameter": key, "submitted": str(want),
                                 "relayed": str(got), "verdict": "ok" if ok else "WRONG"})
                    if not ok:
                        wrong.append(f"RCPT <{addr}> {key}: submitted {want}, relayed {got}")
    ev = [Evidence("DSN parameters: submitted and relayed", "table", rows)]
    if wrong:
        return failed(f"{len(wrong)} parameter(s) not relayed unchanged: {wrong[0]}",
                      expected="the submitted NOTIFY, ORCPT, RET, ENVID", actual="\n".join(wrong), evidence=ev)
    return passed(f"{len(rows)} DSN parameter(s) relayed unchanged",
                  expected="the submitted NOTIFY, ORCPT, RET, ENVID",
                  actual="; ".join(f"{r['command']} {r['parameter']}={r['relayed']}" for r in rows), evidence=ev)
