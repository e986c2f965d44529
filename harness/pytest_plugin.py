"""Scenarios as pytest items: ``pytest --mta exim scenarios/``.

Each scenario file becomes one item per target. An item fails when a MUST-level check fails or the
harness errs, is skipped when the scenario is skipped or the feature unsupported, and passes
otherwise (SHOULD-level failures are reported as warnings). Under pytest-xdist each worker opens its
own lab; ``--dist loadgroup`` keeps scenarios with the same target configuration on one worker.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .engine.yamlsrc import InputError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mtaconform", "mtaconform conformance scenarios")
    group.addoption("--mta", action="append", default=[], metavar="TARGET",
                    help="run scenario files (*.yaml) as tests against TARGET: exim, a spec file, "
                         "or smtp://HOST:PORT; repeatable")
    group.addoption("--mta-slow", action="store_true", help="also run slow lanes")
    group.addoption("--mta-report", default=None, metavar="DIR",
                    help="keep artifacts of failed scenarios here (default: a temporary folder)")


class ScenarioFailed(Exception):
    pass


class _Shared:
    """One Runner and one open target per target name, for the whole pytest session (worker)."""

    def __init__(self, config: pytest.Config) -> None:
        from .engine.catalogue import load_catalogue
        from .engine.checks import all_checks

        self.config = config
        self.catalogue = load_catalogue()
        self.checks = all_checks()
        self.stack = contextlib.ExitStack()
        self.runs: dict[str, Any] = {}
        out = config.getoption("mta_report")
        self.out = Path(out) if out else Path(tempfile.mkdtemp(prefix="mtaconform-pytest-"))

    def run(self, target: str) -> tuple[Any, Any]:
        from .engine.runner import RunOptions, Runner
        from .targets.spec import resolve

        if target not in self.runs:
            worker = getattr(self.config, "workerinput", {}).get("workerid", "main")
            options = RunOptions(out_dir=self.out / worker, slow=self.config.getoption("mta_slow"))
            runner = Runner([], [], self.catalogue, self.checks, options)
            self.runs[target] = (runner, self.stack.enter_context(runner.open_target(resolve(target))))
        return self.runs[target]

    def close(self) -> None:
        self.stack.close()


_KEY = pytest.StashKey[_Shared]()


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("mta"):
        config.stash[_KEY] = _Shared(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_KEY, None)
    if shared is not None:
        shared.close()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if not parent.config.getoption("mta") or file_path.suffix != ".yaml":
        return None
    if "scenarios" not in file_path.parts:
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from .engine.actions import VALIDATORS
        from .engine.scenario import load_scenario

        shared = self.config.stash[_KEY]
        try:
            sc = load_scenario(self.path, shared.catalogue, shared.checks, VALIDATORS)
        except InputError as exc:
            raise self.CollectError(str(exc)) from None
        for target in self.config.getoption("mta"):
            item = ScenarioItem.from_parent(self, name=f"{sc.id}[{target}]", scenario=sc, target=target)
            item.add_marker(pytest.mark.xdist_group(f"{target}:{sc.knob_key()}"))
            if sc.slow:
                item.add_marker(pytest.mark.slow)
            yield item


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, target: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.scenario = scenario
        self.target = target
        self.result: Any = None

    def runtest(self) -> None:
        shared = self.config.stash[_KEY]
        runner, run = shared.run(self.target)
        res = runner.scenario(run, self.scenario)
        self.result = res
        self.user_properties.append(("verdict", res.verdict))
        if res.verdict in ("skip", "unsupported"):
            pytest.skip(f"{res.verdict}: {res.reason}")
        if res.verdict == "error":
            raise ScenarioFailed(f"harness error: {res.reason}\n{res.traceback or ''}")
        if res.must_failed:
            raise ScenarioFailed(self._describe(res))
        for c in res.checks:
            if c.verdict == "non-strict":
                warnings.warn(f"{self.scenario.id}: {c.requirement} ({c.level}) {c.message}", stacklevel=1)

    @staticmethod
    def _describe(res: Any) -> str:
        lines = [f"{res.id} on {res.target}: {res.title}"]
        for c in res.checks:
            if c.outcome.value == "fail":
                lines.append(f"  {c.requirement} {c.level} {c.check}: {c.message}")
                if c.expected:
                    lines.append(f"    expected: {c.expected}")
                if c.actual:
                    lines.append(f"    actual:   {c.actual}")
        if res.artifacts:
            lines.append(f"  artifacts: {', '.join(res.artifacts)}")
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.scenario.id} on {self.target}"
