"""The fuzz lanes, by the name `mtaconform fuzz LANE` takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry stays cheap to import: `mtaconform --help` lists lane names
    from .base import Lane

LANE_MODULES = {
    "proxy": "harness.fuzz.lanes.proxy:ProxyLane",
    "smtp": "harness.fuzz.lanes.smtp:SMTPLane",
    "self": "harness.fuzz.lanes.selfcheck:SelfLane",
    # Outbound lanes (the target as SMTP client): one injected message per case.
    "prdr-replies": "harness.fuzz.lanes.prdr_replies:PRDRRepliesLane",
    "dns": "harness.fuzz.lanes.dns:DNSLane",
    "ocsp": "harness.fuzz.lanes.ocsp:OCSPLane",
}


def lane_names() -> list[str]:
    return list(LANE_MODULES)


def make_lane(name: str) -> "Lane":
    import importlib

    module, _, cls = LANE_MODULES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()  # type: ignore[no-any-return]


__all__ = ["LANE_MODULES", "lane_names", "make_lane"]
