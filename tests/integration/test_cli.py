"""`mtaconform` as a user runs it: a subprocess of .venv/bin/mtaconform.

The runs use external targets (`--target smtp://127.0.0.1:PORT`) served by a FakeMX started in
this test process, so they need neither root nor a lab namespace.
"""

from __future__ import annotations

import json
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.engine.actions import VALIDATORS
from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.scenario import load_scenarios
from harness.report.json_writer import load_json
from harness.smtp import peer as peer_module
from harness.smtp.peer import FakeMX, ReplyAction, Transaction, script_from_data
from harness.smtp.peer_script import text_reply

ROOT = Path(__file__).resolve().parents[2]
MTACONFORM = ROOT / ".venv" / "bin" / "mtaconform"
SCENARIOS = load_scenarios([ROOT / "scenarios"], load_catalogue(), all_checks(), VALIDATORS)
# The runs below play the PRDR scenarios against FakeMX servers; other features' server scenarios
# set target knobs, which an external target cannot take (they would be skipped, not judged).
SERVER_IDS = sorted(s.id for s in SCENARIOS if s.side == "server" and s.feature == "prdr")
CLIENT_IDS = sorted(s.id for s in SCENARIOS if s.side == "client" and s.feature == "prdr")


def mtaconform(*args: str, cwd: Path | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MTACONFORM), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, check=False)


# --- commands that only read ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["", "run", "list", "requirements", "targets"])
def test_help(command: str) -> None:
    args = [command, "--help"] if command else ["--help"]
    result = mtaconform(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: mtaconform {command}".rstrip() + " ")
    assert result.stderr == ""
    if command == "run":
        for option in ("--target", "--recipient", "--scenario", "--scenarios", "--out", "--slow"):
            assert option in result.stdout


def test_no_command_prints_help_and_exits_2() -> None:
    result = mtaconform()
    assert result.returncode == 2
    assert result.stdout.startswith("usage: mtaconform")


def test_list() -> None:
    result = mtaconform("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == f"{len(SCENARIOS)} scenarios"
    assert sorted(line.split()[0] for line in lines[:-1]) == sorted(s.id for s in SCENARIOS)


def test_list_selection() -> None:
    result = mtaconform("list", "--feature", "prdr", "--scenario", "prdr-server-*",
                        "--scenario", CLIENT_IDS[0])
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()[:-1]]
    assert sorted(listed) == sorted([*SERVER_IDS, CLIENT_IDS[0]])


def test_requirements() -> None:
    catalogue = load_catalogue()
    result = mtaconform("requirements")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == [r.id for r in catalogue]
    result = mtaconform("requirements", "--feature", "prdr")
    assert result.returncode == 0
    ids = [line.split()[0] for line in result.stdout.splitlines()]
    assert ids and all(i.startswith("PRDR-") for i in ids)
    assert ids == [r.id for r in catalogue.by_feature("prdr")]


def test_targets() -> None:
    result = mtaconform("targets")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines}
    assert rows["exim"].split()[1] == "managed"
    assert rows["postfix"].split()[1:5] == ["managed", "dane,", "proxy,", "dsn"]
    assert lines[-1].startswith("smtp://HOST:PORT external")


# --- input errors: exit 2, "FILE:LINE: what" ----------------------------------------------------

MALFORMED = """\
id: broken
title: A malformed scenario
feature: prdr
side: server
requirements: [PRDR-05]
expectation: Never runs.
action:
  session:
    - ehlo: client.test
    - quit
checks:
  - check: no_such_check
    requirement: PRDR-05
"""


