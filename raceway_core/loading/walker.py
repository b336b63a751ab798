"""A tolerant walker over one JSON document that finds the events inside it.

Accepts a JSON array of events, ``{"events": [...]}``, a Raceway server response
``{"success": ..., "data": {"events": [...]}}`` or a single event object. Unlike a
plain ``json.loads`` it keeps every complete event before (and, where it can
resynchronise, after) a syntax error or a truncation, and reports the broken part
as one rejected record, so nothing valid is lost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from raceway_core.loading.guard import DEPTH_REASON

_decoder = json.JSONDecoder()
TOO_DEEP = DEPTH_REASON
_ws = re.compile(r"[ \t\r\n]*")
# Where a new array element may start after a broken one: "," then "{".
_resync = re.compile(r",[ \t\r\n]*\{")


@dataclass(frozen=True, slots=True)
class Element:
    """One record found in the document: its text, or why it is broken."""

    pos: int  # character offset of the record in the document
    index: int | None  # index in the events array (None for a lone object)
    text: str
    error: str | None = None


@dataclass
class WalkResult:
    elements: list[Element]
    notes: list[str]


class NoEvents(ValueError):
    """The document is valid JSON but holds no events container."""


def _skip_ws(s: str, i: int) -> int:
    return _ws.match(s, i).end()


def _decode_error(exc: json.JSONDecodeError, s: str, runs_to_end: bool = False) -> str:
    tail = s.rstrip()
    if exc.pos >= len(tail) or (runs_to_end and not tail.endswith(("]", "}"))):
        return "truncated JSON (input ends inside this record)"
    return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def walk(s: str, start: int = 0) -> WalkResult:
    """Records of the document ``s``; raises NoEvents when there is no container."""
    res = WalkResult([], [])
    i = _skip_ws(s, start)
    if i >= len(s):
        return res
    if s[i] == "[":
        _walk_array(s, i, res)
    elif s[i] == "{":
        _walk_object(s, i, res)
    else:
        res.elements.append(Element(i, None, s[i:].strip(), "not valid JSON: expected an array or an object"))
    return res


def _walk_object(s: str, i: int, res: WalkResult) -> None:
    """Find "events" (or "data"."events") by walking keys; else the object is one event."""
    _, arr_at = _find_events_array(s, i)
    if arr_at is not None:
        _walk_array(s, arr_at, res)
        return
    try:
        value, end = _decoder.raw_decode(s, i)
    except json.JSONDecodeError as exc:
        res.elements.append(Element(i, None, s[i:].strip(), _decode_error(exc, s)))
        return
    except RecursionError:
        res.elements.append(Element(i, None, s[i:].strip(), TOO_DEEP))
        return
    if isinstance(value, dict) and ("success" in value or "data" in value) and "id" not in value:
        raise NoEvents("a Raceway server response without data.events")
    res.elements.append(Element(i, None, s[i:end]))


def _find_events_array(s: str, i: int, depth: int = 0) -> tuple[int, int | None]:
    """Walk object keys at ``i``; return (end, offset of the events array or None)."""
    j = _skip_ws(s, i + 1)
    while j < len(s) and s[j] != "}":
        try:
            key, j = _decoder.raw_decode(s, j)
        except json.JSONDecodeError:
            return j, None
        j = _skip_ws(s, j)
        if j >= len(s) or s[j] != ":" or not isinstance(key, str):
            return j, None
        j = _skip_ws(s, j + 1)
        if j < len(s) and key == "events" and s[j] == "[":
            return j, j
        if j < len(s) and key == "data" and depth == 0 and s[j] == "{":
            _, found = _find_events_array(s, j, depth + 1)
            if found is not None:
                return j, found
        try:
            _, j = _decoder.raw_decode(s, j)
        except (json.JSONDecodeError, RecursionError):
            return j, None
        j = _skip_ws(s, j)
        if j < len(s) and s[j] == ",":
            j = _skip_ws(s, j + 1)
    return j, None


def _walk_array(s: str, i: int, res: WalkResult) -> None:
    out = res.elements
    j = _skip_ws(s, i + 1)
    index = 0
    n = len(s)
    if j < n and s[j] == "]":
        return
    while j < n:
        try:
            _, end = _decoder.raw_decode(s, j)
        except (json.JSONDecodeError, RecursionError) as exc:
            nxt = _resync_point(s, j)
            stop = nxt if nxt is not None else n
            why = (_decode_error(exc, s[:stop], runs_to_end=nxt is None)
                   if isinstance(exc, json.JSONDecodeError) else TOO_DEEP)
            out.append(Element(j, index, s[j:stop].strip().rstrip(","), why))
            index += 1
            if nxt is None:
                return
            j = nxt
            continue
        out.append(Element(j, index, s[j:end]))
        index += 1
        j = _skip_ws(s, end)
        if j >= n:
            res.notes.append("the events array is not closed (file truncated?)")
            return
        if s[j] == "]":
            return
        if s[j] == ",":
            j = _skip_ws(s, j + 1)
            continue
        # Something other than , or ] after an element: skip to the next element start.
        nxt = _resync_point(s, j)
        stop = nxt if nxt is not None else n
        out.append(Element(j, None, s[j:stop].strip(), f"not valid JSON: unexpected {s[j]!r} between events"))
        if nxt is None:
            return
        j = nxt


def _resync_point(s: str, j: int) -> int | None:
    """Offset of the next decodable top-level-looking event object after ``j``."""
    for m in _resync.finditer(s, j + 1):
        k = m.end() - 1
        try:
            value, end = _decoder.raw_decode(s, k)
        except (json.JSONDecodeError, RecursionError):
            continue
        after = _skip_ws(s, end)
        if isinstance(value, dict) and ("id" in value or "kind" in value) and (
            after >= len(s) or s[after] in ",]"
        ):
            return k
    return None
