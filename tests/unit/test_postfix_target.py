"""The postfix target's pieces that are plain code: its queue listing (`postqueue -j`), its log as
the DANE and PROXY checks read it, the spec's extra template, and the activity probes its `quiet`
block relies on. Log lines are copied from Postfix 3.7.11 runs in the lab (smtp_tls_loglevel = 2,
smtpd_client_port_logging = yes)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from harness.engine.checks.dane import read_exim_log, read_postfix_log, target_log
from harness.engine.checks.proxy import _log_identities
from harness.engine.observations import Observations
from harness.targets import activity
from harness.targets.queue import QueueEntry, parse_postfix, parse_queue
from harness.targets.spec import resolve

# --- postqueue -j ------------------------------------------------------------------------------

DEFERRED = {"queue_name": "deferred", "queue_id": "6AAC31743A9", "arrival_time": 1764080801,
            "message_size": 395, "forced_expire": False, "sender": "sender@sender.test",
            "recipients": [{"address": "r1@d.test", "delay_reason": "Server certificate not verified"},
                           {"address": "R2@d.test"}]}
HELD_BOUNCE = {"queue_name": "hold", "queue_id": "8DD2D1741FF", "sender": "",
               "recipients": [{"address": "sender@sender.test"}]}


def test_postqueue_json_lines() -> None:
    text = json.dumps(DEFERRED) + "\n" + json.dumps(HELD_BOUNCE) + "\n"
    assert parse_postfix(text) == [
        QueueEntry("6AAC31743A9", "sender@sender.test", ("r1@d.test", "R2@d.test"), ()),
        QueueEntry("8DD2D1741FF", "", ("sender@sender.test",), (), frozen=True),
    ]
    assert parse_queue("postfix", text) == parse_postfix(text)
    assert Observations("s", "postfix", queue=parse_postfix(text)).queued() == {
        "r1@d.test", "r2@d.test", "sender@sender.test"}


@pytest.mark.parametrize("text", ["", "\n", "  \n\n"])
def test_postqueue_empty_queue(text: str) -> None:
    assert parse_postfix(text) == []


@pytest.mark.parametrize("line", ["postqueue: fatal: Queue report unavailable - mail system is down",
                                  '{"queue_name": "active"}', "[1, 2]"])
def test_postqueue_garbage_names_the_line(line: str) -> None:
    with pytest.raises(ValueError, match=r"postqueue -j line 2: not a queue entry"):
        parse_postfix(json.dumps(DEFERRED) + "\n" + line + "\n")


# --- the maillog, read for the DANE checks --------------------------------------------------------

H = "Nov 25 14:26:59 mta postfix/"
DANE_EE = [
    H + "pickup[22778]: A1BC817443F: uid=0 from=<sender@sender.test>",
    H + "smtp[23623]: DNSSEC-signed TLSA record: _25._tcp.mx.d.test: 3 1 1 92847D74069B0E69",
    H + "smtp[23623]: SSL_connect:SSLv3/TLS write client hello",
    H + "smtp[23623]: mx.d.test[198.51.100.1]:25: Matched DANE EE certificate at depth 0: 3 1 1 92847D74",
    H + "smtp[23623]: Verified TLS connection established to mx.d.test[198.51.100.1]:25: TLSv1.3 with "
        "cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519",
    H + "smtp[23623]: A1BC817443F: to=<r1@d.test>, relay=mx.d.test[198.51.100.1]:25, delay=0.17, "
        "delays=0.06/0.08/0.04/0, dsn=2.0.0, status=sent (250 2.0.0 queued)",
    H + "qmgr[22779]: A1BC817443F: removed",
]
# An insecure MX: the TLSA record still matched, but Postfix says "Trusted", not "Verified".
INSECURE_MX = [
    H + "smtp[23656]: mx.d.test[198.51.100.1]:25: Matched DANE EE certificate at depth 0: 3 1 1 247FAAD8",
    H + "smtp[23656]: Trusted TLS connection established to mx.d.test[198.51.100.1]:25: TLSv1.3 with "
        "cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
    H + "smtp[23656]: 724BB174442: to=<r1@d.test>, relay=mx.d.test[198.51.100.1]:25, delay=0.05, "
        "delays=0.01/0.01/0.03/0, dsn=2.0.0, status=sent (250 2.0.0 queued)",
]
MISMATCH = [
    H + "smtp[22824]: server certificate verification failed for mx.d.test[198.51.100.1]:25: "
        "num=65:no matching DANE TLSA records",
    H + "smtp[22824]: Untrusted TLS connection established to mx.d.test[198.51.100.1]:25: TLSv1.3 with "
        "cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
    H + "smtp[22824]: 6AAC31743A9: to=<r1@d.test>, relay=mx.d.test[198.51.100.1]:25, delay=0.09, "
        "delays=0.01/0.05/0.03/0, dsn=4.7.5, status=deferred (Server certificate not verified)",
]
NO_HOST = [
    H + "smtp[30001]: 0B1C2D3E4F: to=<r1@d.test>, relay=none, delay=0.02, delays=0.01/0/0.01/0, "
        "dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=d.test "
        "type=MX: Host not found)",
]


def test_read_postfix_log_dane_delivery() -> None:
    log = read_postfix_log({"main": DANE_EE})
    assert log is not None and log.reader == "postfix"
    [d] = log.decisions
    assert (d.kind, d.recipient, d.host, d.address, d.port) == ("delivered", "r1@d.test", "mx.d.test",
                                                                "198.51.100.1", 25)
    assert d.dane and d.dnssec and d.tls == "TLS_AES_256_GCM_SHA384" and d.detail == "250 2.0.0 queued"
    assert DANE_EE[2] not in log.remarks  # OpenSSL state lines are noise
    assert DANE_EE[3] in log.remarks and DANE_EE[4] in log.remarks


def test_read_postfix_log_trust_levels_and_failures() -> None:
    [d] = read_postfix_log({"main": INSECURE_MX}).decisions  # type: ignore[union-attr]
    assert (d.verification, d.dane, d.dnssec) == ("trusted", False, False)
    [d] = read_postfix_log({"main": MISMATCH}).decisions  # type: ignore[union-attr]
    assert (d.kind, d.verification, d.detail) == ("deferred", "none", "Server certificate not verified")
    [d] = read_postfix_log({"main": NO_HOST}).decisions  # type: ignore[union-attr]
    assert (d.kind, d.host, d.address, d.port, d.verification) == ("bounced", None, None, None, None)
    assert d.detail.startswith("Host or domain name not found")


def test_a_dane_match_of_another_process_does_not_count() -> None:
    lines = [DANE_EE[3].replace("[23623]", "[1]")] + DANE_EE[4:]
    [d] = read_postfix_log({"main": lines}).decisions  # type: ignore[union-attr]
    assert d.verification == "pkix" and not d.dane


def test_postfix_and_exim_readers_keep_to_their_own_logs() -> None:
    exim = ["2026-11-25 12:26:23.816 [15811] 1xWC4t-000470-2S Completed QT=0.057s"]
    assert read_postfix_log({"main": exim}) is None and read_postfix_log({}) is None
    assert read_exim_log({"main": DANE_EE}) is None
    found = target_log(Observations("t", "postfix", logs={"main": DANE_EE}))
    assert found is not None and found.reader == "postfix"


# --- the maillog and mailbox, read for the PROXY checks -------------------------------------------

def test_proxy_identities_from_postfix_lines() -> None:
    obs = Observations("t", "postfix", logs={
        "main": [H + "smtpd[401]: connect from unknown[203.0.113.7]:40123",
                 H + "smtpd[401]: 9F00A1: client=unknown[203.0.113.7]:40123",
                 H + "smtpd[402]: NOQUEUE: reject: RCPT from unknown[198.51.100.200]:40124: 554 5.7.1 "
                     "<unknown[198.51.100.200]>: Client host rejected: client is in a refused range",
                 H + "qmgr[403]: 9F00A1: from=<sender@client.test>, size=400, nrcpt=1 (queue active)",
                 H + "smtp[404]: 9F00A1: to=<a@relay.test>, relay=mx.relay.test[198.51.100.3]:25, status=sent (ok)"],
        "mailbox": ["Received: from client.test (unknown [203.0.113.7])"]})
    clients, proxies = _log_identities(obs)
    assert [(i.where, str(i.address.ip), i.address.port) for i in clients] == [
        ("log", "203.0.113.7", 40123), ("log", "203.0.113.7", 40123), ("log", "198.51.100.200", 40124),
        ("Received:", "203.0.113.7", None)]
    assert proxies == []  # Postfix never logs the proxy's own address


# --- the spec ------------------------------------------------------------------------------------

def test_builtin_postfix_spec() -> None:
    spec = resolve("postfix")
    assert spec.managed and set(spec.features) == {"dane", "proxy", "dsn"}
    assert spec.proxy_port == 10025 and spec.start["ready"] == "port"
    assert spec.quiet["queue"] and spec.quiet["deferred"] == ["spool/deferred"]
    assert [e["file"] for e in spec.config["extra"]] == ["etc/master.cf"]
    assert spec.queue is not None and spec.queue.format == "postfix"
    assert set(spec.recipients) == {"accept", "reject_rcpt", "defer_rcpt"}
    assert {"dane", "client_port", "delay_warning", "dsn", "proxy_timeout"} <= set(spec.knobs)
    assert "prdr" not in spec.knobs and not any(k.startswith("ocsp") for k in spec.knobs)


def test_an_extra_template_that_does_not_exist_is_named(tmp_path: Path) -> None:
    from harness.engine.yamlsrc import InputError

    (tmp_path / "main.j2").write_text("x\n")
    (tmp_path / "t.yaml").write_text(
        "name: t\nkind: managed\ninstall_check: [\"true\"]\nstart: {command: [\"true\"]}\n"
        "config:\n  template: main.j2\n  file: main.cf\n  extra:\n    - {template: nope.j2, file: m.cf}\n")
    with pytest.raises(InputError, match=r"nope\.j2 does not exist") as info:
        resolve(str(tmp_path / "t.yaml"))
    assert info.value.line == 9


# --- activity probes -----------------------------------------------------------------------------

TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 1902000C:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1
   1: 1902000C:0019 0B02000C:9C4B 01 00000000:00000000 00:00000000 00000000   999        0 4343 1
   2: 1902000C:0019 0B02000C:9C4C 06 00000000:00000000 03:00000000 00000000     0        0 0 3
"""


