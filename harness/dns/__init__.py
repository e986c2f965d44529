"""Fake DNS for the lab: zone model, resolution with DNSSEC states, UDP/TCP server, query log."""

from .querylog import QueryLog, QueryRecord
from .resolver import Outcome, Resolution, resolve
from .responder import respond
from .server import DNSServer
from .zone import State, World, Zone, ZoneDataError

__all__ = [
    "DNSServer",
    "Outcome",
    "QueryLog",
    "QueryRecord",
    "Resolution",
    "State",
    "World",
    "Zone",
    "ZoneDataError",
    "resolve",
    "respond",
]
