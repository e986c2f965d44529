"""The `self` lane: the harness's own parsers, in-process, at high speed.

The MTA's bytes reach these parsers in every run, so they are held to what DESIGN.md promises
(h11's rule): malformed input raises the parser's one documented error type, never a stray
IndexError; and feeding the same bytes whole or in pieces gives the same events. Parsers: SMTP
replies and commands (harness.smtp.codec), PROXY headers (harness.proxy.codec), DSNs
(harness.dsn), OCSP responses and requests (harness.pki.ocsp).
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ...dsn.errors import DSNError
from ...dsn.report import parse_dsn
from ...dsn.validate import validate
from ...pki import ocsp
from ...proxy.codec import NEED_DATA as PROXY_NEED_DATA
from ...proxy.codec import ProxyDecoder, ProxyHeader, ProxyProtocolError
from ...proxy.strategies import headers
from ...report.model import Evidence
from ...smtp.codec import NEED_DATA, CommandParser, ReplyParser, SMTPProtocolError
from ...smtp.strategies import command_lines, encoded_replies, message_contents
from ..model import Execution, Violation, b64, unb64
from ..mutate import mutate
from .base import Context, Lane

CRASH = "parser-crash"
CRASH_CITE = "DESIGN.md: malformed peer input raises the parser's one documented error type"
SPLIT = "parser-split"
SPLIT_CITE = "DESIGN.md: a sans-I/O parser gives the same events whatever the segmentation"
DSN_SAMPLES = Path(__file__).resolve().parents[3] / "fixtures" / "dsn"


class Outcome(Exception):
    """Parsing stopped with the parser's own error (an acceptable end)."""


def _feed_replies(pieces: list[bytes]) -> list[Any]:
    p = ReplyParser()
    out: list[Any] = []
    try:
        for piece in pieces:
            p.feed(piece)
            while (ev := p.next_event()) is not NEED_DATA:
                out.append((ev.code, ev.lines))
        p.close()
    except SMTPProtocolError as exc:
        out.append(("error", exc.message if hasattr(exc, "message") else str(exc).split(" (")[0]))
    return out


def _feed_commands(pieces: list[bytes]) -> list[Any]:
    p = CommandParser()
    out: list[Any] = []
    try:
        for piece in pieces:
            p.feed(piece)
            while (ev := p.next_event()) is not NEED_DATA:
                out.append(repr(ev))
                if getattr(ev, "verb", "").upper() == "DATA":
                    p.start_data()
        p.close()
    except SMTPProtocolError:
        out.append("error")
    return out


def _feed_proxy(pieces: list[bytes]) -> list[Any]:
    d = ProxyDecoder()
    header: Any = None
    rest = b""
    try:
        for piece in pieces:
            if header is not None:
                rest += piece  # after the header: SMTP bytes, not the decoder's
                continue
            d.feed(piece)
            ev = d.next_event()
            if ev is not PROXY_NEED_DATA:
                header = ev
        if header is None:
            return ["incomplete"]
        return [header.describe(), d.trailing + rest]
    except ProxyProtocolError:
        return ["error"]


def _dsn(pieces: list[bytes]) -> list[Any]:
    try:
        report = parse_dsn(b"".join(pieces))
    except DSNError:
        return ["error"]
    return [str(v) for v in validate(report)]


def _ocsp(pieces: list[bytes]) -> list[Any]:
    data = b"".join(pieces)
    out: list[Any] = [sorted(ocsp.decode_response(data))]  # never raises
    try:
        ocsp.parse_request(data)
        out.append("request")
    except ocsp.OCSPError:
        out.append("error")
    return out


PARSERS: dict[str, tuple[Callable[[list[bytes]], list[Any]], bool]] = {
    # name: (run, whether pieces must give the same result as the whole)
    "smtp-replies": (_feed_replies, True),
    "smtp-commands": (_feed_commands, True),
    "proxy": (_feed_proxy, True),
    "dsn": (_dsn, False),
    "ocsp": (_ocsp, False),
}


@functools.cache
def _dsn_samples() -> tuple[bytes, ...]:
    return tuple(p.read_bytes() for p in sorted(DSN_SAMPLES.glob("*.eml")))


@functools.cache
def _ocsp_der() -> bytes:
    from ...pki.ca import PKI

    pki = PKI("fuzz self lane")
    return ocsp.build_response(pki.issue(["mx.fuzz.test"]), {})


def shaped() -> dict[str, SearchStrategy[bytes]]:
    """Structured inputs per parser, from the project's own strategies and samples."""
    return {
        "smtp-replies": st.lists(encoded_replies(), max_size=4).map(b"".join),
        "smtp-commands": st.lists(command_lines() | message_contents(max_pieces=6), max_size=5).map(b"".join),
        "proxy": headers().map(ProxyHeader.encode),
        "dsn": st.sampled_from(_dsn_samples()),
        "ocsp": st.just(_ocsp_der()),
    }


def cases(structured: dict[str, SearchStrategy[bytes]] | None = None) -> SearchStrategy[dict[str, Any]]:
    structured = structured or shaped()
    names = sorted(PARSERS)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        parser = draw(st.sampled_from(names))
        how = draw(st.integers(0, 2))
        data = draw(st.binary(max_size=300)) if how == 0 else draw(structured[parser])
        if how == 2:
            data = mutate(draw, data)
        cuts = sorted(set(draw(st.lists(st.integers(0, 4096), max_size=4))))
        return {"parser": parser, "data": b64(data), "cuts": [c % (len(data) + 1) for c in cuts]}

    return build()


class SelfLane(Lane):
    name = "self"
    description = "the harness's own parsers (SMTP, PROXY, DSN, OCSP), in-process"
    needs_target = False
    batch = 200

    def strategy(self) -> SearchStrategy[dict[str, Any]]:
        return cases(shaped())

    def case_from_json(self, data: Any) -> dict[str, Any]:
        from ...engine.yamlsrc import InputError

        if not isinstance(data, dict) or data.get("parser") not in PARSERS:
            raise InputError("case", None, f"parser: one of {', '.join(PARSERS)}")
        unb64(str(data.get("data", "")))
        return data

    def describe_case(self, case_json: Any) -> str:
        return f"{case_json.get('parser')}: {unb64(case_json.get('data', ''))[:120]!r}"

    def execute(self, ctx: Context, case: dict[str, Any]) -> Execution:
        run, split_equal = PARSERS[case["parser"]]
        data = unb64(case["data"])
        bounds = [0, *sorted({c for c in case.get("cuts", []) if 0 < c < len(data)}), len(data)]
        pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])] or [b""]
        ex = Execution()
        ex.states.add(case["parser"])
        shown = Evidence("input", "bytes", repr(data[:2000]))
        try:
            whole = run([data])
            ex.reply_classes.add(f"{case['parser']}:{'error' if 'error' in whole else 'ok'}")
            if split_equal and len(pieces) > 1:
                parts = run(pieces)
                if parts != whole:
                    ex.violations.append(Violation(
                        SPLIT, f"{case['parser']}: in {len(pieces)} pieces the events differ from the whole",
                        SPLIT_CITE, (shown, Evidence("whole vs pieces", "json", {"whole": repr(whole),
                                                                                 "pieces": repr(parts)}))))
        except Exception as exc:  # the point of this lane: anything but the documented error
            ex.violations.append(Violation(CRASH, f"{case['parser']}: {type(exc).__name__}: {exc}"[:300],
                                           CRASH_CITE, (shown, Evidence("traceback", "text", traceback.format_exc()))))
        return ex


__all__ = ["PARSERS", "SelfLane", "cases"]
