"""The inbound session action: the harness is the SMTP client, the target the server.

Steps are data (see scenarios/README.md). Each is a one-key mapping or a bare word:

    - ehlo: client.test            # or helo
    - mail: {from: a@client.test, params: {PRDR: null}}   # or {raw: "FROM:<a@x> PRDR=1"}
    - rcpt: accept                 # a recipient role, or {role: …, params: …} or {to: addr}
    - data: {body: "…"}            # DATA, the body, then every reply to the end of data
    - bdat: {body: "…"}            # BDAT n LAST (RFC 3030), then every reply to it
    - send: "raw\\r\\n"            # raw bytes (escapes allowed); `read: N` reads N replies
    - rset / noop / quit
    - proxy: {v1: "PROXY TCP4 …\\r\\n"}  # first step only: a PROXY header before the banner
    - probe: {}                    # a fresh connection: is the target still answering?

The target's replies are never trusted: a garbage reply, a time-out or a close is recorded on the
step and in the session, and the session stops; checks then judge what was recorded.
"""

from __future__ import annotations

import codecs
import socket
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

from ...proxy.client import STEP_SCHEMA as PROXY_STEP_SCHEMA
from ...proxy.client import V2_SIGNATURE, canonical_v1, canonical_v2, plan_from_step, send_header
from ...smtp.client import ConnectionClosed, ReplyTimeout, SMTPClient
from ...smtp.codec import SMTPProtocolError, dot_stuff
from ...smtp.esmtp import format_path_args, parse_ehlo
from ...smtp.starttls import client_handshake
from ...smtp.tls_probe import PROBE_OPTIONS, probe_handshake
from ...smtp.transcript import Transcript
from ..observations import RcptRecord, SessionRecord, StepRecord

DEFAULT_BODY = "Subject: mtaconform test\r\nFrom: <sender@client.test>\r\n\r\nTest message.\r\n"
DEFAULT_SENDER = "sender@client.test"
SETTLE_S = 0.2  # quiet time after the last expected reply, to catch extra replies

_params = {"type": "object", "additionalProperties": {"type": ["string", "null", "integer"]}}
STEP_SCHEMAS: dict[str, Any] = {
    "ehlo": {"type": "string"},
    "helo": {"type": "string"},
    "mail": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "from": {"type": "string"},
            "params": _params,
            "raw": {"type": "string"},
            "pad_line_to": {"type": "integer", "minimum": 16, "maximum": 100000},
        },
    },
    "rcpt": {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"role": {"type": "string"}, "to": {"type": "string"},
                               "params": _params, "raw": {"type": "string"}},
            },
        ]
    },
    "data": {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {"body": {"type": "string"}},
    },
    "bdat": {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {"body": {"type": "string"}},
    },
    "send": {"type": "string"},
    "read": {"type": "integer", "minimum": 1, "maximum": 100},
    "rset": {"type": "null"},
    "noop": {"type": "null"},
    "quit": {"type": "null"},
    # STARTTLS (RFC 3207) and a TLS handshake, with no SNI or the given name (DANE-31/32).
    "starttls": {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {"sni": {"type": ["string", "null"]},
                       # OCSP (issue #5): ask for a staple (RFC 6066 §8) and/or pin the TLS
                       # version; the handshake then runs over memory BIOs that keep the
                       # server's raw flight (harness/smtp/tls_probe.py).
                       "request_ocsp": {"type": "boolean"},
                       "min_version": {"enum": ["TLSv1.2", "TLSv1.3"]},
                       "max_version": {"enum": ["TLSv1.2", "TLSv1.3"]}},
    },
    # PROXY protocol (issue #6, harness/proxy/client.py): the header, sent before the banner.
    "proxy": PROXY_STEP_SCHEMA,
    "probe": {"type": ["object", "null"], "additionalProperties": False,
              "properties": {"from": {"enum": ["listed", "unlisted"]}}},
}