def test_tcp_table_rows() -> None:
    rows = activity._parse_tcp_table(TCP_TABLE)
    assert [(r.inode, r.state, r.local_port) for r in rows] == [
        (4242, activity.TCP_LISTEN, 25), (4343, 1, 25), (0, activity.TCP_TIME_WAIT, 25)]
    assert activity._parse_tcp_table("header only\n") == []


def test_connected_sees_a_process_holding_a_connection() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        assert os.getpid() not in activity.connected([os.getpid()])  # listening only
        client = socket.create_connection(server.getsockname())
        try:
            assert activity.connected([os.getpid()]) == {os.getpid()}
        finally:
            client.close()
    finally:
        server.close()
    assert activity.connected([]) == set()


def test_files_below_and_stamps(tmp_path: Path) -> None:
    (tmp_path / "spool/deferred/A").mkdir(parents=True)
    (tmp_path / "spool/active").mkdir(parents=True)
    msg = tmp_path / "spool/deferred/A/ABC123"
    msg.write_text("x")
    assert activity.files_below(tmp_path, ["spool/active"]) == []
    assert activity.files_below(tmp_path, ["spool/deferred", "spool/nope"]) == [msg]
    before = activity.stamps([msg])
    os.utime(msg, (1, 1))
    assert activity.stamps([msg]) != before
    msg.unlink()
    assert activity.stamps([msg]) == {}


