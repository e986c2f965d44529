"""DSNs as people read them: decoded, field by field, beside the peer replies that caused them.

`arrivals(sink_sessions)` lists what reached the DSN sink (envelope + parsed report + violations);
`decoded(arrival)` is the text the report shows; `trace_rows(arrival, convs)` puts each recipient
group next to what the fake MX really said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .report import DeliveryReport
from .trace import Conversation, conversations, fate
from .validate import Violation, validate_bytes

MAX_BODY_SHOWN = 2000


@dataclass
class Arrival:
    """One message that reached the DSN sink, with its envelope."""

    number: int  # 1-based, in arrival order
    connection: int  # sink connection, 1-based
    reverse_path: str
    recipients: list[str]
    raw: bytes
    report: DeliveryReport | None
    violations: list[Violation] = field(default_factory=list)

    @property
    def kinds(self) -> set[str]:
        """failure / delay / success, from the Action fields."""
        if self.report is None:
            return set()
        if not self.report.recipients:
            return {"other"}  # no per-recipient group: nothing says what kind it is
        out = set()
        for g in self.report.recipients:
            out.add({"failed": "failure", "delayed": "delay"}.get(g.action, "success" if g.action in (
                "delivered", "relayed", "expanded") else "other"))
        return out

    @property
    def label(self) -> str:
        kinds = "/".join(sorted(self.kinds)) or "unreadable"
        return f"DSN #{self.number} ({kinds}, sink connection {self.connection})"


def arrivals(sink_sessions: Iterable[Any]) -> list[Arrival]:
    out: list[Arrival] = []
    for session in sink_sessions:
        for t in getattr(session, "transactions", []):
            if t.message is None:
                continue
            report, violations = validate_bytes(t.message)
            out.append(Arrival(len(out) + 1, session.index + 1, t.reverse_path,
                               [a for a, _, _ in t.accepted], t.message, report, violations))
    return out


def _body_summary(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    if len(text) > MAX_BODY_SHOWN:
        return text[:MAX_BODY_SHOWN] + f"\n[… {len(text) - MAX_BODY_SHOWN} more characters]"
    return text


def decoded(arrival: Arrival) -> str:
    """The DSN as text: envelope, headers, MIME parts, every field group, the returned content,
    and the validator's findings."""
    lines = [f"envelope: MAIL FROM:<{arrival.reverse_path}> RCPT TO:"
             + ", ".join(f"<{r}>" for r in arrival.recipients)]
    rep = arrival.report
    if rep is None:
        lines.append("not readable as a DSN:")
        lines += [f"  {v}" for v in arrival.violations]
        lines += ["", _body_summary(arrival.raw)]
        return "\n".join(lines)
    lines.append("")
    lines += [f"{k}: {v}" for k, v in rep.header_items]
    lines.append("")
    where = "" if rep.container == "top level" else f" ({rep.container})"
    lines.append(f"multipart/report{where}: report-type={rep.report_type}, "
                 f"{len(rep.part_list)} parts{'' if rep.closed else ', NOT CLOSED'}")
    for p in rep.part_list:
        cte = f", {p.cte}" if p.cte else ""
        lines.append(f"  part {p.index}: {p.content_type}{cte}, {len(p.body)} bytes")
    lines += ["", "--- part 1 (human-readable) ---", rep.human_text.rstrip()]
    lines += ["", f"--- {rep.status_type}: per-message fields ---"]
    lines += [f"  {f.name}: {f.value}" for f in rep.per_message_group.items]
    for g in rep.recipients:
        lines.append(f"--- recipient {g.index} ---")
        lines += [f"  {f.name}: {f.value}" for f in g.items]
        lines += [f"  (line {n}, not a field) {text}" for n, text in g.malformed]
    if rep.returned is not None:
        r = rep.returned
        lines += ["", f"--- part 3: {r.content_type}, {r.size} bytes: "
                  f"{len(r.headers)} header fields, body {len(r.body)} bytes ---"]
        lines += [f"  {k}: {v}" for k, v in r.headers[:40]]
        if r.body:
            lines += ["  [body]", _body_summary(r.body[:400])]
    lines.append("")
    if arrival.violations:
        lines.append(f"validator: {len(arrival.violations)} finding(s)")
        lines += [f"  {v}" for v in arrival.violations]
    else:
        lines.append("validator: no findings")
    return "\n".join(lines)


def trace_rows(arrival: Arrival, convs: Sequence[Conversation]) -> list[dict[str, str]]:
    """One row per recipient group: what the DSN says beside what the peer said."""
    rows = []
    if arrival.report is None:
        return rows
    for g in arrival.report.recipients:
        ev = fate(convs, g.final_recipient)
        rows.append({
            "DSN": f"#{arrival.number}",
            "recipient": g.get("final-recipient") or "(no Final-Recipient)",
            "Action": g.get("action") or "—",
            "Status": g.get("status") or "—",
            "Remote-MTA": " | ".join(f.value for f in g.all("remote-mta")) or "—",
            "Diagnostic-Code": g.get("diagnostic-code") or "—",
            "what the peer said": ev.describe() if ev else "(no peer reply names this recipient)",
        })
    return rows


def evidence_items(sink_sessions: Iterable[Any], peers: Mapping[str, Sequence[Any]]) -> list[tuple[str, str, Any]]:
    """(label, kind, content) triples for the report: each DSN decoded, then its trace table."""
    convs = conversations(peers)
    out: list[tuple[str, str, Any]] = []
    for a in arrivals(sink_sessions):
        out.append((f"{a.label}, decoded", "text", decoded(a)))
        rows = trace_rows(a, convs)
        if rows:
            out.append((f"{a.label} beside the peer transcript that caused it", "table", rows))
    return out
