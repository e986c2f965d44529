"""DANE checks (RFC 7672, RFC 7671, RFC 6698) over what a scenario recorded.

Three kinds of evidence, read side by side:

- the fake MX peers' sessions: whether STARTTLS completed before MAIL, the ClientHello's SNI,
  which peer got a connection or a MAIL command, and when;
- the fake DNS's query log: which names and types were asked for, in which order;
- the target's own log: what it decided — delivered, deferred or bounced, via which host, with
  which certificate verification (DANE or not) and whether it took the host lookup as DNSSEC-
  secure. Reading a log is target-specific: ``LOG_READERS`` maps a reader name to a function
  from the scenario's log lines to a ``TargetLog``; Exim's is ``read_exim_log``. Another target
  adds its reader there. A check that needs the log and finds no reader that understands it
  says so (skip) rather than guess.

Inbound (the MTA as TLS server, DANE-31/32) checks read the STARTTLS step of the inbound session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ...report.model import Evidence
from ..observations import Observations
from .base import Verdict, check, failed, passed, skipped, unsupported
from .delivery import dsns, failed_groups

# -- the target's log -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One line of the target's log about one recipient and (usually) one host."""

    kind: str  # "delivered" | "deferred" | "bounced"
    recipient: str
    host: str | None = None  # the host name as the target logs it
    address: str | None = None
    port: int | None = None
    dnssec: bool = False  # the target marks the host lookup as DNSSEC-secure (Exim: "DS")
    tls: str | None = None  # cipher suite, if the target logs one
    verification: str | None = None  # "dane", "pkix", "none"; None when not logged
    detail: str = ""  # the target's own words (error text, remote reply)
    line: str = ""

    @property
    def dane(self) -> bool:
        return self.verification == "dane"


@dataclass(frozen=True)
class Event:
    """An event the target logged through a hook (Exim: the MTAC event_action lines)."""

    name: str
    data: str
    host: str | None
    address: str | None
    dane: bool | None  # Exim: $tls_out_dane
    tlsa_usages: tuple[int, ...] | None  # Exim: $tls_out_tlsa_usage, a bit mask of usages
    line: str


@dataclass
class TargetLog:
    reader: str
    decisions: list[Decision] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # other lines about TLS, DANE, DNSSEC, hosts

    def for_recipient(self, recipient: str, kind: str | None = None) -> list[Decision]:
        want = recipient.lower()
        return [d for d in self.decisions if d.recipient.lower() == want and (kind is None or d.kind == kind)]

    def evidence(self) -> Evidence:
        return Evidence(f"what the target decided (its log, read by the {self.reader} reader)", "table", [
            {"decision": d.kind, "recipient": d.recipient, "host": d.host or "",
             "address": f"{d.address or ''}{f':{d.port}' if d.port else ''}",
             "host lookup": "DNSSEC" if d.dnssec else "", "TLS": d.tls or "",
             "verified": d.verification or "", "detail": d.detail}
            for d in self.decisions] or [{"decision": "(none logged)"}])

    def event_evidence(self) -> Evidence | None:
        if not self.events and not self.remarks:
            return None
        lines = [e.line for e in self.events] + self.remarks
        return Evidence("target events and TLS/DANE remarks", "log", "\n".join(lines))


LogReader = Callable[[Mapping[str, Sequence[str]]], "TargetLog | None"]

_EXIM_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? (?:[+-]\d{4} )?(?:\[\d+\] )?"
                        r"(?P<rest>.*)$")
_EXIM_ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
_EXIM_DECISION = re.compile(rf"^(?:{_EXIM_ID} )?(?P<flag>=>|->|\*\*|==) (?P<rcpt>\S+)(?: <[^>]*>)? ?(?P<tail>.*)$")
_EXIM_HOST = re.compile(r"\bH=(?P<host>\S+)(?P<ds> DS)? \[(?P<addr>[^\]]+)\](?::(?P<port>\d+))?")
_EXIM_EVENT = re.compile(r"MTAC event=(?P<name>\S+) data=<(?P<data>.*?)> host=(?P<host>\S*) "
                         r"ip=(?P<ip>\S*) dane=(?P<dane>\S*) usage=(?P<usage>\S*)")
