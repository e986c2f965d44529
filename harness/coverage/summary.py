"""gcov's JSON output merged per source file, and line / branch / function ratios over it.

Pure: documents in, counts out. A document is what `gcov --json-format --stdout` prints for one
object (format_version 1, gcc 9 and later): `current_working_directory` and `files`, each file
with `lines` (line_number, count, branches[count]) and `functions` (name, start_line, end_line,
execution_count). Lines gcov lists are the lines with code; a header's inline functions appear
in every object that uses them, so counts are summed per (file, line).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class GcovFormatError(ValueError):
    """A gcov JSON document that does not have the fields this module reads."""


@dataclass(frozen=True)
class Ratio:
    covered: int
    total: int

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.covered / self.total, 1) if self.total else None

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(self.covered + other.covered, self.total + other.total)

    def __str__(self) -> str:
        pct = "  n/a" if self.percent is None else f"{self.percent:5.1f}%"
        return f"{pct} ({self.covered}/{self.total})"

    def as_json(self) -> dict[str, Any]:
        return {"covered": self.covered, "total": self.total, "percent": self.percent}


@dataclass(frozen=True)
class Function:
    name: str
    start_line: int
    end_line: int
    count: int


@dataclass
class FileCounts:
    """One source file: execution count per line with code, per branch, per function."""

    path: str
    lines: dict[int, int] = field(default_factory=dict)
    branches: dict[tuple[int, int], int] = field(default_factory=dict)
    functions: dict[tuple[str, int], Function] = field(default_factory=dict)

    def line_ratio(self, only: Iterable[int] | None = None) -> Ratio:
        keys = self.lines.keys() if only is None else set(only) & self.lines.keys()
        return Ratio(sum(1 for n in keys if self.lines[n] > 0), len(keys))

    def branch_ratio(self, only: Iterable[int] | None = None) -> Ratio:
        wanted = None if only is None else set(only)
        counts = [c for (n, _), c in self.branches.items() if wanted is None or n in wanted]
        return Ratio(sum(1 for c in counts if c > 0), len(counts))

    def function_ratio(self) -> Ratio:
        return Ratio(sum(1 for f in self.functions.values() if f.count > 0), len(self.functions))

    def add(self, entry: Mapping[str, Any]) -> None:
        try:
            for line in entry["lines"]:
                n = int(line["line_number"])
                self.lines[n] = self.lines.get(n, 0) + int(line["count"])
                for i, branch in enumerate(line.get("branches", ())):
                    self.branches[(n, i)] = self.branches.get((n, i), 0) + int(branch["count"])
            for fn in entry.get("functions", ()):
                key = (str(fn["name"]), int(fn["start_line"]))
                old = self.functions.get(key)
                self.functions[key] = Function(key[0], key[1], int(fn["end_line"]),
                                               int(fn["execution_count"]) + (old.count if old else 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise GcovFormatError(f"{self.path}: unexpected gcov JSON ({exc!r})") from None


def merge(docs: Iterable[Mapping[str, Any]],
          resolve: Callable[[str, str], str | None]) -> dict[str, FileCounts]:
    """Merge gcov documents per source file. RESOLVE(cwd, file) names a file as the report
    shows it, or None to leave it out (system headers, the build's own generated files)."""
    files: dict[str, FileCounts] = {}
    for doc in docs:
        if not isinstance(doc, Mapping) or "files" not in doc:
            raise GcovFormatError("a gcov JSON document without 'files'")
        cwd = str(doc.get("current_working_directory", ""))
        for entry in doc["files"]:
            name = resolve(cwd, str(entry.get("file", "")))
            if name is None:
                continue
            files.setdefault(name, FileCounts(name)).add(entry)
    return files


def total(files: Iterable[FileCounts]) -> tuple[Ratio, Ratio, Ratio]:
    """Lines, branches and functions over FILES."""
    lines = branches = functions = Ratio(0, 0)
    for f in files:
        lines += f.line_ratio()
        branches += f.branch_ratio()
        functions += f.function_ratio()
    return lines, branches, functions
