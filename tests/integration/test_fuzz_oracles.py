"""Every fuzz oracle trips on a deliberately faulty target, its finding is shrunk and saved,
and replaying the saved file fires the same oracle again (issue #8).

The faulty target (tests/fixtures/targets/faulty) is a small SMTP + PROXY server started in the
lab like any managed MTA; its `fault` knob plants one defect. Without a fault no oracle fires.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.fuzz.campaign import Budget, Campaign, CampaignResult
from harness.fuzz.lanes import make_lane
from harness.fuzz.model import Finding
from harness.fuzz.run import replay_once
from harness.fuzz.target import FuzzTarget, open_fuzz_target
from harness.targets.spec import resolve
from support.harness import ROOT, needs_root

pytestmark = needs_root
FAULTY = ROOT / "tests" / "fixtures" / "targets" / "faulty" / "faulty.yaml"
MTACONFORM = ROOT / ".venv" / "bin" / "mtaconform"


@pytest.fixture
def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FuzzTarget]:
    with open_fuzz_target(resolve(str(FAULTY)), knobs={"fault": request.param}, out_dir=tmp_path,
                          reply_timeout=0.5) as ft:
        ft.banner_timeout = 0.5
        yield ft


def campaign(ft: FuzzTarget, lane: str, out: Path, examples: int = 25, seed: int = 1) -> CampaignResult:
    return Campaign(make_lane(lane), ft, seed=seed, budget=Budget(examples=examples), out_dir=out,
                    reply_timeout=0.5, shrink_seconds=2).run()


# (fault, lane, the oracle that must fire, bytes the shrunk case must still contain). A second
# reply to MAIL is unsolicited at the end of a session, and answers the wrong command before
# another one: either oracle is that fault's.
PLANTED = [
    ("crash", "smtp", "target-exited", b""),
    ("panic", "smtp", "panic-log", b"HELP"),
    ("core", "smtp", "core-dump", b"RSET"),
    ("malformed", "smtp", "reply-grammar", b"RSET"),
    ("wrong_code", "smtp", "reply-code", b"NOOP"),
    ("extra_reply", "smtp", "unsolicited-reply|reply-code", b"MAIL"),
    ("hang", "smtp", "no-banner", b"VRFY"),
    ("forge_identity", "proxy", "proxy-identity", b""),
    ("accept_invalid", "proxy", "proxy-invalid-accepted", b""),
]


def _sent(case: dict) -> bytes:
    import base64

    return b"".join(base64.b64decode(s["send"]) for s in case["steps"])


@pytest.mark.parametrize("faulty, lane, oracle, needle", [pytest.param(f, l, o, n, id=f)
                                                         for f, l, o, n in PLANTED],
                         indirect=["faulty"])
def test_planted_fault_is_found_shrunk_and_replayed(faulty: FuzzTarget, lane: str, oracle: str,
                                                    needle: bytes, tmp_path: Path) -> None:
    # A hung target costs a probe and a restart per case that finds it: fewer examples there.
    result = campaign(faulty, lane, tmp_path, examples=8 if oracle == "no-banner" else 20)
    oracles = set(oracle.split("|"))
    hits = [f for f in result.findings if oracles & set(f.oracles)]
    assert hits, f"{oracle} did not fire: {[(f.oracles, f.message) for f in result.findings]}"
    found = hits[0]
    assert needle in _sent(found.case).upper()
    # Saved as a self-contained file that loads back as the same finding.
    saved = Finding.from_file(tmp_path / found.file)
    assert saved.case == found.case and saved.oracles == found.oracles and saved.target["knobs"]["fault"]
    assert saved.violations[0]["cite"]
    # Replayed: the same oracle fires again.
    again = replay_once(make_lane(lane), faulty, saved.case, reply_timeout=0.5)
    assert again is not None and set(again.signature) & set(found.oracles)


@pytest.mark.parametrize("faulty", ["none"], indirect=True)
@pytest.mark.parametrize("lane", ["smtp", "proxy"])
def test_no_oracle_fires_on_a_correct_server(faulty: FuzzTarget, lane: str, tmp_path: Path) -> None:
    result = campaign(faulty, lane, tmp_path, examples=15)
    assert result.stats.executions >= 15
    assert result.findings == []


def copy_faulty(folder: Path, fault: str) -> Path:
    """The faulty target as a user's copy of a spec, with FAULT as its fuzz configuration."""
    shutil.copytree(FAULTY.parent, folder)
    spec = folder / "faulty.yaml"
    spec.write_text(spec.read_text().replace("    fault: none", f"    fault: {fault}"))
    return spec


def test_cli_campaign_and_replay(tmp_path: Path) -> None:
    """The commands a user types: a campaign's report and finding files, then `replay`."""
    spec = copy_faulty(tmp_path / "wrong", "wrong_code")
    out = tmp_path / "fuzz"
    run = subprocess.run([str(MTACONFORM), "fuzz", "smtp", "--target", str(spec), "--examples", "8",
                          "--seed", "3", "--reply-timeout", "0.5", "--shrink-seconds", "2", "--out", str(out), "-q"],
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert run.returncode == 1, run.stdout + run.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["executions"] > 0 and stats["findings"] and stats["distinct_reply_classes"] > 1
    html = (out / "index.html").read_text()
    assert "reply-code" in html and "mtaconform replay findings/" in html
    finding = out / stats["findings"][0]["file"]
    replay = subprocess.run([str(MTACONFORM), "replay", str(finding), "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "reproduced: reply-code" in replay.stdout
    # Against a correct server the same file no longer reproduces: exit 0.
    fixed = copy_faulty(tmp_path / "fixed", "none")
    data = json.loads(finding.read_text())
    data["target"]["knobs"] = {"fault": "none"}
    finding.write_text(json.dumps(data))
    replay = subprocess.run([str(MTACONFORM), "replay", str(finding), "--target", str(fixed),
                             "--out", str(tmp_path / "r2")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "not reproduced" in replay.stdout


def test_replay_of_a_bad_file_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    run = subprocess.run([str(MTACONFORM), "replay", str(bad)], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert run.returncode == 2
    assert str(bad) in run.stderr and "not a finding file" in run.stderr
