"""DSN checks (harness/engine/checks/dsn.py) on observations built from real FakeMX sessions and
DSN samples: the logic the integration tests cannot reach, and dsn_info where exim-dsninfo is
not built."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from harness.dsn.render import arrivals
from harness.engine.actions.session import SessionRunner
from harness.engine.checks import all_checks
from harness.engine.checks.base import Verdict
from harness.engine.checks.dsn import dsn_evidence
from harness.engine.observations import Observations
from harness.report.model import Outcome
from harness.smtp.peer import FakeMX, script_from_data
from support.dsn import deliver, observe, sample, session

CHECKS = all_checks()
INFO_DSN = sample("exim-4.96-dsninfo-failure.eml")
INFO_PEER = {"banner": "220 mx.d.test ESMTP fake DSN27 data", "end_of_data": ["554 5.7.1 content refused INFO27"]}


def run(name: str, obs: Observations, params: Mapping[str, Any] | None = None) -> Verdict:
    definition = CHECKS[name]
    assert definition.validate_params(params or {}) is None
    return definition(obs, params or {})


def info_obs(dsn: bytes = INFO_DSN, port: int = 25, peer: Mapping[str, Any] = INFO_PEER) -> Observations:
    s = deliver(peer, ["r1@d.test"], hostname="mx.peer.test")
    return observe(peers=[s], bounces=[dsn], recipients=["r1@d.test"], peer_endpoints={"mx": ("198.51.100.1", port)})


def test_dsn_info_passes_on_the_captured_exim_dsn() -> None:
    v = run("dsn_info", info_obs())
    assert v.outcome is Outcome.PASS, (v.message, v.actual)


def test_dsn_info_fails_for_wrong_fields() -> None:
    wrong_greeting = INFO_DSN.replace(b"fake DSN27 data", b"fake somebody else")
    v = run("dsn_info", info_obs(wrong_greeting))
    assert v.outcome is Outcome.FAIL and "x-remote-mta-smtp-greeting" in (v.actual or "")
    no_diag = b"".join(line for line in INFO_DSN.splitlines(keepends=True) if not line.startswith(b"X-Exim-Diagnostic"))
    v = run("dsn_info", info_obs(no_diag))
    assert v.outcome is Outcome.FAIL and "X-Exim-Diagnostic: (absent)" in (v.actual or "")
    v = run("dsn_info", info_obs(port=2525))  # the peer was on 2525: "[addr]:2525" expected
    assert v.outcome is Outcome.FAIL and "[198.51.100.1]:2525" in (v.actual or "")
    bare = b"".join(line for line in INFO_DSN.splitlines(keepends=True)
                    if not line.startswith((b"X-", b"Remote-MTA: X-ip")))
    v = run("dsn_info", info_obs(bare))
    assert v.outcome is Outcome.FAIL and v.message == "no DSN_INFO field at all"


def test_dsn_info_fails_when_a_helo_field_appears_without_ehlo() -> None:
    greeting = b"554 5.3.2 mx.d.test refuses service BANNER27"
    peer = session({"banner": greeting.decode()}, [])  # the client leaves after the greeting, as Exim does
    dsn = INFO_DSN.replace(b"220 mx.d.test ESMTP fake DSN27 data", greeting).replace(
        b"after end of data: 554 5.7.1 content refused INFO27", b"after initial connection: " + greeting)

    def judge(data: bytes) -> Verdict:
        obs = observe(peers=[peer], bounces=[data], recipients=["r1@d.test"])
        return run("dsn_info", obs, {"helo": False})

    v = judge(dsn)  # still has "X-Remote-MTA-helo-response: X-str; 250-mx.peer.test greets …"
    assert v.outcome is Outcome.FAIL and "x-remote-mta-helo-response: x-str; 250-mx.peer.test" in (v.actual or "").lower()
    without = b"".join(line for line in dsn.splitlines(keepends=True) if not line.startswith(b"X-Remote-MTA-helo"))
    v = judge(without)
    assert v.outcome is Outcome.PASS, (v.message, v.actual)


def test_param_replies_judge_each_command_by_the_grammar() -> None:
    steps: list[Any] = [{"ehlo": "client.test"}, {"mail": {"from": "a@client.test", "params": {"RET": "HDRS"}}},
                        {"rcpt": {"to": "b@d.test", "params": {"NOTIFY": "NEVER"}}},
                        {"rcpt": {"to": "c@d.test", "params": {"NOTIFY": "bogus"}}}, "quit"]
    script = {"ehlo": ["DSN"], "rcpt": {"default": "250 ok", "c@d.test": "501 5.5.4 bad NOTIFY"}}
    for ehlo, wrong in ((["DSN"], 0), (["PIPELINING"], 2)):
        peer = FakeMX("t", "127.0.0.1", 0, script_from_data({**script, "ehlo": ehlo}), socket_factory=socket.socket)
        peer.start()
        try:
            record = SessionRunner(lambda: socket.create_connection(("127.0.0.1", peer.port), timeout=5),
                                   lambda r, n: None, reply_timeout=5).run(steps)
        finally:
            peer.stop()
        v = run("dsn_param_replies", Observations("t", "x", sessions=[record]))
        rows = next(e.content for e in v.evidence if e.kind == "table")
        assert len(rows) == 3 and sum(r["verdict"] == "WRONG" for r in rows) == wrong, rows
        assert v.outcome is (Outcome.PASS if wrong == 0 else Outcome.FAIL)


def test_arrivals_kinds_and_evidence() -> None:
    s = deliver({"rcpt": {"r2@d.test": "550 5.1.1 <r2@d.test>: no such user RCPT22"}}, ["r1@d.test", "r2@d.test"])
    obs = observe(peers=[s], bounces=[sample("exim-4.96-failure.eml"), sample("exim-4.96-success.eml"),
                                      sample("qmail-1.03-bounce.eml")])
    got = arrivals(obs.sink)
    assert [sorted(a.kinds) for a in got] == [["failure"], ["success"], []]
    assert got[2].report is None and got[2].violations[0].rule == "not-a-report"
    assert got[0].reverse_path == "" and got[0].recipients == ["sender@sender.test"]
    ev = dsn_evidence(obs)
    labels = [e.label for e in ev]
    assert labels[0] == "DSN #1 (failure, sink connection 1), decoded"
    assert "beside the peer transcript that caused it" in labels[1]
    row = ev[1].content[0]
    assert row["what the peer said"] == "peer mx, connection 1, RCPT for <r2@d.test>: 550 5.1.1 <r2@d.test>: no such user RCPT22"
    assert "validator: 1 finding(s)" in ev[0].content and "field-order" in ev[0].content
    assert "not readable as a DSN" in ev[-1].content


def test_field_checks_skip_without_a_dsn_and_arrival_check_fails() -> None:
    obs = observe(recipients=["r1@d.test"])
    assert run("dsn_status", obs, {"kind": "failure"}).outcome is Outcome.SKIP
    v = run("dsn_arrived", obs, {"kind": "failure", "recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "no DSN with Action: failed for <r1@d.test>"


def test_dsn_none_skips_when_the_premise_fails() -> None:
    accepted = deliver({}, ["r1@d.test"])
    v = run("dsn_none", observe(peers=[accepted]), {"recipients": ["r1@d.test"], "after": "refused"})
    assert v.outcome is Outcome.SKIP and "premise" in v.message


def test_unreadable_dsn_is_judged_not_hidden() -> None:
    s = deliver({"rcpt": {"default": "550 5.1.1 no"}}, ["r1@d.test"])
    broken = sample("broken-missing-fields.eml")
    obs = observe(peers=[s], bounces=[broken], recipients=["r1@d.test"])
    v = run("dsn_reporting_mta", obs, {"kind": "failure"})
    assert v.outcome is Outcome.FAIL and "reporting-mta-missing" in (v.actual or "")