@pytest.mark.parametrize("command", ["list", "run"])
def test_malformed_scenario_file_exits_2_with_file_and_line(tmp_path: Path, command: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(MALFORMED)
    extra = ["--target", "smtp://127.0.0.1:1", "--out", str(tmp_path / "out")] if command == "run" else []
    result = mtaconform(command, "--scenarios", str(path), *extra, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"mtaconform: {path}:12: unknown check 'no_such_check' (known: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unhashable_yaml_key_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: broken\n? [a, b]\n: 1\n")
    result = mtaconform("list", "--scenarios", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"mtaconform: {path}:2: ")


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["list", "--scenario", "no-such-scenario"], "mtaconform: --scenario: no scenario no-such-scenario\n"),
        (["run", "--target", "smtp://127.0.0.1:1", "--scenario", "no-such-scenario"],
         "mtaconform: --scenario: no scenario no-such-scenario\n"),
        (["run", "--target", "/nonexistent.yaml"], "mtaconform: /nonexistent.yaml: no such target file\n"),
        (["run", "--target", "smtp://127.0.0.1:port"],
         "mtaconform: --target: 'smtp://127.0.0.1:port': the port is not a number from 1 to 65535\n"),
        (["run", "--target", "smtp://127.0.0.1:1", "--recipient", "boss=a@b.test"],
         "mtaconform: --recipient: 'boss=a@b.test': expected ROLE=ADDRESS with ROLE one of accept, "),
        (["run", "--target", "smtp://127.0.0.1:1", "--feature", "smtp"],  # a feature with no scenarios
         "mtaconform: --feature/--scenario: the selection contains no scenario\n"),
        (["list", "--scenarios", "/nonexistent-folder"], "mtaconform: /nonexistent-folder: no such scenario"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], stderr: str) -> None:
    if args[0] == "run":
        args = [*args, "--out", str(tmp_path / "out")]
    result = mtaconform(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(stderr), result.stderr
    assert not (tmp_path / "out").exists()


# --- runs against an SMTP server on 127.0.0.1 -----------------------------------------------------

# The README's recipient roles, as one server's addresses.
ROLES = {
    "accept": "user{n}@example.test",
    "reject_rcpt": "nobody{n}@example.test",
    "defer_rcpt": "later{n}@example.test",
    "reject_data": "spamtrap{n}@example.test",
    "defer_data": "greylist{n}@example.test",
    "full_data": "full{n}@example.test",
}
# RCPT-time policy of the server, by address.
RCPT_POLICY = {"default": "250 2.1.5 ok"}
for _n in range(1, 5):
    RCPT_POLICY[f"nobody{_n}@example.test"] = "550 5.1.1 no such user"
    RCPT_POLICY[f"later{_n}@example.test"] = "450 4.2.1 try again later"
# After-DATA policy, by the address's local part (draft-hall-prdr-00 §4.5.2).
DATA_POLICY = {"spamtrap": "550 5.7.1 refused by content policy", "greylist": "450 4.7.1 greylisted",
               "full": "452 4.3.1 insufficient system storage"}
EHLO = ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR", "CHUNKING", "8BITMIME"]


def role_prdr_block(txn: Transaction) -> list[ReplyAction]:
    """A well-formed PRDR block (§4.5) whose per-recipient replies follow DATA_POLICY."""
    replies = []
    for address, _, code in txn.accepted:
        local = address.split("@")[0].rstrip("0123456789")
        replies.append(DATA_POLICY.get(local, f"{code} 2.1.5 {address} ok"))
    classes = {int(r[0]) for r in replies}
    final = ("250 2.0.0 accepted for some recipients" if 2 in classes
             else "451 4.0.0 every recipient deferred" if classes == {4}
             else "554 5.0.0 no recipient accepted")
    return [ReplyAction(b"353 PRDR content analysis beginning\r\n"),
            *(ReplyAction(text_reply(r)) for r in replies), ReplyAction(text_reply(final))]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMX]:
    """A well-behaved PRDR server. PeerScript has no per-recipient PRDR policy, so the FakeMX's
    default block is replaced, for this test only, by one that follows the recipient roles."""
    monkeypatch.setattr(peer_module, "_prdr_block", role_prdr_block)
    with FakeMX("srv", "127.0.0.1", 0, script_from_data({"ehlo": EHLO, "rcpt": RCPT_POLICY}),
                socket_factory=socket.socket, hostname="srv.example.test", read_timeout=10.0) as mx:
        yield mx


def faulty_server(script: Mapping[str, Any]) -> FakeMX:
    return FakeMX("faulty", "127.0.0.1", 0, script_from_data({"ehlo": EHLO, "rcpt": RCPT_POLICY, **script}),
                  socket_factory=socket.socket, hostname="faulty.example.test", read_timeout=10.0)


