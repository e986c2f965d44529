"""Helpers for tests that run scenarios through the real runner."""

from __future__ import annotations

import copy
import dataclasses
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.engine.actions import VALIDATORS
from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.runner import RunOptions, Runner
from harness.engine.scenario import Scenario, load_scenario
from harness.report.model import CheckResult, ScenarioResult
from harness.smtp.peer import FakeMX, PeerScript, script_from_data
from harness.targets.spec import TargetSpec, external_spec, resolve

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

# The addresses a misbehaving test server gives each recipient role (see the README's role table).
ROLE_ADDRESSES = {
    "accept": "accept-{n}@faulty.test",
    "reject_rcpt": "rcpt-reject-{n}@faulty.test",
    "defer_rcpt": "rcpt-defer-{n}@faulty.test",
    "reject_data": "data-reject-{n}@faulty.test",
    "defer_data": "data-defer-{n}@faulty.test",
    "full_data": "data-full-{n}@faulty.test",
}


def scenario(sid: str, **changes: Any) -> Scenario:
    """A scenario from scenarios/ by id, optionally with fields replaced (e.g. world=…)."""
    path = next(SCENARIOS.rglob(f"{sid}.yaml"))
    sc = load_scenario(path, load_catalogue(), all_checks(), VALIDATORS)
    return dataclasses.replace(sc, **changes) if changes else sc


def with_peer(sc: Scenario, name: str, **script: Any) -> Scenario:
    """SC with peer NAME's script fields replaced (a deliberately wrong fake MX)."""
    world = copy.deepcopy(dict(sc.world))
    for peer in world["peers"]:
        if peer["name"] == name:
            peer.update(script)
    return dataclasses.replace(sc, world=world)


def run(scenarios: Iterable[Scenario], target: TargetSpec | str, out: Path, **options: Any
        ) -> dict[str, ScenarioResult]:
    spec = resolve(target) if isinstance(target, str) else target
    runner = Runner(list(scenarios), [spec], load_catalogue(), all_checks(),
                    RunOptions(out_dir=out, **options))
    result = runner.run()
    return {s.id: s for s in result.scenarios}


def check_verdicts(res: ScenarioResult) -> dict[tuple[str, str], str]:
    """(check name, requirement) → verdict; the last one wins when a check repeats."""
    return {(c.check, c.requirement): c.verdict for c in res.checks}


class FaultyServer:
    """A fake MX on 127.0.0.1 used as an *external target*: a deliberately wrong SMTP server.

    Its per-recipient replies follow ROLE_ADDRESSES unless the script says otherwise.
    """

    def __init__(self, script: PeerScript | Mapping[str, Any], *, reply_timeout: float = 1.0) -> None:
        if not isinstance(script, PeerScript):
            script = script_from_data(dict(script))
        self.peer = FakeMX("faulty", "127.0.0.1", 0, script, socket_factory=socket.socket,
                           hostname="faulty.test")
        self.reply_timeout = reply_timeout

    def __enter__(self) -> FaultyServer:
        self.peer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peer.stop()

    @property
    def spec(self) -> TargetSpec:
        spec = external_spec(f"smtp://127.0.0.1:{self.peer.port}", ROLE_ADDRESSES)
        return dataclasses.replace(spec, reply_timeout=self.reply_timeout)


def faulty_rcpt_replies(**overrides: str) -> dict[str, str]:
    """RCPT replies by address for FaultyServer scripts: reject_rcpt refused, the rest accepted."""
    replies = {"default": "250 2.1.5 ok"}
    for n in range(1, 5):
        replies[f"rcpt-reject-{n}@faulty.test"] = "550 5.1.1 refused at RCPT"
        replies[f"rcpt-defer-{n}@faulty.test"] = "451 4.3.0 deferred at RCPT"
    replies.update(overrides)
    return replies


def check_result(res: ScenarioResult, check: str, *, requirement: str | None = None,
                 level: str | None = None) -> CheckResult:
    """The one result of CHECK in RES, narrowed by requirement and level (MUST/SHOULD/MAY) when
    a scenario runs the same check twice (e.g. once as MUST, once as SHOULD with strict: true)."""
    found = [c for c in res.checks if c.check == check
             and (requirement is None or c.requirement == requirement)
             and (level is None or c.level == level)]
    if len(found) != 1:
        raise LookupError(f"{res.id}: {len(found)} results for check {check!r} "
                          f"(requirement={requirement}, level={level}); outcome {res.outcome.value}, "
                          f"reason {res.reason!r}, checks "
                          f"{[(c.check, c.requirement, c.level) for c in res.checks]}")
    return found[0]


def missing_unit_tests(unit_covered: Mapping[Any, str]) -> list[str]:
    """References "tests/…/file.py::test_name" (checks a unit test makes fail, because no real
    target can) whose test function does not exist."""
    missing = []
    for ref in unit_covered.values():
        path, name = ref.split("::")
        if f"def {name}(" not in (ROOT / path).read_text():
            missing.append(ref)
    return missing


def assert_pinned(res: ScenarioResult, verdict: str, not_passing: Mapping[tuple[str, str], str],
                  reason: str | None = None) -> None:
    """RES came out as pinned: the scenario's verdict, every check that did not pass (by check
    and requirement), and words of the reason when given."""
    got = {(c.check, c.requirement): c.verdict for c in res.checks if c.verdict != "pass"}
    detail = [(c.check, c.requirement, c.verdict, c.message) for c in res.checks]
    assert (res.verdict, got) == (verdict, dict(not_passing)), (res.reason, res.traceback, detail)
    if reason:
        assert reason in (res.reason or ""), res.reason
