"""The exim-coverage target: a spec that `extends` Exim's, with an `env` its template keeps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.engine.yamlsrc import InputError
from harness.targets.managed import ManagedTarget, TargetError
from harness.targets.spec import expand_env, resolve

BINARY = "/opt/mtaconform/exim-coverage/bin/exim4"


def keep_environment(name: str) -> str:
    driver = ManagedTarget(resolve(name), None, Path("/nonexistent"))  # type: ignore[arg-type]
    [line] = [l for l in driver.render({}).splitlines() if l.startswith("keep_environment")]
    return line.rstrip()


def test_coverage_spec_is_exim_with_another_binary_and_an_environment() -> None:
    exim, cov = resolve("exim"), resolve("exim-coverage")
    for key in ("kind", "features", "knobs", "recipients", "logs", "reset_remove", "stop_signal"):
        assert getattr(cov, key) == getattr(exim, key), key
    for cmd in (cov.install_check, cov.start["command"], cov.inject.command, cov.flush.command,  # type: ignore[union-attr]
                cov.queue.command, cov.capabilities.command, cov.version.command,  # type: ignore[union-attr]
                cov.settings["final_timeout"].command):
        assert cmd[0] == BINARY, cmd
    assert set(cov.env) == {"GCOV_PREFIX", "GCOV_PREFIX_STRIP"} and not exim.env
    assert "scripts/build-exim-coverage.sh" in cov.install_hint


def test_exims_template_keeps_exactly_the_variables_the_spec_sets() -> None:
    assert keep_environment("exim") == "keep_environment ="  # Exim clears everything, as before
    assert keep_environment("exim-coverage") == "keep_environment = GCOV_PREFIX : GCOV_PREFIX_STRIP"


def test_env_values_take_references_from_the_harness_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert expand_env("${A}/x:${B:-dflt}", {"A": "a"}) == "a/x:dflt"
    assert expand_env("${B:-dflt}", {"B": ""}) == "dflt" and expand_env("$A {A}", {"A": "a"}) == "$A {A}"
    with pytest.raises(ValueError, match=r"env GCOV_PREFIX: \$\{A\} is not set"):
        expand_env("${A}", {}, "GCOV_PREFIX")
    driver = ManagedTarget(resolve("exim-coverage"), None, Path("/nonexistent"))  # type: ignore[arg-type]
    monkeypatch.delenv("MTACONFORM_GCOV_PREFIX", raising=False)
    env = driver.env()
    assert env is not None and env["GCOV_PREFIX"] == "/opt/mtaconform/exim-coverage/counters"
    assert env["PATH"] == os.environ["PATH"]  # on top of the harness's own environment
    monkeypatch.setenv("MTACONFORM_GCOV_PREFIX", "/var/tmp/run-1")
    assert driver.env()["GCOV_PREFIX"] == "/var/tmp/run-1"  # type: ignore[index]
    assert ManagedTarget(resolve("exim"), None, Path("/x")).env() is None  # type: ignore[arg-type]


def test_an_unset_reference_is_a_target_error_and_a_reason_to_skip(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\nkind: managed\ninstall_check: [/bin/true]\n"
                    f"config: {{template: {tmp_path / 't.j2'}, file: t.conf}}\n"
                    "start: {command: [/bin/true]}\nenv: {X: \"${MTACONFORM_TEST_UNSET_VAR}\"}\n")
    (tmp_path / "t.j2").write_text("")
    driver = ManagedTarget(resolve(str(spec)), None, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="MTACONFORM_TEST_UNSET_VAR"):
        driver.env()
    assert "MTACONFORM_TEST_UNSET_VAR" in (driver.check_installed() or "")


def test_bad_env_and_missing_binary_messages(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    base = ("name: t\nkind: managed\ninstall_check: [/nonexistent/exim4, -bV]\n"
            f"config: {{template: {tmp_path / 't.j2'}, file: t.conf}}\nstart: {{command: [x]}}\n")
    (tmp_path / "t.j2").write_text("")
    spec.write_text(base + "env:\n  BAD-NAME: x\n")
    with pytest.raises(InputError) as info:
        resolve(str(spec))
    assert info.value.line == 7
    spec.write_text(base + "env: {N: 3}\n")
    with pytest.raises(InputError, match="is not of type 'string'"):
        resolve(str(spec))
    spec.write_text(base + "install_hint: run scripts/build-it.sh\n")
    driver = ManagedTarget(resolve(str(spec)), None, tmp_path)  # type: ignore[arg-type]
    reason = driver.check_installed() or ""
    assert "/nonexistent/exim4" in reason and reason.endswith("(run scripts/build-it.sh)")
