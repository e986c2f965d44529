"""`results.json`: the result model as JSON, and a reader that validates it.

The file is `RunResult.to_dict()` written with `json` (indent 2, UTF-8). Its shape is fixed by
`schema/results.schema.json` (JSON Schema draft 2020-12) and documented for people in
`docs/results-schema.md`.

Strings from the wire may hold anything: control characters are written as JSON escapes
(`\\u0001`), and undecodable bytes that reached the model as surrogate escapes (U+DC80–U+DCFF,
Python's "surrogateescape") are written as `\\udcXX` escapes, so the file is valid UTF-8 and
`load_json` gives back exactly the strings that went in.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jsonschema

from .model import SCHEMA_VERSION, RunResult

SCHEMA_PATH = Path(__file__).parent / "schema" / "results.schema.json"


class ResultsFileError(ValueError):
    """A results file that cannot be read: not JSON, an unknown schema_version, or not valid
    against the schema. ``str(error)`` is ``"PATH: [where:] problem"``."""

    def __init__(self, path: Path | str, message: str, where: str | None = None):
        self.path = Path(path)
        self.where = where
        self.message = message
        super().__init__(f"{path}: {where}: {message}" if where else f"{path}: {message}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write DATA to PATH through a temporary file in the same folder and `os.replace`, so a
    reader never sees a half-written report and an interrupted write leaves the old file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _bytes_as_text(data: bytes) -> str:
    """Bytes that slipped into evidence content, escaped like the "bytes" evidence kind."""
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return _bytes_as_text(bytes(obj))
    raise TypeError(f"results.json: cannot serialise {type(obj).__name__}: {obj!r:.80}")


def dumps(result: RunResult) -> bytes:
    """The bytes of `results.json` for RESULT."""
    text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=_default)
    # Lone surrogates (surrogate-escaped bytes) cannot be encoded as UTF-8; they only occur inside
    # JSON strings, where "backslashreplace" turns them into the JSON escape "\udcXX".
    return (text + "\n").encode("utf-8", errors="backslashreplace")


def write_json(result: RunResult, path: Path) -> None:
    """Write RESULT to PATH as `results.json` (atomically)."""
    atomic_write_bytes(Path(path), dumps(result))


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of `results.json` (draft 2020-12)."""
    with SCHEMA_PATH.open(encoding="utf-8") as f:
        return json.load(f)


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def validate(data: Any, path: Path | str = "<results>") -> None:
    """Raise ResultsFileError unless DATA is a results document this version of mtaconform reads."""
    if not isinstance(data, dict):
        raise ResultsFileError(path, "not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsFileError(
            path, f"schema_version {version!r} is not supported (this mtaconform reads "
                  f"{SCHEMA_VERSION})")
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        where = "/".join(map(str, err.absolute_path)) or "(top)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ResultsFileError(path, err.message + more, where=where)


def load_json(path: Path | str) -> dict[str, Any]:
    """Read a `results.json` and validate it against the schema; raise ResultsFileError if it is
    not JSON, has another schema_version, or does not fit the schema."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError as e:
        raise ResultsFileError(path, f"not UTF-8: {e}") from e
    except json.JSONDecodeError as e:
        raise ResultsFileError(path, f"not JSON: {e}") from e
    validate(data, path)
    return data
