"""The runner: scenarios × targets → results, with the target restarted only when needed."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path
from typing import Any

from .. import __version__
from ..dns.zone import ZoneDataError
from ..lab import addresses
from ..lab.lab import Lab
from ..report.model import (CheckResult, Evidence, Outcome, RequirementInfo, RunResult,
                            ScenarioResult, TargetInfo, worst)
from ..smtp.transcript import visible
from ..targets.managed import ManagedTarget, TargetError
from ..targets.spec import TargetSpec
from .actions.outbound import run_outbound
from .actions.session import SessionRunner, proxy_source
from .catalogue import Catalogue
from .checks.base import CheckDef
from .checks.dsn import dsn_evidence
from .checks.ocsp import ocsp_evidence
from .observations import Observations
from .scenario import Scenario
from .tls_world import WorldDataError, issue_certificates
from .world import ScenarioWorld, StandingServices, build_dns_world, dns_data

PROBE_STEPS = [{"ehlo": "probe.client.test"}, "quit"]
# PROXY scenarios (harness/proxy): where a session's connection comes from on a managed target.
PROXY_SOURCES = {"listed": addresses.PROXY_LISTED_V4, "unlisted": addresses.PROXY_UNLISTED_V4}
PROXY_QUIET_S = 2.0  # how long a target's processes may outlive a PROXY session


def lingering(driver: ManagedTarget, grace: float) -> list[str]:
    """Target processes other than the daemon still alive GRACE seconds after the action: each
    described (pid, state, CPU ticks, command line), then killed so the next scenario starts clean."""
    if driver.wait_quiet(grace):
        return []
    found = []
    for pid in sorted(driver.working_pids()):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"pid {pid} state {stat[0]} cpu {int(stat[11]) + int(stat[12])} ticks: {cmd.strip()}")
        except (OSError, IndexError, ValueError):
            found.append(f"pid {pid} (gone)")
    driver.wait_quiet(0.0, kill=True)
    return found


@dataclass
class RunOptions:
    out_dir: Path
    slow: bool = False
    workdir: Path | None = None  # default: the lab's run folder under /run/mtaconform
    reply_timeout: float | None = None
    on_start: Callable[[Scenario, str], None] | None = None
    on_result: Callable[[ScenarioResult], None] | None = None
    # Called with what a scenario observed, before its checks run (tests re-judge real
    # observations with deliberately wrong DSNs: tests/integration/test_dsn_wrong_dsn.py).
    on_observations: Callable[[Scenario, Observations], None] | None = None


PROJECT = Path(__file__).resolve().parent.parent.parent


def display_path(path: Path) -> str:
    """A scenario file as the user knows it: relative to the project when it lies inside."""
    try:
        return str(path.resolve().relative_to(PROJECT))
    except ValueError:
        return str(path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def requirement_infos(catalogue: Catalogue) -> list[RequirementInfo]:
    return [RequirementInfo(r.id, r.title, r.level, r.strength, r.citation, r.feature, r.side)
            for r in catalogue]


@dataclass
class TargetRun:
    """One target during a run: its spec, and the lab and driver when it is managed."""

    spec: TargetSpec
    info: TargetInfo
    lab: Lab | None = None
    services: StandingServices | None = None
    driver: ManagedTarget | None = None
    unavailable: str | None = None  # reason every scenario is skipped

    def connect(self, source: str | None = None) -> socket.socket:
        """A connection to the target; SOURCE "listed"/"unlisted" picks the lab's PROXY addresses
        (an external target sees the harness's own address, which it must list as its proxy)."""
        if self.driver is not None and self.lab is not None:
            bind = PROXY_SOURCES.get(source or "", addresses.CLIENT_V4)
            # The listed proxy connects to the target's PROXY listener (spec `proxy_port`).
            port = self.driver.proxy_port if source == "listed" else self.driver.port
            return self.lab.connect(addresses.TARGET_V4, port, source=bind,
                                    timeout=self.spec.connect_timeout)
        assert self.spec.address is not None
        if source == "unlisted":
            raise ValueError("an external target cannot be reached from an unlisted proxy address")
        sock = socket.create_connection(self.spec.address, timeout=self.spec.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def recipient(self, role: str, n: int) -> str | None:
        return self.spec.recipient(role, n)


class Runner:
    def __init__(self, scenarios: Sequence[Scenario], targets: Sequence[TargetSpec],
                 catalogue: Catalogue, checks: Mapping[str, CheckDef], options: RunOptions) -> None:
        self.scenarios = list(scenarios)
        self.targets = list(targets)
        self.catalogue = catalogue
        self.checks = checks
        self.options = options
        self.workdir = options.workdir  # None: everything of a lab lives in its run folder

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> RunResult:
        result = RunResult(tool={"name": "mtaconform", "version": __version__}, started=_now(),
                           finished="", targets=[], scenarios=[],
                           requirements=requirement_infos(self.catalogue))
        try:
            for spec in self.targets:
                info = TargetInfo(spec.name, spec.kind)
                result.targets.append(info)
                self._run_target(spec, info, result.scenarios)
        except KeyboardInterrupt:
            result.stopped_early = "interrupted"
        finally:
            result.finished = _now()
        return result

    def _run_target(self, spec: TargetSpec, info: TargetInfo, out: list[ScenarioResult]) -> None:
        # Group by knobs, so the target restarts only when its configuration changes.
        ordered = sorted(self.scenarios, key=lambda s: (s.knob_key(), s.id))
        with self.open_target(spec, info) as run:
            for sc in ordered:
                out.append(self.scenario(run, sc))

    @contextlib.contextmanager
    def open_target(self, spec: TargetSpec, info: TargetInfo | None = None) -> Iterator[TargetRun]:
        """A target ready for scenarios: for a managed one, its lab, DNS, DSN sink and driver.

        Leaving the block stops the target and removes the lab, also on Ctrl-C.
        """
        run = TargetRun(spec, info or TargetInfo(spec.name, spec.kind))
        if not spec.managed:
            self._probe(run)
            yield run
            return
        with Lab(self.workdir / f"lab-{spec.name}" if self.workdir else None) as lab:
            run.lab = lab
            run.driver = ManagedTarget(spec, lab, lab.rundir / spec.name)
            run.unavailable = run.driver.check_installed()
            try:
                if run.unavailable is None:
                    run.services = StandingServices.start(lab)
                    run.driver.tls_files = run.services.target_tls
                    if run.services.ocsp is not None:  # OCSP knobs → staple files (issue #5)
                        run.driver.knob_files = run.services.ocsp.target_files
                    run.info.version = run.driver.version()
                    run.info.capabilities["features"] = run.driver.capabilities()
                yield run
            finally:
                run.info.restarts = run.driver.restarts
                run.driver.stop()
                if run.services:
                    run.services.stop()

    def _probe(self, run: TargetRun) -> None:
        """Capability probe: banner and EHLO keywords, recorded in the results."""
        steps: list[Any] = list(PROBE_STEPS)
        if not run.spec.managed and "proxy" in run.spec.features:
            steps.insert(0, {"proxy": {"v1": "PROXY UNKNOWN\\r\\n"}})  # it expects a header first
        record = SessionRunner(run.connect, run.recipient, reply_timeout=self._reply_timeout(run),
                               label="probe").run(steps)
        caps = run.info.capabilities
        caps["banner"] = record.banner.text if record.banner else None
        caps["ehlo"] = sorted(record.ehlo.keywords) if record.ehlo else []
        if record.errors:
            caps["probe_errors"] = record.errors

    def _reply_timeout(self, run: TargetRun) -> float:
        return self.options.reply_timeout or run.spec.reply_timeout

    # -- one scenario -----------------------------------------------------------------------

    def _skip(self, run: TargetRun, sc: Scenario) -> tuple[Outcome, str] | None:
        if run.unavailable:
            return Outcome.SKIP, f"target not available: {run.unavailable}"
        if sc.slow and not self.options.slow:
            return Outcome.SKIP, "slow lane: run with --slow"
        if sc.side == "client" and not run.spec.managed:
            return Outcome.SKIP, "the MTA as client needs a managed target (the harness must inject mail)"
        if sc.requires.get("managed") and not run.spec.managed:
            return Outcome.SKIP, "needs a managed target"
        if sc.side == "client" and run.spec.inject is None:
            # A receiver only (aiosmtpd): nothing can make it deliver a message.
            return Outcome.SKIP, "the target does not send mail (its spec has no inject command)"
        # The binary's own word first (its capability probe), then what the spec claims.
        probed = {c.lower() for c in run.info.capabilities.get("features", [])}
        missing_caps = [c for c in sc.requires.get("capabilities", []) if c.lower() not in probed]
        if missing_caps and run.spec.managed:
            return Outcome.UNSUPPORTED, (f"the target's capability probe does not report "
                                         f"{', '.join(missing_caps)} (probed: {' '.join(sorted(probed)) or 'nothing'})")
        if run.spec.managed and run.spec.features and sc.feature not in run.spec.features:
            return Outcome.UNSUPPORTED, (f"the target spec does not claim the {sc.feature} feature "
                                         f"(it claims {', '.join(run.spec.features)})")
        missing_features = [f for f in sc.requires.get("features", []) if f not in run.spec.features]
        if missing_features and run.spec.managed:
            return Outcome.UNSUPPORTED, f"the target spec does not claim {', '.join(missing_features)}"
        missing = run.spec.unsupported_knobs(sc.knobs) if run.spec.managed else list(sc.knobs)
        if missing:
            return Outcome.SKIP, f"the target cannot set {', '.join(missing)} (no such knob in its spec)"
        if sc.feature == "proxy" and not run.spec.managed:
            # PROXY-03 (L184–190): a receiver is configured for PROXY, never guesses; the harness
            # cannot tell from outside either, so an external target's file must claim it.
            if "proxy" not in run.spec.features:
                return Outcome.SKIP, ("the target does not claim the proxy feature (a target file "
                                      "with `features: [proxy]` says its server expects PROXY "
                                      "headers from the harness's address)")
            if sc.action_kind == "session" and proxy_source(sc.action["session"]) == "unlisted":
                return Outcome.SKIP, ("an external target sees only the harness's own address, "
                                      "which it lists as its proxy: no unlisted source to connect from")
        return None

    def scenario(self, run: TargetRun, sc: Scenario) -> ScenarioResult:
        """Run one scenario on an open target; never raises for what the target does."""
        if self.options.on_start:
            self.options.on_start(sc, run.spec.name)
        start = time.monotonic()
        res = ScenarioResult(sc.id, sc.title, sc.feature, sc.side, run.spec.name, list(sc.requirements),
                             Outcome.PASS, description=sc.description, expectation=sc.expectation,
                             source=display_path(sc.source))
        skip = self._skip(run, sc)
        if skip:
            res.outcome, res.reason = skip
        else:
            try:
                self._execute(run, sc, res)
            except KeyboardInterrupt:
                raise
            except (TargetError, ZoneDataError, WorldDataError) as exc:
                res.outcome, res.reason = Outcome.ERROR, str(exc)
            except Exception as exc:  # our own bug: surface it with its traceback
                res.outcome, res.reason = Outcome.ERROR, f"harness error: {exc!r}"
                res.traceback = traceback.format_exc()
        res.duration_s = round(time.monotonic() - start, 3)
        if res.outcome in (Outcome.FAIL, Outcome.ERROR):
            self._save_artifacts(run, sc, res)
        if self.options.on_result:
            self.options.on_result(res)
        return res

    def _execute(self, run: TargetRun, sc: Scenario, res: ScenarioResult) -> None:
        obs = Observations(sc.id, run.spec.name)
        world: ScenarioWorld | None = None
        driver = run.driver
        if driver is not None:
            assert run.lab is not None and run.services is not None
            if driver.ensure(sc.knobs):
                run.info.restarts = driver.restarts
                if "ehlo" not in run.info.capabilities:
                    self._probe(run)
            leaves = issue_certificates(run.services.pki, sc.world.get("pki", {}))
            run.services.dns.set_world(build_dns_world(sc.world, leaves))
            run.services.dns.clear_log()
            sink_before = len(run.services.sink.sessions_seen)
            mark = driver.log_mark()
            world = ScenarioWorld.build(run.lab, sc.world, leaves, run.services.ocsp)
            if run.services.ocsp is not None and run.services.ocsp.target_staple is not None:
                obs.staples["target (tls_ocsp_file)"] = run.services.ocsp.target_staple
            obs.staples.update({f"peer {name}": der for name, der in world.staples.items()})
        try:
            if sc.action_kind == "session":
                runner = SessionRunner(run.connect, run.recipient,
                                       reply_timeout=self._reply_timeout(run), label=sc.id)
                obs.sessions.append(runner.run(sc.action["session"]))
                if driver is not None:
                    if sc.feature == "proxy":
                        # A PROXY session leaves nothing to deliver but what it sent: a process
                        # still busy seconds later is hung on the header (PROXY-25), and is killed.
                        obs.lingering = lingering(driver, PROXY_QUIET_S)
                    else:
                        driver.wait_quiet(30.0)
            else:
                assert driver is not None
                assert run.lab is not None
                lab = run.lab

                def submit(steps: list[Any]) -> Any:
                    connect = lambda: lab.connect(addresses.TARGET_V4, driver.port,  # noqa: E731
                                                  source=addresses.SUBMITTER_V4)
                    return SessionRunner(connect, run.recipient, reply_timeout=self._reply_timeout(run),
                                         label=f"{sc.id} submission").run(steps)

                run_outbound(driver, sc.action["outbound"], obs, submit)
        finally:
            if world is not None:
                world.stop()
        if driver is not None:
            assert run.services is not None
            obs.peers = {name: peer.sessions_seen for name, peer in (world.peers.items() if world else [])}
            obs.peer_endpoints = {name: (peer.address, peer.port)
                                  for name, peer in (world.peers.items() if world else [])}
            obs.world = dict(sc.world)
            obs.sink = run.services.sink.sessions_seen[sink_before:]
            obs.dns_log = list(run.services.dns.log)
            obs.logs = driver.log_since(mark)
            for chk in sc.checks:
                name = chk.params.get("setting")
                if name and name not in obs.settings:
                    obs.settings[name] = driver.setting(name)
            alive = driver.alive()
            driver.reset()
        else:
            alive = True
        res.evidence = scenario_evidence(obs)
        if not alive:
            out = driver.process_output()[-2000:] if driver else ""
            res.checks.append(CheckResult("target_survived", sc.requirements[0], "MUST", Outcome.FAIL,
                                          "the target died during the scenario",
                                          expected="the MTA keeps running", actual="it exited",
                                          evidence=[Evidence("target output", "log", out)]))
            if driver:
                driver.stop()
        unreachable = [e for s in obs.sessions for e in s.errors if e.startswith("connect failed")]
        if unreachable:
            res.outcome = Outcome.ERROR
            res.reason = f"cannot reach the target: {unreachable[0]}"
            return
        missing = [k for k in sc.requires.get("ehlo", []) if obs.session and (
            obs.session.ehlo is None or k.upper() not in obs.session.ehlo.keywords)]
        if missing:
            res.outcome = Outcome.UNSUPPORTED
            res.reason = f"the target does not advertise {', '.join(missing)} in its EHLO reply"
            return
        if self.options.on_observations:
            self.options.on_observations(sc, obs)
        for chk in sc.checks:
            res.checks.append(self._run_check(sc, chk, obs))
        res.outcome = scenario_outcome([c.outcome for c in res.checks])

    def _run_check(self, sc: Scenario, spec: Any, obs: Observations) -> CheckResult:
        req = self.catalogue[spec.requirement]
        level = spec.level or req.strength
        definition = self.checks[spec.check]
        params = spec.params
        try:
            verdict = definition(obs, params)
        except Exception as exc:  # a check must not crash on what an MTA sent: our bug
            return CheckResult(spec.check, spec.requirement, level, Outcome.ERROR,
                               f"check raised {exc!r}",
                               evidence=[Evidence("traceback", "text", traceback.format_exc())])
        return CheckResult(spec.check, spec.requirement, level, verdict.outcome, verdict.message,
                           verdict.expected, verdict.actual, list(verdict.evidence))

    # -- artifacts --------------------------------------------------------------------------

    def _save_artifacts(self, run: TargetRun, sc: Scenario, res: ScenarioResult) -> None:
        folder = self.options.out_dir / "artifacts" / run.spec.name / sc.id
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(sc.source, folder / sc.source.name)
        (folder / "world-dns.json").write_text(json.dumps(dns_data(sc.world), indent=2))
        if run.driver and run.driver.config_path.exists():
            shutil.copy(run.driver.config_path, folder / run.driver.config_path.name)
        for ev in res.evidence:
            name = "".join(c if c.isalnum() else "-" for c in ev.label).strip("-") + ".txt"
            (folder / name).write_text(evidence_text(ev))
        res.artifacts = sorted(str(p.relative_to(self.options.out_dir)) for p in folder.iterdir())


def scenario_outcome(outcomes: list[Outcome]) -> Outcome:
    """Errors and failures dominate; otherwise a check that passed makes the scenario pass even
    if other checks were skipped (their reasons stay in the report); all skipped → the worst skip."""
    decisive = [o for o in outcomes if o in (Outcome.ERROR, Outcome.FAIL)]
    if decisive:
        return worst(decisive)
    if Outcome.PASS in outcomes:
        return Outcome.PASS
    return worst(outcomes)


def evidence_text(ev: Evidence) -> str:
    if ev.kind == "transcript":
        return "".join(f"{e['t']:9.4f} {e['dir']:>4}: {e['data']}\n" for e in ev.content)
    if ev.kind in ("table", "json"):
        return json.dumps(ev.content, indent=2, default=str)
    return str(ev.content)


def scenario_evidence(obs: Observations) -> list[Evidence]:
    """The scenario-wide evidence the report shows beside every check."""
    ev: list[Evidence] = []
    for i, s in enumerate(obs.sessions, start=1):
        label = "SMTP session (harness → target)" + (f" #{i}" if len(obs.sessions) > 1 else "")
        ev.append(Evidence(label, "transcript", s.transcript.to_evidence()))
    for name, sessions in obs.peers.items():
        for s in sessions:
            ev.append(Evidence(f"peer {name}, connection {s.index + 1} (target → peer)", "transcript",
                               s.transcript.to_evidence()))
    for s in obs.sink:
        ev.append(Evidence(f"DSN sink, connection {s.index + 1}", "transcript", s.transcript.to_evidence()))
    ev.extend(dsn_evidence(obs))  # each bounce decoded, beside the peer replies that caused it (issue #7)
    for inj in obs.injects:
        ev.append(Evidence("message injection", "text",
                           f"$ {' '.join(inj.argv)}\nexit {inj.returncode} in {inj.duration_s:.3f} s\n"
                           f"{inj.stdout}{inj.stderr}"))
    if obs.queue_history:
        ev.append(Evidence("target queue after each attempt", "json",
                           [[{"id": e.id, "sender": e.sender, "queued": list(e.recipients),
                              "delivered": list(e.delivered), "frozen": e.frozen} for e in q]
                            for q in obs.queue_history]))
    if obs.dns_log:
        ev.append(Evidence("DNS queries", "table", [
            {"time": q.wall, "query": f"{q.qname} {q.qtype}", "flags": " ".join(
                f for f, on in (("AD", q.ad_requested), ("DO", q.do), ("CD", q.cd)) if on),
             "transport": q.transport,
             "reply": "no reply" if q.rcode is None else f"{q.rcode}{' AD' if q.ad else ''}",
             "state": q.state, "answer": "; ".join(q.answer)} for q in obs.dns_log]))
    for name, lines in obs.logs.items():
        if lines:
            ev.append(Evidence(f"target {name} log", "log", "\n".join(lines)))
    ev.extend(ocsp_evidence(obs))  # decoded OCSP responses, configured and received (issue #5)
    if obs.lingering:
        ev.append(Evidence("target processes still running after the session (killed)", "text",
                           "\n".join(obs.lingering)))
    for note in obs.notes:
        ev.append(Evidence("note", "text", note))
    return ev
