"""Helpers for the DSN tests: real FakeMX sessions on 127.0.0.1, a DSN sink, observations."""

from __future__ import annotations

import copy
import dataclasses
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.engine.actions.session import SessionRunner
from harness.engine.observations import Observations
from harness.smtp.peer import FakeMX, PeerSession, script_from_data

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "dsn"
SENDER = "sender@sender.test"
D_TEST = {"dns": {"zones": [{"name": "d.test", "state": "insecure", "records": [
    {"name": "d.test", "type": "MX", "value": "10 mx.d.test"},
    {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"}]}]}}


def session(script: Mapping[str, Any], steps: list[Any], *, name: str = "mx",
            hostname: str = "mx.d.test") -> PeerSession:
    """One connection of the project's own SMTP client (playing the target) to a FakeMX."""
    mx = FakeMX(name, "127.0.0.1", 0, script_from_data(dict(script)), socket_factory=socket.socket,
                hostname=hostname)
    mx.start()
    try:
        SessionRunner(lambda: socket.create_connection(("127.0.0.1", mx.port), timeout=5.0),
                      lambda role, n: None, reply_timeout=5.0).run(steps)
        mx.wait_idle(5.0)
    finally:
        mx.stop()
    [seen] = mx.sessions_seen
    return seen


def deliver(script: Mapping[str, Any], rcpts: Sequence[str], *, sender: str = SENDER, prdr: bool = False,
            bdat: bool = False, mail_params: Mapping[str, str | None] | None = None,
            rcpt_params: Mapping[str, Mapping[str, str | None]] | None = None,
            body: str = "Subject: test\r\n\r\nhello\r\n", hostname: str = "mx.d.test") -> PeerSession:
    """A delivery attempt as an MTA makes it: EHLO, MAIL, RCPTs, DATA (or BDAT), QUIT."""
    params = dict(mail_params or {})
    if prdr:
        params["PRDR"] = None
    steps: list[Any] = [{"ehlo": "mta.target.test"}, {"mail": {"from": sender, "params": params}}]
    steps += [{"rcpt": {"to": r, "params": dict((rcpt_params or {}).get(r, {}))}} for r in rcpts]
    steps += [{"bdat" if bdat else "data": {"body": body}}, "quit"]
    return session(script, steps, hostname=hostname)


def sink(*messages: bytes, reverse_path: str = "", rcpt: str = SENDER) -> list[PeerSession]:
    """The DSN sink after MESSAGES arrived, one connection each, with this envelope."""
    out = []
    for i, msg in enumerate(messages):
        s = deliver({}, [rcpt], sender=reverse_path, body=msg.decode("utf-8", "surrogateescape").replace("\\", "\\\\"))
        s.index = i
        out.append(s)
    return out


def observe(*, peers: Sequence[PeerSession] = (), bounces: Sequence[bytes] = (), sender: str = SENDER,
            recipients: Sequence[str] = (), world: Mapping[str, Any] | None = None, **kw: Any) -> Observations:
    kw.setdefault("peer_endpoints", {"mx": ("198.51.100.1", 25)})
    obs = Observations("test", "exim", peers={"mx": list(peers)}, sink=sink(*bounces) if bounces else [],
                       sender=sender, recipients=list(recipients), world=dict(world or D_TEST), **kw)
    return obs


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def clone(session: PeerSession) -> PeerSession:
    """A copy of SESSION whose transactions can be changed (transcripts are shared, not copied:
    they hold a lock)."""
    new = session.snapshot()
    new.transactions = [dataclasses.replace(t, rcpts=list(t.rcpts), mail_params=dict(t.mail_params))
                        for t in session.transactions]
    return new


def replace_sink(obs: Observations, change: Callable[[bytes], bytes | None]) -> Observations:
    """A copy of OBS in which every message at the sink went through CHANGE (None drops it)."""
    new = copy.copy(obs)
    new.sink = []
    for s in obs.sink:
        s2 = clone(s)
        kept = []
        for t in s2.transactions:
            if t.message is not None:
                t.message = change(t.message)
            if t.message is not None:
                kept.append(t)
        s2.transactions = kept
        s2.messages = [t.message for t in kept if t.message is not None]
        new.sink.append(s2)
    return new


# -- one lab per target and pytest worker, shared by the DSN integration tests ------------------

class SharedTarget:
    """An open target whose scenario runs are kept: the pinned verdicts (test_dsn_exim.py) and the
    wrong-DSN tests (test_dsn_wrong_dsn.py) judge the same runs, so each scenario runs once per
    worker."""

    def __init__(self, runner: Any, run: Any) -> None:
        self.runner, self.run = runner, run
        self.results: dict[str, Any] = {}
        self.observed: dict[str, Observations] = {}
        self._last: dict[str, Observations] = {}

    def result(self, sid: str) -> Any:
        from support.harness import scenario

        if sid not in self.results:
            self._last.pop(sid, None)
            self.results[sid] = self.runner.scenario(self.run, scenario(sid))
            if sid in self._last:
                self.observed[sid] = self._last[sid]
        return self.results[sid]

    def observe(self, sid: str) -> Observations:
        res = self.result(sid)
        assert sid in self.observed, (res.outcome, res.reason, res.traceback)
        return self.observed[sid]


_SHARED: dict[str, SharedTarget] = {}


def shared_target(request: Any, tmp_path_factory: Any, target: str) -> SharedTarget:
    """The worker's open TARGET, opened on first use and closed when the session ends; skips the
    test (with the reason) when the target is not available."""
    import contextlib

    import pytest

    from harness.engine.catalogue import load_catalogue
    from harness.engine.checks import all_checks
    from harness.engine.runner import RunOptions, Runner
    from harness.targets.spec import resolve
    from support.harness import needs_root

    if needs_root.args[0]:
        pytest.skip(needs_root.kwargs["reason"])
    if target not in _SHARED:
        holder: dict[str, SharedTarget] = {}
        runner = Runner([], [], load_catalogue(), all_checks(), RunOptions(
            out_dir=tmp_path_factory.mktemp(f"{target}-dsn"),
            on_observations=lambda sc, obs: holder[target]._last.__setitem__(sc.id, obs)))
        stack = contextlib.ExitStack()
        run = stack.enter_context(runner.open_target(resolve(target)))
        holder[target] = _SHARED[target] = SharedTarget(runner, run)

        def close() -> None:
            _SHARED.pop(target, None)
            stack.close()

        request.addfinalizer(close)
    shared = _SHARED[target]
    if shared.run.unavailable:
        hint = (" — scripts/build-exim-dsninfo.sh builds it (scripts/setup.sh runs it unless "
                "MTACONFORM_BUILD_DSNINFO=0)") if target == "exim-dsninfo" else ""
        pytest.skip(f"{target} is not available: {shared.run.unavailable}{hint}")
    return shared
