"""Generic checks over an inbound session (the target as SMTP server)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...report.model import Evidence
from ...smtp.codec import Reply
from ...smtp.transcript import visible
from ..observations import Observations, SessionRecord, StepRecord
from .base import Verdict, check, failed, passed, skipped, unsupported


def show(reply: Reply | None) -> str:
    return "(no reply)" if reply is None else visible(reply.raw).replace("\n", "")


def shows(replies: Sequence[Reply]) -> str:
    return " | ".join(show(r) for r in replies) or "(no replies)"


def raw_evidence(label: str, replies: Sequence[Reply]) -> Evidence:
    return Evidence(label, "bytes", "".join(visible(r.raw) for r in replies))


def late_replies(s: SessionRecord) -> list[Reply]:
    """Replies that came after the client stopped waiting: a QUIT answered with anything but
    221 was most likely answered by a late extra reply to the previous command."""
    quit_steps = s.steps_of("quit")
    if quit_steps and quit_steps[-1].replies and quit_steps[-1].replies[0].code != 221:
        return [quit_steps[-1].replies[0]]
    return []


def no_end_reply(s: SessionRecord, expected: str | None = None) -> Verdict:
    """The verdict when nothing usable answered the end of data."""
    malformed = [e for e in s.errors if "malformed reply" in e]
    if malformed:
        return failed("the reply to the end of data is malformed", expected=expected,
                      actual="; ".join(malformed))
    return failed("no reply to the end of data", expected=expected, actual="; ".join(s.errors) or "(none)")


def session_or_skip(obs: Observations) -> SessionRecord | Verdict:
    s = obs.session
    if s is None:
        return skipped("no inbound session was recorded")
    if s.banner is None:
        return failed("the target sent no usable banner", actual="; ".join(s.errors) or None)
    return s


def step_reply(s: SessionRecord, kind: str, index: int) -> tuple[StepRecord | None, Reply | None]:
    steps = s.steps_of(kind)
    if not steps or index >= len(steps) or index < -len(steps):
        return None, None
    step = steps[index]
    return step, (step.replies[0] if step.replies else None)


@check(
    params={
        "step": {"enum": ["ehlo", "helo", "mail", "rcpt", "data", "bdat", "rset", "noop", "send",
                          "read"]},
        "index": {"type": "integer", "description": "which step of that kind (0 = first, -1 = last)"},
        "classes": {"type": "array", "items": {"enum": [2, 3, 4, 5]}, "minItems": 1},
        "codes": {"type": "array", "items": {"type": "integer", "minimum": 200, "maximum": 599}},
        "what": {"type": "string"},
    },
    required=("step",),
)
def reply_is(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The reply to one step has an allowed class (2xx…5xx) and, if given, an allowed code."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    step, reply = step_reply(s, p["step"], p.get("index", 0))
    what = p.get("what", f"the reply to {p['step'].upper()}")
    allowed = [f"{c}xx" for c in p.get("classes", [])] + [str(c) for c in p.get("codes", [])]
    expected = " or ".join(allowed)
    if step is None:
        return failed(f"the session never reached the {p['step']} step", expected=expected,
                      actual="; ".join(s.errors) or None)
    if reply is None:
        return failed(f"{what}: no reply ({step.error})", expected=expected, actual=step.error)
    ok_class = not p.get("classes") or reply.code // 100 in p["classes"]
    ok_code = not p.get("codes") or reply.code in p["codes"]
    ev = [raw_evidence(what, [reply])]
    if ok_class and ok_code:
        return passed(f"{what} was {reply.code}", expected=expected, actual=show(reply), evidence=ev)
    return failed(f"{what} was {reply.code}", expected=expected, actual=show(reply), evidence=ev)


@check(
    params={"keyword": {"type": "string"}, "no_params": {"type": "boolean"}},
    required=("keyword",),
)
def ehlo_keyword(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The EHLO reply carries KEYWORD (without parameters if no_params); absent → unsupported."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    if s.ehlo_reply is None:
        return failed("no reply to EHLO", actual="; ".join(s.errors) or None)
    ev = [raw_evidence("EHLO reply", [s.ehlo_reply])]
    if s.ehlo_reply.code in (500, 502):  # RFC 5321 §4.1.1.1: an old server without extensions
        return unsupported(f"the server does not support EHLO ({s.ehlo_reply.code})",
                           actual=show(s.ehlo_reply), evidence=ev)
    if s.ehlo is None:
        return failed("the EHLO reply is not a usable 250 reply", actual=show(s.ehlo_reply), evidence=ev)
    kw = p["keyword"].upper()
    expected = f"a line '250-{kw}' or '250 {kw}'" + (" with no parameters" if p.get("no_params") else "")
    if kw not in s.ehlo.keywords:
        return unsupported(f"{kw} is not advertised", expected=expected,
                           actual=", ".join(s.ehlo.keywords) or "(no keywords)", evidence=ev)
    params = s.ehlo.keywords[kw]
    if p.get("no_params") and params:
        return failed(f"{kw} is advertised with parameters {' '.join(params)}", expected=expected,
                      actual=f"{kw} {' '.join(params)}", evidence=ev)
    return passed(f"{kw} is advertised", expected=expected, actual=kw, evidence=ev)


@check(
    params={"keyword": {"type": "string"}, "also": {"type": "array", "items": {"type": "string"},
                                                   "minItems": 1}},
    required=("keyword", "also"),
)
def ehlo_keyword_implies(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """When KEYWORD is advertised, every keyword in ALSO is advertised too."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    if s.ehlo is None:
        return failed("no usable EHLO reply", actual=show(s.ehlo_reply))
    kw = p["keyword"].upper()
    ev = [raw_evidence("EHLO reply", [s.ehlo_reply])] if s.ehlo_reply else []
    if kw not in s.ehlo.keywords:
        return unsupported(f"{kw} is not advertised", evidence=ev)
    missing = [k.upper() for k in p["also"] if k.upper() not in s.ehlo.keywords]
    expected = f"{kw} together with {', '.join(k.upper() for k in p['also'])}"
    if missing:
        return failed(f"{kw} is advertised without {', '.join(missing)}", expected=expected,
                      actual=", ".join(s.ehlo.keywords), evidence=ev)
    return passed(f"{kw} comes with {', '.join(k.upper() for k in p['also'])}", expected=expected,
                  actual=", ".join(s.ehlo.keywords), evidence=ev)