def validate_steps(steps: Any) -> tuple[list[Any], str] | None:
    if not isinstance(steps, list):
        return [], "session is a list of steps"
    for i, step in enumerate(steps):
        if isinstance(step, str):
            step = {step: None}
        if not isinstance(step, dict) or len(step) != 1:
            return [i], "each step is one word (quit) or a one-key mapping (ehlo: client.test)"
        (kind, arg), = step.items()
        if kind not in STEP_SCHEMAS:
            return [i], f"unknown step {kind!r} (known: {', '.join(STEP_SCHEMAS)})"
        errors = list(jsonschema.Draft202012Validator(STEP_SCHEMAS[kind]).iter_errors(arg))
        if errors:
            return [i, kind, *errors[0].absolute_path], f"{kind}: {errors[0].message}"
        if kind == "rcpt" and isinstance(arg, dict) and not ({"role", "to", "raw"} & set(arg)):
            return [i, kind], "rcpt needs role, to or raw"
        if kind == "proxy" and i != 0:
            return [i, kind], "proxy must be the first step (the header precedes everything)"
    return None


def proxy_source(steps: list[Any]) -> str | None:
    """The source a session's connection comes from: the `proxy:` step's `from` (default
    "listed"), or None for a session without one (the lab's ordinary client address)."""
    first = steps[0] if steps else None
    if isinstance(first, dict) and "proxy" in first:
        return str((first["proxy"] or {}).get("from", "listed"))
    return None


def unescape(text: str) -> bytes:
    """Scenario strings may carry \\r, \\n, \\x00 escapes for raw bytes."""
    return codecs.escape_decode(text.encode("utf-8"))[0]  # type: ignore[no-any-return]


MAX_PATH = 256  # RFC 5321 §4.5.3.1.3, angle brackets included


def _labels(n: int) -> list[str]:
    """DNS labels (at most 63 octets each) that add exactly N octets, dots included, to a name."""
    labels: list[str] = []
    while n > 64:
        labels.append("p" * 63)
        n -= 64
    if n == 1 and labels:  # one octet cannot be a label: borrow one from the previous label
        labels[-1] = labels[-1][:-1]
        n = 2
    if n >= 2:
        labels.append("p" * (n - 1))
    return labels


def padded_mail_args(sender: str, line_len: int, params: dict[str, str | None]) -> str:
    """MAIL arguments whose command line (CRLF included, PARAMS excluded) is LINE_LEN octets.

    A legal path alone cannot reach RFC 5321's 512-octet line limit (§4.5.3.1.4), so the sender's
    domain is padded up to the 256-octet path limit (§4.5.3.1.3) and the rest is an ENVID
    parameter (RFC 3461 §4.4) of whatever length is needed. A LINE_LEN below the unpadded
    command's length gives the unpadded command.
    """
    local, _, domain = sender.partition("@")
    need = line_len - len(f"MAIL FROM:<{local}@{domain}>\r\n")
    if need <= 0:
        return format_path_args("FROM", sender, params)
    pad = min(need, MAX_PATH - len(f"<{local}@{domain}>"))
    rest = need - pad
    if 0 < rest < len(" ENVID=e"):
        pad -= len(" ENVID=e") - rest
        rest = len(" ENVID=e")
    if pad == 1:  # a label costs at least two octets: lengthen the local part instead
        local, pad = local + "x", 0
    path = f"{local}@{'.'.join([*_labels(pad), domain])}"
    extra = {"ENVID": "e" * (rest - len(" ENVID="))} if rest else {}
    return format_path_args("FROM", path, {**extra, **params})


