"""Integration fixtures: one open Exim target per pytest worker, shared by its tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.runner import RunOptions, Runner, TargetRun
from harness.engine.scenario import Scenario
from harness.report.model import ScenarioResult
from harness.targets.spec import resolve
from support.harness import needs_root


@pytest.fixture(scope="session")
def exim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Scenario], ScenarioResult]]:
    """Run a scenario on this worker's lab with a real Exim; the lab lives for the session."""
    if needs_root.args[0]:
        pytest.skip(needs_root.kwargs["reason"])
    out = tmp_path_factory.mktemp("exim-run")
    runner = Runner([], [], load_catalogue(), all_checks(), RunOptions(out_dir=out))
    with runner.open_target(resolve("exim")) as run:
        if run.unavailable:
            pytest.skip(f"exim not available: {run.unavailable}")

        def play(sc: Scenario) -> ScenarioResult:
            return runner.scenario(run, sc)

        yield play
