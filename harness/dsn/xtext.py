"""xtext, the encoding of the DSN parameters ORCPT and ENVID (RFC 3461 §4).

    xtext   = *( xchar / hexchar )
    xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except "+" and "="
    hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits

Pure functions. A malformed value raises `XtextError` (a `DSNError`), naming the offset and what
is wrong there; nothing else escapes.
"""

from __future__ import annotations

from .errors import DSNError

_HEX_UPPER = "0123456789ABCDEF"


class XtextError(DSNError):
    """Not valid xtext (RFC 3461 §4)."""

    def __init__(self, message: str, text: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset} of {text!r}")
        self.text = text
        self.offset = offset
        self.reason = message


def _is_xchar(ch: str) -> bool:
    return "!" <= ch <= "~" and ch not in "+="


def decode(text: str) -> str:
    """The characters an xtext stands for ("ab+2Bc" → "ab+c"); XtextError if malformed.

    Strict: hexchar digits must be upper case, as RFC 3461 §4 requires.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "+":
            pair = text[i + 1:i + 3]
            if len(pair) < 2:
                raise XtextError("'+' without two hexadecimal digits", text, i)
            if not all(c in _HEX_UPPER for c in pair):
                if all(c in "0123456789abcdefABCDEF" for c in pair):
                    raise XtextError(f"lower-case hexchar '+{pair}' (RFC 3461 §4: upper case)", text, i)
                raise XtextError(f"'+{pair}' is not a hexchar", text, i)
            out.append(chr(int(pair, 16)))
            i += 3
            continue
        if not _is_xchar(ch):
            what = "'='" if ch == "=" else f"character {ch!r} (U+{ord(ch):04X})"
            raise XtextError(f"{what} is not an xchar", text, i)
        out.append(ch)
        i += 1
    return "".join(out)


def problem(text: str) -> str | None:
    """None if TEXT is valid xtext, else what is wrong with it."""
    try:
        decode(text)
    except XtextError as exc:
        return str(exc)
    return None


def encode(value: str) -> str:
    """VALUE as xtext: xchars as themselves, everything else as upper-case hexchars.

    Only ASCII can be encoded (RFC 3461 §4 encodes octets of US-ASCII text); a character above
    U+00FF is our own misuse and raises ValueError.
    """
    out = []
    for ch in value:
        if _is_xchar(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"+{ord(ch):02X}")
        else:
            raise ValueError(f"cannot encode {ch!r} as xtext")
    return "".join(out)
