"""FakeMX inside a real lab namespace: listens on a peer address, reached from the target's address."""

from __future__ import annotations

import os
import threading

import pytest

from harness.lab import addresses, netns
from harness.lab.lab import Lab
from harness.smtp.client import SMTPClient
from harness.smtp.peer import FakeMX
from harness.smtp.peer_script import script_from_data
from harness.smtp.transcript import Transcript

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]


def test_fake_mx_in_lab(tmp_path) -> None:
    threads_before = set(threading.enumerate())
    with Lab(tmp_path) as lab:
        script = script_from_data({"ehlo": ["PIPELINING", "ENHANCEDSTATUSCODES", "PRDR"]})
        mx = FakeMX("mx1", addresses.peer_v4(1), 25, script, socket_factory=lab.socket,
                    hostname="mx1.d.test")
        mx.start()
        try:
            sock = lab.connect(addresses.peer_v4(1), 25, source=addresses.TARGET_V4)
            client = SMTPClient(sock, Transcript("client"))
            try:
                assert client.read_reply().code == 220
                assert "PRDR" in client.command("EHLO mta.target.test").lines
                assert client.command("MAIL FROM:<a@target.test> PRDR").code == 250
                assert client.command("RCPT TO:<b@d.test>").code == 250
                assert client.command("RCPT TO:<c@d.test>").code == 250
                assert client.command("DATA").code == 354
                client.send(b"Subject: lab\r\n\r\nhi\r\n.\r\n")
                assert [client.read_reply().code for _ in range(4)] == [353, 250, 250, 250]
                assert client.quit() is not None
            finally:
                client.close()
            assert mx.wait_idle(5)
            (session,) = mx.sessions_seen
            assert session.client[0] == addresses.TARGET_V4
            assert session.prdr_requested and session.messages == [b"Subject: lab\r\n\r\nhi\r\n"]
            assert session.closed_by == "client" and session.error is None
        finally:
            mx.stop()
        assert set(threading.enumerate()) <= threads_before
    assert not netns.exists(lab.name)
