"""harness.targets.spec: built-in specs, smtp:// URLs, target files and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.yamlsrc import InputError
from harness.targets.spec import (
    BUILTIN_DIR,
    ROLES,
    TargetSpec,
    builtin_names,
    external_spec,
    parse_smtp_url,
    resolve,
)


def test_builtin_exim_spec_loads() -> None:
    spec = resolve("exim")
    assert spec.name == "exim"
    assert spec.kind == "managed" and spec.managed
    assert spec.source == BUILTIN_DIR / "exim" / "exim.yaml"
    assert spec.folder == BUILTIN_DIR / "exim"
    assert set(spec.features) == {"prdr", "dane", "ocsp", "proxy", "dsn"}
    assert spec.install_check == ("exim", "-bV")
    assert spec.version is not None and spec.version.pattern == r"Exim version (\S+)"
    assert (spec.folder / spec.config["template"]).is_file()
    assert spec.start["ready"] == "pidfile"
    assert spec.stop_signal == "TERM"
    assert spec.inject is not None and "{recipients}" in spec.inject.command
    assert spec.queue is not None and spec.queue.format == "exim"
    assert spec.settings["final_timeout"].pattern == r"final_timeout = (\S+)"
    assert set(spec.recipients) == set(ROLES)
    assert (spec.connect_timeout, spec.reply_timeout) == (5.0, 10.0)
    assert "exim" in builtin_names()


def test_builtin_exim_spec_by_path_is_the_same_spec() -> None:
    assert resolve(str(BUILTIN_DIR / "exim" / "exim.yaml")) == resolve("exim")


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as info:
        resolve("postfix-9")
    assert info.value.file == "--target" and info.value.line is None
    message = str(info.value)
    assert "unknown target 'postfix-9'" in message
    for name in builtin_names():
        assert name in message.split("built-in: ")[1]
    assert "smtp://HOST:PORT" in message


def test_resolve_smtp_url() -> None:
    spec = resolve("smtp://127.0.0.1:2525")
    assert spec.kind == "external" and not spec.managed
    assert spec.name == "smtp://127.0.0.1:2525"
    assert spec.address == ("127.0.0.1", 2525)
    assert spec.source is None and spec.folder is None
    assert spec.recipients == {}
    assert spec.recipient("accept", 1) is None


def test_resolve_smtp_url_with_recipients() -> None:
    spec = resolve("smtp://127.0.0.1:2525", {"accept": "user{n}@example.test", "reject_rcpt": "nobody@example.test"})
    assert spec.recipient("accept", 1) == "user1@example.test"
    assert spec.recipient("accept", 12) == "user12@example.test"
    assert spec.recipient("reject_rcpt", 3) == "nobody@example.test"  # no {n}: the same address
    assert spec.recipient("defer_data", 1) is None


def test_recipient_template_replaces_every_n() -> None:
    spec = external_spec("smtp://mx.example.test:25", {"accept": "u{n}+tag{n}@example.test"})
    assert spec.recipient("accept", 2) == "u2+tag2@example.test"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("smtp://127.0.0.1:2525", ("127.0.0.1", 2525)),
        ("smtp://127.0.0.1", ("127.0.0.1", 25)),
        ("smtp://mx.example.test:587", ("mx.example.test", 587)),
        ("smtp://[2001:db8::25]:2525", ("2001:db8::25", 2525)),
        ("smtp://127.0.0.1:65535", ("127.0.0.1", 65535)),
    ],
)
def test_parse_smtp_url(url: str, address: tuple[str, int]) -> None:
    assert parse_smtp_url(url) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:25", "expected smtp://HOST:PORT"),
        ("smtp://:25", "expected smtp://HOST:PORT"),
        ("smtp:/127.0.0.1:25", "expected smtp://HOST:PORT"),
        ("127.0.0.1:25", "expected smtp://HOST:PORT"),
        ("smtp://127.0.0.1:smtp", "the port is not a number from 1 to 65535"),
        ("smtp://127.0.0.1:65536", "the port is not a number from 1 to 65535"),
        ("smtp://127.0.0.1:-1", "the port is not a number from 1 to 65535"),
    ],
)
def test_bad_smtp_url(url: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_smtp_url(url)
    assert str(info.value) == f"--target: {url!r}: {message}"


def test_bad_smtp_url_through_resolve() -> None:
    with pytest.raises(InputError, match="the port is not a number"):
        resolve("smtp://127.0.0.1:port")


def test_port_zero_is_refused() -> None:
    with pytest.raises(InputError, match="from 1 to 65535"):
        parse_smtp_url("smtp://127.0.0.1:0")


# --- target files ---------------------------------------------------------------------------

EXTERNAL = """\
# my-server.yaml
name: my-server
kind: external
address: smtp://127.0.0.1:2525
recipients:
  accept: "user{n}@example.test"
  reject_rcpt: "nobody@example.test"
  reject_data: "spamtrap@example.test"
  defer_data: "greylist@example.test"
timeouts: {connect: 5, reply: 10}
"""


def _target(tmp_path: Path, text: str, name: str = "my-server.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_readme_external_target_file_loads(tmp_path: Path) -> None:
    path = _target(tmp_path, EXTERNAL.replace("{connect: 5, reply: 10}", "{connect: 2.5, reply: 7}"))
    spec = resolve(str(path))
    assert spec.name == "my-server" and spec.kind == "external"
    assert spec.address == ("127.0.0.1", 2525)
    assert spec.source == path.resolve()
    assert (spec.connect_timeout, spec.reply_timeout) == (2.5, 7.0)
    assert spec.recipient("accept", 4) == "user4@example.test"
    assert spec.recipient("full_data", 1) is None


def test_recipients_given_on_the_command_line_override_the_file(tmp_path: Path) -> None:
    spec = resolve(str(_target(tmp_path, EXTERNAL)), {"accept": "other{n}@example.test",
                                                      "full_data": "full@example.test"})
    assert spec.recipient("accept", 1) == "other1@example.test"
    assert spec.recipient("full_data", 1) == "full@example.test"
    assert spec.recipient("reject_rcpt", 1) == "nobody@example.test"


MANAGED = """\
name: my-exim
kind: managed
install_check: [exim, -bV]
version:
  command: [exim, -bV]
  pattern: 'Exim version (\\S+)'