class SessionRunner:
    """Plays one list of steps over one connection and fills a SessionRecord.

    CONNECT takes an optional ``source`` keyword ("listed"/"unlisted" proxy address), used only
    by sessions that start with a `proxy:` step or `probe` one.
    """

    def __init__(self, connect: Callable[..., socket.socket], recipient: Callable[[str, int], str | None],
                 *, reply_timeout: float = 10.0, label: str = "session") -> None:
        self.connect = connect
        self.recipient = recipient
        self.reply_timeout = reply_timeout
        self.label = label
        self._role_counts: dict[str, int] = {}

    def run(self, steps: list[Any]) -> SessionRecord:
        record = SessionRecord(Transcript(self.label))
        source = proxy_source(steps)
        try:
            sock = self.connect(source=source) if source else self.connect()
        except OSError as exc:
            record.errors.append(f"connect failed: {exc}")
            record.transcript.note(f"connect failed: {exc}")
            return record
        client = SMTPClient(sock, record.transcript, reply_timeout=self.reply_timeout)
        try:
            if source is not None:
                proxy_arg, steps = steps[0]["proxy"], list(steps[1:])
                if not self._proxy(client, record, proxy_arg):
                    self._probes(client, record, steps)
                    return record
            if not self._banner(client, record):
                self._probes(client, record, steps)
                return record
            for i, step in enumerate(steps):
                if isinstance(step, str):
                    step = {step: None}
                (kind, arg), = step.items()
                if not self._step(client, record, kind, arg):
                    self._probes(client, record, steps[i + 1:])
                    break
        finally:
            record.closed_by_peer = client.closed_by_peer
            client.close()
        return record

    # -- PROXY protocol ------------------------------------------------------------------------

    def _proxy(self, client: SMTPClient, record: SessionRecord, arg: Mapping[str, Any]) -> bool:
        """Send the header as planned; False when the session ends there."""
        plan = plan_from_step(arg)
        proxy, received, closed = send_header(client.sock, record.transcript, plan)
        record.proxy = proxy
        record.steps.append(StepRecord("proxy", proxy.sent + plan.trailing))
        client.parser.feed(received)
        if closed:
            client.closed_by_peer = True
        if plan.then == "close":  # half-closed: nothing more can be sent; keep what arrived
            if received:
                self._banner(client, record)
            return False
        return not (plan.then == "silent" and proxy.observed == "nothing")

    def _probes(self, client: SMTPClient, record: SessionRecord, steps: list[Any]) -> None:
        """The session ended early: the `probe` steps still run (is the target still there?)."""
        for step in steps:
            if isinstance(step, dict) and "probe" in step:
                self._do_probe(client, record, step["probe"])

    def _do_probe(self, client: SMTPClient, record: SessionRecord, arg: Mapping[str, Any] | None) -> bool:
        """A fresh connection (from a listed proxy, with a valid header): does a banner come?

        The header is of the session's own version: a receiver of v2 only (OpenSMTPD) is asked
        with what it reads, so a probe after a v2 session judges survival, not v1 support."""
        source = (arg or {}).get("from", "listed")
        v2 = record.proxy is not None and record.proxy.sent.startswith(V2_SIGNATURE)
        header = (canonical_v2() if v2 else canonical_v1()) if source == "listed" else b""
        step = StepRecord("probe", header)
        record.steps.append(step)
        record.transcript.note(f"probe: a fresh connection from the {source} proxy address")
        try:
            sock = self.connect(source=source)
        except OSError as exc:
            step.error = f"connect failed: {exc}"
            record.errors.append(f"probe: {step.error}")
            record.transcript.note(f"probe: {step.error}")
            return True
        probe = SMTPClient(sock, Transcript(f"{self.label} probe", start=record.transcript.start),
                           reply_timeout=self.reply_timeout)
        try:
            if header:
                probe.send(header)
            ok = self._read(probe, record, step)
            if ok:
                record.transcript.note(f"probe: banner {step.replies[0].code} on the fresh connection")
            probe.quit()
        except ConnectionClosed as exc:
            step.error = f"closed: {exc}"
            record.errors.append(f"probe: {step.error}")
        finally:
            probe.close()
        return True

    # -- steps --------------------------------------------------------------------------------

    def _read(self, client: SMTPClient, record: SessionRecord, step: StepRecord,
              timeout: float | None = None) -> bool:
        try:
            step.replies.append(client.read_reply(timeout))
            return True
        except SMTPProtocolError as exc:
            step.error = f"malformed reply: {exc}"
        except ReplyTimeout as exc:
            step.error = f"time-out: {exc}"
        except ConnectionClosed as exc:
            step.error = f"closed: {exc}"
        record.errors.append(f"{step.kind}: {step.error}")
        record.transcript.note(f"{step.kind}: {step.error}")
        return False

    def _banner(self, client: SMTPClient, record: SessionRecord) -> bool:
        step = StepRecord("banner", b"")
        record.steps.append(step)
        ok = self._read(client, record, step)
        if ok:
            record.banner = step.replies[0]
        return ok

    def _send_line(self, client: SMTPClient, record: SessionRecord, kind: str, line: bytes) -> StepRecord | None:
        step = StepRecord(kind, line)
        record.steps.append(step)
        try:
            client.send(line)
        except ConnectionClosed as exc:
            step.error = f"closed: {exc}"
            record.errors.append(f"{kind}: {step.error}")
            return None
        return step

    def _step(self, client: SMTPClient, record: SessionRecord, kind: str, arg: Any) -> bool:
        handler = getattr(self, f"_do_{kind}")
        return bool(handler(client, record, arg))

    def _simple(self, client: SMTPClient, record: SessionRecord, kind: str, line: str) -> StepRecord | None:
        step = self._send_line(client, record, kind, line.encode("utf-8", "surrogateescape") + b"\r\n")
        if step is None or not self._read(client, record, step):
            return None
        return step

    def _do_ehlo(self, client: SMTPClient, record: SessionRecord, arg: str) -> bool:
        step = self._simple(client, record, "ehlo", f"EHLO {arg}")
        if step is None:
            return False
        record.ehlo_reply = step.replies[0]
        if record.ehlo_reply.is_positive:
            try:
                record.ehlo = parse_ehlo(record.ehlo_reply)
            except SMTPProtocolError as exc:
                record.errors.append(f"ehlo: malformed EHLO reply: {exc}")
        return True

    def _do_helo(self, client: SMTPClient, record: SessionRecord, arg: str) -> bool:
        record.used_helo = True
        return self._simple(client, record, "helo", f"HELO {arg}") is not None

    def _do_mail(self, client: SMTPClient, record: SessionRecord, arg: Mapping[str, Any]) -> bool:
        if "raw" in arg:
            args = arg["raw"]
            record.mail_params = {}
            for tok in args.split()[1:]:
                key, _, value = tok.partition("=")
                record.mail_params[key.upper()] = value if "=" in tok else None
        else:
            params = {k.upper(): (None if v is None else str(v)) for k, v in (arg.get("params") or {}).items()}
            sender = arg.get("from", DEFAULT_SENDER)
            if "pad_line_to" in arg:
                args = padded_mail_args(sender, arg["pad_line_to"], params)
            else:
                args = format_path_args("FROM", sender, params)
            record.mail_params = params
        step = self._simple(client, record, "mail", f"MAIL {args}")
        if step is None:
            return False
        record.mail_reply = step.replies[0]
        return True

    def _do_rcpt(self, client: SMTPClient, record: SessionRecord, arg: Any) -> bool:
        if isinstance(arg, str):
            arg = {"role": arg}
        role = arg.get("role")
        params = {k.upper(): (None if v is None else str(v)) for k, v in (arg.get("params") or {}).items()}
        if "raw" in arg:
            line, address = f"RCPT {arg['raw']}", arg["raw"]
        else:
            if role:
                n = self._role_counts[role] = self._role_counts.get(role, 0) + 1
                address = self.recipient(role, n)
                if address is None:
                    raise LookupError(f"the target has no recipient for role {role!r}")
            else:
                address = arg["to"]
            line = f"RCPT {format_path_args('TO', address, params)}"
        step = self._simple(client, record, "rcpt", line)
        rec = RcptRecord(len(record.rcpts) + 1, address, role, params,
                         step.replies[0] if step else None)
        record.rcpts.append(rec)
        return step is not None

    def _end_of_data(self, client: SMTPClient, record: SessionRecord, step: StepRecord) -> bool:
        """Read every reply to the end of data: one, or a PRDR block, then any extras."""
        if not self._read(client, record, step):
            return False
        first = step.replies[-1]
        expected = 1
        # draft-hall-prdr-00 §4.5: 353, one reply per accepted recipient, then the final reply.
        if first.code == 353 and record.prdr_requested:
            expected = 1 + len(record.accepted_rcpts) + 1
            while len(step.replies) < expected:
                if not self._read(client, record, step):
                    break
        if step.error is None:
            extra, error = client.drain(SETTLE_S)
            step.replies.extend(extra)
            if error:
                step.error = error
                record.errors.append(f"{step.kind}: {error}")
        record.end_replies = list(step.replies)
        record.end_replies_expected = expected
        return step.error is None

    def _do_data(self, client: SMTPClient, record: SessionRecord, arg: Mapping[str, Any] | None) -> bool:
        body = unescape((arg or {}).get("body", DEFAULT_BODY))
        step = self._simple(client, record, "data", "DATA")
        if step is None:
            return False
        record.data_reply = step.replies[0]
        if record.data_reply.code != 354:
            return True
        end = self._send_line(client, record, "data-end", dot_stuff(body))
        return end is not None and self._end_of_data(client, record, end)

    def _do_bdat(self, client: SMTPClient, record: SessionRecord, arg: Mapping[str, Any] | None) -> bool:
        body = unescape((arg or {}).get("body", DEFAULT_BODY))
        step = self._send_line(client, record, "bdat", f"BDAT {len(body)} LAST\r\n".encode() + body)
        return step is not None and self._end_of_data(client, record, step)

    def _do_send(self, client: SMTPClient, record: SessionRecord, arg: str) -> bool:
        return self._send_line(client, record, "send", unescape(arg)) is not None

    def _do_read(self, client: SMTPClient, record: SessionRecord, arg: int) -> bool:
        step = StepRecord("read", b"")
        record.steps.append(step)
        return all(self._read(client, record, step) for _ in range(arg))

    def _do_rset(self, client: SMTPClient, record: SessionRecord, arg: None) -> bool:
        return self._simple(client, record, "rset", "RSET") is not None

    def _do_noop(self, client: SMTPClient, record: SessionRecord, arg: None) -> bool:
        return self._simple(client, record, "noop", "NOOP") is not None

    def _do_starttls(self, client: SMTPClient, record: SessionRecord,
                     arg: Mapping[str, Any] | None) -> bool:
        """STARTTLS, then the handshake (SNI as asked, none by default); the rest of the session
        runs over TLS. What the server presented is kept in record.tls for the checks."""
        sni = (arg or {}).get("sni")
        step = self._simple(client, record, "starttls", "STARTTLS")
        if step is None:
            return False
        reply = step.replies[0]
        if reply.code != 220:
            record.tls = {"sni_sent": sni, "handshake_ok": False, "reply": reply.code,
                          "error": f"STARTTLS answered {reply.code}", "chain": [], "chain_pem": []}
            return True  # the session goes on in clear; the checks judge it
        if set(PROBE_OPTIONS) & set(arg or {}):  # OCSP: staple requested, raw flight kept
            tls_sock, info = probe_handshake(client.sock, sni, self.reply_timeout, arg or {})
        else:
            tls_sock, info = client_handshake(client.sock, sni, self.reply_timeout)
        record.tls = {**info, "reply": reply.code}
        if tls_sock is None:
            record.transcript.note(f"TLS handshake failed (sni={sni}): {info['error']}")
            record.errors.append(f"starttls: TLS handshake failed: {info['error']}")
            return False
        record.transcript.note(f"TLS established: {info['version']} {info['cipher']} sni={sni} "
                               f"chain: {' <- '.join(c['subject'] for c in info['chain'])}")
        client.sock = tls_sock  # type: ignore[assignment]
        client.parser = type(client.parser)()  # RFC 3207 §4.2: forget anything before TLS
        return True

    def _do_quit(self, client: SMTPClient, record: SessionRecord, arg: None) -> bool:
        step = StepRecord("quit", b"QUIT\r\n")
        record.steps.append(step)
        reply = client.quit()
        if reply is not None:
            step.replies.append(reply)
        return False
