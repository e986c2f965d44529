"""The one error type of the DSN package: bytes that are not a readable DSN, or a malformed value."""

from __future__ import annotations


class DSNError(ValueError):
    """The bytes are not a readable delivery status notification (or a value in it is malformed)."""