config:
  template: exim.conf.j2
  file: exim.conf
start:
  command: [exim, -bdf]
  ready: pidfile
knobs:
  prdr: "advertise PRDR"
"""


def _managed(tmp_path: Path, text: str = MANAGED) -> Path:
    (tmp_path / "exim.conf.j2").write_text("# template\n")
    return _target(tmp_path, text, "my-exim.yaml")


def test_copied_managed_spec_loads(tmp_path: Path) -> None:
    spec = resolve(str(_managed(tmp_path)))
    assert spec.managed and spec.name == "my-exim"
    assert spec.folder == tmp_path.resolve()
    assert spec.knobs == {"prdr": "advertise PRDR"}


MALFORMED_TARGETS = {
    "bad kind": (EXTERNAL.replace("kind: external", "kind: remote"), 3, "kind: 'remote' is not one of managed, external"),
    "external without address": (EXTERNAL.replace("address: smtp://127.0.0.1:2525\n", ""), 2,
                                 "top level: 'address' is a required property"),
    "address not smtp://": (EXTERNAL.replace("smtp://127.0.0.1:2525", "lmtp://127.0.0.1:24"), 4,
                            "address: 'lmtp://127.0.0.1:24' does not match '^smtp://'"),
    "unknown role": (EXTERNAL.replace('  accept: "user{n}@example.test"', '  accept: "user{n}@example.test"\n  bounce: "b@example.test"'),
                     7, "recipients: unknown field(s) ('bounce' was unexpected)"),
    "recipient without @": (EXTERNAL.replace('"nobody@example.test"', '"nobody"'), 7,
                            "recipients/reject_rcpt: 'nobody' does not match '@'"),
    "zero timeout": (EXTERNAL.replace("{connect: 5, reply: 10}", "{connect: 5, reply: 0}"), 10,
                     "timeouts/reply: 0 is less than or equal to the minimum of 0"),
    "bad name": (EXTERNAL.replace("name: my-server", "name: my server"), 2, "name: 'my server' does not match"),
    "duplicate key": (EXTERNAL + "kind: managed\n", 11, "duplicate key 'kind'"),
    "YAML syntax": (EXTERNAL.replace("timeouts: {connect: 5, reply: 10}", "timeouts: {connect: 5, reply: 10"), 11,
                    "YAML syntax: "),
    "not a mapping": ("- name: my-server\n", 1, "a target file is a YAML mapping"),
}


@pytest.mark.parametrize(("text", "line", "message"), MALFORMED_TARGETS.values(), ids=MALFORMED_TARGETS.keys())
def test_malformed_target_file_gives_file_line_message(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _target(tmp_path, text)
    with pytest.raises(InputError) as info:
        resolve(str(path))
    assert Path(info.value.file).resolve() == path.resolve()
    assert info.value.line == line, str(info.value)
    assert info.value.message.startswith(message), str(info.value)
    assert str(info.value).startswith(f"{info.value.file}:{line}: ")


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("template: exim.conf.j2", "template: missing.conf.j2", 8, "template "),
        ("pattern: 'Exim version (\\S+)'", "pattern: 'Exim version (\\S+'", 6, "bad regular expression: "),
        ("kind: managed\n", "kind: managed\nstop: {signal: HUP}\n", 3, "stop/signal: 'HUP' is not one of TERM"),
        ("start:\n  command: [exim, -bdf]\n  ready: pidfile\n", "", 1, "top level: 'start' is a required property"),
    ],
)
def test_malformed_managed_spec(tmp_path: Path, old: str, new: str, line: int, message: str) -> None:
    assert old in MANAGED
    path = _managed(tmp_path, MANAGED.replace(old, new))
    with pytest.raises(InputError) as info:
        resolve(str(path))
    assert info.value.line == line, str(info.value)
    assert info.value.message.startswith(message), str(info.value)


def test_missing_target_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        resolve(str(tmp_path / "nowhere.yaml"))
    assert str(info.value) == f"{tmp_path / 'nowhere.yaml'}: no such target file"


def test_bad_address_in_target_file_has_its_line(tmp_path: Path) -> None:
    path = _target(tmp_path, EXTERNAL.replace("smtp://127.0.0.1:2525", "smtp://127.0.0.1:abc"))
    with pytest.raises(InputError) as info:
        resolve(str(path))
    assert info.value.line == 4


def test_unsupported_knobs() -> None:
    spec = resolve("exim")
    assert spec.unsupported_knobs({}) == []
    assert spec.unsupported_knobs({"prdr": False, "final_timeout": "30s"}) == []
    assert spec.unsupported_knobs({"zzz": 1, "prdr": True, "aaa": 2}) == ["zzz", "aaa"]
    external = external_spec("smtp://127.0.0.1:25")
    assert external.unsupported_knobs({"prdr": True}) == ["prdr"]


def test_target_spec_is_immutable() -> None:
    spec = external_spec("smtp://127.0.0.1:25")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert isinstance(spec, TargetSpec)
