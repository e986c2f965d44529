"""Checks in harness/engine/checks/dane.py, each made to pass and to fail.

Peer sessions here are real: a FakeMX on 127.0.0.1 with a certificate from a test PKI records a
connection from the project's own SessionRunner, which plays a deliberately right or wrong DANE
client — one that sends MAIL in clear, sends no SNI or the wrong one, or never connects. DNS query
logs and target logs are built as data: the first as QueryRecords, the second as Exim log lines
in the format Exim 4.96 writes (copied from runs in the lab).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from cryptography import x509
from OpenSSL import SSL

from harness.dns.querylog import QueryRecord
from harness.engine.actions.session import SessionRunner
from harness.engine.checks import all_checks
from harness.engine.checks.base import Verdict
from harness.engine.checks.dane import LOG_READERS, read_exim_log, target_log
from harness.engine.observations import Observations, SessionRecord
from harness.engine.tls_world import peer_tls
from harness.pki.ca import PKI
from harness.report.model import Outcome
from harness.smtp.peer import FakeMX, PeerSession, script_from_data
from harness.targets.queue import QueueEntry

CHECKS = all_checks()
EHLO_TLS = ["STARTTLS", "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"]
EHLO = {"ehlo": "mta.client.test"}
MAIL = {"mail": {"from": "sender@sender.test"}}
RCPT = {"rcpt": {"to": "r1@d.test"}}
DATA = {"data": {"body": "Subject: t\r\n\r\nhello\r\n"}}


def run(name: str, obs: Observations, params: Mapping[str, Any]) -> Verdict:
    assert CHECKS[name].validate_params(params) is None, params
    return CHECKS[name](obs, params)


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    lab = PKI("test lab")
    return {"mx": lab.issue(["mx.d.test"]), "lab": lab}


def serve(pki: Mapping[str, Any], script: Mapping[str, Any], *attempts: Sequence[Any], chain: str = "intermediate",
          name: str = "mx") -> tuple[list[PeerSession], list[SessionRecord]]:
    """Play each list of steps over one connection to a FakeMX with TLS; (its records, ours)."""
    tls = peer_tls({"cert": "mx", "chain": chain}, {"mx": pki["mx"]}, "test")
    mx = FakeMX(name, "127.0.0.1", 0, script_from_data(dict(script)), socket_factory=socket.socket, tls=tls,
                hostname="mx.d.test")
    records = []
    with mx:
        for steps in attempts:
            runner = SessionRunner(lambda: socket.create_connection(("127.0.0.1", mx.port), timeout=5.0),
                                   lambda role, n: None, reply_timeout=5.0)
            records.append(runner.run(list(steps)))
            mx.wait_idle(5.0)
    return mx.sessions_seen, records


@pytest.fixture(scope="module")
def peers(pki: dict[str, Any]) -> dict[str, list[PeerSession]]:
    tls = {"ehlo": EHLO_TLS}
    deliver = [EHLO, MAIL, RCPT, DATA, "quit"]
    return {
        # A right DANE client: STARTTLS with SNI mx.d.test, then the transaction over TLS.
        "dane": serve(pki, tls, [EHLO, {"starttls": {"sni": "mx.d.test"}}, *deliver])[0],
        # Wrong clients: cleartext although STARTTLS is offered; TLS without SNI; the wrong SNI.
        "clear": serve(pki, tls, deliver)[0],
        "no_sni": serve(pki, tls, [EHLO, {"starttls": None}, *deliver])[0],
        "wrong_sni": serve(pki, tls, [EHLO, {"starttls": {"sni": "real.u.test"}}, *deliver])[0],
        # After a 454 to STARTTLS, the transaction in clear (a downgrade).
        "downgrade": serve(pki, {**tls, "starttls": "454 4.7.0 TLS not available"},
                           [EHLO, {"starttls": None}, *deliver])[0],
        # A client that connects and leaves without MAIL (e.g. after refusing the certificate).
        "no_mail": serve(pki, tls, [EHLO, {"starttls": {"sni": "mx.d.test"}}, EHLO, "quit"])[0],
        # A peer that refuses the message after DATA: no delivery although MAIL went over TLS.
        "refused": serve(pki, {**tls, "end_of_data": ["554 5.7.1 no"]},
                         [EHLO, {"starttls": {"sni": "mx.d.test"}}, *deliver])[0],
    }


def observe(**peers: Sequence[PeerSession]) -> Observations:
    return Observations("test", "exim", peers={name: list(s) for name, s in peers.items()})


# --- delivered_over_tls, no_cleartext_mail ---------------------------------------------------------

def test_delivered_over_tls_passes_for_a_dane_client(peers: dict[str, list[PeerSession]]) -> None:
    [s] = peers["dane"]
    assert s.tls and s.tls["handshake_ok"] and s.tls["tls_established_before_mail"]
    v = run("delivered_over_tls", observe(mx=peers["dane"]), {"recipients": ["r1@d.test"], "peer": "mx"})
    assert v.outcome is Outcome.PASS and v.message == "delivered over TLS: r1@d.test"
    assert v.evidence[0].content[0]["MAIL"] == "over TLS"


@pytest.mark.parametrize("client", ["clear", "downgrade"])
def test_delivered_over_tls_fails_for_a_cleartext_delivery(client: str, peers: dict[str, list[PeerSession]]) -> None:
    v = run("delivered_over_tls", observe(mx=peers[client]), {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and "delivered in clear" in v.message
    assert "MAIL in clear" in (v.actual or "")
    if client == "downgrade":
        assert "STARTTLS refused by the peer" in v.message


def test_delivered_over_tls_fails_without_delivery(peers: dict[str, list[PeerSession]]) -> None:
    for client in ("no_mail", "refused"):
        v = run("delivered_over_tls", observe(mx=peers[client]), {"recipients": ["r1@d.test"], "peer": "mx"})
        assert v.outcome is Outcome.FAIL and v.message == "no peer mx accepted a message for <r1@d.test>"
    v = run("delivered_over_tls", observe(mx=peers["dane"]), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL


def test_delivered_over_tls_passes_when_one_of_several_attempts_was_over_tls(
        peers: dict[str, list[PeerSession]]) -> None:
    v = run("delivered_over_tls", observe(mx=[*peers["no_mail"], *peers["dane"]]), {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.PASS


def test_no_cleartext_mail(peers: dict[str, list[PeerSession]]) -> None:
    for client in ("dane", "no_mail", "no_sni", "refused"):
        assert run("no_cleartext_mail", observe(mx=peers[client]), {}).outcome is Outcome.PASS, client
    assert run("no_cleartext_mail", observe(), {}).outcome is Outcome.PASS
    for client in ("clear", "downgrade"):
        v = run("no_cleartext_mail", observe(mx=peers[client]), {})
        assert v.outcome is Outcome.FAIL and v.message.startswith("MAIL reached mx in clear"), client
        assert v.actual == "MAIL FROM:<sender@sender.test>"
    obs = observe(mx=peers["dane"], backup=peers["clear"])
    assert run("no_cleartext_mail", obs, {"peer": "mx"}).outcome is Outcome.PASS
    assert run("no_cleartext_mail", obs, {"peer": "backup"}).outcome is Outcome.FAIL
    assert run("no_cleartext_mail", obs, {}).outcome is Outcome.FAIL


# --- no_mail_via, delivered_via, first_connection ----------------------------------------------

def test_no_mail_via(peers: dict[str, list[PeerSession]]) -> None:
    v = run("no_mail_via", observe(mx=peers["no_mail"]), {"peer": "mx"})
    assert v.outcome is Outcome.PASS and v.message == "mx: 1 connection(s), no MAIL"
    assert run("no_mail_via", observe(), {"peer": "mx", "connection": False}).outcome is Outcome.PASS
    v = run("no_mail_via", observe(mx=peers["no_mail"]), {"peer": "mx", "connection": False})
    assert v.outcome is Outcome.FAIL and v.message == "the target connected to mx 1 time(s)"
    for client in ("dane", "clear", "refused"):
        v = run("no_mail_via", observe(mx=peers[client]), {"peer": "mx"})
        assert v.outcome is Outcome.FAIL and v.message.startswith("MAIL reached mx"), client
    assert run("no_mail_via", observe(mx=peers["dane"]), {"peer": "other"}).outcome is Outcome.PASS


def test_delivered_via(peers: dict[str, list[PeerSession]]) -> None:
    obs = observe(mx1=peers["no_mail"], mx2=peers["dane"])
    assert run("delivered_via", obs, {"peer": "mx2", "recipients": ["r1@d.test"]}).outcome is Outcome.PASS
    v = run("delivered_via", obs, {"peer": "mx1", "recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and v.actual == "delivered via mx2"
    v = run("delivered_via", observe(mx1=peers["refused"]), {"peer": "mx1", "recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and v.actual == "not delivered"


def test_first_connection(pki: dict[str, Any]) -> None:
    first, _ = serve(pki, {"ehlo": EHLO_TLS}, [EHLO, "quit"], name="mx1")
    second, _ = serve(pki, {"ehlo": EHLO_TLS}, [EHLO, "quit"], name="mx2")
    obs = observe(mx2=second, mx1=first)
    assert run("first_connection", obs, {"peer": "mx1"}).outcome is Outcome.PASS
    v = run("first_connection", obs, {"peer": "mx2"})
    assert v.outcome is Outcome.FAIL and v.message == "the first connection went to mx1"
    v = run("first_connection", observe(), {"peer": "mx1"})
    assert v.outcome is Outcome.FAIL and v.actual == "no connection"


# --- peer_sni --------------------------------------------------------------------------------------

def test_peer_sni_equals(peers: dict[str, list[PeerSession]]) -> None:
    v = run("peer_sni", observe(mx=peers["dane"]), {"peer": "mx", "equals": "MX.d.test."})
    assert v.outcome is Outcome.PASS and v.message == "SNI: 'mx.d.test'"
    v = run("peer_sni", observe(mx=peers["no_sni"]), {"peer": "mx", "equals": "mx.d.test"})
    assert v.outcome is Outcome.FAIL and v.actual == "None"
    v = run("peer_sni", observe(mx=peers["wrong_sni"]), {"equals": "mx.d.test"})
    assert v.outcome is Outcome.FAIL and v.actual == "'real.u.test'"
    v = run("peer_sni", observe(mx=peers["clear"]), {"equals": "mx.d.test"})
    assert v.outcome is Outcome.FAIL and v.actual == "no STARTTLS"


def test_peer_sni_not_equals(peers: dict[str, list[PeerSession]]) -> None:
    for client in ("dane", "no_sni", "clear"):
        assert run("peer_sni", observe(mx=peers[client]), {"not_equals": "real.u.test"}).outcome is Outcome.PASS
    v = run("peer_sni", observe(mx=peers["wrong_sni"]), {"peer": "mx", "not_equals": "real.u.test"})
    assert v.outcome is Outcome.FAIL and v.expected == "any SNI but real.u.test"


# --- the DNS query log -----------------------------------------------------------------------------

def query(n: int, qname: str, qtype: str, rcode: str | None = "NOERROR", ad: bool = True) -> QueryRecord:
    return QueryRecord(float(n), f"2026-01-01T00:00:0{n}", "udp", "192.0.2.25", 5353, "secure", id=n,
                       qname=qname, qtype=qtype, rcode=rcode, ad=ad)


def dns(*queries: tuple[str, str]) -> Observations:
    obs = Observations("test", "exim")
    obs.dns_log = [query(i, n, t) for i, (n, t) in enumerate(queries, start=1)]
    return obs


DANE_ORDER = dns(("d.test", "MX"), ("mx.d.test", "AAAA"), ("mx.d.test", "A"), ("_25._tcp.mx.d.test", "TLSA"))
ORDER = {"first": {"qname": "mx.d.test", "qtype": ["A", "AAAA"]}, "then": {"qname": "_25._tcp.mx.d.test", "qtype": "TLSA"}}


def test_dns_query() -> None:
    assert run("dns_query", DANE_ORDER, {"qname": "_25._tcp.MX.d.test.", "qtype": "tlsa", "present": True}).outcome is Outcome.PASS
    assert run("dns_query", DANE_ORDER, {"qtype": "TLSA", "present": True}).outcome is Outcome.PASS
    v = run("dns_query", DANE_ORDER, {"qtype": ["TLSA"], "present": False})
    assert v.outcome is Outcome.FAIL and v.message == "the target asked for _25._tcp.mx.d.test TLSA"
    v = run("dns_query", DANE_ORDER, {"qname": "_2525._tcp.mx.d.test", "qtype": "TLSA", "present": True})
    assert v.outcome is Outcome.FAIL and v.message == "no query for _2525._tcp.mx.d.test TLSA"
    assert run("dns_query", dns(("d.test", "MX")), {"qtype": "TLSA", "present": False}).outcome is Outcome.PASS


def test_dns_order_passes_for_addresses_before_tlsa() -> None:
    v = run("dns_order", DANE_ORDER, ORDER)
    assert v.outcome is Outcome.PASS and v.message.endswith("(query #3) before _25._tcp.mx.d.test TLSA (query #4)")


def test_dns_order_fails_for_a_tlsa_lookup_before_an_address_lookup() -> None:
    obs = dns(("d.test", "MX"), ("mx.d.test", "A"), ("_25._tcp.mx.d.test", "TLSA"), ("mx.d.test", "AAAA"))
    v = run("dns_order", obs, ORDER)
    assert v.outcome is Outcome.FAIL
    assert v.message == "mx.d.test AAAA (query #4) came after _25._tcp.mx.d.test TLSA (query #3)"


def test_dns_order_fails_when_either_query_is_missing() -> None:
    v = run("dns_order", dns(("d.test", "MX"), ("mx.d.test", "A")), ORDER)
    assert v.outcome is Outcome.FAIL and v.message == "no query for _25._tcp.mx.d.test TLSA"
    v = run("dns_order", dns(("_25._tcp.mx.d.test", "TLSA")), ORDER)
    assert v.outcome is Outcome.FAIL and v.message == "no query for mx.d.test A/AAAA"


# --- the target's log ------------------------------------------------------------------------------

PREFIX = "2026-11-25 12:26:23.816 [15811] 1xWC4t-000470-2S "
EXIM_DANE = [
    PREFIX + "<= sender@sender.test U=root P=local S=350 for r1@d.test",
    PREFIX + "MTAC event=tls:cert data=<0> host=mx.d.test ip=198.51.100.1 dane=no usage=8 ocsp=1",
    PREFIX + "=> r1@d.test F=<sender@sender.test> P=<sender@sender.test> R=remote T=remote_smtp S=365 "
             "H=mx.d.test DS [198.51.100.1]:25 I=[192.0.2.25]:44247 X=TLS1.3:ECDHE_SECP256R1__AES_256_GCM:256 "
             'CV=dane DN="O=mtaconform lab" L C="250 2.0.0 queued" QT=0.047s DT=0.030s',
    PREFIX + "MTAC event=msg:delivery data=<250 2.0.0 queued> host=mx.d.test ip=198.51.100.1 dane=yes usage=0 ocsp=3",
    PREFIX + "Completed QT=0.057s",
]
EXIM_PKIX = [
    PREFIX + "=> r1@d.test F=<sender@sender.test> P=<sender@sender.test> R=remote T=remote_smtp S=387 "
             "H=mx.d.test [198.51.100.1]:25 I=[192.0.2.25]:51469 X=TLS1.3:ECDHE_SECP256R1__AES_256_GCM:256 "
             'CV=yes DN="O=mtaconform lab" L C="250 2.0.0 queued" QT=0.018s DT=0.007s',
]
EXIM_DEFER = [
    PREFIX + "DANE attempt failed; TLS connection to mx.d.test [198.51.100.1]: (certificate verification failed): "
             "certificate invalid",
    PREFIX + "== r1@d.test R=remote T=remote_smtp defer (-37) H=mx.d.test DS [198.51.100.1]:25 I=[192.0.2.25]:56509 "
             "DT=0.004s: TLS session: (certificate verification failed): certificate invalid",
]
EXIM_BOUNCE = [
    PREFIX + "** r1@d.test F=<sender@sender.test> P=<sender@sender.test> R=remote T=remote_smtp: "
             "DANE error: mx.d.test lookup not DNSSEC DT=0.000s",
]
EXIM_CNAME = [
    PREFIX + "=> r1@d.test F=<sender@sender.test> P=<sender@sender.test> R=remote T=remote_smtp S=411 "
             "H=real.p.test DS [198.51.100.1]:25 I=[192.0.2.25]:38481 X=TLS1.3:ECDHE:256 CV=no L "
             'C="250 2.0.0 queued" QT=0.018s DT=0.007s',
]


def logs(*lines: str, queue: Sequence[str] | None = (), peers: Mapping[str, list[PeerSession]] | None = None
         ) -> Observations:
    obs = Observations("test", "exim", logs={"main": list(lines), "panic": []}, peers=dict(peers or {}))
    obs.queue = None if queue is None else [QueueEntry("1xWC4t-000470-2S", "sender@sender.test", tuple(queue), ())]
    return obs


def test_read_exim_log() -> None:
    log = read_exim_log({"main": EXIM_DANE + EXIM_DEFER + EXIM_BOUNCE})
    assert log is not None and log.reader == "exim"
    delivered, deferred, bounced = log.decisions
    assert (delivered.kind, delivered.recipient, delivered.host, delivered.address, delivered.port) == (
        "delivered", "r1@d.test", "mx.d.test", "198.51.100.1", 25)
    assert delivered.dnssec and delivered.dane and delivered.verification == "dane"
    assert delivered.tls == "TLS1.3:ECDHE_SECP256R1__AES_256_GCM:256" and delivered.detail == "250 2.0.0 queued"
    assert (deferred.kind, deferred.host, deferred.verification) == ("deferred", "mx.d.test", None)
    assert deferred.detail.startswith("defer (-37) H=mx.d.test DS")
    assert (bounced.kind, bounced.host, bounced.dnssec) == ("bounced", None, False)
    assert "lookup not DNSSEC" in bounced.detail
    assert [(e.name, e.dane, e.tlsa_usages) for e in log.events] == [
        ("tls:cert", False, (3,)), ("msg:delivery", True, ())]
    assert log.remarks == [EXIM_DEFER[0]]
    assert read_exim_log({"main": EXIM_PKIX}).decisions[0].verification == "pkix"  # type: ignore[union-attr]


def test_read_exim_log_does_not_claim_other_logs() -> None:
    assert read_exim_log({"main": ["Nov 25 12:00:00 host postfix/smtp[1]: 1234: to=<r1@d.test>, status=sent"]}) is None
    assert read_exim_log({}) is None
    assert target_log(Observations("test", "x", logs={"main": ["not a log line"]})) is None
    assert list(LOG_READERS) == ["exim", "postfix"]


def test_dane_authenticated() -> None:
    v = run("dane_authenticated", logs(*EXIM_DANE), {"recipients": ["R1@d.test"]})
    assert v.outcome is Outcome.PASS and v.message == "DANE-authenticated: r1@d.test"
    assert v.evidence[0].content[0]["verified"] == "dane"
    assert run("dane_authenticated", logs(*EXIM_DANE), {}).outcome is Outcome.PASS
    for lines in (EXIM_PKIX, EXIM_DEFER, EXIM_CNAME):
        v = run("dane_authenticated", logs(*lines), {"recipients": ["r1@d.test"]})
        assert v.outcome is Outcome.FAIL and v.message == "no DANE-authenticated delivery logged for r1@d.test"
    v = run("dane_authenticated", logs(*EXIM_PKIX), {"recipients": ["r1@d.test"]})
    assert v.actual == "r1@d.test via mx.d.test: verified=pkix"
    v = run("dane_authenticated", logs(*EXIM_DANE), {"recipients": ["r2@d.test"]})
    assert v.outcome is Outcome.FAIL


def test_dane_authenticated_absent() -> None:
    for lines in (EXIM_PKIX, EXIM_DEFER):
        v = run("dane_authenticated", logs(*lines), {"recipients": ["r1@d.test"], "present": False})
        assert v.outcome is Outcome.PASS and v.message == "no delivery is claimed as DANE-authenticated"
    v = run("dane_authenticated", logs(*EXIM_DANE), {"present": False})
    assert v.outcome is Outcome.FAIL
    assert v.message == "the target claims a DANE-authenticated delivery of r1@d.test via mx.d.test"
    assert run("dane_authenticated", logs(*EXIM_DANE), {"recipients": ["r2@d.test"], "present": False}
               ).outcome is Outcome.PASS


def test_log_checks_skip_for_a_log_no_reader_understands() -> None:
    obs = logs("something else")
    for name, params in (("dane_authenticated", {}), ("no_dnssec_claim", {"recipients": ["r1@d.test"]}),
                         ("log_names_host", {"recipients": ["r1@d.test"], "host": "mx.d.test"})):
        v = run(name, obs, params)
        assert v.outcome is Outcome.SKIP and "LOG_READERS" in v.message, name


def test_no_dnssec_claim() -> None:
    assert run("no_dnssec_claim", logs(*EXIM_PKIX), {"recipients": ["r1@d.test"]}).outcome is Outcome.PASS
    for lines in (EXIM_DANE, EXIM_DEFER):
        v = run("no_dnssec_claim", logs(*lines), {"recipients": ["r1@d.test"]})
        assert v.outcome is Outcome.FAIL and v.message == "the log marks the host of r1@d.test (mx.d.test) as DNSSEC-secure"


def test_log_names_host() -> None:
    v = run("log_names_host", logs(*EXIM_PKIX), {"recipients": ["r1@d.test"], "host": "mx.d.test"})
    assert v.outcome is Outcome.PASS
    v = run("log_names_host", logs(*EXIM_CNAME), {"recipients": ["r1@d.test"], "host": "mx.d.test"})
    assert v.outcome is Outcome.FAIL and v.message == "the log names real.p.test for r1@d.test"
    v = run("log_names_host", logs(*EXIM_BOUNCE), {"recipients": ["r1@d.test"], "host": "mx.d.test"})
    assert v.outcome is Outcome.FAIL and v.message == "no logged attempt for r1@d.test names a host"


def test_deferred_not_bounced(peers: dict[str, list[PeerSession]]) -> None:
    v = run("deferred_not_bounced", logs(*EXIM_DEFER, queue=["r1@d.test"], peers={"mx": peers["no_mail"]}),
            {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.PASS and v.message == "deferred: r1@d.test"
    v = run("deferred_not_bounced", logs(*EXIM_BOUNCE, queue=[]), {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "<r1@d.test> was bounced"
    assert "lookup not DNSSEC" in (v.actual or "")
    v = run("deferred_not_bounced", logs(*EXIM_DANE, queue=[], peers={"mx": peers["dane"]}),
            {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "<r1@d.test> was delivered"
    v = run("deferred_not_bounced", logs(*EXIM_DEFER, queue=[]), {"recipients": ["r1@d.test"]})
    assert v.outcome is Outcome.FAIL and v.message == "<r1@d.test> left the queue"
    assert run("deferred_not_bounced", logs(queue=None), {"recipients": ["r1@d.test"]}).outcome is Outcome.SKIP


# --- the MTA as TLS server -------------------------------------------------------------------------

def server(pki: Mapping[str, Any], script: Mapping[str, Any], starttls: Any, chain: str = "intermediate") -> Observations:
    """The harness's inbound session, with a STARTTLS step, against a FakeMX playing the target."""
    _, [record] = serve(pki, script, [EHLO, {"starttls": starttls}, "quit"], chain=chain)
    return Observations("test", "faulty", sessions=[record])


