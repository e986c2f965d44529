"""`mtaconform coverage`: the wrapper around run/fuzz and `coverage report`, on a tiny --coverage
program standing in for Exim (the real target: tests/integration/test_coverage_exim.py)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.coverage import command, gcov
from harness.targets.spec import resolve
from support import coverage_build as tiny

needs_gcc = pytest.mark.skipif(not tiny.have_gcc(), reason="needs gcc and gcov")


@pytest.mark.parametrize("argv, found", [
    (["-f", "prdr"], False), (["--target", "x"], True), (["-t", "x"], True), (["--target=x"], True),
    (["-tx"], True), (["--scenario", "t*"], False), (["--timeout", "3"], False),
])
def test_has_target(argv: list[str], found: bool) -> None:
    assert command._has_target(argv) is found


@needs_gcc
@pytest.mark.skipif(os.geteuid() != 0, reason="coverage run/fuzz need root")
@pytest.mark.parametrize("what, args", [("run", ["-s", "prdr-server-block"]), ("fuzz", ["smtp", "--seconds", "1"])])
def test_the_wrapped_command_runs_with_a_fresh_counters_folder(tmp_path: Path, what: str,
                                                                args: list[str]) -> None:
    t = tiny.make(tmp_path)
    seen: dict[str, object] = {}

    def wrapped(inner: argparse.Namespace) -> int:
        folder = Path(os.environ[gcov.PREFIX_VARIABLE])
        seen["folder"], seen["inner"] = folder, inner
        # What the target's driver does: the spec's env, ${MTACONFORM_GCOV_PREFIX} expanded.
        target = inner.target[0] if isinstance(inner.target, list) else inner.target
        assert resolve(target).environment(os.environ)["GCOV_PREFIX"] == str(folder)
        assert gcov.counted_objects(gcov.Build.load(t.prefix), folder) == []  # zeroed
        t.run(folder)
        return 1

    out = tmp_path / "out"
    status = command.run_wrapped(what, [*args, "--target", str(t.spec_file), "--out", str(out)],
                                 build_parser(), {what: wrapped})
    assert status == 1  # the wrapped command's own status
    assert not Path(str(seen["folder"])).exists() and gcov.PREFIX_VARIABLE not in os.environ
    data = json.loads((out / "coverage.json").read_text())
    assert data["exit_status"] == 1 and data["command"][:2] == ["mtaconform", what]
    assert data["files"]["prog.c"]["lines"]["covered"] > 0
    assert (out / "coverage" / "index.html").is_file()


@needs_gcc
def test_coverage_report_reads_a_counters_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = tiny.make(tmp_path)
    counters = tmp_path / "counters"
    gcov.prepare_counters(gcov.Build.load(t.prefix), counters, owner=None)
    t.run(counters)
    out = tmp_path / "out"
    argv = ["coverage", "report", "--target", str(t.spec_file), "--counters", str(counters), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"from the counters in {counters}" in printed and "counters from 1 of 1 objects" in printed
    assert json.loads((out / "coverage.json").read_text())["files"]["prog.c"]["lines"]["covered"] > 0
    assert main([*argv, "--reset"]) == 0 and "zeroed" in capsys.readouterr().out
    assert gcov.counted_objects(gcov.Build.load(t.prefix), counters) == []


def test_a_target_that_is_not_a_coverage_build_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "run", "-s", "prdr-server-block", "--target", "exim"]) == 2
    assert "does not take GCOV_PREFIX from ${MTACONFORM_GCOV_PREFIX}" in capsys.readouterr().err
    assert main(["coverage", "run", "-t", "exim-coverage", "-t", "exim"]) == 2
    assert "one target" in capsys.readouterr().err


def test_a_missing_build_says_how_to_build_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "cov.yaml"
    spec.write_text(f"extends: {resolve('exim-coverage').source}\n"
                    "install_check: [/nonexistent/mtaconform-test/bin/exim4, -bV]\n"
                    f"config: {{template: {resolve('exim').folder}/exim.conf.j2, file: exim.conf}}\n")
    assert main(["coverage", "run", "-s", "prdr-server-block", "--target", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "exim-coverage is not built" in err and "MTACONFORM_BUILD_COVERAGE=1 scripts/setup.sh" in err
