"""The campaign's output folder: stats.json, index.html (statistics and findings, with the oracle
that fired, the bytes and the target's evidence), and findings/*.json (written as found)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..report.html import _evidence_view, environment
from ..report.json_writer import atomic_write_bytes
from ..report.model import Evidence
from .campaign import CampaignResult
from .lanes.base import Lane
from .model import Finding, unb64
from ..smtp.transcript import visible


def case_bytes(case: Any) -> tuple[str, str]:
    """(heading, text): the bytes a byte script sends, or the case itself as JSON."""
    if isinstance(case, dict) and isinstance(case.get("steps"), list):
        try:
            parts = []
            for s in case["steps"]:
                if s.get("send"):
                    parts.append(visible(unb64(s["send"])))
            return "Bytes sent", "".join(parts) or "(nothing sent)"
        except (ValueError, TypeError):
            pass
    return "Case", json.dumps(case, indent=2, default=str)


def _finding_view(f: Finding, lane: Lane) -> dict[str, Any]:
    evidence = [_evidence_view(Evidence(e["label"], e["kind"], e["content"]), 20_000, 400)
                for e in f.evidence]
    for v in f.violations:
        evidence.extend(_evidence_view(Evidence(e["label"], e["kind"], e["content"]), 20_000, 400)
                        for e in v.get("evidence", []))
    return {"oracles": f.oracles, "message": f.message, "file": f.file, "hits": f.hits,
            "violations": f.violations, "summary": lane.describe_case(f.case),
            "bytes_heading": case_bytes(f.case)[0], "bytes": case_bytes(f.case)[1], "evidence": evidence}


def write_campaign_report(result: CampaignResult, lane: Lane, out_dir: Path, started: str,
                          knobs: Any = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_path = out_dir / "stats.json"
    data = {**result.stats.to_json(), "started": started,
            "findings": [{"file": f.file, "oracles": f.oracles, "message": f.message, "hits": f.hits}
                         for f in result.findings]}
    atomic_write_bytes(stats_path, (json.dumps(data, indent=2) + "\n").encode())
    html = environment().get_template("fuzz.html.j2").render(
        version=__version__, stats=result.stats, lane_description=lane.description, started=started,
        target_knobs=json.dumps(knobs, sort_keys=True) if knobs else "",
        findings=[_finding_view(f, lane) for f in result.findings])
    html_path = out_dir / "index.html"
    atomic_write_bytes(html_path, html.encode("utf-8", errors="backslashreplace"))
    return {"html": html_path, "stats": stats_path}