_EXIM_REMARK = re.compile(r"TLS|DANE|TLSA|DNSSEC|dnssec|certificate|SNI|lookup", re.IGNORECASE)
_EXIM_KIND = {"=>": "delivered", "->": "delivered", "**": "bounced", "==": "deferred"}
_EXIM_CV = {"dane": "dane", "yes": "pkix", "no": "none"}


def _exim_detail(flag: str, tail: str) -> str:
    if flag in ("=>", "->"):
        m = re.search(r'\bC="((?:[^"\\]|\\.)*)"', tail)
        return m.group(1) if m else ""
    # "R=remote T=remote_smtp defer (-53): retry time not reached" → what follows the driver names
    return re.sub(r"^(?:[A-Z]=\S+ )*", "", tail).strip()


def read_exim_log(logs: Mapping[str, Sequence[str]]) -> TargetLog | None:
    """Exim's main log (log_selector = +all) and the template's MTAC event lines.

    `=>`/`->` delivered, `==` deferred, `**` bounced; `H=host DS [ip]:port` (DS: the host was
    found by a DNSSEC-secure lookup), `X=` the TLS cipher, `CV=dane|yes|no` how the server's
    certificate was verified.
    """
    lines = list(logs.get("main", []))
    parsed = [(m.group("rest"), line) for line in lines if (m := _EXIM_LINE.match(line))]
    if not parsed:
        return None
    out = TargetLog("exim")
    for rest, line in parsed:
        if (m := _EXIM_EVENT.search(rest)):
            usage = m.group("usage")
            mask = int(usage) if usage.isdigit() else None
            out.events.append(Event(
                m.group("name"), m.group("data"), m.group("host") or None, m.group("ip") or None,
                {"yes": True, "no": False}.get(m.group("dane")),
                None if mask is None else tuple(u for u in range(8) if mask >> u & 1), line))
            continue
        if (m := _EXIM_DECISION.match(rest)):
            flag, tail = m.group("flag"), m.group("tail")
            host = _EXIM_HOST.search(tail)
            cipher = re.search(r"\bX=(\S+)", tail)
            cv = re.search(r"\bCV=(\S+)", tail)
            out.decisions.append(Decision(
                _EXIM_KIND[flag], m.group("rcpt"),
                host=host.group("host") if host else None,
                address=host.group("addr") if host else None,
                port=int(host.group("port")) if host and host.group("port") else None,
                dnssec=bool(host and host.group("ds")),
                tls=cipher.group(1) if cipher else None,
                verification=_EXIM_CV.get(cv.group(1), cv.group(1)) if cv else None,
                detail=_exim_detail(flag, tail), line=line))
            continue
        if _EXIM_REMARK.search(rest) and " <= " not in f" {rest}":
            out.remarks.append(line)
    return out


_PF_LINE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (?P<prog>[\w./-]+)\[(?P<pid>\d+)\]: (?P<rest>.*)$")
_PF_ENDPOINT = r"(?P<host>[^\s\[]+)\[(?P<addr>[^\]]+)\]:(?P<port>\d+)"
_PF_DELIVERY = re.compile(r"^[0-9A-Za-z]+: to=<(?P<rcpt>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?:none|"
                          + _PF_ENDPOINT + r"),.*? status=(?P<status>\w+) \((?P<detail>.*)\)$")
_PF_TLS = re.compile(r"^(?P<trust>Verified|Trusted|Untrusted|Anonymous) TLS connection established to "
                     + _PF_ENDPOINT + r": (?P<proto>\S+) with cipher (?P<cipher>\S+)")
_PF_DANE_MATCH = re.compile(r"^" + _PF_ENDPOINT + r": Matched DANE (?:EE|TA) certificate")
_PF_KIND = {"sent": "delivered", "deferred": "deferred", "bounced": "bounced", "expired": "bounced"}
_PF_REMARK = re.compile(r"TLSA|DANE|DNSSEC|dnssec|certificate|SNI|TLS is required|warning:")


