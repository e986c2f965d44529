"""Write all reports of a run into one folder."""

from __future__ import annotations

from pathlib import Path

from .html import write_html
from .json_writer import write_json
from .junit import write_junit
from .model import RunResult

#: File name of each report in the output folder.
REPORT_FILES = {"json": "results.json", "junit": "junit.xml", "html": "index.html"}


def write_reports(result: RunResult, out_dir: Path) -> dict[str, Path]:
    """Write `results.json`, `junit.xml` and `index.html` for RESULT into OUT_DIR (created if
    missing) and return their paths, keyed "json", "junit", "html".

    `results.json` is written first: it holds everything, so if a later writer fails the run's
    findings are still on disk.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in REPORT_FILES.items()}
    write_json(result, paths["json"])
    write_junit(result, paths["junit"])
    write_html(result, paths["html"])
    return paths
