"""Domain names as the fake DNS compares them.

A canonical name is lower case, without the trailing dot, and "" for the root. DNS compares
names case-insensitively for ASCII letters only (RFC 4343 §3); dnslib escapes every other byte
as ``\\DDD`` in its text form, so ``str.lower`` on that form touches only ASCII letters.
"""

from __future__ import annotations

from dnslib import DNSLabel

MAX_LABEL = 63  # RFC 1035 §2.3.4
MAX_NAME = 255  # RFC 1035 §2.3.4, in wire form


class InvalidName(ValueError):
    """A text name that is not a valid domain name."""


def canonical_label(label: DNSLabel) -> str:
    text = str(label).lower()
    return "" if text == "." else text.rstrip(".")


def canonical(text: str) -> str:
    """An absolute name in text ("Mx.D.test.", "mx.d.test", ".") as a canonical name."""
    if not isinstance(text, str):
        raise InvalidName(f"a domain name must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if stripped in ("", "."):
        return ""
    if any(ch.isspace() for ch in stripped):
        raise InvalidName(f"{text!r} contains white space")
    if "" in stripped.rstrip(".").split("."):
        raise InvalidName(f"{text!r} has an empty label")
    try:
        label = DNSLabel(stripped)
    except UnicodeError as exc:  # the idna codec refuses empty and over-long labels
        raise InvalidName(f"{text!r} is not a valid domain name ({exc})") from None
    if any(len(part) > MAX_LABEL or not part for part in label.label):
        raise InvalidName(f"{text!r} has an empty label or one longer than {MAX_LABEL} octets")
    if sum(len(part) + 1 for part in label.label) + 1 > MAX_NAME:
        raise InvalidName(f"{text!r} is longer than {MAX_NAME} octets")
    return canonical_label(label)


def display(name: str) -> str:
    """The absolute presentation form of a canonical name."""
    return f"{name}." if name else "."


def is_at_or_below(name: str, ancestor: str) -> bool:
    return ancestor == "" or name == ancestor or name.endswith("." + ancestor)


def ancestors(name: str, stop: str) -> list[str]:
    """NAME and every name between it and STOP (included), nearest first."""
    out = [name]
    while name != stop:
        name = name.split(".", 1)[1] if "." in name else ""
        out.append(name)
    return out
