"""What `mtaconform coverage` prints and writes: overall, per feature, per file.

The feature files and feature guards are Exim's (4.96): the files where the protocol code of the
five features lives, and the build macros that fence each feature's code off.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .regions import guarded_lines
from .summary import FileCounts, Ratio, total

# Where the features' protocol code lives (paths below Exim's src/). dane.c is OpenSSL's DANE
# (Debian builds with GnuTLS, whose DANE code is in tls-gnu.c): listed so the report says so.
FEATURE_FILES: tuple[str, ...] = (
    "smtp_in.c",            # server side: EHLO, MAIL/RCPT parameters (PRDR, DSN), PROXY, STARTTLS
    "receive.c",            # DATA, the PRDR per-recipient ACL, Received:
    "acl.c",
    "daemon.c",             # accepting connections
    "smtp_out.c",           # client side: connecting, writing commands
    "transports/smtp.c",    # client side: EHLO, PRDR, DSN parameters, DANE and OCSP decisions
    "transport.c",
    "deliver.c",            # delivery, retries, bounces and delay warnings (DSN)
    "moan.c",               # other notifications
    "host.c",               # MX and address lookups, tlsa_lookup
    "dns.c",                # the resolver, AD bit (DNSSEC)
    "tls.c", "tls-gnu.c",   # TLS (GnuTLS): certificates, OCSP stapling, DANE verification
    "dane.c",
)

# Feature code by preprocessor guard (regions.guarded_lines), counted in FEATURE_FILES only
# (exim.c's -bV listing and readconf.c's option table are guarded too, but are not protocol code).
# "!NAME": the feature is on when NAME is not defined.
FEATURE_GUARDS: dict[str, tuple[str, ...]] = {
    "prdr": ("!DISABLE_PRDR",),
    "proxy": ("SUPPORT_PROXY",),
    "dane": ("SUPPORT_DANE",),
    "ocsp": ("!DISABLE_OCSP",),
    "dsn_info": ("EXPERIMENTAL_DSN_INFO",),
}


@dataclass
class Coverage:
    """One measurement: the merged counts and what produced them."""

    files: dict[str, FileCounts]
    source_root: Path
    target: str
    version: str = ""
    command: Sequence[str] = ()
    exit_status: int | None = None
    objects_counted: int = 0
    objects_total: int = 0
    label: str = ""  # what was measured, for humans; default: "after `COMMAND`"
    feature_paths: tuple[str, ...] = FEATURE_FILES
    guards: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(FEATURE_GUARDS))
    _regions: dict[str, dict[str, set[int]]] = field(default_factory=dict)

    def describe(self) -> str:
        return self.label or (f"after `{' '.join(self.command)}`" if self.command else "")

    def feature_files(self) -> list[str]:
        return [f for f in self.feature_paths if f in self.files]

    def missing_feature_files(self) -> list[str]:
        return [f for f in self.feature_paths if f not in self.files]

    def region(self, feature: str) -> dict[str, set[int]]:
        """Per feature file, the lines with code inside the feature's guards."""
        if feature not in self._regions:
            out: dict[str, set[int]] = {}
            for name in self.feature_files():
                try:
                    text = (self.source_root / name).read_text(errors="replace")
                except OSError:
                    continue
                lines = guarded_lines(text, self.guards[feature]) & self.files[name].lines.keys()
                if lines:
                    out[name] = lines
            self._regions[feature] = out
        return self._regions[feature]

    def feature_ratio(self, feature: str) -> tuple[Ratio, Ratio]:
        lines = branches = Ratio(0, 0)
        for name, numbers in self.region(feature).items():
            lines += self.files[name].line_ratio(numbers)
            branches += self.files[name].branch_ratio(numbers)
        return lines, branches

    def as_json(self) -> dict[str, Any]:
        lines, branches, functions = total(self.files.values())

        def file_json(f: FileCounts) -> dict[str, Any]:
            return {"lines": f.line_ratio().as_json(), "branches": f.branch_ratio().as_json(),
                    "functions": f.function_ratio().as_json()}

        features = {}
        for feature, macros in self.guards.items():
            fl, fb = self.feature_ratio(feature)
            features[feature] = {
                "guards": list(macros), "lines": fl.as_json(), "branches": fb.as_json(),
                "files": {name: {"lines": self.files[name].line_ratio(n).as_json(),
                                 "branches": self.files[name].branch_ratio(n).as_json()}
                          for name, n in self.region(feature).items()},
            }
        return {
            "target": self.target, "version": self.version, "command": list(self.command),
            "measured": self.describe(),
            "exit_status": self.exit_status,
            "counters": {"objects_counted": self.objects_counted, "objects": self.objects_total},
            "overall": {"lines": lines.as_json(), "branches": branches.as_json(),
                        "functions": functions.as_json()},
            "feature_files": {name: file_json(self.files[name]) for name in self.feature_files()},
            "missing_feature_files": self.missing_feature_files(),
            "features": features,
            "files": {name: file_json(f) for name, f in sorted(self.files.items())},
        }