def run_against(url: str, out: Path, scenarios: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    args = ["run", "--target", url, "--out", str(out), "--quiet", "--reply-timeout", "5"]
    for role, address in ROLES.items():
        args += ["--recipient", f"{role}={address}"]
    for sid in scenarios:
        args += ["--scenario", sid]
    return mtaconform(*args, cwd=out.parent)


def reports(out: Path) -> dict[str, Any]:
    for name in ("index.html", "results.json", "junit.xml"):
        assert (out / name).is_file(), name
    assert "<html" in (out / "index.html").read_text(encoding="utf-8").lower()
    ET.parse(out / "junit.xml")
    return load_json(out / "results.json")


def by_id(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in results["scenarios"]}


def test_run_against_a_well_behaved_server(server: FakeMX, tmp_path: Path) -> None:
    # A FakeMX takes any MAIL parameter, so it cannot refuse "PRDR=1": leave that scenario out.
    selected = [sid for sid in SERVER_IDS if sid != "prdr-server-mail-param-value"] + CLIENT_IDS
    out = tmp_path / "report"
    result = run_against(f"smtp://127.0.0.1:{server.port}", out, selected)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    data = reports(out)
    scenarios = by_id(data)
    assert sorted(scenarios) == sorted(selected)
    for sid in SERVER_IDS:
        if sid in scenarios:
            assert scenarios[sid]["verdict"] == "pass", (sid, scenarios[sid]["reason"], scenarios[sid]["checks"])
            assert scenarios[sid]["checks"]
    for sid in CLIENT_IDS:
        assert scenarios[sid]["outcome"] == "skip", sid
        assert scenarios[sid]["checks"] == []
    assert scenarios["prdr-client-dsn-codes"]["reason"] == \
        "the MTA as client needs a managed target (the harness must inject mail)"
    [target] = data["targets"]
    assert target["name"] == f"smtp://127.0.0.1:{server.port}" and target["kind"] == "external"
    assert target["capabilities"]["banner"] == "srv.example.test ESMTP fake"
    assert {"PRDR", "PIPELINING", "ENHANCEDSTATUSCODES", "CHUNKING"} <= set(target["capabilities"]["ehlo"])
    assert data["summary"]["must_failures"] == 0
    junit = ET.parse(out / "junit.xml").getroot()
    assert junit.get("failures") == "0" and junit.get("errors") == "0"
    assert junit.get("tests") == str(len(selected))
    # The server saw what the scenarios asked for: e.g. the block scenario's four recipients.
    seen = [s for s in server.sessions_seen if len(s.rcpts) == 4]
    assert [a for a, _, _ in seen[0].rcpts] == ["user1@example.test", "nobody1@example.test",
                                               "spamtrap1@example.test", "greylist1@example.test"]


def test_run_against_a_faulty_server_exits_1(tmp_path: Path) -> None:
    # A PRDR reply block although the client did not ask for PRDR (draft-hall-prdr-00 §4.5).
    block = ["353 PRDR content analysis beginning", "250 2.1.5 ok", "550 5.7.1 refused", "250 2.0.0 final"]
    out = tmp_path / "report"
    with faulty_server({"end_of_data": block}) as mx:
        result = run_against(f"smtp://127.0.0.1:{mx.port}", out,
                             ["prdr-server-not-requested", "prdr-server-ehlo-keyword"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MUST-level failures: 1" in result.stdout
    data = reports(out)
    scenarios = by_id(data)
    assert scenarios["prdr-server-ehlo-keyword"]["verdict"] == "pass"
    failed = scenarios["prdr-server-not-requested"]
    assert failed["outcome"] == "fail" and failed["verdict"] == "fail"
    [check] = failed["checks"]
    assert (check["check"], check["requirement"], check["level"], check["outcome"]) == \
        ("single_end_of_data_reply", "PRDR-05", "MUST", "fail")
    assert check["message"] == "a PRDR 353 reply although the client did not request PRDR"
    assert check["actual"] == " | ".join(f"{line}\\r\\n" for line in block)  # the bytes, CR LF shown
    assert data["summary"]["must_failures"] == 1
    assert failed["artifacts"] and all((out / a).is_file() for a in failed["artifacts"])
    junit = ET.parse(out / "junit.xml").getroot()
    assert junit.get("failures") == "1"


def test_garbage_after_the_final_reply_is_the_targets_failure(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with faulty_server({"end_of_data": ["250 2.0.0 queued", {"raw": "garbage\\r\\n"}]}) as mx:
        result = run_against(f"smtp://127.0.0.1:{mx.port}", out, ["prdr-server-not-requested"])
    scenario = by_id(reports(out))["prdr-server-not-requested"]
    assert scenario["outcome"] == "fail", scenario
    assert scenario["traceback"] is None
    assert result.returncode == 1


@pytest.fixture(scope="module")
def unreachable(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("unreachable") / "report"
    result = run_against("smtp://127.0.0.1:1", out)
    return result, reports(out)


def test_unreachable_target_does_not_crash(
        unreachable: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    result, data = unreachable
    assert "Traceback" not in result.stderr and result.stderr == ""
    [target] = data["targets"]
    assert target["capabilities"]["probe_errors"][0].startswith("connect failed: ")
    summary = data["summary"]
    # The exit status agrees with the results, whichever outcomes the scenarios got.
    expected = 3 if summary["outcomes"]["error"] else 1 if summary["must_failures"] else 0
    assert result.returncode == expected
    scenarios = by_id(data)
    for sid in SERVER_IDS:
        sc = scenarios[sid]
        assert sc["outcome"] in {"fail", "error", "unsupported", "skip"}, sid
        if sc["outcome"] in {"fail", "error"}:
            # A clear reason: the connection failure is named.
            text = json.dumps([sc["reason"], [(c["message"], c["actual"]) for c in sc["checks"]]])
            assert "connect failed" in text, (sid, text)
    for sid in CLIENT_IDS:
        assert scenarios[sid]["outcome"] == "skip"


def test_unreachable_target_is_not_reported_as_unsupported_or_failing(
        unreachable: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    _, data = unreachable
    outcomes = {s["id"]: s["outcome"] for s in data["scenarios"] if s["side"] == "server"}
    assert set(outcomes.values()) <= {"skip", "error"}, outcomes
