"""The built-in aiosmtpd and opensmtpd targets (issue #9), and what the harness learned for them:
receivers that send no mail, features a spec does not claim, OpenSMTPD's queue listing and log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.engine.catalogue import load_catalogue
from harness.engine.checks import all_checks
from harness.engine.checks.proxy import _log_identities
from harness.engine.observations import Observations
from harness.engine.runner import RunOptions, Runner, TargetRun
from harness.report.model import TargetInfo
from harness.targets.managed import ManagedTarget
from harness.targets.queue import parse_queue
from harness.targets.spec import BUILTIN_DIR, builtin_names, resolve
from support.harness import scenario

SHOW_QUEUE = (
    "4f3d3b1aad3bb937|local|mta|auth|sender@sender.test|r1@d.test|r1@d.test|1795616370|1795616370|0|1"
    "|pending|400|Temporary failure in MX lookup\n"
    "4f3d3b1a31ff0804|local|mta|auth|sender@sender.test|r2@d.test|r2@d.test|1795616370|1795616370|0|0"
    "|inflight|0|\n"
    "4f3d3b1a61e8852e|local|bounce|auth|sender@sender.test|r3@d.test|r3@d.test|1795616370|1795616370|0|0"
    "|pending|1|550 no such user\n"
    "01f933f50736f429|local|mta||@|sender@sender.test|sender@sender.test|1795616371|1795616371|0|0"
    "|pending|0|\n"
)


def test_both_are_builtin_and_the_external_example_stays() -> None:
    assert {"aiosmtpd", "opensmtpd"} <= set(builtin_names())
    aio, osd = resolve("aiosmtpd"), resolve("opensmtpd")
    assert (aio.kind, aio.features, aio.inject) == ("managed", ("proxy",), None)
    assert (osd.kind, osd.features, osd.proxy_port) == ("managed", ("proxy", "dsn"), 10025)
    assert osd.inject is not None and osd.busy is not None and osd.reset_restart
    assert osd.queue is not None and osd.queue.format == "opensmtpd"
    assert resolve(str(BUILTIN_DIR / "aiosmtpd" / "proxy-target.yaml")).kind == "external"


def test_opensmtpd_queue_listing_groups_envelopes_by_message() -> None:
    entries = {e.id: e for e in parse_queue("opensmtpd", SHOW_QUEUE)}
    assert set(entries) == {"4f3d3b1a", "01f933f5"}
    # r3 is being bounced: no longer queued for delivery.
    assert entries["4f3d3b1a"].recipients == ("r1@d.test", "r2@d.test")
    assert entries["4f3d3b1a"].sender == "sender@sender.test"
    assert entries["01f933f5"].recipients == ("sender@sender.test",)
    assert parse_queue("opensmtpd", "") == []
    with pytest.raises(ValueError, match="line 1: not an envelope"):
        parse_queue("opensmtpd", "smtpctl: connect: /var/run/smtpd.sock: No such file\n")


def test_opensmtpd_busy_pattern_sees_work_in_hand() -> None:
    import re

    busy = resolve("opensmtpd").busy
    assert busy is not None and busy.pattern is not None
    lines = SHOW_QUEUE.splitlines()
    assert not re.search(busy.pattern, lines[0])  # tried once, next try in 400 s: waiting
    assert re.search(busy.pattern, lines[1])  # in flight
    assert re.search(busy.pattern, lines[3])  # a new message (the bounce), never tried
    assert not re.search(busy.pattern, "", re.M)  # an empty queue


def test_opensmtpd_log_names_client_and_proxy() -> None:
    obs = Observations("s", "opensmtpd", logs={"main": [
        "286020609eb792e5 smtp event=proxy address=192.0.2.11",
        "2860206179ea4ed5 smtp connected address=203.0.113.7 host=<unknown>",
        "7c7e65f3e1c1dcf3 smtp connected address=local host=mta.target.test",
    ]})
    clients, proxies = _log_identities(obs)
    assert [(str(i.address), i.where) for i in clients] == [("203.0.113.7", "log")]
    assert [str(i.address) for i in proxies] == ["192.0.2.11"]


def test_templates_render(tmp_path: Path) -> None:
    osd = ManagedTarget(resolve("opensmtpd"), None, tmp_path)  # type: ignore[arg-type]
    conf = osd.render({})
    assert "listen on 192.0.2.25 port 25 hostname mta.target.test filter \"mtac\"\n" in conf
    assert "listen on 192.0.2.25 port 10025 hostname mta.target.test filter \"mtac\" proxy-v2" in conf
    assert "bounce warn-interval 4h" in conf
    conf = osd.render({"dsn": False, "delay_warning": "1s"})
    assert 'filter "mtac" no-dsn' in conf and "bounce warn-interval 1s" in conf
    assert osd.render({}, "mailname.j2").strip() == "mta.target.test"
    aio = ManagedTarget(resolve("aiosmtpd"), None, tmp_path)  # type: ignore[arg-type]
    args = aio.render({}).splitlines()
    assert "--address=192.0.2.25" in args and "--proxy-hosts=192.0.2.11" in args
    assert "" not in args, "launch.py @FILE takes each line as an argument"
    assert aio._fmt(["{python}", "{spec_dir}/launch.py", "@{config}"]) == [
        sys.executable, str(BUILTIN_DIR / "aiosmtpd" / "launch.py"), f"@{tmp_path / 'aiosmtpd.args'}"]


@pytest.mark.parametrize(("sid", "outcome", "reason"), [
    ("dsn-failure-rcpt", "skip", "the target does not send mail (its spec has no inject command)"),
    ("dsn-server-ehlo-keyword", "unsupported", "the target spec does not claim the dsn feature (it claims proxy)"),
])
def test_a_receiver_that_sends_no_mail(sid: str, outcome: str, reason: str, tmp_path: Path) -> None:
    spec = resolve("aiosmtpd")
    runner = Runner([], [], load_catalogue(), all_checks(), RunOptions(out_dir=tmp_path))
    res = runner.scenario(TargetRun(spec, TargetInfo(spec.name, spec.kind)), scenario(sid))
    assert (res.outcome.value, res.reason) == (outcome, reason)


def test_parallel_merge_keeps_the_probe_of_the_worker_that_started_the_target() -> None:
    """With -n 2, a worker whose scenarios of a receiver were all skipped never probed it."""
    from harness.engine.parallel import merge
    from harness.report.model import RunResult

    def result(info: TargetInfo) -> RunResult:
        return RunResult(tool={}, started="a", finished="b", targets=[info], scenarios=[], requirements=[])

    idle = TargetInfo("aiosmtpd", "managed", None, {"features": []}, 0)
    busy = TargetInfo("aiosmtpd", "managed", "1.4.6", {"features": [], "banner": "mta.target.test",
                                                       "ehlo": ["SIZE"]}, 1)
    [merged] = merge([result(idle), result(busy)], False, []).targets
    assert (merged.version, merged.restarts) == ("1.4.6", 1)
    assert merged.capabilities == {"features": [], "banner": "mta.target.test", "ehlo": ["SIZE"]}
