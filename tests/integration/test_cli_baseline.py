"""`mtaconform baseline save`, `run --baseline` and `diff` as a CI job runs them: a subprocess of
.venv/bin/mtaconform against a server the test controls.

The first test plays the user's server with FakeMX servers on 127.0.0.1 (no root needed): one
well-behaved, one that sends a PRDR reply block nobody asked for. Both are reached through one
target file, so the baseline's target name stays the same while the server behind it degrades.
The last runs the real Exim: a baseline, a rerun on the unchanged configuration (exit 0, with a
known failure), and one on the user's configuration degraded, DANE switched off (exit 1).
"""

from __future__ import annotations

import json
import socket
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.smtp.peer import FakeMX, script_from_data
from support.harness import needs_root
from test_cli import EHLO, RCPT_POLICY, ROLES, ROOT, mtaconform, reports

SCENARIOS = ["prdr-server-ehlo-keyword", "prdr-server-not-requested"]
UNASKED_BLOCK = ["353 PRDR content analysis beginning", "250 2.1.5 ok", "550 5.7.1 refused",
                 "250 2.0.0 final"]


def fake_server(**script: object) -> FakeMX:
    return FakeMX("srv", "127.0.0.1", 0, script_from_data({"ehlo": EHLO, "rcpt": RCPT_POLICY, **script}),
                  socket_factory=socket.socket, hostname="srv.example.test", read_timeout=10.0)


def target_file(folder: Path, port: int) -> Path:
    """The user's target file: their server, under a name that does not change."""
    path = folder / "my-server.yaml"
    path.write_text(yaml.safe_dump({
        "name": "my-server", "kind": "external", "address": f"smtp://127.0.0.1:{port}",
        "recipients": ROLES, "timeouts": {"connect": 5, "reply": 5}}))
    return path


def run(target: Path, out: Path, *extra: str, scenarios: list[str] = SCENARIOS
        ) -> subprocess.CompletedProcess[str]:
    args = ["run", "--target", str(target), "--out", str(out), "--quiet", *extra]
    for sid in scenarios:
        args += ["--scenario", sid]
    return mtaconform(*args, cwd=out.parent)


def test_baseline_run_on_a_degraded_server_exits_1_naming_the_regression(tmp_path: Path) -> None:
    base = tmp_path / "baseline.yaml"
    with fake_server() as good:
        first = run(target_file(tmp_path, good.port), tmp_path / "first")
    assert first.returncode == 0, first.stdout + first.stderr
    saved = mtaconform("baseline", "save", str(base), "--from", str(tmp_path / "first" / "results.json"))
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout == f"{base}: 2 scenario verdict(s) of 1 target(s) (2 pass)\n"
    assert yaml.safe_load(base.read_text())["targets"] == {
        "my-server": {"prdr-server-ehlo-keyword": "pass", "prdr-server-not-requested": "pass"}}

    with fake_server(end_of_data=UNASKED_BLOCK) as faulty:
        target = target_file(tmp_path, faulty.port)  # the same target, now misbehaving
        worse = run(target, tmp_path / "worse", "--baseline", str(base))
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "regressions (1):\n  my-server prdr-server-not-requested single_end_of_data_reply " \
           "PRDR-05: pass -> fail\n" in worse.stdout
    assert worse.stdout.rstrip().endswith(
        f"baseline {base}: 1 regression, 0 improvements, 1 unchanged")
    data = reports(tmp_path / "worse")
    assert data["baseline"]["changes"] == [{
        "kind": "worse", "target": "my-server", "scenario": "prdr-server-not-requested",
        "check": "single_end_of_data_reply", "requirement": "PRDR-05", "old": "pass", "new": "fail"}]
    junit = ET.parse(tmp_path / "worse" / "junit.xml").getroot()
    assert junit.get("failures") == "1"
    [failure] = junit.iter("failure")
    assert failure.get("message").startswith("regression (baseline pass -> fail: PRDR-05 ")
    html = (tmp_path / "worse" / "index.html").read_text(encoding="utf-8")
    assert "a verdict got worse than the baseline" in html

    # `diff` says the same from the two results files.
    diff = mtaconform("diff", str(tmp_path / "first" / "results.json"), str(tmp_path / "worse" / "results.json"))
    assert diff.returncode == 1, diff.stderr
    assert "  my-server prdr-server-not-requested single_end_of_data_reply PRDR-05: pass -> fail\n" in diff.stdout


