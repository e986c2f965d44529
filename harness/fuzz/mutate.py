"""Byte-level mutation drawn inside a composite strategy.

Hypothesis's `flatmap` and per-example strategy objects (``mutated(data)``) are validated anew
for every example, which costs more than sending the case to an MTA; these edits draw only from
strategies built once, so a lane's generation stays cheap.
"""

from __future__ import annotations

from hypothesis import strategies as st

EDIT_BYTES = (b" ", b"\t", b"0", b"\r", b"\n", b"\r\n", b"\0", b":", b"-", b".", b"=", b"\xff", b"\x80")


def mutate(draw: st.DrawFn, data: bytes, max_edits: int = 4) -> bytes:
    """Byte-level edits drawn from fixed strategies (no strategy is built per example: that is
    what keeps this lane fast)."""
    for _ in range(draw(st.integers(1, max_edits))):
        if not data:
            return draw(st.binary(max_size=16))
        i = draw(st.integers(0, len(data) - 1))
        kind = draw(st.integers(0, 4))
        if kind == 0:
            data = data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1:]
        elif kind == 1:
            data = data[:i] + draw(st.sampled_from(EDIT_BYTES)) + data[i:]
        elif kind == 2:
            data = data[:i] + data[i + draw(st.integers(1, 8)):]
        elif kind == 3:
            data = data[:i]
        else:
            data = data[:i] + data[i:i + draw(st.integers(1, 40))] + data[i:]
    return data
