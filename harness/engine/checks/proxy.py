"""PROXY protocol checks: the MTA as a receiver of v1/v2 headers (haproxy proxy-protocol.txt).

Every session of a PROXY scenario starts with a `proxy:` step; its ProxyRecord keeps the bytes
sent, their times and the strict decoder's verdict on them (the oracle). ``view()`` classifies
what the MTA did with them:

- ``accepted``  a banner, and the first command after it was served (EHLO 250);
- ``refused``   a banner, then the first command refused (Exim: "503 … Proxy negotiation failed");
- ``dropped``   the connection closed with no banner;
- ``silent``    nothing at all within the watch window (still waiting for the header);
- ``banner``    a banner, but no command was tried (the harness had half-closed).

and collects every identity the MTA shows for the client: its EHLO greeting ("Hello x [ip]"),
policy replies naming "client [ip]", its log (Exim ``H=[ip]:port``, ``PRX=``) and the
``Received:`` header of a delivered message. Checks judge acceptance and identity separately, so
a report tells "rejected correctly" from "accepted" from "misparsed"; an accepted header whose
identity is not the one its bytes carry is always a MUST-level failure (``proxy_identity``, cited
as PROXY-25 "MUST not … accept a header whose identity differs from the bytes sent").

Line numbers ``L…`` are those of proxy-protocol.txt rev. 2026/04/27 (requirements.md §3).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...proxy.client import ProxyRecord
from ...proxy.codec import V2_SIGNATURE, Address, Family
from ...report.model import Evidence
from ...smtp.codec import NEED_DATA, Reply, ReplyParser, SMTPProtocolError
from ...smtp.transcript import visible
from ..observations import Observations, SessionRecord
from .base import Verdict, check, failed, passed, skipped, unsupported
from .smtp_server import show

_IP = r"[0-9A-Fa-f:.]*[0-9A-Fa-f]"
BRACKETED = re.compile(rf"\[({_IP})\](?::(\d+))?")
# Exim: "H=(helo) [ip]:port", "SMTP connection from (helo) [ip]:port closed by QUIT",
# "no MAIL in SMTP connection from [ip]:port"; its daemon's "(TCP/IP connection count" line is
# written before the header is read and names the proxy, so it is not the session's identity.
LOG_CLIENT = re.compile(rf"(?:\bH=|\bconnection from )(?:\S+ )?(?:\([^)]*\) )?\[({_IP})\](?::(\d+))?")
LOG_PROXY = re.compile(rf"\bPRX=\[?({_IP})\]?(?::(\d+))?")
# Postfix: "connect from name[ip]:port", "client=name[ip]:port", "NOQUEUE: reject: RCPT from
# name[ip]:port", "lost connection after … from name[ip]:port" (smtpd_client_port_logging = yes).
# With PROXY it logs the header's client only; the proxy's address appears nowhere.
LOG_CLIENT_POSTFIX = re.compile(rf"(?:\bfrom |\bclient=)[^\s\[\]]*\[({_IP})\](?::(\d+))?")
# OpenSMTPD: "<session> smtp connected address=IP host=NAME" (the client, the header's with
# PROXY; no port) and "<session> smtp event=proxy address=IP" (the proxy). The empty group
# stands for the port, so every pattern yields (address, port).
LOG_CLIENT_OPENSMTPD = re.compile(rf"\bsmtp connected address=({_IP})()(?=\s|$)")
LOG_PROXY_OPENSMTPD = re.compile(rf"\bsmtp event=proxy address=({_IP})()(?=\s|$)")
RECEIVED = re.compile(rf"^Received: from .*?\[({_IP})\](?:\s*\(port=(\d+))?")
CLOSE_NOTES = ("server closed the connection", "connection reset", "recv failed", "send failed")


@dataclass(frozen=True)
class Identity:
    """One place where the MTA shows which client it believes it is talking to."""

    where: str  # "EHLO reply", "policy reply", "log", "Received:"
    address: Address
    line: str

    def matches(self, want: Address) -> bool:
        if self.address.ip is None or want.ip is None or self.address.ip != want.ip:
            return False
        return self.address.port is None or want.port is None or self.address.port == want.port


@dataclass
class ProxyView:
    s: SessionRecord
    proxy: ProxyRecord
    outcome: str  # accepted | refused | dropped | silent | banner
    t_banner: float | None
    t_closed: float | None
    first_reply: Reply | None  # the first reply after the banner
    identities: list[Identity] = field(default_factory=list)
    proxies_logged: list[Identity] = field(default_factory=list)

    @property
    def t_header(self) -> float:
        return self.proxy.t_last if self.proxy.t_last is not None else self.proxy.t_connected

    def how(self) -> str:
        """What the MTA did, in words, with times from the header's last byte."""
        def after(t: float) -> str:
            d = t - self.t_header
            return f"{d:.2f} s after the header" if d >= 0 else f"{-d:.2f} s before the header was complete"

        if self.outcome == "dropped":
            return f"closed the connection without a banner ({after(self.t_closed or self.t_header)})"
        if self.outcome == "silent":
            return "sent nothing and kept the connection open"
        banner = show(self.s.banner) if self.s.banner else "(no banner)"
        text = f"sent a banner ({banner}, {after(self.t_banner or 0.0)})"
        if self.first_reply is not None:
            text += f", then {show(self.first_reply)}"
        elif self.outcome == "refused":
            text += ", then " + ("; ".join(self.s.errors) or "no reply")
        return text