def test_server_tls_handshake(pki: dict[str, Any]) -> None:
    for sni in (None, "unknown.invalid"):
        obs = server(pki, {"ehlo": EHLO_TLS}, {"sni": sni})
        assert obs.session and obs.session.tls and obs.session.tls["sni_sent"] == sni
        v = run("server_tls_handshake", obs, {})
        assert v.outcome is Outcome.PASS and v.message.endswith("completed: O=test lab"), sni
    # A server that answers STARTTLS and then drops the handshake (as one enforcing SNI would).
    v = run("server_tls_handshake", server(pki, {"ehlo": EHLO_TLS, "starttls": {"reply": "220 go", "close": True}},
                                           None), {})
    assert v.outcome is Outcome.FAIL and v.message == "the TLS handshake with no SNI did not complete"
    v = run("server_tls_handshake", server(pki, {"ehlo": EHLO_TLS, "starttls": "454 4.7.0 not now"},
                                           {"sni": "unknown.invalid"}), {})
    assert v.outcome is Outcome.FAIL and v.actual == "STARTTLS answered 454"


def test_server_tls_handshake_fails_for_a_server_that_requires_sni(pki: dict[str, Any]) -> None:
    """A deliberately wrong server: without SNI in the ClientHello it has no certificate to offer.
    (Exim cannot be configured this way — without SNI it always serves its first certificate — so
    DANE-31's no-SNI check is made to fail here.)"""
    tls = peer_tls({"cert": "mx"}, {"mx": pki["mx"]}, "test")
    mx = FakeMX("mx", "127.0.0.1", 0, script_from_data({"ehlo": EHLO_TLS}), socket_factory=socket.socket, tls=tls)

    def demand_sni(conn: SSL.Connection) -> None:
        conn.get_app_data()["sni"] = conn.get_servername()
        if conn.get_servername() is None:
            conn.set_context(SSL.Context(SSL.TLS_SERVER_METHOD))  # no certificate to offer

    mx._tls_ctx.set_tlsext_servername_callback(demand_sni)  # type: ignore[union-attr]
    records = {}
    with mx:
        for sni in (None, "mx.d.test"):
            records[sni] = SessionRunner(lambda: socket.create_connection(("127.0.0.1", mx.port), timeout=5.0),
                                         lambda role, n: None, reply_timeout=5.0).run(
                [EHLO, {"starttls": {"sni": sni}}, "quit"])
            mx.wait_idle(5.0)
    v = run("server_tls_handshake", Observations("test", "faulty", sessions=[records[None]]), {})
    assert v.outcome is Outcome.FAIL and v.message == "the TLS handshake with no SNI did not complete"
    assert "handshake failure" in (v.actual or "")
    v = run("server_tls_handshake", Observations("test", "faulty", sessions=[records["mx.d.test"]]), {})
    assert v.outcome is Outcome.PASS


