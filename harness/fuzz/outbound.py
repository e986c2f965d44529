"""Outbound fuzz plumbing, shared by the prdr-replies, dns and ocsp lanes.

One execution of an outbound lane is one message: the lane builds its world for the case (fake
MX peers with scripted or mutated replies, DNS zones, staples), ``deliver`` injects a message into
the managed target (Exim delivers synchronously with ``-odi``), waits until the target has done
all it will do about it, and reads what it did: each peer's session, the target's log read by
the conformance suite's log readers (``=>``/``->`` delivered, ``**`` bounced, ``==`` deferred),
the DNS queries. The target's queue and retry hints are then removed (``driver.reset``), so a
case never affects the next one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..dns.querylog import QueryRecord
from ..dns.zone import World
from ..engine.actions.outbound import build_message
from ..engine.checks.dane import LOG_READERS, TargetLog
from ..engine.tls_world import issue_certificates
from ..engine.world import DEFAULT_SENDER, build_dns_world
from ..lab import addresses
from ..pki.ca import Leaf
from ..report.model import Evidence
from ..smtp.peer import FakeMX, PeerScript, PeerSession
from ..targets.managed import InjectResult, ManagedTarget, TargetError
from .model import Execution, Violation
from .target import FuzzTarget

DOMAIN = "d.test"  # the recipients' domain: its MX hosts are the lane's fake peers
# Short client time-outs, so a peer that stops answering costs seconds, not Exim's minutes.
OUTBOUND_KNOBS: Mapping[str, Any] = {"final_timeout": "2s", "command_timeout": "3s", "data_timeout": "3s"}
DELIVERY_TIMEOUT_S = 45.0  # the target finishes a delivery attempt within this, or it hangs
PEER_IDLE_S = 0.5  # once the target is done, a peer still in a session is pausing on purpose
HANG_CITE = "RFC 5321 §4.5.3.2 (every wait of an SMTP client is bounded by a time-out)"

_ids = itertools.count(1)


def peer_address(n: int) -> str:
    return addresses.peer_v4(n)


def recipients(n: int) -> list[str]:
    return [f"r{i}@{DOMAIN}" for i in range(1, n + 1)]


def plain_zone(*hosts: tuple[str, str], state: str = "insecure") -> dict[str, Any]:
    """world.dns with d.test MX records to HOSTS [(name, address)], preference 10, 20, …"""
    records: list[dict[str, Any]] = []
    for i, (host, address) in enumerate(hosts, start=1):
        records.append({"name": DOMAIN, "type": "MX", "value": f"{10 * i} {host}"})
        records.append({"name": host, "type": "A", "value": address})
    return {"zones": [{"name": DOMAIN, "state": state, "records": records}]}


def managed_driver(ft: FuzzTarget | None) -> ManagedTarget:
    if ft is None or ft.run.driver is None or ft.run.services is None or ft.run.lab is None:
        raise TargetError("an outbound lane needs a managed target: the harness injects the mail")
    if not ft.spec.inject:
        raise TargetError(f"{ft.spec.name}: the spec has no inject command, so no outbound lane can run")
    return ft.run.driver


def dns_world(dns: Mapping[str, Any], leaves: Mapping[str, Leaf] | None = None) -> World:
    """DNS data (a scenario's `world.dns`, `{tlsa: …}` references resolved with LEAVES) beside
    the base zones (the senders' domain, the target's own)."""
    return build_dns_world({"dns": dns}, leaves or {})


def serve(ft: FuzzTarget, world: World) -> World:
    """WORLD on the lab's DNS (each case sets its own: another lane may have run in between)."""
    assert ft.run.services is not None
    ft.run.services.dns.set_world(world)
    return world


def use_dns(ft: FuzzTarget, dns: Mapping[str, Any], leaves: Mapping[str, Leaf] | None = None) -> World:
    return serve(ft, dns_world(dns, leaves))


def issue(ft: FuzzTarget, certs: Mapping[str, Any]) -> dict[str, Leaf]:
    """Certificates of the lab's PKI (world.pki form), made once per campaign: the peers present
    them, TLSA records and staples refer to them."""
    assert ft.run.services is not None
    return issue_certificates(ft.run.services.pki, certs)


@dataclass
class PeerPlan:
    """A fake MX for one case: where it listens, its script and TLS configuration."""

    name: str
    address: str
    script: PeerScript
    tls: Mapping[str, Any] | None = None
    hostname: str | None = None


@contextmanager
def running_peers(ft: FuzzTarget, plans: Sequence[PeerPlan]) -> Iterator[dict[str, FakeMX]]:
    """The peers of one case, started for it and stopped after (a few milliseconds each)."""
    assert ft.run.lab is not None
    started: dict[str, FakeMX] = {}
    try:
        for plan in plans:
            peer = FakeMX(plan.name, plan.address, 25, plan.script, socket_factory=ft.run.lab.socket,
                          tls=plan.tls, hostname=plan.hostname or f"{plan.name}.{DOMAIN}",
                          read_timeout=10.0)
            peer.start()
            started[plan.name] = peer
        yield started
    finally:
        for peer in started.values():
            peer.stop()


@dataclass
class Delivery:
    """What the target did with one message."""

    recipients: list[str]
    inject: InjectResult | None
    sessions: dict[str, list[PeerSession]]  # peer name → its connections, in order
    addresses: dict[str, str]  # peer name → address
    logs: dict[str, list[str]]
    log: TargetLog | None  # the main log read by the first reader that understands it
    dns: list[QueryRecord] = field(default_factory=list)
    hung: str | None = None  # why the delivery is considered hung

    def decisions(self, rcpt: str) -> set[str]:
        """What the target logged for RCPT: {"delivered", "bounced", "deferred"}."""
        if self.log is None:
            return set()
        return {d.kind for d in self.log.for_recipient(rcpt)}

    def outcome(self, rcpt: str) -> str:
        kinds = self.decisions(rcpt)
        for kind in ("delivered", "bounced", "deferred"):
            if kind in kinds:
                return kind
        return "undecided"

    def all_sessions(self) -> list[tuple[str, PeerSession]]:
        return [(name, s) for name, sessions in self.sessions.items() for s in sessions]

    def evidence(self) -> list[Evidence]:
        ev: list[Evidence] = []
        for name, s in self.all_sessions():
            ev.append(Evidence(f"peer {name} [{self.addresses.get(name, '?')}], connection {s.index + 1} "
                               "(target → peer)", "transcript", s.transcript.to_evidence()))
        if self.inject is not None:
            ev.append(Evidence("message injection", "text",
                               f"$ {' '.join(self.inject.argv)}\nexit {self.inject.returncode} in "
                               f"{self.inject.duration_s:.3f} s\n{self.inject.stdout}{self.inject.stderr}"))
        if self.log is not None:
            ev.append(self.log.evidence())
        if self.dns:
            ev.append(dns_table(self.dns))
        return ev


def dns_table(log: Sequence[QueryRecord]) -> Evidence:
    return Evidence("DNS queries (as the lab's DNS answered them)", "table", [
        {"query": f"{q.qname} {q.qtype}", "transport": q.transport,
         "flags": " ".join(f for f, on in (("AD", q.ad_requested), ("DO", q.do)) if on),
         "reply": "no reply" if q.rcode is None
         else f"{q.rcode}{' AD' if q.ad else ''}{' TC' if q.tc else ''}",
         "state": q.state, "answer": "; ".join(q.answer), "mutated": q.mutation or ""}
        for q in log])


def read_log(logs: Mapping[str, Sequence[str]]) -> TargetLog | None:
    for reader in LOG_READERS.values():
        found = reader(logs)
        if found is not None:
            return found
    return None


def deliver(ft: FuzzTarget, peers: Mapping[str, FakeMX], rcpts: Sequence[str], label: str) -> Delivery:
    """Inject one message for RCPTS, wait for the target to finish with it, read what it did,
    then reset the target's queue. Never raises for what the target does."""
    driver = managed_driver(ft)
    services = ft.run.services
    assert services is not None
    services.dns.clear_log()
    mark = driver.log_mark()
    n = next(_ids)
    message = build_message(DEFAULT_SENDER, list(rcpts), f"mtaconform fuzz {label} #{n}",
                            f"Fuzz case {n} of lane {label}.", f"fuzz-{label}-{n}-{time.time_ns()}")
    started = time.monotonic()
    hung = None
    result: InjectResult | None = None
    try:
        result = driver.inject(DEFAULT_SENDER, list(rcpts), message, timeout=DELIVERY_TIMEOUT_S)
    except TargetError as exc:
        hung = str(exc)
    if not driver.wait_quiet(max(1.0, DELIVERY_TIMEOUT_S - (time.monotonic() - started)), kill=True):
        hung = hung or f"target processes still busy {DELIVERY_TIMEOUT_S:.0f} s after the injection (killed)"
    for peer in peers.values():
        peer.wait_idle(PEER_IDLE_S)
    sessions = {name: peer.sessions_seen for name, peer in peers.items()}
    logs = driver.log_since(mark)
    dns = list(services.dns.log)
    driver.reset()
    return Delivery(list(rcpts), result, sessions, {name: p.address for name, p in peers.items()},
                    logs, read_log(logs), dns, hung)


def add_violation(ex: Execution, violation: Violation) -> None:
    """One violation per oracle and execution (several sessions may show the same): a finding's
    signature is its set of oracles, and the same fault seen twice is not another finding."""
    if all(v.oracle != violation.oracle for v in ex.violations):
        ex.violations.append(violation)


def record(ex: Execution, delivery: Delivery) -> None:
    """What every outbound execution records: per-recipient outcomes as the reply classes, the
    hang oracle, and the delivery's evidence."""
    ex.reply_classes.update(delivery.outcome(r) for r in delivery.recipients)
    if delivery.log is None:  # the oracles that read decisions see none: say so in the statistics
        ex.states.add("target log not understood (no reader in harness/engine/checks/dane.py LOG_READERS)")
    if delivery.hung:
        ex.suspicious = True
        ex.violations.append(Violation("delivery-hang", delivery.hung, HANG_CITE))
    ex.evidence.extend(delivery.evidence())  # the whole delivery, beside each violation's own


__all__ = ["DOMAIN", "OUTBOUND_KNOBS", "Delivery", "PeerPlan", "add_violation", "deliver", "dns_table",
           "dns_world", "issue", "managed_driver", "peer_address", "plain_zone", "read_log", "recipients",
           "record", "running_peers", "serve", "use_dns"]