def _addr(host: str, port: str | None) -> Address | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return Address(str(ip), int(port) if port else None)


def _session_identities(s: SessionRecord) -> list[Identity]:
    found: list[Identity] = []
    for step in s.steps:
        for reply in step.replies:
            if step.kind in ("ehlo", "helo", "read") and reply.is_positive and reply.lines:
                first = reply.lines[0]
                m = BRACKETED.search(first)
                if m and ("hello" in first.lower() or step.kind != "read"):
                    a = _addr(*m.groups())
                    if a:
                        found.append(Identity("EHLO reply", a, f"{reply.code} {first}"))
            if step.kind == "rcpt":
                m = re.search(rf"client \[({_IP})\]", reply.text)
                if m:
                    a = _addr(m.group(1), None)
                    if a:
                        found.append(Identity("policy reply", a, f"{reply.code} {reply.text}"))
    return found


def _log_identities(obs: Observations) -> tuple[list[Identity], list[Identity]]:
    clients: list[Identity] = []
    proxies: list[Identity] = []
    for line in obs.logs.get("main", []):
        if "TCP/IP connection count" in line:
            continue
        m = (LOG_CLIENT.search(line) or LOG_CLIENT_POSTFIX.search(line)
             or LOG_CLIENT_OPENSMTPD.search(line))
        if m and (a := _addr(*m.groups())):
            clients.append(Identity("log", a, line))
        m = LOG_PROXY.search(line) or LOG_PROXY_OPENSMTPD.search(line)
        if m and (a := _addr(*m.groups())):
            proxies.append(Identity("log PRX=", a, line))
    for line in obs.logs.get("mailbox", []):
        m = RECEIVED.search(line)
        if m and (a := _addr(*m.groups())):
            clients.append(Identity("Received:", a, line))
    return clients, proxies


def _event_times(s: SessionRecord) -> tuple[float | None, float | None]:
    t_first = next((e.t for e in s.transcript.events if e.dir == "S"), None)
    t_closed = next((e.t for e in s.transcript.events if e.dir == "note"
                     and any(n in e.data.decode(errors="replace") for n in CLOSE_NOTES)), None)
    return t_first, t_closed


