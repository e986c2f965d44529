"""The scenario's world: DNS zones and fake peers, on top of a lab's standing services.

A lab keeps one DNS server and one DSN sink (the MX of the senders' domain) for all scenarios;
each scenario swaps in its zones and starts its own peers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..dns.server import DNSServer
from ..pki.ca import PKI, Leaf, LeafFiles
from .tls_world import issue_certificates, peer_tls, resolve_dns
from .ocsp_world import OCSPLab
from ..dns.zone import World as DNSWorld
from ..lab import addresses
from ..lab.lab import Lab
from ..smtp.peer import FakeMX, script_from_data

SENDER_DOMAIN = "sender.test"
DEFAULT_SENDER = f"sender@{SENDER_DOMAIN}"

# Zones every scenario has unless it replaces them (same zone name).
BASE_ZONES: list[dict[str, Any]] = [
    {
        "name": SENDER_DOMAIN,
        "state": "insecure",
        "records": [
            {"name": SENDER_DOMAIN, "type": "MX", "value": f"10 mx.{SENDER_DOMAIN}"},
            {"name": f"mx.{SENDER_DOMAIN}", "type": "A", "value": addresses.SINK_V4},
        ],
    },
    {
        "name": addresses.TARGET_DOMAIN,
        "state": "insecure",
        "records": [
            {"name": addresses.TARGET_HOSTNAME, "type": "A", "value": addresses.TARGET_V4},
            {"name": addresses.TARGET_HOSTNAME, "type": "AAAA", "value": addresses.TARGET_V6},
        ],
    },
]


def dns_data(world: Mapping[str, Any]) -> dict[str, Any]:
    """The scenario's `world.dns` merged over the base zones."""
    dns = copy.deepcopy(dict(world.get("dns", {})))
    zones = list(dns.get("zones", []))
    names = {z.get("name", "").lower().rstrip(".") for z in zones if isinstance(z, Mapping)}
    dns["zones"] = [z for z in copy.deepcopy(BASE_ZONES) if z["name"] not in names] + zones
    return dns


def build_dns_world(world: Mapping[str, Any], leaves: Mapping[str, Leaf] | None = None) -> DNSWorld:
    return DNSWorld.from_data(resolve_dns(dns_data(world), leaves or {}), "world.dns")


@dataclass
class StandingServices:
    """What lives as long as the lab: the DNS server, the DSN sink and the lab's PKI, with the
    target's own certificate and trust store (the lab root) written into the lab's run folder."""

    dns: DNSServer
    sink: FakeMX
    pki: PKI
    target_tls: LeafFiles
    ocsp: OCSPLab | None = None  # the OCSP responder on 203.0.113.80 (issue #5)

    @classmethod
    def start(cls, lab: Lab) -> StandingServices:
        pki = PKI("mtaconform lab")
        target_tls = pki.issue([addresses.TARGET_HOSTNAME]).write(lab.rundir / "tls", "target")
        dns = DNSServer(lab.socket, address=addresses.DNS_V4, port=53)
        dns.set_world(build_dns_world({}))
        dns.start()
        sink = FakeMX("sink", addresses.SINK_V4, 25, script_from_data({}),
                      socket_factory=lab.socket, hostname=f"mx.{SENDER_DOMAIN}")
        try:
            sink.start()
            ocsp = OCSPLab.start(lab, pki)
        except BaseException:
            sink.stop()
            dns.stop()
            raise
        return cls(dns, sink, pki, target_tls, ocsp)

    def stop(self) -> None:
        if self.ocsp is not None:
            self.ocsp.stop()
        self.sink.stop()
        self.dns.stop()


@dataclass
class ScenarioWorld:
    """The peers of one scenario; stopped when the scenario ends."""

    peers: dict[str, FakeMX] = field(default_factory=dict)
    staples: dict[str, bytes] = field(default_factory=dict)  # peer name -> the OCSP DER it staples

    @classmethod
    def build(cls, lab: Lab, world: Mapping[str, Any], leaves: Mapping[str, Leaf] | None = None,
              ocsp: OCSPLab | None = None) -> ScenarioWorld:
        built = cls()
        try:
            for n, data in enumerate(world.get("peers", []), start=1):
                data = dict(data)
                name = data.pop("name")
                address = data.pop("address", addresses.peer_v4(n))
                port = int(data.pop("port", 25))
                tls = peer_tls(data.pop("tls", None), leaves or {}, f"world.peers[{n - 1}]", ocsp)
                if tls and tls.get("ocsp_staple"):
                    built.staples[name] = tls["ocsp_staple"]
                sessions_data = data.pop("sessions", [])
                base = script_from_data(data)
                sessions = [script_from_data(s, base=base) for s in sessions_data] or None
                peer = FakeMX(name, address, port, base, socket_factory=lab.socket,
                              sessions=sessions, tls=tls, hostname=f"{name}.peer.test")
                peer.start()
                built.peers[name] = peer
        except BaseException:
            built.stop()
            raise
        return built

    def stop(self) -> None:
        for peer in self.peers.values():
            peer.stop()