def text(cov: Coverage) -> str:
    lines, branches, functions = total(cov.files.values())
    out = [f"Exim coverage ({cov.target}{', ' + cov.version if cov.version else ''}) {cov.describe()}:",
           f"  {'overall':26} lines {lines}   branches {branches}   functions {functions}",
           f"  counters from {cov.objects_counted} of {cov.objects_total} objects",
           "  feature code (lines inside the feature's #if guards, in the files below):"]
    for feature in cov.guards:
        fl, fb = cov.feature_ratio(feature)
        note = "" if fl.total else "   (not compiled in)"
        out.append(f"    {feature:24} lines {fl}   branches {fb}{note}")
    out.append("  feature files:")
    for name in cov.feature_files():
        f = cov.files[name]
        out.append(f"    {name:24} lines {f.line_ratio()}   branches {f.branch_ratio()}")
    missing = cov.missing_feature_files()
    if missing:
        out.append(f"    not in this build: {', '.join(missing)}")
    return "\n".join(out)


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("harness.coverage", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def _page_name(source: str) -> str:
    return source.replace("/", "__") + ".html"


def write(cov: Coverage, out: Path) -> dict[str, Path]:
    """OUT/coverage.json, and OUT/coverage/index.html with one annotated page per feature file."""
    out.mkdir(parents=True, exist_ok=True)
    data = cov.as_json()
    paths = {"json": out / "coverage.json", "html": out / "coverage" / "index.html"}
    paths["json"].write_text(json.dumps(data, indent=1) + "\n")
    html_dir = out / "coverage"
    html_dir.mkdir(exist_ok=True)
    env = _env()
    pages = {name: _page_name(name) for name in cov.feature_files()}
    paths["html"].write_text(env.get_template("index.html.j2").render(
        data=data, pages=pages))
    for name, page in pages.items():
        (html_dir / page).write_text(env.get_template("file.html.j2").render(
            name=name, rows=_annotated(cov, name), summary=data["feature_files"][name]))
    return paths


def _annotated(cov: Coverage, name: str) -> Markup:
    """NAME's source as table rows (built here, not in the template: Exim's feature files are
    45,000 lines, and Jinja2 takes seconds over them)."""
    f = cov.files[name]
    try:
        source = (cov.source_root / name).read_text(errors="replace").splitlines()
    except OSError:
        source = []
    regions = {feature: cov.region(feature).get(name, set()) for feature in cov.guards}
    by_line: dict[int, list[int]] = {}
    for (n, _), c in f.branches.items():
        by_line.setdefault(n, []).append(c)
    rows = []
    for number, line in enumerate(source, start=1):
        count = f.lines.get(number)
        state = "none" if count is None else ("hit" if count > 0 else "miss")
        taken = by_line.get(number, [])
        branches = f"{sum(1 for c in taken if c)}/{len(taken)}" if taken else ""
        features = " ".join(k for k, v in regions.items() if number in v)
        rows.append(f'<tr class="{state}"><td class="n">{number}</td>'
                    f'<td class="c">{"" if count is None else count}</td><td class="b">{branches}</td>'
                    f'<td class="f">{features}</td><td class="src">{html.escape(line)}</td></tr>')
    return Markup("\n".join(rows))
