"""index.html: self-contained, complete, escaped, and of reasonable size."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report.html import (
    environment,
    render_html,
    requirement_verdict,
    scenario_anchors,
    visible,
    write_html,
)
from harness.report.model import Evidence, RunResult

try:
    from report_samples import (
        EXIM,
        SHARED_MARKER,
        UNCATALOGUED,
        UNCOVERED,
        large_run,
        sample_run,
    )
except ImportError:  # tests/unit is a package
    from .report_samples import (
        EXIM,
        SHARED_MARKER,
        UNCATALOGUED,
        UNCOVERED,
        large_run,
        sample_run,
    )


@dataclass
class Page(HTMLParser):
    """Parsed page: tags with attributes, ids, text, and the contents of <style>/<script>."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    _in: str | None = None

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.append(a["id"] or "")
        if tag in ("style", "script"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.styles.append(data)
        elif self._in == "script":
            self.scripts.append(data)
        else:
            self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def _page(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(sample_run())


@pytest.fixture(scope="module")
def page(html: str) -> Page:
    return _page(html)


def test_autoescape_is_on() -> None:
    env = environment()
    assert env.autoescape is True
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_write_html_writes_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    write_html(sample_run(), path)
    text = path.read_bytes().decode("utf-8")  # strict: surrogates must not reach the file
    assert text.startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_no_external_references(page: Page) -> None:
    for tag, attrs in page.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base", "frame"), tag
        assert "src" not in attrs, (tag, attrs)
        for name in ("href", "action", "formaction", "poster", "data", "srcset"):
            value = attrs.get(name)
            if value is not None:
                assert name == "href" and value.startswith("#"), (tag, name, value)
    css = "".join(page.styles)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    js = "".join(page.scripts)
    for word in ("fetch(", "XMLHttpRequest", "import(", "http:", "https:", "src"):
        assert word not in js


def test_every_link_has_a_target_and_ids_are_unique(page: Page) -> None:
    assert len(page.ids) == len(set(page.ids))
    ids = set(page.ids)
    for _, attrs in page.tags:
        href = attrs.get("href")
        if href is not None:
            assert href[1:] in ids, href


def test_every_scenario_has_an_anchor(page: Page) -> None:
    result = sample_run()
    anchors = scenario_anchors(result)
    assert len(set(anchors)) == len(result.scenarios)
    details = {a["id"]: a for t, a in page.tags if t == "details"}
    for s, anchor in zip(result.scenarios, anchors):
        assert anchor in details, s.id
        assert f"v-{s.verdict}" in details[anchor]["class"]
        assert s.id in anchor
    # unique ids keep the plain scenario id as anchor; repeated ones get the target
    assert "dane-pkix-ta" in details
    assert "exim--prdr-ehlo-keyword" in details
    assert "smtp-127.0.0.1-2525--prdr-ehlo-keyword" in details


def test_failed_and_errored_scenarios_are_open(page: Page) -> None:
    result = sample_run()
    details = {a["id"]: a for t, a in page.tags if t == "details"}
    for s, anchor in zip(result.scenarios, scenario_anchors(result)):
        assert ("open" in details[anchor]) == (s.verdict in ("fail", "error")), s.id


def test_every_requirement_appears_in_order(page: Page, html: str) -> None:
    result = sample_run()
    rows = [a for t, a in page.tags if t == "tr" and (a.get("id") or "").startswith("req-")]
    ids = [a["id"] for a in rows]
    assert ids[: len(result.requirements)] == [f"req-{r.id}" for r in result.requirements]
    assert ids[len(result.requirements):] == [f"req-{UNCATALOGUED}"]
    text = page.all_text
    for r in result.requirements:
        assert r.title in text and r.citation in text
    for rid in UNCOVERED:
        row = html[html.index(f'id="req-{rid}"'):]
        row = row[: row.index("</tr>")]
        assert re.search(r'class="uncovered[ "]', row) and "not covered" in row
    assert "(not in the requirement catalogue)" in text


def test_requirement_cells_link_to_scenarios_with_their_verdict(html: str) -> None:
    row = html[html.index('id="req-PRDR-07"'):]
    row = row[: row.index("</tr>")]
    # PRDR-07 passed at MUST level and failed at SHOULD level in prdr-353-intro
    assert 'class="chip v-non-strict" href="#exim--prdr-353-intro"' in row
    row = html[html.index('id="req-PRDR-06"'):]
    row = row[: row.index("</tr>")]
    assert 'class="chip v-fail" href="#exim--prdr-353-intro"' in row
    assert 'href="#smtp-127.0.0.1-2525--prdr-353-intro"' in row


def test_requirement_verdict() -> None:
    scenarios = {s.id: s for s in sample_run().scenarios if s.target == EXIM}
    assert requirement_verdict(scenarios["prdr-353-intro"], "PRDR-06") == "fail"
    assert requirement_verdict(scenarios["prdr-353-intro"], "PRDR-07") == "non-strict"
    assert requirement_verdict(scenarios["proxy-v1-unknown"], "PROXY-04") == "pass"
    assert requirement_verdict(scenarios["dsn-structure"], "DSN-12") == "error"
    assert requirement_verdict(scenarios["dane-pkix-ta"], "DANE-11") == "unsupported"


def test_data_is_escaped_and_made_visible(page: Page, html: str) -> None:
    # exactly one script element: ours, with no data in it
    assert [t for t, _ in page.tags].count("script") == 1
    assert len(page.scripts) == 1 and "alert" not in page.scripts[0]
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = page.all_text
    assert "Per-recipient replies start with 353 <b>bold</b>" in text  # shown as text
    for raw in ("\x00", "\x1b", "\x7f", "\u202e", "\udcff"):
        assert raw not in html
    assert ("250 ok\\x00\\x1b[31m</script><script>alert(1)</script>\\u202eevil\\x7f\\xff\\x80"
            in text)
    assert "RuntimeError: boom \\x00\\x1b" in text


def test_visible() -> None:
    assert visible("a\tb\nc") == "a\tb\nc"
    assert visible("\r\x00\x1b\x7f\x85") == "\\x0d\\x00\\x1b\\x7f\\x85"
    assert visible("\u202e\u200b\ufeff") == "\\u202e\\u200b\\ufeff"
    assert visible(b"\xff".decode("utf-8", "surrogateescape")) == "\\xff"
    assert visible("§ ⇒ é") == "§ ⇒ é"


def test_header_and_summary(page: Page) -> None:
    text = page.all_text
    for expected in ("mtaconform 0.1.0", "4.98.1", "OpenSSL 3.0.15", "2025-11-25T11:30:00+00:00",
                     "2025-11-25T11:32:05.5+00:00", "exit 3", "smtp://127.0.0.1:2525"):
        assert expected in text, expected
    cards = re.findall(r'<div class="card v-([a-z-]+)[^"]*"[^>]*>\s*<div class="n">(\d+)</div>',
                       render_html(sample_run()))
    assert dict(cards) == {"pass": "3", "fail": "2", "non-strict": "2", "unsupported": "1",
                           "skip": "2", "error": "1"}
    assert "2 with a MUST failure" in " ".join(text.split())


def test_stopped_early_is_announced() -> None:
    text = _page(render_html(sample_run(stopped_early="interrupted (SIGINT)"))).all_text
    assert "The run stopped early:" in text and "interrupted (SIGINT)" in text


def test_evidence_of_every_kind_is_rendered(page: Page, html: str) -> None:
    kinds = {a["class"] for t, a in page.tags if t == "figure"}
    assert {"ev ev-transcript", "ev ev-log", "ev ev-bytes", "ev ev-table", "ev ev-json",
            "ev ev-text"} <= kinds
    text = page.all_text
    assert "C→S" in text and "S→C" in text and "0.004" in text
    assert '"status": "5.1.1"' in text and '"nested": {' in text  # pretty-printed JSON
    assert "Reporting-MTA" in text and "dns; mx.example.test" in text
    assert "artifacts/prdr-353-intro/mainlog" in text
    # expected and actual side by side
    with_ea = [c for s in sample_run().scenarios for c in s.checks
               if c.expected is not None or c.actual is not None]
    assert html.count('<div class="ea">') == len(with_ea) == 5


def test_shared_evidence_is_shown_once(html: str) -> None:
    assert html.count(SHARED_MARKER) == 1
    assert "Same evidence as" in html


def test_unknown_evidence_kind_falls_back_to_json() -> None:
    result = sample_run()
    result.scenarios[0].evidence.append(Evidence("odd", "pcap", {"k": "<v>"}))
    text = _page(render_html(result)).all_text
    assert "odd (pcap, shown as JSON)" in text and '"k": "<v>"' in text


def test_long_evidence_is_cut_with_a_note() -> None:
    result = sample_run()
    result.scenarios[0].evidence.append(Evidence("big log", "log", "y" * 5000))
    html = render_html(result, max_evidence_chars=1000)
    assert "y" * 1000 in html and "y" * 1001 not in html
    assert "Showing the first 1,000 of 5,000 characters" in html


def test_page_reads_without_js(html: str) -> None:
    # the filter bar is hidden until the script shows it; nothing else is hidden by default
    assert '<nav class="filters" id="filters" aria-label="Filters" hidden>' in html
    assert "hide-" not in html[: html.index("<style>")]
    assert re.search(r"<body>", html)


def test_size_is_reasonable_for_many_scenarios() -> None:
    small = len(render_html(large_run(10)).encode())
    big = len(render_html(large_run(160)).encode())
    per_scenario = (big - small) / 150
    assert per_scenario < 6_000, per_scenario  # a transcript shown once, not twice
    assert big < 1_500_000


def test_empty_run_renders() -> None:
    result = RunResult({"name": "mtaconform", "version": "0.1.0"}, "2025-11-25T11:30:00Z",
                       "2025-11-25T11:30:01Z", [], [])
    text = _page(render_html(result)).all_text
    assert "No scenarios ran." in text and "exit 0" in text


def test_grid_marks_requirements_where_the_targets_differ(html: str) -> None:
    def row(rid: str) -> str:
        text = html[html.index(f'id="req-{rid}"'):]
        return text[: text.index("</tr>")]

    # PRDR-06 failed on both targets; DSN-25 passed on exim and was non-strict on the other.
    assert re.search(r'class="covered agree"', row("PRDR-06"))
    assert re.search(r'class="covered differs"', row("DSN-25")) and "≠" in row("DSN-25")
    # PRDR-07 ran on exim only: nothing to compare.
    assert "agree" in row("PRDR-07").split(">")[0]
    assert '<input type="checkbox" value="agree" checked>' in html
    assert "<h2>Requirements × targets</h2>" in html
    # each chip names its target and verdict on hover
    assert 'title="smtp://127.0.0.1:2525: NON-STRICT — Reporting-MTA and field order"' in row("DSN-25")
