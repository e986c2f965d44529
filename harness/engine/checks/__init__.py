"""The check catalogue: every named check a scenario can use."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from . import dane, delivery, dsn, ocsp, prdr_client, prdr_server, proxy, smtp_server
from .base import CheckDef, registry


def all_checks() -> Mapping[str, CheckDef]:
    return MappingProxyType(registry(smtp_server, prdr_server, prdr_client, delivery, dane, ocsp,
                                      proxy, dsn))
