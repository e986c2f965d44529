"""PRDR checks with the target as SMTP server (draft-hall-prdr-00 §4.4–§4.5)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...smtp.codec import ESC_RE, Reply
from ..observations import Observations, RcptRecord, SessionRecord
from .base import Verdict, check, failed, passed, skipped
from .smtp_server import late_replies, no_end_reply, raw_evidence, session_or_skip, show, shows

# The class a per-recipient reply must have for each recipient role of the target spec.
ROLE_CLASS = {"accept": 2, "reject_data": 5, "defer_data": 4, "full_data": 4}
# RFC 5321 §4.3.2: the replies valid for RCPT TO; §4.5.2 of the draft requires one of these.
RCPT_NEGATIVE_CODES = frozenset({450, 451, 452, 455, 503, 550, 551, 552, 553, 555})


@dataclass(frozen=True)
class PRDRView:
    """A reply block split per draft-hall-prdr-00 §4.5: 353, per-recipient replies, final."""

    intro: Reply
    per_recipient: list[tuple[RcptRecord, Reply]]
    final: Reply | None
    extras: list[Reply]
    missing: int  # per-recipient replies that never came (the final is counted separately)
    all: list[Reply]


def prdr_view(obs: Observations) -> PRDRView | Verdict:
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    if not s.prdr_requested:
        return failed("the session did not request PRDR (MAIL … PRDR was refused)",
                      actual=show(s.mail_reply))
    if not s.end_replies:
        return no_end_reply(s)
    replies = s.end_replies + late_replies(s)
    intro = replies[0]
    if intro.code != 353:
        if len(replies) > 1:
            return failed(f"{len(replies)} replies to the end of data without the 353 line",
                          expected="353, the per-recipient replies, the final reply (§4.5.1)",
                          actual=shows(replies), evidence=[raw_evidence("replies after the end of data", replies)])
        # §4.4: the single-reply model is the server's choice; nothing per recipient to judge.
        return skipped(f"the target used the single-reply model ({intro.code}), allowed by §4.4",
                       actual=show(intro))
    accepted = s.accepted_rcpts
    rest = replies[1:]
    per = list(zip(accepted, rest[: len(accepted)]))
    missing = max(0, len(accepted) - len(rest))
    final = rest[len(accepted)] if len(rest) > len(accepted) else None
    extras = rest[len(accepted) + 1:]
    return PRDRView(intro, per, final, extras, missing, replies)


def _evidence(view: PRDRView) -> list[Any]:
    return [raw_evidence("replies after the end of data", view.all)]


@check()
def prdr_intro_line(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The first reply after the end of data is one line beginning with '353', without an ESC."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    expected = "one line '353 text' with no enhanced status code (§4.5.1)"
    if not s.end_replies:
        return no_end_reply(s, expected)
    first = s.end_replies[0]
    ev = [raw_evidence("first reply after the end of data", [first])]
    if first.code != 353:
        if s.prdr_requested and first.code // 100 in (2, 4, 5) and len(s.end_replies) == 1:
            return skipped(f"the target used the single-reply model ({first.code}), allowed by §4.4",
                           expected=expected, actual=show(first), evidence=ev)
        return failed(f"the first reply after the end of data is {first.code}, not 353",
                      expected=expected, actual=show(first), evidence=ev)
    if first.multiline:
        return failed("the 353 reply has several lines", expected=expected, actual=show(first), evidence=ev)
    # §4.5.1: "enhanced status codes MUST NOT be used with this response line".
    if first.esc or ESC_RE.match(first.lines[0]):
        return failed("the 353 line carries an enhanced status code", expected=expected,
                      actual=show(first), evidence=ev)
    return passed("the 353 line is well formed", expected=expected, actual=show(first), evidence=ev)


@check()
def prdr_per_recipient(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """After 353: one reply per accepted recipient, in RCPT order, then the final reply (§4.5.2)."""
    view = prdr_view(obs)
    if isinstance(view, Verdict):
        return view
    s = obs.session
    assert s is not None
    accepted = s.accepted_rcpts
    expected_parts = [f"#{r.index} {ROLE_CLASS.get(r.role or '', '?')}xx" for r in accepted]
    expected = f"353, then {len(accepted)} replies ({', '.join(expected_parts)}), then the final reply"
    actual = shows(view.all)
    ev = _evidence(view)
    if view.missing or view.final is None:
        return failed(f"the block has too few replies: {len(view.all) - 1} after 353 for "
                      f"{len(accepted)} accepted recipients plus the final reply",
                      expected=expected, actual=actual, evidence=ev)
    if view.extras:
        return failed(f"{len(view.extras)} reply(ies) more than one per accepted recipient plus the final",
                      expected=expected, actual=actual, evidence=ev)
    for pos, (rcpt, reply) in enumerate(view.per_recipient, start=1):
        if reply.code // 100 == 3:
            return failed(f"per-recipient reply {pos} has the intermediate code {reply.code}",
                          expected=expected, actual=actual, evidence=ev)
        want = ROLE_CLASS.get(rcpt.role or "")
        if want is not None and reply.code // 100 != want:
            return failed(f"per-recipient reply {pos} is {reply.code}, but it belongs to RCPT #{rcpt.index} "
                          f"<{rcpt.address}> ({rcpt.role}), which should get {want}xx: replies are "
                          "missing, extra or out of order", expected=expected, actual=actual, evidence=ev)
    return passed(f"{len(accepted)} per-recipient replies in RCPT order, then the final reply",
                  expected=expected, actual=actual, evidence=ev)


@check()
def prdr_reply_syntax(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every per-recipient reply follows RFC 5321 reply syntax (§4.5.2)."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    malformed = [e for e in s.errors if "malformed reply" in e]
    if malformed:
        return failed("a reply in the PRDR block is malformed", expected="RFC 5321 §4.2 replies",
                      actual="; ".join(malformed))
    view = prdr_view(obs)
    if isinstance(view, Verdict):
        return view
    bad = [show(r) for _, r in view.per_recipient if not (200 <= r.code <= 599) or r.code // 100 == 3]
    if bad:
        return failed("per-recipient replies with codes not valid for a recipient", actual="; ".join(bad),
                      evidence=_evidence(view))
    return passed(f"{len(view.per_recipient)} per-recipient replies are well formed",
                  actual=shows([r for _, r in view.per_recipient]), evidence=_evidence(view))


@check()
def prdr_reply_esc(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Per-recipient replies SHOULD carry enhanced status codes (§4.5.2)."""
    view = prdr_view(obs)
    if isinstance(view, Verdict):
        return view
    without = [f"#{pos} {show(r)}" for pos, (_, r) in enumerate(view.per_recipient, 1) if r.esc is None]
    if without:
        return failed(f"{len(without)} per-recipient reply(ies) without an enhanced status code",
                      expected="every per-recipient reply with an ESC such as 2.1.5 or 5.7.1",
                      actual="; ".join(without), evidence=_evidence(view))
    return passed("every per-recipient reply carries an enhanced status code", evidence=_evidence(view))