def test_bad_baseline_file_exits_2_before_the_run(tmp_path: Path) -> None:
    bad = tmp_path / "baseline.yaml"
    bad.write_text("mtaconform-baseline: 1\ntargets:\n  my-server:\n    prdr-server-ehlo-keyword: ok\n")
    target = target_file(tmp_path, 1)
    result = run(target, tmp_path / "out", "--baseline", str(bad))
    assert result.returncode == 2
    assert result.stderr == (f"mtaconform: {bad}:4: targets/my-server/prdr-server-ehlo-keyword: "
                             f"'ok' is not a verdict (pass, unsupported, skip, non-strict, fail, error)\n")
    assert not (tmp_path / "out").exists()
    other = tmp_path / "other.yaml"
    other.write_text("mtaconform-baseline: 1\ntargets:\n  exim: {}\n")
    result = run(target, tmp_path / "out", "--baseline", str(other))
    assert result.returncode == 2
    assert result.stderr.startswith(f"mtaconform: {other}: no verdicts for target my-server (it has: exim)")


# --- the real Exim, its configuration degraded ----------------------------------------------------

EXIM_SPEC = ROOT / "fixtures" / "targets" / "exim" / "exim.yaml"
DANE_SCENARIOS = ["dane-01-usable-tlsa", "dane-02-mismatch-deferred",
                  "prdr-server-final-all-deferred"]  # Exim fails the last one: a known deviation


def my_exim(folder: Path, template: Path) -> Path:
    """A copy of the Exim target under the user's own name, with the config template given."""
    spec = yaml.safe_load(EXIM_SPEC.read_text())
    spec.update(name="my-exim", description="the user's Exim")
    spec["config"] = {**spec["config"], "template": str(template)}
    path = folder / "my-exim.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@needs_root
def test_exim_baseline_then_dane_switched_off(tmp_path: Path) -> None:
    good = my_exim(tmp_path, ROOT / "fixtures" / "targets" / "exim" / "exim.conf.j2")
    first = run(good, tmp_path / "first", scenarios=DANE_SCENARIOS)
    scenarios = json.loads((tmp_path / "first" / "results.json").read_text())["scenarios"]
    if all((s["reason"] or "").startswith("target not available") for s in scenarios):
        pytest.skip(f"exim is not available: {scenarios[0]['reason']}")
    assert first.returncode == 1, first.stdout + first.stderr  # the PRDR-11 failure
    verdicts = {s["id"]: s["verdict"] for s in scenarios}
    assert verdicts == {"dane-01-usable-tlsa": "pass", "dane-02-mismatch-deferred": "pass",
                        "prdr-server-final-all-deferred": "fail"}
    base = tmp_path / "baseline.yaml"
    assert mtaconform("baseline", "save", str(base), "--from",
                      str(tmp_path / "first" / "results.json")).returncode == 0

    same = run(good, tmp_path / "same", "--baseline", str(base), scenarios=DANE_SCENARIOS)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 regressions, 0 improvements, 1 known deviation(s), 3 unchanged" in same.stdout

    # The user's configuration loses DANE (the exim-nodane template: hosts_try_dane empty).
    degraded = my_exim(tmp_path, ROOT / "fixtures" / "targets" / "exim-nodane" / "exim-nodane.conf.j2")
    worse = run(degraded, tmp_path / "worse", "--baseline", str(base), scenarios=DANE_SCENARIOS)
    assert worse.returncode == 1, worse.stdout + worse.stderr
    regressions = worse.stdout[worse.stdout.index("regressions ("):]
    assert "  my-exim dane-01-usable-tlsa dane_authenticated DANE-01: pass -> fail\n" in regressions
    assert "  my-exim dane-02-mismatch-deferred no_mail_via DANE-02: pass -> fail\n" in regressions
    assert "prdr-server-final-all-deferred" not in regressions  # still known, not a regression
