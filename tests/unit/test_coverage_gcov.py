"""harness.coverage.gcov and .report against a real --coverage build of a tiny C program:
counters through GCOV_PREFIX, gcov's JSON read back, and scripts/gcov-flush-on-exit.c."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.coverage import gcov, report
from harness.coverage.summary import Ratio, merge
from harness.targets.spec import resolve
from support import coverage_build as tiny

pytestmark = pytest.mark.skipif(not tiny.have_gcc(), reason="needs gcc and gcov")


def measure(build: gcov.Build, counters: Path, **kw: object) -> report.Coverage:
    files = merge(gcov.read_counters(build, counters), gcov.resolver(build))
    return report.Coverage(files=files, source_root=build.source_root, target="tiny",
                           objects_counted=len(gcov.counted_objects(build, counters)),
                           objects_total=len(build.objects), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("flush_on_exit", [True, False])
def test_counts_arrive_through_gcov_prefix(tmp_path: Path, flush_on_exit: bool) -> None:
    t = tiny.make(tmp_path, flush_on_exit=flush_on_exit)
    build = gcov.Build.load(t.prefix)
    assert build.objects == ("prog",) and build.source_root == t.objdir
    counters = tmp_path / "counters"
    gcov.prepare_counters(build, counters, owner=None)
    assert (counters / "prog.gcda").stat().st_size == 0 and gcov.counted_objects(build, counters) == []
    t.run(counters)
    t.run(counters)  # a second process adds to the same file
    assert gcov.counted_objects(build, counters) == ["prog"]
    assert not list(t.objdir.glob("*.gcda"))  # nothing written next to the objects
    prog = measure(build, counters).files["prog.c"]
    assert prog.lines[tiny.LOOP_LINE] == 6 and prog.lines[tiny.NEVER_LINE] == 0
    # The forked child ends with _exit(): counted only with the _exit wrapper Exim's build links.
    assert prog.lines[tiny.CHILD_LINE] == (2 if flush_on_exit else 0)


def test_a_never_run_object_counts_as_zero_and_reset_zeroes(tmp_path: Path) -> None:
    t = tiny.make(tmp_path)
    build = gcov.Build.load(t.prefix)
    counters = tmp_path / "counters"
    gcov.prepare_counters(build, counters, owner=None)
    cov = measure(build, counters)
    assert cov.objects_counted == 0
    lines = cov.files["prog.c"].line_ratio()
    assert lines.covered == 0 and lines.total >= 10
    t.run(counters)
    assert measure(build, counters).files["prog.c"].line_ratio().covered > 0
    gcov.reset_counters(counters)
    assert measure(build, counters).files["prog.c"].line_ratio() == lines


def test_report_feature_regions_json_text_and_html(tmp_path: Path) -> None:
    t = tiny.make(tmp_path)
    build = gcov.Build.load(t.prefix)
    counters = tmp_path / "counters"
    gcov.prepare_counters(build, counters, owner=None)
    t.run(counters)
    cov = measure(build, counters, command=["mtaconform", "run"], exit_status=1,
                  feature_paths=("prog.c", "absent.c"), guards={"x": ("FEATURE_X",), "y": ("NOPE",)})
    assert cov.region("x") == {"prog.c": tiny.FEATURE_LINES}
    assert cov.feature_ratio("x")[0] == Ratio(1, 2)  # the `if` ran, its body never did
    assert cov.feature_ratio("y") == (Ratio(0, 0), Ratio(0, 0))
    text = report.text(cov)
    assert "after `mtaconform run`" in text and "not in this build: absent.c" in text
    assert "x                        lines  50.0% (1/2)" in text and "(not compiled in)" in text
    paths = report.write(cov, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["exit_status"] == 1 and data["counters"] == {"objects_counted": 1, "objects": 1}
    assert data["features"]["x"]["lines"] == {"covered": 1, "total": 2, "percent": 50.0}
    assert data["feature_files"]["prog.c"]["lines"]["covered"] == cov.files["prog.c"].line_ratio().covered
    assert data["missing_feature_files"] == ["absent.c"]
    page = (paths["html"].parent / "prog.c.html").read_text()
    assert 'class="miss"><td class="n">10</td>' in page and "n = -1" in page
    assert 'href="prog.c.html"' in paths["html"].read_text()


def test_build_for_checks_the_spec_against_the_build(tmp_path: Path) -> None:
    t = tiny.make(tmp_path)
    assert gcov.build_for(resolve(str(t.spec_file))).objdir == t.objdir
    text = t.spec_file.read_text()
    t.spec_file.write_text(text.replace(f'GCOV_PREFIX_STRIP: "{t.strip}"', 'GCOV_PREFIX_STRIP: "1"'))
    with pytest.raises(gcov.UnusableTarget, match="GCOV_PREFIX_STRIP is '1'"):
        gcov.build_for(resolve(str(t.spec_file)))
    t.spec_file.write_text(text.replace("${MTACONFORM_GCOV_PREFIX:-/nonexistent}", "/tmp/fixed"))
    with pytest.raises(gcov.UnusableTarget, match="MTACONFORM_GCOV_PREFIX"):
        gcov.build_for(resolve(str(t.spec_file)))
    t.spec_file.write_text(text)
    (t.prefix / "coverage-build.json").unlink()
    with pytest.raises(gcov.BuildMissing):
        gcov.build_for(resolve(str(t.spec_file)))
    (t.prefix / "coverage-build.json").write_text("{")
    with pytest.raises(gcov.UnusableTarget, match="unreadable"):
        gcov.Build.load(t.prefix)


def test_a_missing_notes_file_is_an_error_not_zero_coverage(tmp_path: Path) -> None:
    t = tiny.make(tmp_path)
    build = gcov.Build.load(t.prefix)
    (t.objdir / "prog.gcno").unlink()
    with pytest.raises(gcov.CoverageError, match="prog.gcno is missing"):
        gcov.read_counters(build, tmp_path)