@check(params={"strict": {"type": "boolean",
                          "description": "also require the exact RCPT code (the SHOULD part)"}})
def prdr_positive_codes(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A positive per-recipient reply keeps the RCPT code; 251 never becomes 250 (§4.5.2)."""
    view = prdr_view(obs)
    if isinstance(view, Verdict):
        return view
    for pos, (rcpt, reply) in enumerate(view.per_recipient, 1):
        if not reply.is_positive or rcpt.reply is None:
            continue
        before, after = rcpt.reply.code, reply.code
        if before == 251 and after == 250:
            return failed(f"RCPT #{rcpt.index} was accepted with 251 but its per-recipient reply is 250 "
                          "(the reverse transition MUST NOT occur)", expected="251",
                          actual=show(reply), evidence=_evidence(view))
        if p.get("strict") and before != after and not (before == 250 and after == 251):
            return failed(f"RCPT #{rcpt.index} was accepted with {before} but its per-recipient reply is "
                          f"{after}", expected=str(before), actual=show(reply), evidence=_evidence(view))
    positives = [(r.reply.code if r.reply else 0, rep.code) for r, rep in view.per_recipient if rep.is_positive]
    if not positives:
        return skipped("no positive per-recipient reply to compare", evidence=_evidence(view))
    return passed("positive per-recipient codes match their RCPT replies: "
                  + ", ".join(f"{a}→{b}" for a, b in positives), evidence=_evidence(view))


@check()
def prdr_negative_codes(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Negative per-recipient codes are valid RCPT codes; lack of storage gets 452 (§4.5.2)."""
    view = prdr_view(obs)
    if isinstance(view, Verdict):
        return view
    allowed = ", ".join(str(c) for c in sorted(RCPT_NEGATIVE_CODES))
    negatives = [(rcpt, r) for rcpt, r in view.per_recipient if r.code >= 400]
    for rcpt, reply in negatives:
        if reply.code not in RCPT_NEGATIVE_CODES:
            return failed(f"per-recipient reply {reply.code} for <{rcpt.address}> is not a valid RCPT code",
                          expected=allowed, actual=show(reply), evidence=_evidence(view))
        if rcpt.role == "full_data" and reply.code != 452:
            return failed(f"<{rcpt.address}> was refused for lack of storage with {reply.code}",
                          expected="452 (§4.5.2: lack of resources MUST use 452)", actual=show(reply),
                          evidence=_evidence(view))
    if not negatives:
        return failed("no negative per-recipient reply although the scenario refuses recipients",
                      expected=allowed, actual=shows(view.all), evidence=_evidence(view))
    return passed("negative per-recipient codes: " + ", ".join(str(r.code) for _, r in negatives),
                  expected=allowed, evidence=_evidence(view))


@check()
def response_model(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Records which response model the server used (§4.4); either is legal, a broken one is not."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    if not s.end_replies:
        return no_end_reply(s)
    replies = s.end_replies + late_replies(s)
    ev = [raw_evidence("replies after the end of data", replies)]
    first = replies[0]
    if first.code != 353:
        if len(replies) == 1 and first.code // 100 in (2, 4, 5):
            return passed(f"single-reply (traditional) model: {first.code}", actual=show(first), evidence=ev)
        return failed("neither a single reply nor a PRDR block", actual=shows(replies), evidence=ev)
    if not s.prdr_requested:
        return failed("PRDR block sent although PRDR was not requested", actual=shows(s.end_replies),
                      evidence=ev)
    n = len(s.accepted_rcpts)
    if len(s.end_replies) != n + 2:
        return failed(f"a PRDR block of {len(s.end_replies)} replies for {n} accepted recipients",
                      expected=f"{n + 2} replies", actual=shows(s.end_replies), evidence=ev)
    return passed(f"PRDR model: 353, {n} per-recipient replies, final {s.end_replies[-1].code}",
                  actual=shows(s.end_replies), evidence=ev)