def read_postfix_log(logs: Mapping[str, Sequence[str]]) -> TargetLog | None:
    """Postfix's maillog (smtp_tls_loglevel = 2). `to=<r>, relay=host[ip]:port, … status=sent|
    deferred|bounced (detail)` per recipient; before it, from the same smtp process, "Verified|
    Trusted|Untrusted|Anonymous TLS connection established to host[ip]:port" and, when a TLSA
    record matched, "host[ip]:port: Matched DANE EE|TA certificate". Postfix logs no DNSSEC state
    of its own: "Verified" after a DANE match means every lookup on the way was secure (with an
    insecure MX it says "Trusted"), so that is read as the host's DNSSEC claim.
    """
    parsed = [(m, line) for line in logs.get("main", []) if (m := _PF_LINE.match(line))]
    if not parsed or not any(m.group("prog").startswith("postfix") for m, _ in parsed):
        return None
    out = TargetLog("postfix")
    # Per smtp process: the TLS state of its connection to each endpoint, and the DANE matches.
    tls: dict[tuple[str, str], re.Match[str]] = {}
    dane: set[tuple[str, str]] = set()
    for m, line in parsed:
        rest, pid = m.group("rest"), m.group("pid")
        if not m.group("prog").endswith(("/smtp", "/lmtp")) or rest.startswith("SSL_connect:"):
            continue
        if (t := _PF_TLS.match(rest)):
            tls[(pid, f"{t['host']}[{t['addr']}]:{t['port']}")] = t
            out.remarks.append(line)
            continue
        if (d := _PF_DANE_MATCH.match(rest)):
            dane.add((pid, f"{d['host']}[{d['addr']}]:{d['port']}"))
            out.remarks.append(line)
            continue
        if (d := _PF_DELIVERY.match(rest)):
            endpoint = (pid, f"{d['host']}[{d['addr']}]:{d['port']}") if d["host"] else None
            t = tls.get(endpoint) if endpoint else None
            trust = t["trust"] if t else None
            verification = None
            if trust == "Verified":
                verification = "dane" if endpoint in dane else "pkix"
            elif trust:
                verification = {"Trusted": "trusted", "Untrusted": "none", "Anonymous": "none"}[trust]
            out.decisions.append(Decision(
                _PF_KIND.get(d["status"], d["status"]), d["rcpt"], host=d["host"], address=d["addr"],
                port=int(d["port"]) if d["port"] else None, dnssec=verification == "dane",
                tls=t["cipher"] if t else None, verification=verification, detail=d["detail"],
                line=line))
            continue
        if _PF_REMARK.search(rest):
            out.remarks.append(line)
    return out


# Readers tried in order; the first that understands the log wins. Add another target's here.
LOG_READERS: dict[str, LogReader] = {"exim": read_exim_log, "postfix": read_postfix_log}


def target_log(obs: Observations) -> TargetLog | None:
    for reader in LOG_READERS.values():
        found = reader(obs.logs)
        if found is not None:
            return found
    return None


def _log_or_skip(obs: Observations) -> TargetLog | Verdict:
    found = target_log(obs)
    if found is None:
        return skipped("no log reader understands this target's log (see LOG_READERS in "
                       "harness/engine/checks/dane.py)")
    return found


def _log_evidence(log: TargetLog) -> list[Evidence]:
    ev = [log.evidence()]
    extra = log.event_evidence()
    return ev + ([extra] if extra else [])


# -- the peers ------------------------------------------------------------------------------------


def _tls_state(s: Any) -> str:
    tls = s.tls
    if tls is None:
        asked = any(c.verb == "STARTTLS" for c in s.commands)
        return "STARTTLS refused by the peer" if asked else "no STARTTLS"
    if not tls.get("handshake_ok"):
        return f"handshake failed ({tls.get('error') or 'no detail'})"
    return f"TLS {tls.get('tls_version')} sni={tls.get('sni')}"


# RFC 8446 §6 AlertDescription values a DANE client sends when it refuses a server.
ALERTS = {40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
          45: "certificate_expired", 46: "certificate_unknown", 48: "unknown_ca",
          80: "internal_error"}


