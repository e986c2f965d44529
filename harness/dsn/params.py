"""The DSN parameters of MAIL and RCPT (RFC 3461 §4): what a conforming server must accept.

    notify-esmtp-value  = "NEVER" / 1#notify-list-element            ; RFC 3461 §4.1
    notify-list-element = "SUCCESS" / "FAILURE" / "DELAY"
    orcpt-parameter     = "ORCPT=" original-recipient-address        ; §4.2
    original-recipient-address = addr-type ";" xtext
    ret-parameter       = "RET=" ("FULL" / "HDRS")                   ; §4.3
    envid-parameter     = "ENVID=" xtext                             ; §4.4, at most 100 characters

NOTIFY and ORCPT belong to RCPT, RET and ENVID to MAIL; each at most once per command; the
keywords and NOTIFY/RET values are case-insensitive. Pure functions over the command line as
the client sent it, so a parameter the SMTP codec would refuse to write (an empty value, a raw
space) can still be judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import xtext

DSN_PARAMS = {"MAIL": ("RET", "ENVID"), "RCPT": ("NOTIFY", "ORCPT")}
ALL_DSN_PARAMS = ("RET", "ENVID", "NOTIFY", "ORCPT")
ENVID_MAX = 100  # RFC 3461 §4.4
ESMTP_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")  # RFC 5321 §4.1.2
ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5322 §3.2.3 atext (addr-type = atom)


@dataclass(frozen=True)
class Param:
    keyword: str  # upper case
    value: str | None  # None: no "=" at all
    text: str  # as sent


@dataclass(frozen=True)
class Problem:
    keyword: str
    section: str  # "RFC 3461 §4.1"
    message: str

    def __str__(self) -> str:
        return f"{self.keyword}: {self.message} [{self.section}]"


def split_params(line: str) -> tuple[str, list[Param]]:
    """ "RCPT TO:<a@b> NOTIFY=NEVER X" → ("RCPT", [Param(NOTIFY, NEVER), Param(X, None)]).

    The path is skipped up to its closing ">" (quoted local parts followed); parameters are
    split at single spaces, so "NOTIFY= " gives an empty value and a raw space in a value shows
    up as a second, odd parameter.
    """
    line = line.rstrip("\r\n")
    verb = line[:4].upper()
    lt = line.find("<")
    if lt < 0:
        return verb, []
    i, quoted = lt + 1, False
    while i < len(line):
        ch = line[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            break
        i += 1
    rest = line[i + 1:]
    params = []
    for token in rest.split(" "):
        if not token:
            continue
        keyword, eq, value = token.partition("=")
        params.append(Param(keyword.upper(), value if eq else None, token))
    return verb, params


def _notify(value: str) -> str | None:
    items = value.upper().split(",")
    if items == ["NEVER"]:
        return None
    if "NEVER" in items:
        return "NEVER cannot be combined with other values"
    bad = [i for i in items if i not in ("SUCCESS", "FAILURE", "DELAY")]
    if bad:
        return f"{','.join(repr(b) for b in bad)} is not NEVER or one of SUCCESS, FAILURE, DELAY"
    return None


def _printable(decoded: str) -> bool:
    # §4.2, §4.4: "printable (graphic and white space) characters from the US-ASCII repertoire"
    return all(0x20 <= ord(c) < 0x7F or c == "\t" for c in decoded)


def problems(line: str) -> list[Problem]:
    """What is wrong with the DSN parameters of one MAIL or RCPT command line (empty: valid)."""
    verb, params = split_params(line)
    out: list[Problem] = []
    seen: set[str] = set()
    for p in params:
        if not ESMTP_KEYWORD.fullmatch(p.keyword):
            # RFC 5321 §4.1.2 esmtp-keyword: e.g. the rest of a value with a raw space in it.
            out.append(Problem(p.text, "RFC 5321 §4.1.2", "not an esmtp-param (a raw space in a value?)"))
            continue
        if p.keyword not in ALL_DSN_PARAMS:
            continue
        section = {"NOTIFY": "§4.1", "ORCPT": "§4.2", "RET": "§4.3", "ENVID": "§4.4"}[p.keyword]
        section = f"RFC 3461 {section}"
        if p.keyword in seen:
            out.append(Problem(p.keyword, section, "given twice"))
            continue
        seen.add(p.keyword)
        if verb in DSN_PARAMS and p.keyword not in DSN_PARAMS[verb]:
            out.append(Problem(p.keyword, section, f"not a parameter of {verb}"))
            continue
        if not p.value:
            out.append(Problem(p.keyword, section, "no value"))
            continue
        if p.keyword == "NOTIFY":
            why = _notify(p.value)
            if why:
                out.append(Problem(p.keyword, section, why))
        elif p.keyword == "RET":
            if p.value.upper() not in ("FULL", "HDRS"):
                out.append(Problem(p.keyword, section, f"{p.value!r} is neither FULL nor HDRS"))
        elif p.keyword == "ENVID":
            why = xtext.problem(p.value)
            if why:
                out.append(Problem(p.keyword, section, f"not xtext: {why}"))
            elif len(p.value) > ENVID_MAX:
                out.append(Problem(p.keyword, section, f"{len(p.value)} characters (at most {ENVID_MAX})"))
            elif not _printable(xtext.decode(p.value)):
                out.append(Problem(p.keyword, section, "decodes to non-printable characters"))
        elif p.keyword == "ORCPT":
            addr_type, sep, encoded = p.value.partition(";")
            if not sep:
                out.append(Problem(p.keyword, section, "no ';' between addr-type and address"))
            elif not ATOM.fullmatch(addr_type):
                out.append(Problem(p.keyword, section, f"addr-type {addr_type!r} is not an atom"))
            elif (why := xtext.problem(encoded)) is not None:
                out.append(Problem(p.keyword, section, f"address not xtext: {why}"))
            elif not encoded:
                out.append(Problem(p.keyword, section, "empty address"))
            elif addr_type.lower() != "utf-8" and not _printable(xtext.decode(encoded)):
                out.append(Problem(p.keyword, section, "address decodes to non-printable characters"))
    return out


def dsn_params(line: str) -> list[Param]:
    """The DSN parameters of one MAIL/RCPT line, as sent."""
    return [p for p in split_params(line)[1] if p.keyword in ALL_DSN_PARAMS]


def decoded_orcpt(value: str) -> tuple[str, str] | None:
    """ "rfc822;a+40b" → ("rfc822", "a@b"); None when the value is not valid."""
    addr_type, sep, encoded = value.partition(";")
    if not sep:
        return None
    try:
        return addr_type, xtext.decode(encoded)
    except xtext.XtextError:
        return None