def view(obs: Observations) -> ProxyView | Verdict:
    s = obs.session
    if s is None:
        return skipped("no inbound session was recorded")
    proxy = s.proxy
    if not isinstance(proxy, ProxyRecord):
        return skipped("the session did not start with a proxy step")
    t_banner, t_closed = _event_times(s)
    if proxy.t_closed is not None:
        t_closed = proxy.t_closed if t_closed is None else min(t_closed, proxy.t_closed)
    after = [st for st in s.steps if st.kind not in ("proxy", "banner", "probe")]
    first_reply = next((r for st in after for r in st.replies[:1]), None)
    # Served: some command after the banner got a positive reply (QUIT's 221 does not count).
    served = any(r.code // 100 in (2, 3) for st in after if st.kind != "quit" for r in st.replies)
    if s.banner is None:
        outcome = "dropped" if t_closed is not None else "silent"
    elif s.banner.code // 100 != 2:
        outcome = "refused"
    elif served:
        outcome = "accepted"
    else:
        tried = any(st.sent for st in after)
        outcome = "refused" if tried else "banner"
    v = ProxyView(s, proxy, outcome, t_banner if s.banner else None, t_closed, first_reply)
    v.identities = _session_identities(s)
    clients, proxies = _log_identities(obs)
    v.identities += clients
    v.proxies_logged = proxies
    return v


# -- evidence ---------------------------------------------------------------------------------

def hexdump(data: bytes, limit: int = 512) -> str:
    out = []
    for i in range(0, min(len(data), limit), 16):
        chunk = data[i:i + 16]
        out.append(f"{i:04x}  {chunk.hex(' '):<47}  {''.join(chr(b) if 32 <= b < 127 else '.' for b in chunk)}")
    if len(data) > limit:
        out.append(f"… {len(data) - limit} more bytes")
    return "\n".join(out)


def evidence(v: ProxyView) -> list[Evidence]:
    """The bytes sent and the identity the MTA used, side by side."""
    p = v.proxy
    sent = p.sent
    text = visible(sent) if sent and sent[:5] == b"PROXY" else hexdump(sent)
    if p.plan.trailing:
        text += f"\n+ in the same segment: {visible(p.plan.trailing)}"
    ev = [Evidence("PROXY header sent", "bytes", text or "(nothing)"),
          Evidence("the strict decoder's verdict on those bytes", "text",
                   p.oracle_text() + (f"\nexpected identity: {p.expected_identity()}"
                                      if p.expected_identity() else "")
                   + (f"\nreal connection source: {p.local}" if p.local else ""))]
    rows = [{"where": i.where, "client": str(i.address), "line": i.line} for i in v.identities]
    rows += [{"where": i.where, "client": f"(proxy) {i.address}", "line": i.line} for i in v.proxies_logged]
    ev.append(Evidence("identity the MTA used", "table", rows or [{"where": "-", "client": "(none shown)",
                                                                    "line": ""}]))
    return ev


def _expected_text(p: ProxyRecord) -> str:
    want = p.expected_identity()
    return f"accepted, client {want}" if want else "accepted"


def _literal_identities(p: ProxyRecord) -> list[Address]:
    """Addresses a lenient parser could honestly read from the bytes sent (the identity oracle
    for a header that should have been refused): v1 address tokens (any port), v2 address fields
    that were really sent — with their port only if its two bytes were sent too (port None = any
    port; a v2 address whose port was not sent gets port -1, which no identity matches)."""
    data = p.sent
    found: list[Address] = []
    if data.startswith(b"PROXY") or b"PROXY" in data[:16]:
        for tok in re.split(rb"[\s]+", data):
            try:
                found.append(Address(str(ipaddress.ip_address(tok.decode("ascii").split("%")[0]))))
            except (ValueError, UnicodeDecodeError):
                pass
    if data.startswith(V2_SIGNATURE) and len(data) >= 16:
        block = data[16:]
        fam = data[13] >> 4
        size, cls = {Family.INET: (4, ipaddress.IPv4Address), Family.INET6: (16, ipaddress.IPv6Address)}.get(
            Family(fam) if fam <= 3 else Family.UNSPEC, (0, None))
        if cls is not None:
            for i in range(2):
                if len(block) >= size * (i + 1):
                    at = 2 * size + 2 * i
                    port = struct.unpack("!H", block[at:at + 2])[0] if len(block) >= at + 2 else -1
                    found.append(Address(str(cls(block[size * i:size * (i + 1)])), port))
    return found


def _from_bytes(identity: Identity, allowed: list[Address]) -> bool:
    for a in allowed:
        if identity.address.ip != a.ip:
            continue
        if a.port is None or identity.address.port is None or identity.address.port == a.port:
            return True
    return False


# -- checks -----------------------------------------------------------------------------------

@check()
def proxy_accepted(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A valid header is accepted: banner, then the session is served (§2.1, §2.2)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    pr = v.proxy
    if pr.oracle is None:
        return skipped(f"the bytes sent are not a valid header ({pr.oracle_text()}): nothing to "
                       "accept", evidence=evidence(v))
    expected = _expected_text(pr)
    if v.outcome == "accepted":
        return passed(f"accepted: the MTA {v.how()}", expected=expected, actual=v.how(),
                      evidence=evidence(v))
    return failed(f"a valid header was rejected: the MTA {v.how()}", expected=expected,
                  actual=v.how(), evidence=evidence(v))


@check()
def proxy_rejected(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """An invalid, incomplete or unexpected header is not accepted (L289–292, L498–503)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    pr = v.proxy
    reason = pr.oracle_error.message if pr.oracle_error else pr.oracle_text()
    expected = f"rejected ({reason})"
    if v.outcome != "accepted":
        return passed(f"rejected: the MTA {v.how()}", expected=expected, actual=v.how(), evidence=evidence(v))
    shown = ", ".join(f"{i.address} ({i.where})" for i in v.identities) or "no identity shown"
    return failed(f"the header was accepted although {reason}; the MTA used {shown}",
                  expected=expected, actual=f"accepted: {v.how()}", evidence=evidence(v))


@check()
def proxy_identity(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Once accepted, the MTA's client identity is the one the bytes carry: never misparsed."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    pr = v.proxy
    if v.outcome != "accepted":
        return skipped(f"the header was not accepted ({v.how()}): no identity to judge",
                       evidence=evidence(v))
    if not v.identities:
        return unsupported("the target shows no client identity (EHLO greeting, log, Received:) "
                           "to compare with the header", evidence=evidence(v))
    want = pr.expected_identity()
    if want is not None:
        wrong = [i for i in v.identities if not i.matches(want)]
        expected = f"client {want} everywhere ({'the header source' if pr.oracle and pr.oracle.carries_client else 'the real connection: the header carries no client'})"
        if wrong:
            sent = visible(pr.sent[:120]) if pr.sent[:5] == b"PROXY" else pr.sent[:64].hex(" ")
            return failed("misparsed: the bytes say client " + str(want) + ", the MTA used "
                          + "; ".join(f"{i.address} ({i.where})" for i in wrong),
                          expected=expected, actual="; ".join(f"{i.where}: {i.line}" for i in wrong)
                          + f" | bytes sent: {sent}", evidence=evidence(v))
        return passed(f"the MTA used client {want} ({', '.join(sorted({i.where for i in v.identities}))})",
                      expected=expected, actual=", ".join(str(i.address) for i in v.identities),
                      evidence=evidence(v))
    # An invalid header was accepted (proxy_rejected fails for that); the identity must still be
    # the real connection's or one the bytes sent really carry.
    allowed = _literal_identities(pr) + ([pr.local] if pr.local else [])
    made_up = [i for i in v.identities if not _from_bytes(i, allowed)]
    expected = "an identity made of the bytes sent: " + (", ".join(str(a) for a in allowed) or "(none)")
    if made_up:
        return failed("misparsed: an identity made of bytes that were not sent: "
                      + "; ".join(f"{i.address} ({i.where})" for i in made_up),
                      expected=expected, actual="; ".join(f"{i.where}: {i.line}" for i in made_up)
                      + f" | bytes sent: {pr.sent[:64].hex(' ')}", evidence=evidence(v))
    return passed("the identity the MTA used comes from the bytes sent ("
                  + ", ".join(f"{i.address}" for i in v.identities) + ")", expected=expected,
                  evidence=evidence(v))


@check(params={"within": {"type": "number", "exclusiveMinimum": 0,
                          "description": "seconds after the header's last byte (default 4)"}})
def proxy_aborted(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """After a rejected header the connection is closed, with no banner, promptly (L289–292)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    within = float(p.get("within", 4.0))
    expected = f"the connection closed within {within:g} s, no banner"
    if v.outcome == "accepted":
        return skipped("the header was accepted (judged by proxy_rejected / proxy_accepted)",
                       evidence=evidence(v))
    if v.outcome == "dropped":
        delay = (v.t_closed or v.t_header) - v.t_header
        if delay <= within:
            return passed(f"closed {delay:.2f} s after the header, no banner", expected=expected,
                          actual=v.how(), evidence=evidence(v))
        return failed(f"closed only {delay:.2f} s after the header", expected=expected, actual=v.how(),
                      evidence=evidence(v))
    if v.outcome == "silent":
        return failed(f"the connection was still open and silent {v.proxy.plan.observe:g} s later",
                      expected=expected, actual=v.how(), evidence=evidence(v))
    return failed(f"the connection was not aborted: the MTA {v.how()}", expected=expected,
                  actual=v.how(), evidence=evidence(v))


@check()
def proxy_no_early_reply(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Nothing from the MTA before the header's last byte (L172–174)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    pr = v.proxy
    expected = f"no byte before the header was complete (at {v.t_header:.3f} s)"
    if pr.early:
        return failed(f"the MTA spoke {pr.t_server_first:.3f} s into the connection, before the header "
                      f"was complete at {v.t_header:.3f} s", expected=expected,
                      actual=visible(pr.early[:200]), evidence=evidence(v))
    first = f"first byte at {v.t_banner:.3f} s" if v.t_banner is not None else "no byte at all"
    return passed(f"nothing before the header was complete ({first})", expected=expected,
                  actual=first, evidence=evidence(v))


@check(params={"min_s": {"type": "number", "minimum": 0,
                         "description": "the shortest allowed timeout (default 3: L175–177)"}})
def proxy_timeout(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Without a header: close after at least 3 s, with no banner (L175–177)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    low = float(p.get("min_s", 3.0))
    expected = f"no banner; closed after ≥ {low:g} s (or no timeout at all)"
    start = v.proxy.t_connected
    if v.outcome == "silent":
        return passed(f"no timeout within {v.proxy.plan.observe:g} s (a timeout is optional)",
                      expected=expected, actual=v.how(), evidence=evidence(v))
    if v.outcome == "dropped":
        t = (v.t_closed or start) - start
        if t >= low:
            return passed(f"closed after {t:.2f} s without a banner", expected=expected,
                          actual=f"closed after {t:.2f} s", evidence=evidence(v))
        return failed(f"closed after only {t:.2f} s", expected=expected, actual=f"closed after {t:.2f} s",
                      evidence=evidence(v))
    t = (v.t_banner or start) - start
    return failed(f"after {t:.2f} s without a header the MTA sent a banner and went on "
                  f"({v.how()})", expected=expected, actual=v.how(), evidence=evidence(v))


@check()
def proxy_unlisted_direct(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """From a host not listed as a proxy, a PROXY line is an unknown command (L184–190)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    s, pr = v.s, v.proxy
    expected = f"the PROXY line refused as a command (5xx), the client still {pr.local}"
    if s.banner is None:
        return failed(f"no SMTP session for a host that is not a proxy: the MTA {v.how()}",
                      expected=expected, actual=v.how(), evidence=evidence(v))
    reply = v.first_reply
    spoofed = [i for i in v.identities if pr.oracle and pr.oracle.source and pr.local
               and i.matches(pr.oracle.source) and not i.matches(pr.local)]
    if spoofed:
        return failed("a host that is not a proxy set its own client address with a PROXY line: "
                      + "; ".join(f"{i.address} ({i.where})" for i in spoofed),
                      expected=expected, actual="; ".join(i.line for i in spoofed), evidence=evidence(v))
    if reply is None or reply.code // 100 != 5:
        return failed(f"the PROXY line got {show(reply)} instead of a 5xx", expected=expected,
                      actual=show(reply), evidence=evidence(v))
    return passed(f"the PROXY line was refused ({show(reply)}) and the real address kept",
                  expected=expected, actual=show(reply), evidence=evidence(v))


@check(params={"expect": {"enum": ["allowed", "refused"]}, "step": {"enum": ["rcpt", "mail"]},
               "index": {"type": "integer"}},
       required=("expect",))
def proxy_policy(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Policy follows the header's client, not the proxy (L120–124, L727–732)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    if v.outcome != "accepted":
        return failed(f"the header was not accepted ({v.how()}), so no policy could be judged",
                      evidence=evidence(v))
    steps = v.s.steps_of(p.get("step", "rcpt"))
    idx = p.get("index", 0)
    if not steps or idx >= len(steps) or not steps[idx].replies:
        return failed("the policy step got no reply", actual="; ".join(v.s.errors) or None,
                      evidence=evidence(v))
    reply = steps[idx].replies[0]
    want = v.proxy.expected_identity()
    expected = f"{p['expect']} for client {want}"
    ok = reply.is_positive if p["expect"] == "allowed" else reply.code // 100 == 5
    named = BRACKETED.search(reply.text)
    if named and want is not None and want.ip is not None:
        a = _addr(named.group(1), None)
        if a and a.ip != want.ip:
            return failed(f"the policy decision was made for {a.host}, not the client {want.host}",
                          expected=expected, actual=show(reply), evidence=evidence(v))
    if not ok:
        return failed(f"the policy decision ({reply.code}) does not follow the client {want}: "
                      f"it {'refused' if p['expect'] == 'allowed' else 'allowed'} it",
                      expected=expected, actual=show(reply), evidence=evidence(v))
    return passed(f"{p['expect']} ({reply.code}) for client {want}", expected=expected,
                  actual=show(reply), evidence=evidence(v))


@check()
def proxy_logged_separately(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The log names the client from the header, and the proxy separately (Exim H= and PRX=)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    if not obs.logs.get("main"):
        return skipped("the target's log is not readable (an external target)", evidence=evidence(v))
    if v.outcome != "accepted":
        return failed(f"the header was not accepted ({v.how()})", evidence=evidence(v))
    want, real = v.proxy.expected_identity(), v.proxy.local
    expected = f"client {want} and, apart, the proxy {real.host if real else '?'}"
    logged = [i for i in v.identities if i.where == "log"]
    if not logged or want is None or not all(i.matches(want) for i in logged):
        return failed("the log does not name the header's client", expected=expected,
                      actual="; ".join(i.line for i in logged) or "(no client in the log)",
                      evidence=evidence(v))
    if not v.proxies_logged or real is None or not any(i.address.ip == real.ip for i in v.proxies_logged):
        return failed("the log does not name the proxy apart from the client", expected=expected,
                      actual="; ".join(i.line for i in v.proxies_logged) or "(no proxy in the log)",
                      evidence=evidence(v))
    return passed(f"logged client {want} and proxy {v.proxies_logged[0].address.host}",
                  expected=expected, actual=v.proxies_logged[0].line, evidence=evidence(v))


@check()
def proxy_crc32c(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A wrong CRC32C: if the MTA verifies checksums it treats the connection as invalid, and
    the default for an invalid connection is to abort it (§2.2.3, L596–608)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    expected = "rejected and the connection aborted (or accepted: checksums not supported)"
    if v.outcome == "accepted":
        return unsupported("the header with a wrong CRC32C was accepted: the MTA does not verify "
                           "checksums (the MUST applies only if it does)", expected=expected,
                           actual=v.how(), evidence=evidence(v))
    if v.outcome != "dropped":
        return failed("the wrong CRC32C was noticed, but the connection was not aborted (§2.2.3: "
                      f"the default procedure for an invalid connection): the MTA {v.how()}",
                      expected=expected, actual=v.how(), evidence=evidence(v))
    return passed(f"the wrong CRC32C was refused: the MTA {v.how()}", expected=expected,
                  actual=v.how(), evidence=evidence(v))


def _replies(data: bytes) -> tuple[list[Reply], str | None]:
    parser = ReplyParser()
    parser.feed(data)
    out: list[Reply] = []
    try:
        while (event := parser.next_event()) is not NEED_DATA:
            out.append(event)  # type: ignore[arg-type]
    except SMTPProtocolError as exc:
        return out, str(exc)
    return out, None


@check()
def proxy_session_bytes(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Bytes after the header are the session's: each command answered once, none leaked (L313–318)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    if v.s.banner is None or v.s.banner.code // 100 != 2:
        return failed(f"the header was not accepted ({v.how()})", evidence=evidence(v))
    pr = v.proxy
    sent = v.s.transcript.sent_by("C")[len(pr.sent):]
    commands = [c for c in sent.split(b"\r\n")[:-1]]
    replies, error = _replies(v.s.transcript.sent_by("S"))
    expected = f"the banner, then one reply to each of the {len(commands)} command(s) sent"
    actual = " | ".join(show(r) for r in replies)
    ev = evidence(v) + [Evidence("every reply", "bytes", "".join(visible(r.raw) for r in replies))]
    if error:
        return failed(f"a malformed reply: {error}", expected=expected, actual=actual, evidence=ev)
    unknown = [r for r in replies[1:] if r.code in (500, 502)]
    if unknown:
        return failed(f"header bytes leaked into SMTP: {show(unknown[0])}", expected=expected,
                      actual=actual, evidence=ev)
    if commands and commands[-1].upper() == b"QUIT" and len(replies) == 1 + len(commands) \
            and replies[-1].code != 221:
        return failed(f"QUIT was answered with {show(replies[-1])}: an earlier command was answered "
                      "more than once (session bytes duplicated or leaked)", expected=expected,
                      actual=actual, evidence=ev)
    if len(replies) != 1 + len(commands):
        what = "lost" if len(replies) < 1 + len(commands) else "duplicated or leaked"
        return failed(f"{len(replies) - 1} replies to {len(commands)} commands: session bytes {what}",
                      expected=expected, actual=actual, evidence=ev)
    greeting = replies[1] if len(replies) > 1 else None
    if greeting is not None and commands and commands[0].upper().startswith(b"EHLO") and greeting.code != 250:
        return failed(f"the EHLO sent after the header got {show(greeting)}", expected=expected,
                      actual=actual, evidence=ev)
    return passed(f"{len(commands)} command(s) after the header, {len(replies) - 1} reply(ies), in order",
                  expected=expected, actual=actual, evidence=ev)


@check(params={"within": {"type": "number", "exclusiveMinimum": 0,
                          "description": "seconds the MTA may take to react to the header"}})
def proxy_survives(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The MTA neither hangs nor crashes: no process left busy, a fresh connection gets a banner,
    no panic log, a reaction to the header within WITHIN seconds (PROXY-25, L449–452)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    probes = v.s.steps_of("probe")
    panic = [line for line in obs.logs.get("panic", []) if line.strip()]
    expected = ("no target process left running after the connection; a banner on a fresh "
                "connection; no panic log" + (f"; a reaction within {p['within']:g} s" if "within" in p else ""))
    if panic:
        return failed("the MTA wrote to its panic log", expected=expected, actual=panic[0],
                      evidence=evidence(v) + [Evidence("panic log", "log", "\n".join(panic))])
    if obs.lingering:
        return failed(f"{len(obs.lingering)} target process(es) still running after the session, "
                      "hung on the header (killed by the harness)", expected=expected,
                      actual="; ".join(obs.lingering), evidence=evidence(v)
                      + [Evidence("hung processes", "text", "\n".join(obs.lingering))])
    if probes:
        probe = probes[-1]
        if not probe.replies or probe.replies[0].code // 100 != 2:
            got = show(probe.replies[0]) if probe.replies else (probe.error or "nothing")
            return failed(f"a fresh connection got {got}", expected=expected, actual=got,
                          evidence=evidence(v))
    within = p.get("within")
    if within is not None:
        reactions = [t for t in (v.t_banner, v.t_closed) if t is not None]
        if not reactions or min(reactions) - v.t_header > float(within):
            return failed(f"no reaction to the header within {within:g} s ({v.how()})",
                          expected=expected, actual=v.how(), evidence=evidence(v))
    fresh = f"; {show(probes[-1].replies[0])} on a fresh connection" if probes else ""
    return passed(f"still answering: the MTA {v.how()}{fresh}", expected=expected,
                  actual=v.how(), evidence=evidence(v))


@check()
def proxy_fallback(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """A family the MTA need not support: reject it, or accept it with the real endpoints (L444–447)."""
    v = view(obs)
    if isinstance(v, Verdict):
        return v
    if v.outcome != "accepted":
        return passed(f"rejected (allowed): the MTA {v.how()}", actual=v.how(), evidence=evidence(v))
    real = v.proxy.local
    used = [i for i in v.identities if real is not None and not (i.address.ip == real.ip)]
    if used:
        return failed("accepted, but with an address from the header as the client's: "
                      + "; ".join(f"{i.address} ({i.where})" for i in used),
                      expected=f"reject, or accept as {real}", actual=v.how(), evidence=evidence(v))
    return passed(f"accepted with the real endpoints ({real})", actual=v.how(), evidence=evidence(v))


__all__ = [name for name in dir() if name.startswith("proxy_")] + ["ProxyView", "view", "Identity"]