def test_server_tls_handshake_without_starttls(pki: dict[str, Any]) -> None:
    obs = server(pki, {"ehlo": ["PIPELINING"]}, None)
    assert run("server_tls_handshake", obs, {}).outcome is Outcome.UNSUPPORTED
    assert run("server_tls_handshake", Observations("test", "x"), {}).outcome is Outcome.SKIP


def test_server_chain_has_ta(pki: dict[str, Any]) -> None:
    v = run("server_chain_has_ta", server(pki, {"ehlo": EHLO_TLS}, {"sni": "mx.d.test"}, chain="full"), {})
    assert v.outcome is Outcome.PASS and v.message.startswith("3 certificates up to the self-signed")
    table = v.evidence[0].content
    assert [r["ca"] for r in table] == [False, True, True] and table[-1]["self_issued"] is True
    for chain in ("intermediate", "leaf"):
        v = run("server_chain_has_ta", server(pki, {"ehlo": EHLO_TLS}, {"sni": "mx.d.test"}, chain=chain), {})
        assert v.outcome is Outcome.FAIL and v.message.startswith(f"the server presented {2 if chain != 'leaf' else 1}")
    v = run("server_chain_has_ta", server(pki, {"ehlo": EHLO_TLS}, None, chain="intermediate"), {"min_length": 2})
    assert v.outcome is Outcome.FAIL and "is not a self-signed trust anchor" in v.message


def test_server_chain_has_ta_fails_for_a_chain_out_of_order(pki: dict[str, Any]) -> None:
    obs = server(pki, {"ehlo": EHLO_TLS}, None, chain="full")
    assert obs.session is not None and obs.session.tls is not None
    pems = obs.session.tls["chain_pem"]
    obs.session.tls["chain_pem"] = [pems[0], pems[2], pems[1]]
    v = run("server_chain_has_ta", obs, {})
    assert v.outcome is Outcome.FAIL and "is not issued by the next certificate" in v.message


def test_the_recorded_chain_is_the_one_presented(pki: dict[str, Any]) -> None:
    obs = server(pki, {"ehlo": EHLO_TLS}, None, chain="full")
    assert obs.session is not None and obs.session.tls is not None
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in obs.session.tls["chain_pem"]]
    leaf = pki["mx"]
    assert chain == [leaf.cert, *leaf.intermediates, leaf.root]
