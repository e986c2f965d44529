"""FakeMX over loopback sockets: dialogue, PRDR blocks, scripted misbehaviour, BDAT, STARTTLS."""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from OpenSSL import SSL, crypto

from harness.smtp.codec import NEED_DATA, Reply, ReplyParser
from harness.smtp.peer import FakeMX, PeerScript, PeerSession, ReplyAction
from harness.smtp.peer_script import reply_action, script_from_data, unescape_raw


class Client:
    """A minimal test client over a plain socket or a pyOpenSSL connection."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.raw: socket.socket = sock
        sock.settimeout(timeout)
        self.parser = ReplyParser()
        self.received = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (SSL.ZeroReturnError, SSL.SysCallError, ConnectionError):
            chunk = b""
        if chunk:
            self.received += chunk
            self.parser.feed(chunk)
        return bool(chunk)

    def reply(self) -> Reply:
        while (event := self.parser.next_event()) is NEED_DATA:
            if not self._fill():
                raise EOFError("closed")
        return event  # type: ignore[return-value]

    def cmd(self, line: bytes) -> Reply:
        self.send(line + b"\r\n")
        return self.reply()

    def read_until_closed(self) -> bytes:
        while self._fill():
            pass
        return self.received

    def close(self) -> None:
        self.raw.close()


class Net:
    """FakeMX instances and client sockets of one test, all closed at teardown."""

    def __init__(self) -> None:
        self.peers: list[FakeMX] = []
        self.sockets: list[socket.socket] = []

    def __call__(self, script: PeerScript | None = None, **kwargs) -> FakeMX:
        mx = FakeMX("mx1", "127.0.0.1", 0, script, socket_factory=socket.socket,
                    hostname="mx1.d.test", **kwargs)
        mx.start()
        self.peers.append(mx)
        return mx

    def connect(self, mx: FakeMX) -> Client:
        sock = socket.create_connection(("127.0.0.1", mx.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sockets.append(sock)
        return Client(sock)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        for mx in self.peers:
            mx.stop()


@pytest.fixture
def serve() -> Iterator[Net]:
    net = Net()
    yield net
    net.close()


def only_session(mx: FakeMX) -> PeerSession:
    assert mx.wait_idle(5)
    (session,) = mx.sessions_seen
    return session


def transaction(c: Client, mail: bytes, rcpts: list[bytes]) -> list[Reply]:
    replies = [c.cmd(b"MAIL FROM:<" + mail)]
    replies += [c.cmd(b"RCPT TO:<" + r + b">") for r in rcpts]
    return replies


# -- the ordinary dialogue ----------------------------------------------------------------------


def test_default_dialogue(serve) -> None:
    mx = serve()
    c = serve.connect(mx)
    banner = c.reply()
    assert banner.raw == b"220 mx1.d.test ESMTP fake\r\n"
    ehlo = c.cmd(b"EHLO client.test")
    assert ehlo.code == 250 and ehlo.lines[0].startswith("mx1.d.test")
    assert ehlo.lines[1:] == ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 52428800")
    assert c.cmd(b"MAIL FROM:<a@s.test> SIZE=10").raw == b"250 2.1.0 ok\r\n"
    assert c.cmd(b"RCPT TO:<b@d.test>").raw == b"250 2.1.5 ok\r\n"
    assert c.cmd(b"DATA").code == 354
    assert c.cmd(b"Subject: x\r\n\r\n..dot\r\n.").raw == b"250 2.0.0 queued\r\n"
    assert c.cmd(b"NOOP").code == 250
    assert c.cmd(b"QUIT").code == 221
    assert c.read_until_closed().endswith(b"221 2.0.0 bye\r\n")
    c.close()

    s = only_session(mx)
    assert s.index == 0 and s.peer == "mx1" and s.client[0] == "127.0.0.1"
    assert s.ehlo_name == "client.test"
    assert s.mail is not None and s.mail.args == "FROM:<a@s.test> SIZE=10"
    assert s.mail_params == {"SIZE": "10"} and not s.prdr_requested
    assert s.rcpts == [("b@d.test", {}, 250)]
    assert s.messages == [b"Subject: x\r\n\r\n.dot\r\n"]
    assert s.data_replies_sent == [b"250 2.0.0 queued\r\n"]
    assert s.closed_by == "client" and s.end_reason == "quit"
    assert s.error is None and s.tls is None and s.ended is not None and s.ended >= s.started
    assert [c.verb for c in s.commands] == ["EHLO", "MAIL", "RCPT", "DATA", "NOOP", "QUIT"]
    assert len(s.transactions) == 1 and s.transactions[0].body_via == "DATA"
    # every recv is a segment and a "C" event; every reply one "S" event
    assert b"".join(d for _, d in s.segments) == s.transcript.sent_by("C")
    assert b"QUIT\r\n" in s.transcript.sent_by("C")
    server_events = [e.data for e in s.transcript.events if e.dir == "S"]
    assert server_events[0] == b"220 mx1.d.test ESMTP fake\r\n"
    assert server_events[-1] == b"221 2.0.0 bye\r\n"
    assert all(t >= s.started for t, _ in s.segments)


def test_sequence_errors_unknown_and_malformed_input(serve) -> None:
    mx = serve()
    c = serve.connect(mx)
    c.reply()
    assert c.cmd(b"MAIL FROM:<a@s.test>").raw.startswith(b"503 5.5.1")  # before EHLO
    c.cmd(b"EHLO c")
    assert c.cmd(b"RCPT TO:<b@d.test>").code == 503
    assert c.cmd(b"DATA").code == 503
    assert c.cmd(b"FROB").raw == b"500 5.5.2 command not recognized\r\n"
    assert c.cmd(b"MAIL FROM:a@s.test").code == 501  # hint from the codec
    assert c.cmd(b"NOOP\nRSET").code == 500  # bare LF: SMTPProtocolError
    c.cmd(b"MAIL FROM:<a@s.test>")
    assert c.cmd(b"MAIL FROM:<a@s.test>").code == 503  # nested
    assert c.cmd(b"RCPT TO:<>").code == 501
    assert c.cmd(b"DATA").code == 503  # no accepted recipient
    c.close()
    s = only_session(mx)
    assert len(s.protocol_errors) == 3 and any("bare LF" in e for e in s.protocol_errors)
    assert s.closed_by == "client" and s.error is None


def test_per_recipient_rcpt_replies(serve) -> None:
    script = script_from_data({"rcpt": {"Bad@D.test": "550 5.1.1 no such user",
                                        "slow@d.test": {"reply": "451 4.3.0 later"},
                                        "default": "251 2.1.5 forwarding"}})
    mx = serve(script)
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    replies = transaction(c, b"a@s.test>", [b"bad@d.test", b"slow@d.test", b"ok@d.test"])
    assert [r.raw for r in replies[1:]] == [b"550 5.1.1 no such user\r\n", b"451 4.3.0 later\r\n",
                                            b"251 2.1.5 forwarding\r\n"]
    c.cmd(b"QUIT")
    s = only_session(mx)
    assert [(a, code) for a, _, code in s.rcpts] == [
        ("bad@d.test", 550), ("slow@d.test", 451), ("ok@d.test", 251)]


# -- PRDR (draft-hall-prdr-00) ----------------------------------------------------------------------


PRDR_SCRIPT = {"ehlo": ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR"],
               "rcpt": {"no@d.test": "550 5.1.1 unknown"}}


def send_prdr_message(c: Client, mail: bytes = b"a@s.test> SIZE=20 PRDR") -> None:
    c.reply()
    c.cmd(b"EHLO c")
    transaction(c, mail, [b"r1@d.test", b"no@d.test", b"r2@d.test"])
    assert c.cmd(b"DATA").code == 354
    c.send(b"Subject: p\r\n\r\nbody\r\n.\r\n")


def test_prdr_default_block(serve) -> None:
    mx = serve(script_from_data(PRDR_SCRIPT))
    c = serve.connect(mx)
    send_prdr_message(c)
    block = [c.reply() for _ in range(4)]
    assert [r.raw for r in block] == [b"353 PRDR content analysis beginning\r\n",
                                      b"250 2.1.5 ok\r\n", b"250 2.1.5 ok\r\n",
                                      b"250 2.0.0 ok\r\n"]
    c.cmd(b"QUIT")
    s = only_session(mx)
    assert s.prdr_requested and s.mail_params == {"SIZE": "20", "PRDR": None}
    assert s.data_replies_sent == [r.raw for r in block]
    assert s.transactions[0].prdr_requested


def test_prdr_parameter_without_offer_is_recorded_not_honoured(serve) -> None:
    mx = serve(script_from_data({"rcpt": PRDR_SCRIPT["rcpt"]}))
    c = serve.connect(mx)
    send_prdr_message(c)
    assert c.reply().raw == b"250 2.0.0 queued\r\n"
    assert c.cmd(b"QUIT").code == 221
    s = only_session(mx)
    assert not s.prdr_requested and "PRDR" in s.mail_params


@pytest.mark.parametrize("prdr", [
    ["353 go", "250 2.1.5 one", "250 2.0.0 final"],  # fewer lines than recipients
    ["353 go", "250 a", "550 b", "250 c", "250 final"],  # one extra line
    ["353-multi\n353 line", "250 a", "550 b", "250 final"],  # multi-line 353
    [{"raw": "353 2.0.0 esc\\r\\n250 a\\n"}, {"raw": "250 final\\r\\n"}],  # ESC, bare LF
], ids=["fewer", "extra", "multiline-353", "raw"])
def test_scripted_prdr_blocks_are_sent_byte_exactly(serve, prdr) -> None:
    script = script_from_data({**PRDR_SCRIPT, "prdr": prdr, "quit": {"reply": "221 bye",
                                                                     "close": True}})
    mx = serve(script)
    c = serve.connect(mx)
    send_prdr_message(c)
    expected = b"".join(reply_action(p).reply or b"" for p in prdr)
    before = len(c.received)
    while len(c.received) - before < len(expected):
        assert c._fill()
    assert c.received[before:] == expected
    c.send(b"QUIT\r\n")
    assert c.read_until_closed().endswith(b"221 bye\r\n")
    s = only_session(mx)
    assert b"".join(s.data_replies_sent) == expected
    sent = [e.data for e in s.transcript.events if e.dir == "S"]
    assert sent[-1 - len(prdr):-1] == [reply_action(p).reply for p in prdr]  # one send each


# -- timing, close, hang ----------------------------------------------------------------------------


def test_delay_before_reply(serve) -> None:
    mx = serve(script_from_data({"end_of_data": [{"reply": "250 late", "delay": 0.3}]}))
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    transaction(c, b"a@s.test>", [b"b@d.test"])
    c.cmd(b"DATA")
    t0 = time.monotonic()
    assert c.cmd(b"x\r\n.").raw == b"250 late\r\n"
    assert 0.3 <= time.monotonic() - t0 < 2
    c.cmd(b"QUIT")


def test_scripted_close(serve) -> None:
    mx = serve(script_from_data({"rcpt": {"default": {"reply": "421 4.3.2 bye", "close": True}}}))
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    c.cmd(b"MAIL FROM:<a@s.test>")
    c.send(b"RCPT TO:<b@d.test>\r\n")
    assert c.read_until_closed().endswith(b"421 4.3.2 bye\r\n")
    s = only_session(mx)
    assert s.closed_by == "peer" and s.end_reason == "scripted close"
    assert s.rcpts == [("b@d.test", {}, 421)]


def test_hang_ends_promptly_on_stop_without_spinning(serve) -> None:
    mx = serve(script_from_data({"data": {"hang": True}}))
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    transaction(c, b"a@s.test>", [b"b@d.test"])
    c.send(b"DATA\r\n")
    time.sleep(0.05)
    cpu0 = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - cpu0 < 0.1  # blocked in recv, not polling
    c.send(b"anything\r\n")  # recorded while hanging
    time.sleep(0.05)
    assert not mx.wait_idle(0)
    t0 = time.monotonic()
    mx.stop()
    assert time.monotonic() - t0 < 0.5
    assert not [t for t in threading.enumerate() if t.name.startswith("fakemx-mx1")]
    s = only_session(mx)
    assert s.closed_by == "peer" and s.end_reason == "stopped"
    assert s.transcript.sent_by("C").endswith(b"anything\r\n")
    assert c.read_until_closed().endswith(b"250 2.1.5 ok\r\n")  # nothing after RCPT's reply


def test_hang_outlasts_the_clients_half_close(serve) -> None:
    """A hung server keeps its side open after the client's FIN (Exim half-closes after the QUIT
    it pipelines): the client must time out on its own; the hang ends when the world stops."""
    mx = serve(script_from_data({"banner": {"hang": True}}))
    c = serve.connect(mx)
    time.sleep(0.05)
    c.sock.shutdown(socket.SHUT_WR)
    assert mx.wait_idle(2)  # settled: neither side will send more
    c.sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        c.sock.recv(1)  # and not closed
    mx.stop()
    (s,) = mx.sessions_seen
    assert s.closed_by == "peer" and s.transcript.sent_by("S") == b""
    assert b"the client half-closed; the peer keeps hanging" in [e.data for e in s.transcript.events]
    c.close()


def test_delay_ends_promptly_on_stop(serve) -> None:
    mx = serve(script_from_data({"banner": {"reply": "220 x", "delay": 30}}))
    c = serve.connect(mx)
    time.sleep(0.05)
    t0 = time.monotonic()
    mx.stop()
    assert time.monotonic() - t0 < 0.5
    assert c.read_until_closed() == b""


def test_read_timeout(serve) -> None:
    mx = serve(read_timeout=0.2)
    c = serve.connect(mx)
    c.reply()
    assert c.reply().raw.startswith(b"421 4.4.2")
    s = only_session(mx)
    assert s.closed_by == "peer" and s.end_reason == "read timeout"


# -- pipelining, BDAT, several connections --------------------------------------------------------


def test_pipelined_commands_get_replies_in_order(serve) -> None:
    mx = serve(script_from_data({"rcpt": {"no@d.test": "550 5.1.1 no"}}))
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    c.send(b"MAIL FROM:<a@s.test>\r\nRCPT TO:<no@d.test>\r\nRCPT TO:<b@d.test>\r\nDATA\r\n")
    assert [c.reply().code for _ in range(4)] == [250, 550, 250, 354]
    c.send(b"x\r\n.\r\nQUIT\r\n")
    assert [c.reply().code for _ in range(2)] == [250, 221]
    s = only_session(mx)
    assert any(d.startswith(b"MAIL") and d.endswith(b"DATA\r\n") for _, d in s.segments)
    assert [e.data[:3] for e in s.transcript.events if e.dir == "S"][2:6] == [
        b"250", b"550", b"250", b"354"]  # one send per reply


def test_bdat_chunks_and_prdr_after_last(serve) -> None:
    mx = serve(script_from_data({"ehlo": ["CHUNKING", "PIPELINING", "PRDR"]}))
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    transaction(c, b"a@s.test>", [b"b@d.test"])
    c.send(b"BDAT 5\r\nhello")
    assert c.reply().raw == b"250 2.0.0 chunk ok\r\n"
    assert c.cmd(b"BDAT 0 LAST").raw == b"250 2.0.0 queued\r\n"
    transaction(c, b"a@s.test> PRDR", [b"b@d.test", b"c@d.test"])
    c.send(b"BDAT 3 LAST\r\nabc")
    assert [c.reply().code for _ in range(4)] == [353, 250, 250, 250]
    assert c.cmd(b"DATA").code == 503
    c.cmd(b"QUIT")
    s = only_session(mx)
    assert s.messages == [b"hello", b"abc"]
    assert [t.body_via for t in s.transactions] == ["BDAT", "BDAT"]
    assert len(s.data_replies_sent) == 5


def test_bdat_not_offered_is_unknown(serve) -> None:
    mx = serve()
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    transaction(c, b"a@s.test>", [b"b@d.test"])
    c.send(b"BDAT 2 LAST\r\nxy")
    assert c.reply().code == 500
    c.cmd(b"QUIT")


def test_per_connection_scripts_and_helo_only(serve) -> None:
    mx = serve(PeerScript(), sessions=[script_from_data({"helo_only": True}), None])
    replies = []
    for _ in range(3):
        c = serve.connect(mx)
        c.reply()
        replies.append(c.cmd(b"EHLO c").code)
        c.cmd(b"QUIT")
        c.read_until_closed()
        c.close()
    assert replies == [502, 250, 250]
    assert mx.wait_idle(5)
    assert [s.index for s in mx.sessions_seen] == [0, 1, 2]


# -- STARTTLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> dict:
    ca = trustme.CA()
    leaf = ca.issue_cert("mx1.d.test")
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    issuer_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    staple = (ocsp.OCSPResponseBuilder()
              .add_response(cert, issuer, hashes.SHA1(), ocsp.OCSPCertStatus.GOOD, now,
                            now + datetime.timedelta(days=1), None, None)
              .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
              .sign(issuer_key, hashes.SHA256())
              .public_bytes(serialization.Encoding.DER))
    return {"ca": ca, "issuer": issuer, "staple": staple,
            "tls": {"cert_pem": leaf.cert_chain_pems[0].bytes(),
                    "key_pem": leaf.private_key_pem.bytes(), "chain_pem": None,
                    "ocsp_staple": staple}}


def tls_client(c: Client, pki: dict, *, sni: bytes | None, ocsp: bool) -> tuple[Client, list]:
    seen: list[bytes] = []
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.get_cert_store().add_cert(crypto.X509.from_cryptography(pki["issuer"]))
    ctx.set_verify(SSL.VERIFY_PEER)
    if ocsp:
        ctx.set_ocsp_client_callback(lambda conn, data, _: seen.append(data) or True)
    c.sock.settimeout(None)  # pyOpenSSL wants a blocking socket (LAB-NOTES)
    conn = SSL.Connection(ctx, c.sock)
    if sni:
        conn.set_tlsext_host_name(sni)
    if ocsp:
        conn.request_ocsp()
    conn.set_connect_state()
    conn.do_handshake()
    tc = Client.__new__(Client)
    tc.sock, tc.raw, tc.parser, tc.received = conn, c.raw, ReplyParser(), b""
    return tc, seen


def test_starttls_with_ocsp_staple_and_sni(serve, pki) -> None:
    mx = serve(script_from_data({"ehlo": ["PIPELINING", "STARTTLS"]}), tls=pki["tls"])
    c = serve.connect(mx)
    c.reply()
    assert "STARTTLS" in c.cmd(b"EHLO c").lines
    c.cmd(b"MAIL FROM:<early@s.test>")
    c.cmd(b"RSET")
    assert c.cmd(b"STARTTLS").raw == b"220 2.0.0 ready to start TLS\r\n"
    tc, staples = tls_client(c, pki, sni=b"mx1.d.test", ocsp=True)
    assert staples == [pki["staple"]]
    ehlo = tc.cmd(b"EHLO c")
    assert "STARTTLS" not in ehlo.lines  # RFC 3207 §4.2
    transaction(tc, b"a@s.test>", [b"b@d.test"])
    tc.cmd(b"DATA")
    assert tc.cmd(b"secret\r\n.").code == 250
    assert tc.cmd(b"QUIT").code == 221
    assert tc.read_until_closed().endswith(b"221 2.0.0 bye\r\n")  # ended by close_notify
    tc.close()
    s = only_session(mx)
    assert s.tls is not None and s.tls["handshake_ok"] and s.tls["error"] is None
    assert s.tls["sni"] == "mx1.d.test"
    assert s.tls["ocsp_requested"] and s.tls["ocsp_stapled"]
    assert s.tls["tls_version"] in ("TLSv1.2", "TLSv1.3") and s.tls["cipher"]
    assert s.tls["tls_established_before_mail"] is False  # a MAIL came in clear first
    assert s.messages == [b"secret\r\n"]
    assert b"secret" in s.transcript.sent_by("C")  # the transcript holds plaintext


def test_starttls_without_status_request_or_sni(serve, pki) -> None:
    mx = serve(script_from_data({"ehlo": ["STARTTLS"]}), tls={**pki["tls"],
                                                              "max_version": "TLSv1.2"})
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    c.cmd(b"STARTTLS")
    tc, staples = tls_client(c, pki, sni=None, ocsp=False)
    assert staples == []
    assert tc.cmd(b"MAIL FROM:<a@s.test>").code == 503  # EHLO again first
    tc.cmd(b"EHLO c")
    tc.cmd(b"QUIT")
    tc.close()
    s = only_session(mx)
    assert s.tls["sni"] is None and not s.tls["ocsp_requested"]
    assert s.tls["tls_version"] == "TLSv1.2" and s.tls["tls_established_before_mail"]


def test_starttls_not_offered_without_tls_config(serve) -> None:
    mx = serve(script_from_data({"ehlo": ["STARTTLS"]}))
    c = serve.connect(mx)
    c.reply()
    assert "STARTTLS" not in c.cmd(b"EHLO c").lines
    assert c.cmd(b"STARTTLS").code == 502


def test_failed_handshake_is_recorded(serve, pki) -> None:
    mx = serve(script_from_data({"ehlo": ["STARTTLS"]}), tls=pki["tls"])
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    c.cmd(b"STARTTLS")
    c.send(b"this is not a ClientHello\r\n\r\n")
    c.read_until_closed()
    s = only_session(mx)
    assert s.tls is not None and not s.tls["handshake_ok"] and s.tls["error"]
    assert s.error is None and s.end_reason == "TLS handshake failed"


def test_client_alert_is_recorded(serve, pki) -> None:
    mx = serve(script_from_data({"ehlo": ["STARTTLS"]}), tls=pki["tls"])
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    c.cmd(b"STARTTLS")
    untrusting = {**pki, "issuer": x509.load_pem_x509_certificate(trustme.CA().cert_pem.bytes())}
    with pytest.raises(SSL.Error):
        tls_client(c, untrusting, sni=None, ocsp=False)
    s = only_session(mx)
    assert s.tls is not None and not s.tls["handshake_ok"]
    assert s.tls["alerts_received"] == [48]  # unknown_ca (RFC 8446 §6)
    assert s.closed_by == "client" and s.error is None


def test_plaintext_pipelined_after_starttls_is_discarded(serve, pki) -> None:
    mx = serve(script_from_data({"ehlo": ["STARTTLS"]}), tls=pki["tls"])
    c = serve.connect(mx)
    c.reply()
    c.cmd(b"EHLO c")
    assert c.cmd(b"STARTTLS\r\nMAIL FROM:<injected@s.test>").code == 220
    tc, _ = tls_client(c, pki, sni=None, ocsp=False)
    assert tc.cmd(b"RCPT TO:<b@d.test>").code == 503  # the injected MAIL never counted
    tc.cmd(b"QUIT")
    s = only_session(mx)
    assert s.tls["plaintext_after_starttls"] == b"MAIL FROM:<injected@s.test>\r\n"
    assert s.mail is None


# -- scenario data ------------------------------------------------------------------------------------


def test_reply_action_forms() -> None:
    assert reply_action("353-a\n353 b").reply == b"353-a\r\n353 b\r\n"
    assert reply_action("250 ok\n").reply == b"250 ok\r\n"
    act = reply_action({"raw": "250 x\\n\\x00\\\\", "delay": 2, "close": True})
    assert act == ReplyAction(b"250 x\n\x00\\", 2.0, True, False)
    assert reply_action({"hang": True}) == ReplyAction(None, 0.0, False, True)
    assert unescape_raw("a\\r\\nb") == b"a\r\nb"
    assert reply_action("abc").code == 0 and reply_action("451 x").code == 451


@pytest.mark.parametrize("data,path", [
    ({"mail": 5}, "peer.mail"),
    ({"rcpt": {"x@y": {"delay": -1}}}, "peer.rcpt.x@y.delay"),
    ({"prdr": ["353 a", {"rply": "x"}]}, "peer.prdr[1]"),
    ({"end_of_data": [{"raw": "\\q"}]}, "peer.end_of_data[0].raw"),
    ({"ehlo": "PRDR"}, "peer.ehlo"),
    ({"helo_only": "yes"}, "peer.helo_only"),
    ({"banner": {"reply": "220", "raw": "220"}}, "peer.banner"),
    ({"bogus": 1}, "peer"),
])
def test_script_from_data_errors_name_the_key(data, path) -> None:
    with pytest.raises(ValueError, match=rf"^{path.replace('[', '.').replace(']', '.')}"):
        script_from_data(data)


def test_script_from_data_merges_over_base() -> None:
    base = script_from_data({"rcpt": {"a@x": "550 no"}, "ehlo": ["PRDR"]})
    s = script_from_data({"rcpt": {"B@X": "450 later"}, "prdr": None}, base)
    assert s.ehlo == ["PRDR"] and set(s.rcpt) == {"default", "a@x", "b@x"}
    assert s.rcpt_action("A@X").code == 550 and s.rcpt_action("z@x").code == 250
    assert s.prdr is None and base.rcpt.keys() == {"default", "a@x"}
