"""Actions a scenario can take, and how their data is validated."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .session import validate_steps


def _outbound(data: Any) -> tuple[list[Any], str] | None:
    return None  # the scenario schema covers it


VALIDATORS: Mapping[str, Callable[[Any], tuple[list[Any], str] | None]] = {
    "session": validate_steps,
    "outbound": _outbound,
}
