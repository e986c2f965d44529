"""The exim-dsninfo target: a spec that `extends` Exim's and reuses its template."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.yamlsrc import InputError
from harness.targets.managed import ManagedTarget
from harness.targets.spec import BUILTIN_DIR, builtin_names, resolve


def test_dsninfo_spec_takes_everything_but_the_binary_from_exim() -> None:
    exim, info = resolve("exim"), resolve("exim-dsninfo")
    assert "exim-dsninfo" in builtin_names()
    assert info.name == "exim-dsninfo" and info.source == BUILTIN_DIR / "exim-dsninfo" / "exim-dsninfo.yaml"
    for key in ("kind", "features", "knobs", "recipients", "logs", "reset_remove", "config", "stop_signal"):
        if key != "config":
            assert getattr(info, key) == getattr(exim, key), key
    assert info.config["template"] == "../exim/exim.conf.j2"
    binary = "/opt/mtaconform/exim-dsninfo/bin/exim4"
    for cmd in (info.install_check, info.start["command"], info.inject.command, info.flush.command,  # type: ignore[union-attr]
                info.queue.command, info.capabilities.command, info.version.command,  # type: ignore[union-attr]
                info.settings["final_timeout"].command):
        assert cmd[0] == binary, cmd
    # Every command of Exim's spec is overridden: none may run Debian's binary by mistake.
    assert not [c for c in (exim.start["command"][0], exim.inject.command[0]) if c == binary]  # type: ignore[union-attr]


def test_dsninfo_renders_exims_template() -> None:
    driver = ManagedTarget(resolve("exim-dsninfo"), None, Path("/nonexistent"))  # type: ignore[arg-type]
    text = driver.render({"delay_warning": "1s"})
    assert "delay_warning = 1s" in text and "dsn_alias:" in text and "port = 2525" in text
    exim = ManagedTarget(resolve("exim"), None, Path("/nonexistent"))  # type: ignore[arg-type]
    assert exim.render({"delay_warning": "1s"}) == text  # one template, one configuration
    assert "delay_warning = 24h" in driver.render({})  # Exim's own default


def test_extends_errors_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text("name: v\nextends: missing.yaml\n")
    with pytest.raises(InputError) as info:
        resolve(str(tmp_path / "v.yaml"))
    assert info.value.line == 2 and "missing.yaml does not exist" in str(info.value)
    (tmp_path / "loop.yaml").write_text("name: loop\nextends: loop.yaml\n")
    with pytest.raises(InputError) as info:
        resolve(str(tmp_path / "loop.yaml"))
    assert "at most 3 levels" in str(info.value)


def test_a_variant_overrides_top_level_keys(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text(
        f"extends: {BUILTIN_DIR / 'exim' / 'exim.yaml'}\nname: variant\n"
        f"config: {{template: {BUILTIN_DIR / 'exim' / 'exim.conf.j2'}, file: exim.conf}}\n"
        "knobs: {only: one knob}\n")
    spec = resolve(str(tmp_path / "v.yaml"))
    assert spec.name == "variant" and dict(spec.knobs) == {"only": "one knob"}
    assert spec.recipients == resolve("exim").recipients