# --- two DSN checks, as Postfix showed them too strict ---------------------------------------------

def test_dsn_arrived_counts_an_alias_expansion_only_when_allowed() -> None:
    from harness.engine.checks import all_checks
    from support.dsn import observe, sample

    check = all_checks()["dsn_arrived"]
    obs = observe(bounces=[sample("postfix-3.7-failure.eml")], recipients=["alias@example.net"])
    plain = {"kind": "failure", "recipients": ["alias@example.net"]}
    allowed = {**plain, "allow": {"alias@example.net": ["nobody@example.net"]}}
    assert check.validate_params(allowed) is None
    assert check(obs, plain).outcome.value == "fail"
    assert check(obs, allowed).outcome.value == "pass"
    other = {**plain, "allow": {"alias@example.net": ["somebody@example.net"]}}
    assert check(obs, other).outcome.value == "fail"


def test_orcpt_values_compare_decoded() -> None:
    from harness.engine.checks.dsn import same_orcpt

    assert same_orcpt("rfc822;orig+40d.test", "RFC822;orig@d.test")
    assert not same_orcpt("rfc822;orig+40d.test", "rfc822;other@d.test")
    assert not same_orcpt("rfc822;orig+40d.test", "x-local;orig@d.test")
    assert not same_orcpt("rfc822;orig+4", "rfc822;orig+4") and not same_orcpt("rfc822;a", None)
