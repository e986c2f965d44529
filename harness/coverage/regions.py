"""Feature code found by its preprocessor guards: the lines of `#if…#endif` branches that are
compiled when the feature is built in (Exim: `#ifndef DISABLE_PRDR`, `#ifdef SUPPORT_PROXY`,
`#ifdef SUPPORT_DANE`, `#ifndef DISABLE_OCSP`, `#ifdef EXPERIMENTAL_DSN_INFO`).

A guard is a macro name, `NAME` (the feature is on when NAME is defined) or `!NAME` (on when it
is not: Exim's DISABLE_* macros). The `#else` of a guard is the code for the feature being off,
and is not counted. Conditions are read the way Exim writes them (`defined(NAME)`, `!defined`,
`||` of several features); an expression that names the macro in both senses is taken by its
first mention.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)$", re.DOTALL)


@dataclass
class _Frame:
    named: bool = False  # some condition of this #if chain names a guard
    on: bool = False  # the current branch is compiled when the feature is on
    last: bool | None = None  # whether the last naming condition meant "feature on"


def _means_defined(kind: str, condition: str, macro: str) -> bool | None:
    """Whether CONDITION being true means MACRO is defined (None: it does not name MACRO)."""
    name = re.escape(macro)
    if kind == "ifdef":
        return True if re.fullmatch(rf"\s*{name}\s*", condition) else None
    if kind == "ifndef":
        return False if re.fullmatch(rf"\s*{name}\s*", condition) else None
    m = re.search(rf"(!\s*)?(?:defined\s*\(?\s*)?\b{name}\b", condition)
    if m is None:
        return None
    return m.group(1) is None


def _polarity(kind: str, condition: str, guards: list[tuple[str, bool]]) -> bool | None:
    """Whether CONDITION being true means the feature is on (None: it names no guard)."""
    for macro, on_when_defined in guards:
        defined = _means_defined(kind, condition, macro)
        if defined is not None:
            return defined == on_when_defined
    return None


def guarded_lines(text: str, guards: Iterable[str]) -> set[int]:
    """1-based numbers of the lines of TEXT that belong to the feature's on-branches."""
    parsed = [(g[1:].strip(), False) if g.startswith("!") else (g.strip(), True) for g in guards]
    stack: list[_Frame] = []
    out: set[int] = set()
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        m = _DIRECTIVE.match(line)
        if not m:
            if any(f.named and f.on for f in stack) and not any(f.named and not f.on for f in stack):
                out.add(number)
            continue
        directive = line
        while directive.rstrip().endswith("\\") and number < len(lines):  # continued condition
            directive = directive.rstrip()[:-1] + " " + lines[number]
            number += 1
        kind, condition = _DIRECTIVE.match(directive).group(1, 2)  # type: ignore[union-attr]
        if kind in ("if", "ifdef", "ifndef"):
            pol = _polarity(kind, condition, parsed)
            stack.append(_Frame(named=pol is not None, on=pol is True, last=pol))
        elif not stack:
            continue  # an unbalanced #elif/#else/#endif: ignore it
        elif kind == "elif":
            frame, pol = stack[-1], _polarity(kind, condition, parsed)
            if pol is not None:
                frame.named, frame.on, frame.last = True, pol, pol
            elif frame.last is not None:  # reached because the naming condition was false
                frame.on = not frame.last
        elif kind == "else":
            if stack[-1].last is not None:
                stack[-1].on = not stack[-1].last
        else:
            stack.pop()
    return out