def mail_in_clear(s: Any) -> bool:
    """A MAIL command reached this peer session without a TLS session established before it."""
    if s.mail is None:
        return False
    tls = s.tls
    return not (tls and tls.get("handshake_ok") and tls.get("tls_established_before_mail"))


def peer_table(obs: Observations, peer: str | None = None) -> Evidence:
    rows = []
    for name, sessions in obs.peers.items():
        if peer is not None and name != peer:
            continue
        for s in sessions:
            rows.append({"peer": name, "connection": s.index + 1, "client": s.client[0],
                         "TLS": _tls_state(s), "TLS alerts from the target": ", ".join(
                             ALERTS.get(a, str(a)) for a in (s.tls or {}).get("alerts_received", [])),
                         "MAIL": "in clear" if mail_in_clear(s) else ("over TLS" if s.mail else "none"),
                         "recipients": ", ".join(a for a, _, _ in s.rcpts),
                         "messages": len(s.messages), "ended": s.end_reason or ""})
    return Evidence("peer connections (STARTTLS, SNI, MAIL)", "table",
                    rows or [{"peer": peer or "(any)", "connection": "none"}])


def named_sessions(obs: Observations, peer: str | None = None) -> list[tuple[str, Any]]:
    """(peer name as the scenario names it, session) for PEER's sessions, or every peer's."""
    return [(name, s) for name, sessions in obs.peers.items() if peer is None or name == peer
            for s in sessions]


def accepted_by(s: Any, recipient: str) -> bool:
    """This peer session took a message for RECIPIENT (RCPT accepted, positive end-of-data)."""
    want = recipient.lower()
    for t in s.transactions:
        if t.message is None or not t.data_replies_sent:
            continue
        if want in [a.lower() for a, _, _ in t.accepted] and t.data_replies_sent[-1].startswith(b"2"):
            return True
    return False


_peer = {"type": "string", "description": "a peer's name from world.peers"}
_rcpts = {"type": "array", "items": {"type": "string", "pattern": "@"}, "minItems": 1}


