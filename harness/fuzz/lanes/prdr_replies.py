"""The `prdr-replies` lane: a fake MX offers PRDR and answers a 2–4 recipient message with a
mutated PRDR reply block — too few or too many per-recipient replies, wrong codes, malformed
lines, multi-line replies with mixed codes, bare LFs, garbage, a block cut short.

Blocks start as the well-formed block of draft-hall-prdr-00 §4.5 (353, one reply per accepted
recipient in RCPT order, the final reply), with replies drawn by the project's reply strategies
(harness.smtp.strategies), then a few structural and byte-level mutations are applied; the case
keeps the exact bytes, in the pieces the peer sends them.

Oracles (draft-hall-prdr-00 §4.5.2–§4.5.3; PRDR-20, PRDR-22 of the requirement catalogue):
- a block that is not exactly 353 + one reply per accepted recipient + the final reply (too few,
  too many, cut short), or that holds a reply that is not RFC 5321 §4.2 grammar (bare LF, mixed
  codes in one reply, no reply code), is misaligned: no recipient may be delivered or bounced on
  it — the message stays queued (`prdr-misaligned-delivered`, else `prdr-misaligned-bounced`);
- in a well-aligned block a recipient is delivered only if its own reply and the final reply are
  positive (`prdr-unconfirmed-delivered`, §4.5.3: the client keeps ownership until then).
One violation per execution, the first of these that applies.
A reply with a 3xx code in a per-recipient place is a wrong verdict for that recipient only (as
the conformance scenario prdr-client-malformed-3xx judges it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ...engine.yamlsrc import InputError
from ...report.model import Evidence
from ...smtp.codec import NEED_DATA, Reply, ReplyParser, SMTPProtocolError
from ...smtp.peer import PeerScript, PeerSession, ReplyAction
from ...smtp.peer_script import text_reply
from ...smtp.strategies import encoded_replies, reply_codes
from ...smtp.transcript import visible
from ..model import Execution, Violation, b64, unb64
from ..outbound import (OUTBOUND_KNOBS, Delivery, PeerPlan, deliver, dns_world, peer_address, plain_zone,
                        recipients, record, running_peers, serve)
from .base import Context, Lane

CITE_ALIGN = ("draft-hall-prdr-00 §4.5.2–§4.5.3 (PRDR-22, PRDR-20: never deliver or bounce on a misaligned "
              "block)")
CITE_GRAMMAR = "draft-hall-prdr-00 §4.5, RFC 5321 §4.2 reply syntax (PRDR-22)"
CITE_FINAL = "draft-hall-prdr-00 §4.5.3 (PRDR-20: ownership until a positive final reply)"
MX_HOST = "mx.d.test"
INTRO = b"353 PRDR content analysis beginning\r\n"
# After the block: close the connection, read the next command (Exim pipelines QUIT after the
# dot), or go silent until the client leaves (it must time out).
THEN = ("close", "wait", "hang")
HANG_S = 600.0  # "hang": silent this long, or until the case's peers are stopped
THEN_TEXT = {"close": "closed the connection", "wait": "read the next command",
             "hang": "went silent until the target left"}


# -- the case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    data: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class PRDRCase:
    rcpt: tuple[str, ...]  # the peer's reply to each RCPT, in order ("250 2.1.5 ok")
    block: tuple[Piece, ...]  # what the peer sends after the end of data, piece by piece
    then: str = "close"
    ehlo: tuple[str, ...] = ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "PRDR")
    ops: tuple[str, ...] = ()  # how the block was mutated (for people; replay needs only the bytes)

    @property
    def recipients(self) -> list[str]:
        return recipients(len(self.rcpt))

    @property
    def data(self) -> bytes:
        return b"".join(p.data for p in self.block)

    def to_json(self) -> dict[str, Any]:
        return {"recipients": self.recipients, "rcpt": list(self.rcpt), "ehlo": list(self.ehlo),
                "block": [{"bytes": b64(p.data), "text": visible(p.data), "delay": p.delay}
                          for p in self.block],
                "then": self.then, "ops": list(self.ops)}

    @classmethod
    def from_json(cls, data: Any, where: str = "case") -> PRDRCase:
        try:
            rcpt = tuple(str(r) for r in data["rcpt"])
            block = tuple(Piece(unb64(p["bytes"]), float(p.get("delay", 0.0))) for p in data["block"])
            then = str(data.get("then", "close"))
            ehlo = tuple(str(k) for k in data.get("ehlo", cls.ehlo))
            ops = tuple(str(o) for o in data.get("ops", ()))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(where, None, f"not a prdr-replies case: {exc!r}") from None
        if not 1 <= len(rcpt) <= 10 or then not in THEN or any(p.delay < 0 or p.delay > 5 for p in block):
            raise InputError(where, None, f"prdr-replies case: 1–10 recipients, then: {' or '.join(THEN)}, "
                                          "delays of 0–5 s")
        for r in rcpt:
            if not text_reply(r)[:3].isdigit():
                raise InputError(where, None, f"prdr-replies case: RCPT reply {r!r} has no reply code")
        return cls(rcpt, block, then, ehlo, ops)

    def script(self) -> PeerScript:
        rcpt = {a: ReplyAction(text_reply(r)) for a, r in zip(self.recipients, self.rcpt)}
        actions = [ReplyAction(p.data, delay=p.delay) for p in self.block] or [ReplyAction(None)]
        actions[-1] = ReplyAction(actions[-1].reply, actions[-1].delay, close=self.then == "close")
        if self.then == "hang":
            # A pause, not ReplyAction.hang: that ends when the client half-closes, and Exim shuts
            # its side down right after the QUIT it pipelines behind the message.
            actions.append(ReplyAction(None, delay=HANG_S, close=True))
        return PeerScript(ehlo=list(self.ehlo), rcpt=rcpt, prdr=actions)


# -- judging a block --------------------------------------------------------------------------


@dataclass
class Judgement:
    """A block as a strict client would read it, for ACCEPTED recipients."""

    kind: str  # aligned | plain | too-few | too-many | cut | malformed | empty
    replies: list[Reply] = field(default_factory=list)
    problem: str | None = None  # why the block is misaligned or malformed; None if aligned
    may_deliver: list[bool] = field(default_factory=list)  # per accepted recipient
    why_not: list[str] = field(default_factory=list)  # per accepted recipient, when it may not

    def describe(self) -> str:
        shown = ", ".join(str(r.code) for r in self.replies) or "nothing"
        return f"{self.kind}: replies {shown}" + (f" — {self.problem}" if self.problem else "")


def _positive(reply: Reply) -> bool:
    return 200 <= reply.code < 300


def judge_block(data: bytes, accepted: int, *, closed: bool) -> Judgement:
    """DATA (everything the peer sent after the end of data) judged for ACCEPTED recipients;
    CLOSED: the peer closed the connection after it (otherwise it waited for a command)."""
    parser = ReplyParser(strict=True, max_line_length=65536)
    parser.feed(data)
    replies: list[Reply] = []
    try:
        while (event := parser.next_event()) is not NEED_DATA:
            assert isinstance(event, Reply)
            replies.append(event)
    except SMTPProtocolError as exc:  # RFC 5321 §4.2: not a reply
        return Judgement("malformed", replies, f"reply {len(replies) + 1} is not a reply: {exc.message} "
                                               f"({visible(exc.data[:80])})", [False] * accepted,
                         ["the block is malformed"] * accepted)
    leftover = parser.pending
    if not replies:
        return Judgement("empty", replies, "no complete reply after the end of data", [False] * accepted,
                         ["no reply"] * accepted)
    if replies[0].code != 353:
        # §4.5: one ordinary reply for the whole message. What follows it answers no command of
        # this transaction (the client takes it for the reply to its next one), so it is not
        # part of the verdict.
        ok = _positive(replies[0])
        return Judgement("plain", replies[:1], None, [ok] * accepted,
                         [""] * accepted if ok else [f"the message was answered {replies[0].code}"] * accepted)
    want = accepted + 2
    if leftover:
        what = "closed" if closed else "stopped"
        return Judgement("cut", replies, f"the peer {what} in the middle of reply {len(replies) + 1} "
                         f"({visible(leftover[:60])})", [False] * accepted, ["the block was cut"] * accepted)
    if len(replies) < want:
        return Judgement("too-few", replies, f"{len(replies) - 1} replies after 353 for {accepted} accepted "
                         f"recipient(s): expected {accepted} per-recipient replies and the final reply",
                         [False] * accepted, ["the block has too few replies"] * accepted)
    if len(replies) > want:
        return Judgement("too-many", replies, f"{len(replies) - 1} replies after 353 for {accepted} accepted "
                         f"recipient(s): {len(replies) - want} more than the per-recipient replies and "
                         "the final reply",
                         [False] * accepted, ["the block has too many replies"] * accepted)
    per, final = replies[1:-1], replies[-1]
    may, why = [], []
    for i, reply in enumerate(per):
        ok = _positive(reply) and _positive(final)
        may.append(ok)
        if not _positive(reply):
            why.append(f"its per-recipient reply is {reply.code}")
        elif not _positive(final):
            why.append(f"the final reply is {final.code}")
        else:
            why.append("")
    return Judgement("aligned", replies, None, may, why)


# -- strategies -------------------------------------------------------------------------------

_RCPT = ["250 2.1.5 ok"] * 6 + ["550 5.1.1 no such user", "451 4.3.0 try again later", "252 2.1.5 maybe"]
# Strategies are built once: Hypothesis describes a lambda by reading its source, which costs
# milliseconds each time a strategy holding one is made inside a draw.
_PER = encoded_replies(codes=st.sampled_from([250, 250, 550, 451, 452, 552, 554]) | reply_codes(), max_lines=2)
_FINAL = encoded_replies(codes=st.sampled_from([250, 250, 451, 554]) | reply_codes(), max_lines=2)
_INTRO = st.one_of(st.just(INTRO), st.just(INTRO), st.just(b"353\r\n"),
                   encoded_replies(codes=st.just(353), max_lines=3))
_CODES = reply_codes()
_RCPT_REPLY = st.sampled_from(_RCPT)
_RECODES = st.sampled_from([354, 353, 334, 221, 421]) | _CODES
_GARBAGE = st.one_of(
    st.binary(max_size=24),
    st.builds(bytes.__add__, st.binary(max_size=24), st.just(b"\r\n")),
    st.sampled_from([b"\r\n", b"250\n", b"25O ok\r\n", b"2500 ok\r\n", b"250-\r\n", b"353 again\r\n",
                     b"\x00\r\n", b"250 ok\r", b"  250 ok\r\n", b"250 " + b"x" * 600 + b"\r\n"]),
)
# Misalignment (a reply missing, one too many) is what the lane is for: those come first.
_MUTATIONS = st.sampled_from(["drop"] * 3 + ["duplicate"] * 2 + ["insert"] * 2 + [
    "swap", "garbage", "bare-lf", "mixed-codes", "recode", "cut"])


@st.composite
def _mutate(draw: st.DrawFn, replies: list[bytes]) -> tuple[list[bytes], list[str], bool]:
    """A few mutations of REPLIES; returns the replies, their descriptions, and whether the
    block was cut mid-reply (then the peer closes)."""
    ops: list[str] = []
    cut = False
    for _ in range(draw(st.integers(0, 3))):
        if not replies:
            break
        i = draw(st.integers(0, len(replies) - 1))
        kind = draw(_MUTATIONS)
        if kind == "drop":
            del replies[i]
        elif kind == "duplicate":
            replies.insert(i, replies[i])
        elif kind == "insert":
            replies.insert(i, draw(_PER))
        elif kind == "swap":
            j = draw(st.integers(0, len(replies) - 1))
            replies[i], replies[j] = replies[j], replies[i]
        elif kind == "garbage":
            replies[i] = draw(_GARBAGE)
        elif kind == "bare-lf":
            replies[i] = replies[i].replace(b"\r\n", b"\n")
        elif kind == "mixed-codes":  # RFC 5321 §4.2.1: every line of a reply has the same code
            first = replies[i].split(b"\r\n", 1)[0]
            other = draw(_CODES)
            if b"%d" % other == first[:3]:
                other = 200 + (other + 1) % 400
            replies[i] = first[:3] + b"-" + first[4:] + b"\r\n" + b"%d mixed\r\n" % other
        elif kind == "recode":  # same text, another code: 3xx, a wrong class, 353 again
            replies[i] = b"%d" % draw(_RECODES) + replies[i][3:]
        else:  # cut: the block ends in the middle of reply i
            whole = replies[i]
            at = draw(st.integers(0, max(0, len(whole) - 1)))
            replies[i:] = [whole[:at]]
            cut = True
        ops.append(f"{kind} #{i}")
        if cut:
            break
    return replies, ops, cut


@st.composite
def cases(draw: st.DrawFn) -> PRDRCase:
    n = draw(st.integers(2, 4))
    rcpt = [draw(_RCPT_REPLY) for _ in range(n)]
    if not any(r.startswith("2") for r in rcpt):
        rcpt[0] = _RCPT[0]
    accepted = sum(r.startswith("2") for r in rcpt)
    replies = [draw(_INTRO)]
    replies += [draw(_PER) for _ in range(accepted)]
    replies.append(draw(_FINAL))
    replies, ops, cut = draw(_mutate(replies))
    data = b"".join(replies)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=2)))) \
        if len(data) > 1 and draw(st.integers(0, 4)) == 0 else []
    delay = draw(st.sampled_from([0.0, 0.0, 0.02]))
    block = tuple(Piece(data[a:b], delay if k else 0.0)
                  for k, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(data)])))
    # "hang" makes the target wait for its final-reply time-out when the block is short: rarer.
    then = "close" if cut else draw(st.sampled_from(["close"] * 4 + ["wait"] * 2 + ["hang"]))
    ehlo = ["PRDR"] + [k for k in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME") if draw(st.booleans())]
    return PRDRCase(tuple(rcpt), block, then, tuple(ehlo), tuple(ops))


# -- the lane ---------------------------------------------------------------------------------


def _prdr_transaction(sessions: list[PeerSession]) -> tuple[PeerSession, Any] | None:
    """The one PRDR transaction whose message arrived, if there is exactly one."""
    found = [(s, t) for s in sessions for t in s.transactions if t.message is not None and t.prdr_requested]
    return found[0] if len(found) == 1 else None


def judge(case: PRDRCase, delivery: Delivery, ex: Execution) -> Judgement | None:
    """The oracles over one delivery; the judgement of the block, when there was one."""
    hit = _prdr_transaction(delivery.sessions.get("mx", []))
    if hit is None:
        ex.states.add("no PRDR transaction")
        return None
    session, txn = hit
    sent = b"".join(txn.data_replies_sent)
    if sent != case.data:  # the target left before the whole block was sent: nothing to judge
        ex.states.add("block not sent whole")
        return None
    accepted = [a for a, _, _ in txn.accepted]
    j = judge_block(sent, len(accepted), closed=case.then == "close")
    outcomes = {a: delivery.outcome(a) for a in accepted}
    ex.states.add(f"{j.kind}: " + " ".join(sorted(set(outcomes.values()))))
    facts = Evidence("the PRDR block, as a strict client reads it", "text",
                     f"accepted recipients (RCPT order): {', '.join(accepted)}\n{j.describe()}\n"
                     f"then the peer {THEN_TEXT[case.then]}\n"
                     f"target's decisions: " + ", ".join(f"{a} {o}" for a, o in outcomes.items()) +
                     f"\n\nbytes after the end of data:\n{visible(sent)}")
    transcript = Evidence(f"peer mx, connection {session.index + 1} (target → peer)", "transcript",
                          session.transcript.to_evidence())
    # One violation per execution, the gravest first: a finding's oracle then says what the case
    # shows, and a case is not a new finding for showing two things at once.
    if j.problem is not None:
        what = "malformed" if j.kind == "malformed" else "misaligned"
        cite = CITE_GRAMMAR if j.kind == "malformed" else CITE_ALIGN
        for outcome in ("delivered", "bounced"):
            hit = [a for a in accepted if outcomes[a] == outcome]
            if hit:
                ex.violations.append(Violation(
                    f"prdr-misaligned-{outcome}",
                    f"{', '.join(f'<{a}>' for a in hit)} {outcome} on a {what} PRDR block ({j.problem})",
                    cite, (facts, transcript)))
                break
    else:
        hit = [(a, j.why_not[i]) for i, a in enumerate(accepted)
               if outcomes[a] == "delivered" and not j.may_deliver[i]]
        if hit:
            ex.violations.append(Violation(
                "prdr-unconfirmed-delivered", "; ".join(f"<{a}> delivered although {why}" for a, why in hit),
                CITE_FINAL, (facts, transcript)))
    return j


class PRDRRepliesLane(Lane):
    name = "prdr-replies"
    description = "a fake MX answers the outbound target's PRDR transaction with mutated reply blocks"
    needs_managed = True
    knobs = {**OUTBOUND_KNOBS, "client_prdr": "*"}
    batch = 20

    def __init__(self) -> None:
        self.world = dns_world(plain_zone((MX_HOST, peer_address(1))))

    def strategy(self) -> SearchStrategy[PRDRCase]:
        return cases()

    def case_json(self, case: PRDRCase) -> Any:
        return case.to_json()

    def case_from_json(self, data: Any) -> PRDRCase:
        return PRDRCase.from_json(data)

    def describe_case(self, case_json: Any) -> str:
        texts = "".join(p.get("text", "") for p in case_json.get("block", []))
        return f"{len(case_json.get('rcpt', []))} recipients, then {case_json.get('then')}: {texts[:160]}"

    def execute(self, ctx: Context, case: PRDRCase) -> Execution:
        assert ctx.target is not None
        serve(ctx.target, self.world)
        plan = PeerPlan("mx", peer_address(1), case.script(), hostname=MX_HOST)
        with running_peers(ctx.target, [plan]) as peers:
            delivery = deliver(ctx.target, peers, case.recipients, self.name)
        ex = Execution()
        judge(case, delivery, ex)
        record(ex, delivery)
        return ex


__all__ = ["PRDRCase", "PRDRRepliesLane", "Piece", "Judgement", "cases", "judge", "judge_block"]
