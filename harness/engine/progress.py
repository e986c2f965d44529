"""Progress on long runs: a live bar on a terminal, one line per scenario elsewhere (CI logs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

from ..report.model import RunResult, ScenarioResult

STYLE = {"pass": "green", "fail": "bold red", "non-strict": "yellow", "unsupported": "cyan",
         "skip": "dim", "error": "bold magenta"}


class Progress:
    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False)
        self.live = enabled and self.console.is_terminal
        self.done = 0
        self.counts: dict[str, int] = {}
        self._bar: RichProgress | None = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.live:
            self._bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     TextColumn("{task.fields[counts]}"), console=self.console,
                                     transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("starting", total=self.total, counts="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.__exit__(None, None, None)

    def started(self, scenario: Any, target: str) -> None:
        if self._bar:
            self._bar.update(self._task, description=f"{target}: {scenario.id}")

    def finished(self, res: ScenarioResult) -> None:
        self.done += 1
        v = res.verdict
        self.counts[v] = self.counts.get(v, 0) + 1
        if self._bar:
            self._bar.update(self._task, advance=1, counts=self._count_text())
            if v in ("fail", "error"):
                self._bar.console.print(self._line(res))
        elif self.enabled:
            self.console.print(self._line(res), soft_wrap=True)

    def _line(self, res: ScenarioResult) -> str:
        v = res.verdict
        why = f" — {res.reason}" if res.reason and v in ("skip", "unsupported", "error") else ""
        failing = [c for c in res.checks if c.outcome.value == "fail"]
        if failing:
            why = f" — {failing[0].requirement}: {failing[0].message}"
        return (f"[{self.done:>3}/{self.total}] [{STYLE.get(v, '')}]{v:11}[/] {res.target}: {res.id} "
                f"({res.duration_s:.2f} s){why}")

    def _count_text(self) -> str:
        return " ".join(f"[{STYLE.get(k, '')}]{k} {n}[/]" for k, n in sorted(self.counts.items()))

    def summary(self, result: RunResult, paths: dict[str, Path]) -> None:
        s = result.summary()
        verdicts = ", ".join(f"{n} {k}" for k, n in sorted(s["verdicts"].items()))
        out = Console(file=sys.stdout, highlight=False)
        out.print(f"{s['scenarios']} scenarios: {verdicts}; MUST-level failures: {s['must_failures']}")
        for t in result.targets:
            out.print(f"target {t.name} {t.version or ''}: restarted {t.restarts} time(s)")
        if result.stopped_early:
            out.print(f"[bold]stopped early: {result.stopped_early}[/] — the reports hold what ran")
        out.print(f"reports: {paths.get('html')}  {paths.get('json')}  {paths.get('junit')}")
