"""Helpers shared by the importers: timestamps, ids, JSON documents, line numbers."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HEX = re.compile(r"[0-9a-fA-F]+")


def rfc3339_ns(ns: int) -> str:
    """RFC 3339 in UTC with all nine fractional digits (no precision is lost)."""
    secs, frac = divmod(int(ns), 1_000_000_000)
    day = datetime.fromtimestamp(secs, tz=timezone.utc)
    return day.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def rfc3339_us(us: int) -> str:
    """RFC 3339 in UTC with six fractional digits (microsecond sources)."""
    secs, frac = divmod(int(us), 1_000_000)
    day = datetime.fromtimestamp(secs, tz=timezone.utc)
    return day.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:06d}Z"


def as_int(value) -> int | None:
    """An integer from a JSON number or a decimal string (OTLP sends int64 as strings)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 2**63 else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def hex_id(value, width: int = 0) -> str | None:
    """A span or trace id as lower-case hex; base64 ids (protobuf JSON) are decoded.

    Ids that are neither are kept as given (Jaeger test data uses ``span-1``).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    if isinstance(value, int):
        value = format(value, "x")
    s = str(value).strip()
    if not s:
        return None
    if _HEX.fullmatch(s):
        s = s.lower()
        return s.rjust(width, "0") if width else s
    if len(s) in (12, 24):  # 8 or 16 bytes in base64
        try:
            raw = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            return s
        if len(raw) in (8, 16):
            return raw.hex()
    return s


def load_json(text: str, what: str):
    """The parsed document, or ValueError saying why it is not one."""
    try:
        return orjson.loads(text.lstrip("\ufeff"))
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a valid {what} JSON document: {exc}") from None


def json_lines(text: str) -> list[tuple[int, object]] | None:
    """(line, document) for each line of a JSON-lines input, or None when a line is not JSON."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((i, orjson.loads(line)))
        except orjson.JSONDecodeError:
            return None
    return out


def json_documents(text: str, what: str) -> list[tuple[int, object]]:
    """(first line, document): the whole text as one JSON document, else one per line
    (JSON lines); ValueError naming the format when it is neither."""
    try:
        return [(1, load_json(text, what))]
    except ValueError:
        docs = json_lines(text)
        if docs is None:
            raise
        return docs


class LineFinder:
    """Line numbers of successive span ids in a JSON text (spans are found in document order).

    Each lookup searches forward from the previous hit for ``"<key>": "<id>"``,
    so the lines never go backwards; an id not found keeps the previous line.
    """

    def __init__(self, text: str, keys: tuple[str, ...], base_line: int = 1):
        self.text = text
        self.keys = "|".join(re.escape(k) for k in keys)
        self.pos = 0
        self.line = base_line

    def find(self, span_id) -> int:
        if span_id is None:
            return self.line
        pat = re.compile(rf'"(?:{self.keys})"\s*:\s*"{re.escape(str(span_id))}"', re.IGNORECASE)
        m = pat.search(self.text, self.pos)
        if m:  # the line where the key is; later searches start after the value
            self.line += self.text.count("\n", self.pos, m.start())
            found = self.line
            self.line += self.text.count("\n", m.start(), m.end())
            self.pos = m.end()
            return found
        return self.line


class Shape:
    """Reads optional JSON fields of an expected type; a wrong one is read as empty and noted.

    Other tools' files are sometimes hand-edited or truncated: a ``tags`` that is
    not a list must not stop the span (or the file) from loading, nor vanish silently.
    """

    def __init__(self) -> None:
        self.bad: list[str] = []

    def _wrong(self, where: str, name: str, value, expected: str) -> None:
        self.bad.append(f"{where}: '{name}' is {type(value).__name__}, not {expected}")

    def obj(self, value, where: str, name: str) -> dict:
        if value is None or isinstance(value, dict):
            return value or {}
        self._wrong(where, name, value, "an object")
        return {}

    def list(self, value, where: str, name: str) -> list:
        if value is None or isinstance(value, list):
            return value or []
        self._wrong(where, name, value, "a list")
        return []

    def notes(self) -> list[str]:
        if not self.bad:
            return []
        shown = "; ".join(self.bad[:3]) + ("; ..." if len(self.bad) > 3 else "")
        return [f"{len(self.bad)} malformed field{'s' if len(self.bad) > 1 else ''} read as empty: {shown}"]
