"""Reply-level oracles: every reply is grammatical (the strict codec decides, RFC 5321 §4.2),
and its code is one the command it answers can get.

RFC 5321 §4.3.2 lists, per command, the success and intermediate codes; errors (4yz, 5yz) are
allowed for any command ("any SMTP command can return" 421, 500, 501 and the command-specific
ones), so the oracle judges only 2yz/3yz replies: a 354 to anything but DATA, a 221 to anything
but QUIT, a 250 to DATA or a 220 out of the blue are violations whatever the server's policy.
Extensions: STARTTLS 220 (RFC 3207 §4), BDAT 250 (RFC 3030 §2), PRDR 353 and the per-recipient
replies (draft-hall-prdr-00 §4), AUTH 334/235 (RFC 4954 §4).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..smtp.codec import Reply
from .model import Violation

GRAMMAR = "reply-grammar"
GRAMMAR_CITE = "RFC 5321 §4.2 (reply syntax), §4.5.3.1.5 (reply line length)"
REPLY_CODE = "reply-code"
REPLY_CODE_CITE = "RFC 5321 §4.2.1, §4.3.2; RFC 3207 §4; RFC 3030 §2; draft-hall-prdr-00 §4"
UNSOLICITED = "unsolicited-reply"
UNSOLICITED_CITE = "RFC 5321 §4.2 (one reply per command), §4.1.4; RFC 2920 §3.1"

ANY = "?"  # a line the server may take as anything (garbage, an unknown verb): any code
MORE = "*"  # the server may answer this step with more replies than counted (bare CR/LF)

# The positive and intermediate codes each kind of reply may carry.
POSITIVE: dict[str, frozenset[int]] = {
    "BANNER": frozenset({220}),
    "EHLO": frozenset({250}),
    "HELO": frozenset({250}),
    "MAIL": frozenset({250}),
    "RCPT": frozenset({250, 251}),
    "DATA": frozenset({354}),
    "END-OF-DATA": frozenset({250}),
    "END-OF-DATA-PRDR": frozenset({250, 353}),  # 353: per-recipient replies follow
    "PRDR-RCPT": frozenset({250}),
    "PRDR-FINAL": frozenset({250}),
    "BDAT": frozenset({250}),
    "RSET": frozenset({250}),
    "NOOP": frozenset({250}),
    "VRFY": frozenset({250, 251, 252}),
    "EXPN": frozenset({250, 252}),
    "HELP": frozenset({211, 214}),
    "STARTTLS": frozenset({220}),
    "AUTH": frozenset({235, 334}),
    "QUIT": frozenset({221}),
}


def code_problem(expect: str, reply: Reply) -> str | None:
    """Why REPLY cannot answer EXPECT, or None."""
    if expect in (ANY, MORE) or reply.code >= 400 or expect not in POSITIVE:
        return None
    if reply.code in POSITIVE[expect]:
        return None
    allowed = ", ".join(str(c) for c in sorted(POSITIVE[expect]))
    return f"{reply.code} in answer to {expect} (allowed: {allowed}, or a 4yz/5yz error)"


def reply_code_violations(expects: Sequence[str], replies: Sequence[Reply]) -> list[Violation]:
    found = []
    for expect, reply in zip(expects, replies):
        problem = code_problem(expect, reply)
        if problem:
            found.append(Violation(REPLY_CODE, problem, REPLY_CODE_CITE))
    return found


def unsolicited(expects: Sequence[str], replies: Sequence[Reply]) -> list[Violation]:
    """Replies beyond one per command; a 421 (closing) may come at any time (§3.8)."""
    if MORE in expects or ANY in expects:
        return []
    extra = [r for r in replies[len(expects):] if r.code != 421]
    if not extra:
        return []
    shown = "; ".join(f"{r.code} {r.lines[0] if r.lines else ''}"[:80] for r in extra[:3])
    return [Violation(UNSOLICITED, f"{len(extra)} reply(ies) no command asked for: {shown}", UNSOLICITED_CITE)]
