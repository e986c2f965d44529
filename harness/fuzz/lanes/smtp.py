"""The `smtp` lane: SMTP command sequences from a stateful Hypothesis machine.

The machine models a session (greeted → EHLO → MAIL → RCPT → DATA, TLS on or off) so that most
sequences get deep into a transaction — MAIL with PRDR, SIZE, BODY, RET, ENVID, SMTPUTF8 and
invented parameters, RCPT with NOTIFY and ORCPT, DATA and BDAT with contents that stress
dot-stuffing, STARTTLS with a real handshake — while the rules still fire out of order, pipeline
several commands in one write, and send overlong lines, bare CR and LF, and 8-bit bytes.

Each rule sends on the live connection and judges the replies at once (grammar, reply codes,
RFC 5321 §4.2, §4.3.2), so Hypothesis shrinks a failing sequence to its shortest form; what was
sent is kept as a byte script, which `mtaconform replay` sends again.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from ...smtp.codec import dot_stuff
from ...smtp.strategies import command_lines, esmtp_params, message_contents, paths
from ..model import Execution, Violation
from ..oracles import ANY, GRAMMAR, GRAMMAR_CITE, MORE, reply_code_violations, unsolicited
from ..script import Conversation, Script, Step, judge, judge_script, play
from .base import Context, Lane

HELO_NAMES = ("fuzz.client.test", "[192.0.2.10]", "x", "")
ROLES = ("accept", "reject_rcpt", "defer_rcpt", "reject_data", "defer_data", "full_data")
DSN_PARAMS = st.fixed_dictionaries({}, optional={
    "NOTIFY": st.sampled_from(["SUCCESS,FAILURE,DELAY", "NEVER", "FAILURE", "SUCCESS,NEVER", "", "BOGUS"]),
    "ORCPT": st.sampled_from(["rfc822;a@target.test", "rfc822;a+2Bb@x", "utf-8;a\\x{40}b", "bogus", "rfc822;"]),
})
MAIL_PARAMS = st.fixed_dictionaries({}, optional={
    "PRDR": st.sampled_from([None, None, "1"]),
    "SIZE": st.sampled_from(["100", "0", "999999999999", "x"]),
    "BODY": st.sampled_from(["8BITMIME", "7BIT", "BINARYMIME", "x"]),
    "RET": st.sampled_from(["FULL", "HDRS", "x"]),
    "ENVID": st.sampled_from(["abc", "a+2Bb", "+zz", "x" * 120]),
    "SMTPUTF8": st.none(),
})


PATHS = paths()


def _args(params: dict[str, str | None]) -> str:
    return "".join(f" {k}" if v is None else f" {k}={v}" for k, v in params.items())


def _line(text: str | bytes) -> bytes:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    return data + b"\r\n"


class SMTPLane(Lane):
    name = "smtp"
    description = "SMTP command sequences: a stateful Hypothesis machine (PRDR, DSN, CHUNKING, STARTTLS, pipelining, edge bytes)"
    stateful = True
    batch = 15

    def case_json(self, case: Script) -> Any:
        return case.to_json()

    def case_from_json(self, data: Any) -> Script:
        return Script.from_json(data)

    def describe_case(self, case_json: Any) -> str:
        text = "".join(s.get("text", "") for s in case_json.get("steps", []))
        return text.replace("\n", "")[:200]

    def execute(self, ctx: Context, case: Script) -> Execution:
        """A recorded script (replay): the same bytes, the same oracles."""
        assert ctx.target is not None
        played = play(case, ctx.target.connect, ctx.reply_timeout)
        ex = Execution()
        judge_script(case, played, ex)
        ex.evidence.append(played.evidence())
        return ex

    def machine(self, ctx: Context) -> type[RuleBasedStateMachine]:
        assert ctx.target is not None
        target = ctx.target
        recipients = [r for r in (target.spec.recipient(role, 1) for role in ROLES) if r]
        rcpt_paths = (st.sampled_from(recipients) | PATHS) if recipients else PATHS

        class SMTPSession(RuleBasedStateMachine):
            """One connection from an ordinary client (192.0.2.10: not a listed proxy)."""

            def __init__(self) -> None:
                super().__init__()
                ctx.new_example()
                self.mark = target.mark()
                self.conv = Conversation(target.connect, "client", ctx.reply_timeout)
                self.steps: list[Step] = []
                self.state = "connected"
                self.tls = False
                self.prdr = False
                self.rcpts = 0
                self.ambiguous = False
                self.judged = False
                self.execution = Execution()

            # -- plumbing -------------------------------------------------------------------

            def script(self) -> Script:
                return Script(tuple(self.steps), "client")

            def send(self, step: Step, state_after: str | None = None) -> list[Any]:
                # Every rule may run at any time, whatever the target did (a precondition on
                # the connection would make Hypothesis's draws depend on the target): once the
                # connection is over, rules send nothing.
                if not self.conv.open:
                    return []
                self.steps.append(step)
                got = self.conv.step(step)
                label = step.expect[0] if step.expect else "?"
                for r in got:
                    self.execution.states.add(f"{'tls/' if self.tls else ''}{self.state}:{label}:{r.code}")
                if self.conv.played.ended != "done":
                    self.execution.states.add(f"{self.state}:{label}:{self.conv.played.ended}")
                expect = (ANY,) * len(got) if self.ambiguous else step.expect
                violations = reply_code_violations(expect, got)
                if self.conv.played.ended == "malformed":
                    violations.append(Violation(GRAMMAR, self.conv.played.error, GRAMMAR_CITE))
                if violations:
                    self.fail(violations)
                if got and state_after and all(r.code < 400 for r in got):
                    self.state = state_after
                return got

            def fail(self, violations: list[Violation]) -> None:
                played = self.conv.close()
                ex = self.execution
                judge(played, ex)
                ex.violations = [Violation(v.oracle, v.message, v.cite, (played.evidence(),))
                                 for v in violations]
                ex.evidence.append(played.evidence())
                self.judged = True
                ctx.finish(self.script().to_json(), ex, self.mark)  # raises Found unless known

            # -- rules ----------------------------------------------------------------------

            @initialize()
            def banner(self) -> None:
                self.send(Step(b"", 1, expect=("BANNER",)), "greeted")

            @rule(verb=st.sampled_from(["EHLO", "EHLO", "HELO", "ehlo"]), name=st.sampled_from(HELO_NAMES))
            def hello(self, verb: str, name: str) -> None:
                got = self.send(Step(_line(f"{verb} {name}".rstrip()), 1, expect=(verb.upper(),)))
                if got and got[0].code == 250:
                    self.state, self.rcpts, self.prdr = "hello", 0, False

            @rule(path=paths(allow_null=True) | st.sampled_from(["fuzz@client.test", ""]),
                  params=MAIL_PARAMS | esmtp_params(max_size=2))
            def mail(self, path: str, params: dict[str, str | None]) -> None:
                got = self.send(Step(_line(f"MAIL FROM:<{path}>{_args(params)}"), 1, expect=("MAIL",)))
                if got and got[0].code == 250:
                    self.state, self.rcpts = "mail", 0
                    self.prdr = any(k.upper() == "PRDR" for k in params)

            @rule(path=rcpt_paths, params=DSN_PARAMS)
            def rcpt(self, path: str, params: dict[str, str]) -> None:
                got = self.send(Step(_line(f"RCPT TO:<{path}>{_args(dict(params))}"), 1, expect=("RCPT",)))
                if got and got[0].code in (250, 251):
                    self.state = "rcpt"
                    self.rcpts += 1

            @rule(content=message_contents(max_pieces=12) | st.just(b"Subject: fuzz\r\n\r\nhello\r\n"))
            def data(self, content: bytes) -> None:
                got = self.send(Step(b"DATA\r\n", 1, expect=("DATA",)))
                if not got or got[0].code != 354 or not self.conv.open:
                    return
                self.state = "data"
                bare = b"\n" in content.replace(b"\r\n", b"") or b"\r" in content.replace(b"\r\n", b"")
                end = "END-OF-DATA-PRDR" if self.prdr else "END-OF-DATA"
                got = self.send(Step(dot_stuff(content), 1, expect=(MORE if bare else end,)))
                self.ambiguous |= bare
                if got and got[0].code == 353 and self.prdr and self.conv.open:
                    # draft-hall-prdr-00 §4: one reply per accepted recipient, then the final one
                    self.send(Step(b"", self.rcpts + 1, expect=("PRDR-RCPT",) * self.rcpts + ("PRDR-FINAL",)))
                self.state = "hello"

            @rule(chunks=st.lists(st.binary(max_size=40), min_size=1, max_size=3),
                  lie=st.sampled_from([0, 0, 0, 1, -1]))
            def bdat(self, chunks: list[bytes], lie: int) -> None:
                for i, chunk in enumerate(chunks):
                    last = " LAST" if i == len(chunks) - 1 else ""
                    size = max(0, len(chunk) + (lie if last else 0))
                    # A lying size desynchronises the command stream: any reply may follow.
                    self.send(Step(f"BDAT {size}{last}\r\n".encode() + chunk, 1,
                                   expect=("BDAT",) if not lie else (MORE,)))
                    self.ambiguous |= bool(lie)
                    if not self.conv.open:
                        return
                self.state = "hello"

            @rule(verb=st.sampled_from(["RSET", "NOOP", "HELP", "VRFY postmaster", "EXPN x", "NOOP x"]))
            def simple(self, verb: str) -> None:
                got = self.send(Step(_line(verb), 1, expect=(verb.split()[0],)))
                if verb == "RSET" and got and got[0].code == 250:
                    self.state = "hello" if self.state != "greeted" else self.state

            @rule()
            def starttls(self) -> None:
                got = self.send(Step(b"STARTTLS\r\n", 1, starttls=True, expect=("STARTTLS",)))
                if got and got[0].code == 220 and self.conv.open:
                    self.tls, self.state = True, "connected"  # RFC 3207 §4.2: start over

            @rule(lines=st.lists(st.sampled_from([b"NOOP", b"RSET", b"EHLO p.test", b"MAIL FROM:<a@b.test>",
                                                  b"RCPT TO:<accept-1@target.test>", b"HELP"]),
                                 min_size=2, max_size=5))
            def pipelined(self, lines: list[bytes]) -> None:
                expect = tuple(line.split()[0].decode() for line in lines)
                self.send(Step(b"".join(line + b"\r\n" for line in lines), len(lines), expect=expect))
                self.state = "pipelined"

            @rule(size=st.sampled_from([510, 511, 512, 513, 1000, 2048, 8192, 70000]) | st.integers(500, 20000),
                  verb=st.sampled_from([b"NOOP ", b"MAIL FROM:<", b"RCPT TO:<", b"EHLO ", b"X"]))
            def overlong(self, size: int, verb: bytes) -> None:
                self.send(Step(verb + b"a" * size + b"\r\n", 1, expect=(ANY,)))

            @rule(line=command_lines(max_size=40),
                  ending=st.sampled_from([b"\n", b"\r", b"\r\r\n", b"\n\r"]))
            def bare_line_end(self, line: bytes, ending: bytes) -> None:
                # The server may or may not see a line here: a NOOP after it always ends one.
                self.ambiguous = True
                self.send(Step(line[:-2] + ending + b"NOOP\r\n", 1, expect=(MORE,)))

            @rule(data=st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")))
            def raw_bytes(self, data: bytes) -> None:
                if data:
                    self.send(Step(data + b"\r\n", 1, expect=(ANY,)))

            @rule()
            def quit(self) -> None:
                self.send(Step(b"QUIT\r\n", 1, shut=True, expect=("QUIT",)))
                self.conv.close()
                self.state = "closed"

            def teardown(self) -> None:
                if self.judged:
                    return  # a rule's oracle already fired (and the finding was known)
                played = self.conv.close()
                ex = self.execution
                judge(played, ex)
                if played.ended == "done" and not self.ambiguous:
                    expects = [e for s in self.steps for e in s.expect]
                    ex.violations.extend(unsolicited(expects, played.replies))
                ex.evidence.append(played.evidence())  # also for what the target-level oracles find
                ctx.finish(self.script().to_json(), ex, self.mark)

        SMTPSession.__name__ = "SMTPSession"
        return SMTPSession


__all__ = ["SMTPLane"]