@check()
def single_end_of_data_reply(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Exactly one reply to the end of data, and not a PRDR 353 (the client did not ask for PRDR)."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    if not s.end_replies:
        return no_end_reply(s, "exactly one reply")
    replies = s.end_replies + late_replies(s)
    ev = [raw_evidence("replies after the end of data", replies)]
    first = s.end_replies[0]
    if first.code == 353:
        return failed("a PRDR 353 reply although the client did not request PRDR",
                      expected="one reply (250/4xx/5xx)", actual=shows(s.end_replies), evidence=ev)
    malformed = [e for e in s.errors if "malformed reply" in e]
    if malformed:
        return failed("a malformed reply followed the reply to the end of data", expected="exactly one reply",
                      actual=f"{shows(replies)}; then {'; '.join(malformed)}", evidence=ev)
    if len(replies) != 1:
        late = " (the last came late and answered QUIT)" if late_replies(s) else ""
        return failed(f"{len(replies)} replies to the end of data{late}", expected="exactly one reply",
                      actual=shows(replies), evidence=ev)
    return passed(f"one reply ({first.code}) to the end of data", expected="exactly one reply",
                  actual=show(first), evidence=ev)


@check(params={"classes": {"type": "array", "items": {"enum": [2, 4, 5]}, "minItems": 1}},
       required=("classes",))
def final_reply_class(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The final reply to the end of data (the last one of a PRDR block) is of an allowed class."""
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    expected = " or ".join(f"{c}xx" for c in p["classes"])
    if not s.end_replies:
        return no_end_reply(s, expected)
    expected_n = s.end_replies_expected or 1
    if len(s.end_replies) < expected_n:
        return failed(f"the reply block ended after {len(s.end_replies)} of {expected_n} replies",
                      expected=expected, actual=shows(s.end_replies),
                      evidence=[raw_evidence("replies after the end of data", s.end_replies)])
    final = s.end_replies[expected_n - 1]
    ev = [raw_evidence("replies after the end of data", s.end_replies)]
    if final.code // 100 in p["classes"]:
        return passed(f"the final reply is {final.code}", expected=expected, actual=show(final), evidence=ev)
    return failed(f"the final reply is {final.code}", expected=expected, actual=show(final), evidence=ev)




@check(params={"step": {"enum": ["mail", "rcpt", "ehlo", "helo"]}}, required=("step",))
def not_refused_as_too_long(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A long command line is accepted; refused as too long (500) is a failure.

    A refusal for some other reason (a parameter the server dislikes) means the length could not
    be judged: the check is then skipped, with the reply as evidence.
    """
    s = session_or_skip(obs)
    if isinstance(s, Verdict):
        return s
    step, reply = step_reply(s, p["step"], 0)
    if step is None or reply is None:
        return failed(f"no reply to the long {p['step'].upper()} command",
                      actual=(step.error if step else None) or "; ".join(s.errors) or None)
    length = len(step.sent)
    ev = [Evidence(f"the {length}-octet command", "bytes", visible(step.sent)), raw_evidence("reply", [reply])]
    expected = f"2xx to a {length}-octet {p['step'].upper()} line"
    if reply.is_positive:
        return passed(f"the {length}-octet line was accepted ({reply.code})", expected=expected,
                      actual=show(reply), evidence=ev)
    # RFC 5321 §4.2.2: 500 covers "command line too long"; other codes only if they say so.
    text = reply.text.lower()
    if reply.code == 500 or ("line" in text and "long" in text):
        return failed(f"the {length}-octet line was refused as too long", expected=expected,
                      actual=show(reply), evidence=ev)
    return skipped(f"the line was refused for another reason ({reply.code}); its length was not judged",
                   expected=expected, actual=show(reply), evidence=ev)
