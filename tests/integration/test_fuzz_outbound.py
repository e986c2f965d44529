"""The outbound fuzz lanes against the real Exim 4.96: every oracle tripped by a faulty target —
Exim's own PRDR bug, Exim with DANE switched off, Exim with OCSP only requested — each lane run
briefly with a fixed seed by a campaign, and its findings replayed from their files.

One lab for the module; the knobs change between tests (Exim restarts in milliseconds)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.fuzz.campaign import Budget, Campaign, CampaignResult
from harness.fuzz.lanes import make_lane
from harness.fuzz.lanes.base import Context, Lane
from harness.fuzz.model import Finding, Found, Stats, b64
from harness.fuzz.outbound import OUTBOUND_KNOBS
from harness.fuzz.target import FuzzTarget, FuzzTargetError, open_fuzz_target
from harness.targets.spec import resolve
from support.harness import needs_root

pytestmark = [needs_root, pytest.mark.integration]

SHRINK_S = 3.0
DIGEST_REF = {"cert": "mx", "usage": 3, "selector": 1, "mtype": 1}


@pytest.fixture(scope="module")
def ft(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    try:
        with open_fuzz_target(resolve("exim"), knobs=OUTBOUND_KNOBS,
                              out_dir=tmp_path_factory.mktemp("fuzz-outbound")) as target:
            yield target
    except FuzzTargetError as exc:
        pytest.skip(str(exc))


def use_knobs(ft: FuzzTarget, knobs: Mapping[str, Any], *, drop: tuple[str, ...] = ()) -> None:
    """The target with the spec's fuzz knobs plus KNOBS, without DROP (a faulty configuration)."""
    merged = {k: v for k, v in {**ft.spec.fuzz_knobs, **knobs}.items() if k not in drop}
    ft.knobs = merged
    assert ft.run.driver is not None
    ft.run.driver.ensure(merged)


def campaign(ft: FuzzTarget, lane: Lane, out: Path, examples: int) -> CampaignResult:
    result = Campaign(lane, ft, seed=1, budget=Budget(examples=examples), out_dir=out,
                      shrink_seconds=SHRINK_S).run()
    stats = result.stats
    assert stats.executions >= examples and stats.reply_classes and stats.states, stats.to_json()
    return result


def run_case(ft: FuzzTarget, lane: Lane, case: Any) -> tuple[str, ...]:
    """The oracles one case fires (Context.run_case raises Found)."""
    ctx = Context(lane, ft, Stats(lane.name, ft.spec.name, 0))
    lane.setup(ctx)
    try:
        ctx.run_case(case)
    except Found as found:
        return found.signature
    finally:
        lane.teardown(ctx)
    return ()


def replay(ft: FuzzTarget, path: Path) -> tuple[str, ...]:
    """A finding file run again, as `mtaconform replay FILE` does: its lane, its case."""
    finding = Finding.from_file(path)
    lane = make_lane(finding.lane)
    return run_case(ft, lane, lane.case_from_json(finding.case))


def finding_with(result: CampaignResult, oracle: str) -> Finding:
    hits = [f for f in result.findings if oracle in f.oracles]
    assert hits, f"no {oracle} finding: {[f.oracles for f in result.findings]}"
    return hits[0]


def _prdr_case(lane: Lane, block: bytes) -> Any:
    return lane.case_from_json({"rcpt": ["250 2.1.5 ok"] * 2, "block": [{"bytes": b64(block)}],
                                "then": "close"})


def test_prdr_lane_exim_delivers_on_a_misaligned_block(ft: FuzzTarget, tmp_path: Path) -> None:
    """Exim 4.96 takes a reply that is not the final one for the final reply (PRDR-22)."""
    lane = make_lane("prdr-replies")
    use_knobs(ft, lane.knobs)
    intro = b"353 PRDR content analysis beginning\r\n"
    extra_line = _prdr_case(lane, intro + b"250 r1\r\n250 r2\r\n250 extra\r\n451 4.3.0 final\r\n")
    assert run_case(ft, lane, extra_line) == ("prdr-misaligned-delivered",)
    assert run_case(ft, lane, _prdr_case(lane, intro + b"250 r1\r\n550 r2\r\n250 final\r\n")) == ()
    result = campaign(ft, lane, tmp_path, 20)
    assert result.findings and all(f.oracles[0].startswith("prdr-") for f in result.findings)
    for finding in result.findings:
        assert set(finding.oracles) <= set(replay(ft, tmp_path / finding.file)), finding.oracles


