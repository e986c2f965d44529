"""Transcripts: every byte each side sent, with time, as evidence for checks and reports."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


def visible(data: bytes) -> str:
    """Bytes as text with CR, LF and non-printables shown, so a report shows exactly what was sent."""
    out = []
    for b in data:
        if b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n\n")
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F or b == 0x09:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


@dataclass(frozen=True)
class TranscriptEvent:
    t: float  # seconds since the transcript started
    dir: str  # "C" client→server, "S" server→client, "note"
    data: bytes


@dataclass
class Transcript:
    """Thread-safe, append-only. Each `add` is one send() or one recv() chunk, so segment
    boundaries (pipelining, fragmentation) stay visible."""

    label: str = ""
    start: float = field(default_factory=time.monotonic)
    events: list[TranscriptEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, direction: str, data: bytes) -> TranscriptEvent:
        ev = TranscriptEvent(round(time.monotonic() - self.start, 6), direction, data)
        with self._lock:
            self.events.append(ev)
        return ev

    def note(self, text: str) -> None:
        self.add("note", text.encode())

    def sent_by(self, direction: str) -> bytes:
        return b"".join(e.data for e in self.events if e.dir == direction)

    def to_evidence(self) -> list[dict[str, object]]:
        return [{"dir": e.dir, "t": e.t,
                 "data": e.data.decode() if e.dir == "note" else visible(e.data)}
                for e in self.events]