@check(params={"recipients": _rcpts, "peer": _peer}, required=("recipients",))
def delivered_over_tls(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each recipient reached a peer in a session whose TLS handshake completed before MAIL."""
    ev = [peer_table(obs, p.get("peer"))]
    sessions = named_sessions(obs, p.get("peer"))
    for rcpt in p["recipients"]:
        took = [(n, s) for n, s in sessions if accepted_by(s, rcpt)]
        if not took:
            return failed(f"no peer{' ' + p['peer'] if p.get('peer') else ''} accepted a message for <{rcpt}>",
                          expected="delivered over TLS", actual="not delivered", evidence=ev)
        clear = [(n, s) for n, s in took if mail_in_clear(s)]
        if len(clear) == len(took):
            name, s = clear[0]
            return failed(f"<{rcpt}> was delivered in clear to {name} ({_tls_state(s)})",
                          expected="STARTTLS and a completed handshake before MAIL",
                          actual=f"MAIL in clear: {_tls_state(s)}", evidence=ev)
    return passed(f"delivered over TLS: {', '.join(p['recipients'])}", evidence=ev)


@check(params={"peer": _peer})
def no_cleartext_mail(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """No peer (or PEER) received a MAIL command outside a TLS session (RFC 7672 §2.2)."""
    ev = [peer_table(obs, p.get("peer"))]
    for name, s in named_sessions(obs, p.get("peer")):
        if mail_in_clear(s):
            raw = s.mail.raw.decode("utf-8", "replace").strip()
            return failed(f"MAIL reached {name} in clear (connection {s.index + 1}: {_tls_state(s)})",
                          expected="no MAIL without TLS", actual=raw, evidence=ev)
    return passed("no MAIL was sent in clear", evidence=ev)


@check(params={"peer": _peer, "connection": {"type": "boolean", "description":
                                             "false: not even a TCP connection is allowed"}},
       required=("peer",))
def no_mail_via(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """PEER got no MAIL command (with connection: false, no connection at all)."""
    sessions = obs.peer_sessions(p["peer"])
    ev = [peer_table(obs, p["peer"])]
    if p.get("connection") is False and sessions:
        return failed(f"the target connected to {p['peer']} {len(sessions)} time(s)",
                      expected=f"no connection to {p['peer']}", actual=_tls_state(sessions[0]), evidence=ev)
    with_mail = [s for s in sessions if s.mail is not None]
    if with_mail:
        s = with_mail[0]
        return failed(f"MAIL reached {p['peer']} ({_tls_state(s)})", expected=f"no MAIL at {p['peer']}",
                      actual=s.mail.raw.decode("utf-8", "replace").strip(), evidence=ev)
    how = "no connection" if not sessions else f"{len(sessions)} connection(s), no MAIL"
    return passed(f"{p['peer']}: {how}", evidence=ev)


@check(params={"peer": _peer, "recipients": _rcpts}, required=("peer", "recipients"))
def delivered_via(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """PEER accepted a message for each recipient (e.g. the next MX after a failed one)."""
    ev = [peer_table(obs)]
    sessions = obs.peer_sessions(p["peer"])
    for rcpt in p["recipients"]:
        if not any(accepted_by(s, rcpt) for s in sessions):
            others = sorted({n for n, s in named_sessions(obs) if accepted_by(s, rcpt)})
            return failed(f"{p['peer']} did not get <{rcpt}>", expected=f"delivered via {p['peer']}",
                          actual=f"delivered via {', '.join(others)}" if others else "not delivered",
                          evidence=ev)
    return passed(f"delivered via {p['peer']}: {', '.join(p['recipients'])}", evidence=ev)


@check(params={"peer": _peer})
def first_connection(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The target's first connection went to PEER (MX preference before security, §2.2.1)."""
    ev = [peer_table(obs)]
    sessions = sorted(named_sessions(obs), key=lambda ns: ns[1].started)
    if not sessions:
        return failed("the target connected to no peer", expected=f"first connection to {p['peer']}",
                      actual="no connection", evidence=ev)
    first = sessions[0][0]
    if first != p["peer"]:
        return failed(f"the first connection went to {first}",
                      expected=f"first connection to {p['peer']}", actual=first, evidence=ev)
    return passed(f"the first connection went to {p['peer']}", evidence=ev)


@check(params={"peer": _peer, "equals": {"type": "string"}, "not_equals": {"type": "string"}})
def peer_sni(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The ClientHello's SNI at PEER equals (or does not equal) a name (RFC 7672 §8.1)."""
    ev = [peer_table(obs, p.get("peer"))]
    hellos = [(n, s) for n, s in named_sessions(obs, p.get("peer")) if s.tls is not None]
    want, avoid = p.get("equals"), p.get("not_equals")
    if want is not None:
        if not hellos:
            return failed("no TLS handshake reached the peer, so no SNI was sent",
                          expected=f"SNI {want}", actual="no STARTTLS", evidence=ev)
        for name, s in hellos:
            got = s.tls.get("sni")
            if (got or "").lower().rstrip(".") != want.lower().rstrip("."):
                return failed(f"connection {s.index + 1} to {name} sent SNI {got!r}",
                              expected=f"SNI {want}", actual=repr(got), evidence=ev)
    if avoid is not None:
        for name, s in hellos:
            got = s.tls.get("sni")
            if (got or "").lower().rstrip(".") == avoid.lower().rstrip("."):
                return failed(f"connection {s.index + 1} to {name} sent SNI {got!r}",
                              expected=f"any SNI but {avoid}", actual=repr(got), evidence=ev)
    seen = sorted({repr(s.tls.get("sni")) for _, s in hellos}) or ["(no handshake)"]
    return passed(f"SNI: {', '.join(seen)}", evidence=ev)


# -- the DNS query log ----------------------------------------------------------------------------


def _norm(name: str) -> str:
    return name.lower().rstrip(".") or "."


def _types(value: str | Sequence[str]) -> set[str]:
    return {value.upper()} if isinstance(value, str) else {v.upper() for v in value}


def _matches(q: Any, qname: str | None, qtypes: set[str]) -> bool:
    return (qname is None or q.qname == _norm(qname)) and q.qtype in qtypes


def dns_evidence(queries: Iterable[Any], label: str = "DNS queries (in order)") -> Evidence:
    rows = [{"#": i, "query": f"{q.qname} {q.qtype}", "time": q.wall, "state": q.state,
             "reply": "no reply" if q.rcode is None else f"{q.rcode}{' AD' if q.ad else ''}"}
            for i, q in enumerate(queries, start=1) if q.qname]
    return Evidence(label, "table", rows or [{"query": "(none)"}])


_qtype = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
_query = {"type": "object", "additionalProperties": False, "required": ["qtype"],
          "properties": {"qname": {"type": "string"}, "qtype": _qtype}}


@check(params={"qname": {"type": "string", "description": "absent: any name"}, "qtype": _qtype,
               "present": {"type": "boolean"}},
       required=("qtype", "present"))
def dns_query(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The target asked (or did not ask) the DNS for QNAME/QTYPE."""
    qtypes = _types(p["qtype"])
    what = f"{p.get('qname', 'any name')} {'/'.join(sorted(qtypes))}"
    hits = [q for q in obs.dns_log if _matches(q, p.get("qname"), qtypes)]
    ev = [dns_evidence(obs.dns_log)]
    if p["present"] and not hits:
        return failed(f"no query for {what}", expected=f"a query for {what}", actual="none", evidence=ev)
    if not p["present"] and hits:
        return failed(f"the target asked for {hits[0].qname} {hits[0].qtype}",
                      expected=f"no query for {what}",
                      actual=", ".join(f"{q.qname} {q.qtype}" for q in hits), evidence=ev)
    return passed(f"{'a' if p['present'] else 'no'} query for {what}", evidence=ev)


@check(params={"first": _query, "then": _query}, required=("first", "then"))
def dns_order(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Every FIRST query the target made came before its first THEN query; both were made."""
    first, then = p["first"], p["then"]
    ft, tt = _types(first["qtype"]), _types(then["qtype"])
    fdesc = f"{first.get('qname', 'any name')} {'/'.join(sorted(ft))}"
    tdesc = f"{then.get('qname', 'any name')} {'/'.join(sorted(tt))}"
    log = list(obs.dns_log)
    ev = [dns_evidence(log)]
    expected = f"{fdesc} before {tdesc}"
    f_at = [i for i, q in enumerate(log) if _matches(q, first.get("qname"), ft)]
    t_at = [i for i, q in enumerate(log) if _matches(q, then.get("qname"), tt)]
    if not f_at:
        return failed(f"no query for {fdesc}", expected=expected, actual="none", evidence=ev)
    if not t_at:
        return failed(f"no query for {tdesc}", expected=expected, actual="none", evidence=ev)
    late = [i for i in f_at if i > t_at[0]]
    if late:
        q, t = log[late[0]], log[t_at[0]]
        return failed(f"{q.qname} {q.qtype} (query #{late[0] + 1}) came after {t.qname} {t.qtype} "
                      f"(query #{t_at[0] + 1})", expected=expected,
                      actual=" → ".join(f"{log[i].qname} {log[i].qtype}" for i in sorted(f_at + t_at)),
                      evidence=ev)
    return passed(f"{fdesc} (query #{f_at[-1] + 1}) before {tdesc} (query #{t_at[0] + 1})",
                  expected=expected, evidence=ev)


# -- the target's decisions -----------------------------------------------------------------------


@check(params={"recipients": _rcpts, "present": {"type": "boolean"}})
def dane_authenticated(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The target records a DANE-authenticated delivery for each recipient (present: false —
    it claims none); Exim: CV=dane."""
    log = _log_or_skip(obs)
    if isinstance(log, Verdict):
        return log
    present = p.get("present", True)
    ev = _log_evidence(log)
    delivered = [d for d in log.decisions if d.kind == "delivered"]
    if p.get("recipients"):
        wanted = {r.lower() for r in p["recipients"]}
        delivered = [d for d in delivered if d.recipient.lower() in wanted]
    dane = [d for d in delivered if d.dane]
    if present:
        if p.get("recipients"):
            missing = [r for r in p["recipients"] if not any(d.recipient.lower() == r.lower() for d in dane)]
        else:
            missing = [] if dane else ["any recipient"]
        if missing:
            seen = [f"{d.recipient} via {d.host}: verified={d.verification}" for d in delivered]
            return failed(f"no DANE-authenticated delivery logged for {', '.join(missing)}",
                          expected="delivered with DANE authentication (Exim: CV=dane)",
                          actual="; ".join(seen) or "not delivered", evidence=ev)
        return passed(f"DANE-authenticated: {', '.join(sorted({d.recipient for d in dane}))}",
                      evidence=ev)
    if dane:
        d = dane[0]
        return failed(f"the target claims a DANE-authenticated delivery of {d.recipient} via {d.host}",
                      expected="no DANE-verified claim", actual=d.line, evidence=ev)
    return passed("no delivery is claimed as DANE-authenticated", evidence=ev)


@check(params={"recipients": _rcpts}, required=("recipients",))
def no_dnssec_claim(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The target does not log the delivery's host as DNSSEC-secure (insecure MX, §2.2.1);
    Exim: no DS after H=."""
    log = _log_or_skip(obs)
    if isinstance(log, Verdict):
        return log
    ev = _log_evidence(log)
    for rcpt in p["recipients"]:
        for d in log.for_recipient(rcpt):
            if d.dnssec:
                return failed(f"the log marks the host of {d.recipient} ({d.host}) as DNSSEC-secure",
                              expected="no secure-delivery claim for an insecurely found MX host",
                              actual=d.line, evidence=ev)
    return passed("no decision is logged as a DNSSEC-secure host", evidence=ev)


@check(params={"recipients": _rcpts, "host": {"type": "string"}}, required=("recipients", "host"))
def log_names_host(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The target's log names HOST (the MX host name as looked up) for each recipient's attempts."""
    log = _log_or_skip(obs)
    if isinstance(log, Verdict):
        return log
    ev = _log_evidence(log)
    for rcpt in p["recipients"]:
        named = [d for d in log.for_recipient(rcpt) if d.host]
        if not named:
            return failed(f"no logged attempt for {rcpt} names a host", expected=f"H={p['host']}",
                          actual="; ".join(d.line for d in log.for_recipient(rcpt)) or "nothing", evidence=ev)
        other = [d for d in named if _norm(d.host or "") != _norm(p["host"])]
        if other:
            return failed(f"the log names {other[0].host} for {rcpt}", expected=f"H={p['host']}",
                          actual=other[0].line, evidence=ev)
    return passed(f"the log names {p['host']}", evidence=ev)


@check(params={"recipients": _rcpts}, required=("recipients",))
def deferred_not_bounced(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """Each recipient is still queued, without a failure DSN and not delivered anywhere
    (delivery delayed, RFC 7672 §2.1.2, §2.2)."""
    if obs.queue is None:
        return skipped("the target's queue cannot be read")
    reports, _ = dsns(obs)
    log = target_log(obs)
    ev = [Evidence("queued recipients after the last attempt", "text",
                   ", ".join(sorted(obs.queued())) or "(queue empty)"), peer_table(obs)]
    ev += _log_evidence(log) if log else []
    for rcpt in p["recipients"]:
        if failed_groups(reports, rcpt) or (log and log.for_recipient(rcpt, "bounced")):
            why = "; ".join(d.detail for d in (log.for_recipient(rcpt, "bounced") if log else []))
            return failed(f"<{rcpt}> was bounced", expected="deferred (queued, no DSN)",
                          actual=f"bounced: {why}" if why else "failure DSN", evidence=ev)
        if any(accepted_by(s, rcpt) for s in obs.peer_sessions()):
            return failed(f"<{rcpt}> was delivered", expected="deferred (queued, no DSN)",
                          actual="a peer accepted it", evidence=ev)
        if rcpt.lower() not in obs.queued():
            return failed(f"<{rcpt}> left the queue", expected="deferred (queued, no DSN)",
                          actual="gone from the queue", evidence=ev)
    return passed(f"deferred: {', '.join(p['recipients'])}", evidence=ev)


# -- the MTA as TLS server (DANE-31, DANE-32) -----------------------------------------------------


def _server_tls(obs: Observations) -> dict[str, Any] | Verdict:
    s = obs.session
    if s is None:
        return skipped("no inbound session was recorded")
    tls_up = bool(s.tls and s.tls.get("handshake_ok"))  # then s.ehlo may be the EHLO over TLS
    if s.ehlo is not None and "STARTTLS" not in s.ehlo.keywords and not tls_up:
        return unsupported("the target does not offer STARTTLS")
    if s.tls is None:
        return failed("the session has no STARTTLS step result", actual="; ".join(s.errors) or None)
    return s.tls


def chain_evidence(tls: Mapping[str, Any]) -> Evidence:
    rows = [{"#": i, **{k: (", ".join(v) if isinstance(v, list) else v) for k, v in c.items()}}
            for i, c in enumerate(tls.get("chain") or [], start=1)]
    return Evidence(f"certificates the server presented (SNI sent: {tls.get('sni_sent')!r})", "table",
                    rows or [{"#": "(none)"}])


@check()
def server_tls_handshake(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The STARTTLS handshake completed and the server presented a certificate, whatever SNI the
    client sent (RFC 7672 §8.1: servers MUST NOT enforce SNI)."""
    tls = _server_tls(obs)
    if isinstance(tls, Verdict):
        return tls
    ev = [chain_evidence(tls)]
    sni = tls.get("sni_sent")
    sni_text = "no SNI" if sni is None else f"SNI {sni!r}"
    if not tls.get("handshake_ok"):
        return failed(f"the TLS handshake with {sni_text} did not complete",
                      expected="a completed handshake and a certificate, whatever the SNI",
                      actual=tls.get("error") or "failed", evidence=ev)
    if not tls.get("chain"):
        return failed(f"the server presented no certificate to a client with {sni_text}",
                      expected="some fallback certificate chain", actual="no certificate", evidence=ev)
    return passed(f"handshake with {sni_text} completed: {tls['chain'][0]['subject']}", evidence=ev)


@check(params={"min_length": {"type": "integer", "minimum": 2,
                              "description": "certificates the chain must hold (default 3: leaf, "
                                             "intermediate, root)"}})
def server_chain_has_ta(obs: Observations, p: Mapping[str, Any]) -> Verdict:
    """The server's Certificate message holds its whole chain up to and including the
    self-signed trust anchor, each certificate issued by the next (RFC 7672 §3.1.2), so that a
    "2 0 1" record of that root authenticates it."""
    tls = _server_tls(obs)
    if isinstance(tls, Verdict):
        return tls
    ev = [chain_evidence(tls)]
    if not tls.get("handshake_ok"):
        return failed("no TLS session, so no chain to judge", actual=tls.get("error"), evidence=ev)
    chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in tls.get("chain_pem") or []]
    need = p.get("min_length", 3)
    expected = f"leaf … self-signed root, at least {need} certificates, each issued by the next"
    if len(chain) < need:
        return failed(f"the server presented {len(chain)} certificate(s)", expected=expected,
                      actual=" <- ".join(c.subject.rfc4514_string() for c in chain) or "none", evidence=ev)
    for child, parent in zip(chain, chain[1:]):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            return failed(f"{child.subject.rfc4514_string()} is not issued by the next certificate, "
                          f"{parent.subject.rfc4514_string()} ({exc or type(exc).__name__})",
                          expected=expected, evidence=ev)
    root = chain[-1]
    try:
        root.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return failed(f"the last certificate, {root.subject.rfc4514_string()}, is not a self-signed "
                      "trust anchor", expected=expected, actual=f"issued by {root.issuer.rfc4514_string()}",
                      evidence=ev)
    return passed(f"{len(chain)} certificates up to the self-signed {root.subject.rfc4514_string()} "
                  f"(2 0 1 {tls['chain'][-1]['tlsa_2_0_1'][:16]}…)", evidence=ev)