def test_delivery_hang_oracle(ft: FuzzTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """A target that waits longer for a reply than the lane allows a delivery: Exim with a
    30 s final-reply time-out against a peer that goes silent after one per-recipient reply."""
    lane = make_lane("prdr-replies")
    use_knobs(ft, {**lane.knobs, "final_timeout": "30s"})
    monkeypatch.setattr("harness.fuzz.outbound.DELIVERY_TIMEOUT_S", 1.5)
    short = lane.case_from_json({"rcpt": ["250 2.1.5 ok"] * 2, "then": "hang",
                                 "block": [{"bytes": b64(b"353 PRDR go\r\n250 r1\r\n")}]})
    assert run_case(ft, lane, short) == ("delivery-hang",)
    assert ft.run.driver is not None and ft.run.driver.wait_quiet(1.0)  # nothing left running


def _dns_case(*extra: dict[str, Any], tlsa: bool = True, starttls: str = "absent") -> dict[str, Any]:
    records = [{"name": "d.test", "type": "MX", "value": "10 mx.d.test"},
               {"name": "mx.d.test", "type": "A", "value": "198.51.100.1"}, *extra]
    if tlsa:
        records.append({"name": "_25._tcp.mx.d.test", "type": "TLSA", "value": {"tlsa": DIGEST_REF}})
    return {"zone": {"name": "d.test", "state": "secure", "records": records},
            "starttls": {"mx": starttls, "mx2": "offer"}}


def test_dns_lane_with_dane_off_delivers_in_clear(ft: FuzzTarget, tmp_path: Path) -> None:
    lane = make_lane("dns")
    use_knobs(ft, {**lane.knobs, "dane": "off"})  # the faulty configuration
    result = campaign(ft, lane, tmp_path, 15)
    finding = finding_with(result, "dane-cleartext")
    assert "dane-cleartext" in replay(ft, tmp_path / finding.file)
    bogus = lane.case_from_json(_dns_case({"name": "_25._tcp.mx.d.test", "type": "TLSA", "state": "bogus"},
                                          tlsa=False, starttls="offer"))
    assert run_case(ft, lane, bogus) == ("dane-unusable-host-used",)
    # DANE as configured for the lane: the same cases fire nothing.
    use_knobs(ft, lane.knobs)
    assert "dane-cleartext" not in replay(ft, tmp_path / finding.file)
    assert run_case(ft, lane, bogus) == ()
    assert run_case(ft, lane, lane.case_from_json(_dns_case())) == ()


def test_ocsp_lane_with_ocsp_only_requested(ft: FuzzTarget, tmp_path: Path) -> None:
    lane = make_lane("ocsp")
    revoked = lane.case_from_json({"staple": {"status": "revoked"}})
    none = lane.case_from_json({"staple": None})
    # OCSP required and TLS required: the lane's configuration; Exim refuses both.
    use_knobs(ft, lane.knobs)
    assert run_case(ft, lane, revoked) == ()
    assert run_case(ft, lane, none) == ()
    # OCSP required, TLS opportunistic: Exim retries in clear after the revoked staple.
    use_knobs(ft, {**lane.knobs, "ocsp_client_tls": "opportunistic"})
    assert run_case(ft, lane, revoked) == ("ocsp-cleartext-after-staple",)
    # OCSP only requested (Exim's default) and opportunistic TLS: the faulty configuration.
    use_knobs(ft, OUTBOUND_KNOBS, drop=("ocsp_client_require", "ocsp_client_tls"))
    assert run_case(ft, lane, revoked) == ("ocsp-revoked-staple-accepted",)
    assert run_case(ft, lane, none) == ("ocsp-missing-staple-accepted",)
    result = campaign(ft, lane, tmp_path, 10)
    assert result.findings
    for finding in result.findings[:2]:
        assert set(finding.oracles) <= set(replay(ft, tmp_path / finding.file)), finding.oracles
