"""The outbound action: a message injected into the target, which delivers it to the lab's peers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import format_datetime
from datetime import datetime, timezone
from typing import Any

from ...targets.managed import ManagedTarget
from ..observations import Observations, SessionRecord
from ..world import DEFAULT_SENDER

QUIET_TIMEOUT_S = 120.0


def build_message(sender: str, recipients: list[str], subject: str, body: str, msgid: str) -> bytes:
    lines = [
        f"From: <{sender}>",
        f"To: {', '.join(f'<{r}>' for r in recipients)}",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime.now(timezone.utc))}",
        f"Message-ID: <{msgid}@mtaconform.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        body.rstrip("\r\n"),
        "",
    ]
    return "\r\n".join(lines).encode()


def padded(body: str, size: int) -> str:
    """BODY followed by filler lines until it is SIZE bytes long (a large message, RFC 3461 §4.3)."""
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-mtaconform-filler\r\n"
    out = body.rstrip("\r\n") + "\r\n"
    while len(out) + len(line) <= size:
        out += line
    return out + "x" * max(0, size - len(out) - 2) + ("\r\n" if size - len(out) >= 2 else "")


def submission_steps(sender: str, recipients: list[str], message: bytes,
                     action: Mapping[str, Any]) -> list[Any]:
    """An SMTP submission carrying the DSN parameters of RFC 3461 §4 the action asks for."""
    mail_params = {k.upper(): action[k] for k in ("ret", "envid") if k in action}
    rcpt_params = {"NOTIFY": action["notify"]} if "notify" in action else {}
    per_rcpt = {k.lower(): v for k, v in action.get("rcpt_params", {}).items()}
    steps: list[Any] = [{"ehlo": "submitter.test"}, {"mail": {"from": sender, "params": mail_params}}]
    steps += [{"rcpt": {"to": r, "params": {**rcpt_params, **{k.upper(): v for k, v in
                                                              per_rcpt.get(r.lower(), {}).items()}}}}
              for r in recipients]
    steps += [{"data": {"body": message.decode("utf-8", "surrogateescape").replace("\\", "\\\\")}}, "quit"]
    return steps


def run_outbound(target: ManagedTarget, action: Mapping[str, Any], obs: Observations,
                 submit: Callable[[list[Any]], SessionRecord]) -> None:
    """Inject (command line, or SMTP when DSN parameters are asked for), wait for the target to
    finish, then force ACTION['retries'] queue runs.

    The queue listing after each attempt goes into obs.queue_history; obs.queue is the last.
    """
    sender = action.get("from", DEFAULT_SENDER)
    recipients = list(action["to"])
    obs.sender, obs.recipients = sender, recipients
    message = build_message(sender, recipients, action.get("subject", f"mtaconform {obs.scenario_id}"),
                            action.get("body", "Test message from mtaconform."), obs.scenario_id)
    if action.get("body_bytes"):
        head, _, body = message.partition(b"\r\n\r\n")
        message = head + b"\r\n\r\n" + padded(body.decode(), int(action["body_bytes"]) - len(head) - 4).encode()
    via = action.get("via") or ("smtp" if {"notify", "ret", "envid", "rcpt_params"} & set(action) else "command")
    if via == "smtp":
        record = submit(submission_steps(sender, recipients, message, action))
        obs.sessions.append(record)
        if record.errors or not record.end_replies or not record.end_replies[0].is_positive:
            obs.notes.append("the target did not accept the submission: " + "; ".join(record.errors))
    else:
        obs.injects.append(target.inject(sender, recipients, message))
    if not target.wait_quiet(QUIET_TIMEOUT_S):
        obs.notes.append(f"target still busy {QUIET_TIMEOUT_S:.0f} s after the injection")
    obs.queue_history.append(target.queue() or [])
    for _ in range(int(action.get("retries", 0))):
        if action.get("retry_wait"):
            time.sleep(float(action["retry_wait"]))
        target.flush()
        if not target.wait_quiet(QUIET_TIMEOUT_S):
            obs.notes.append(f"target still busy {QUIET_TIMEOUT_S:.0f} s after a queue run")
        obs.queue_history.append(target.queue() or [])
    obs.queue = obs.queue_history[-1]
