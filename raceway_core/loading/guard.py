"""Records that DuckDB reads but nothing else can: found before SQL and rejected.

DuckDB's JSON reader accepts NaN, Infinity (any case) and numbers past a double
(1e400, 400 digits); stored, they make every later reader of the event fail
(orjson, browsers, the server's answers). A regex over every record in SQL
costs more than the whole load, so candidates are found with numpy on the raw
bytes of a block (case-folded trigrams ``nan``/``inf``, long exponents, long
digit runs) and only those lines are parsed again, exactly, with orjson.

Nesting deeper than ``MAX_DEPTH`` is rejected in SQL (see ingest.py).
"""

from __future__ import annotations

import json
import re

import numpy as np
import orjson

NON_FINITE_REASON = "a value is NaN, Infinity or beyond a double's range (such as 1e400): not a JSON number"
MAX_DEPTH = 200  # levels an event may nest: orjson writes 254, answers wrap events in a few more
DEPTH_REASON = f"nested deeper than {MAX_DEPTH} levels"

_DELIM = np.zeros(256, dtype=bool)
_DELIM[[ord(c) for c in ",}] \t\r\n"]] = True
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[np.arange(48, 58)] = True


def candidate_offsets(arr: np.ndarray) -> np.ndarray:
    """Byte offsets in ``arr`` (uint8) where a non-finite number may be: a superset."""
    if len(arr) < 4:
        return np.empty(0, np.int64)
    low = arr | 0x20  # ASCII letters folded to lower case (other bytes do not matter here)
    a0, a1, a2 = low[:-2], low[1:-1], low[2:]
    tri = ((a0 == ord("n")) & (a2 == ord("n")) & (a1 == ord("a"))) | (
        (a0 == ord("i")) & (a1 == ord("n")) & (a2 == ord("f")))
    out = [np.flatnonzero(tri)]
    digit = _DIGIT[arr]
    # an exponent of 3+ digits (e400, e+0400) whose 4th byte is a digit or ends the number
    e = low[:-4] == ord("e")
    plus = arr[1:-3] == ord("+")
    d1, d2, d3 = digit[1:-3], digit[2:-2], digit[3:-1]
    after = digit[4:] | _DELIM[arr[4:]]
    exp3 = e & d1 & d2 & d3 & after
    exp3_plus = e[:-1] & plus[:-1] & d2[:-1] & d3[:-1] & digit[4:-1] & (digit[5:] | _DELIM[arr[5:]])
    out += [np.flatnonzero(exp3), np.flatnonzero(exp3_plus)]
    # a run of 309+ digits covers two samples 128 bytes apart
    samples = digit[::128]
    out.append(np.flatnonzero(samples[:-1] & samples[1:]) * 128)
    return np.concatenate(out)


def non_finite_lines(data: bytes, arr: np.ndarray, offsets: np.ndarray) -> list[int]:
    """Indexes of the lines of ``data`` (line i is ``data[offsets[i]:offsets[i+1]]``)
    that hold a non-finite number, checked exactly among the candidates."""
    cand = candidate_offsets(arr)
    if not len(cand):
        return []
    lines = np.unique(np.searchsorted(offsets, cand, side="right") - 1)
    lines = lines[(lines >= 0) & (lines < len(offsets) - 1)]
    return [i for i in lines.tolist() if non_finite(data[offsets[i]:offsets[i + 1]])]


def non_finite(text: str | bytes) -> bool:
    """Whether the JSON ``text`` holds NaN, Infinity or a number past a double.

    False for text that is simply not JSON: SQL gives that its own reason.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "infinity" in exc.msg:
            return True
        tok = text[exc.pos: exc.pos + 9].lstrip("+-").lower()
        return tok.startswith(("nan", "inf"))
    return False


def split_batch(text: str) -> list[str] | None:
    """The events of a batch line (``{"events": [...]}``, a server response, an
    array) as separate texts, so that one event holding NaN does not cost its
    neighbours; None if ``text`` is not one. Texts that do not parse stay as given."""
    try:
        doc = json.loads(text)  # takes NaN and Infinity
    except (ValueError, RecursionError):
        return _walked(text)
    if isinstance(doc, dict):
        events = doc.get("events")
        if events is None and isinstance(doc.get("data"), dict):
            events = doc["data"].get("events")
    else:
        events = doc
    if not isinstance(events, list):
        return None
    try:
        return [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events]
    except (ValueError, RecursionError):
        return _walked(text)


def _walked(text: str) -> list[str] | None:
    """The element texts the tolerant walker finds (nan, inf: Python's json refuses those)."""
    from raceway_core.loading.walker import NoEvents, walk  # walker imports this module

    try:
        result = walk(text)
    except NoEvents:
        return None
    if not result.elements or any(el.index is None for el in result.elements):
        return None
    return [el.text for el in result.elements]


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[^\[\]{}]+")


def depth(text: str) -> int:
    """How deep ``text`` (JSON) nests, outside its strings (rw_depth in SQL)."""
    b = _BRACKETS.sub("", _STRING.sub("", text)).encode()
    if not b:
        return 0
    steps = np.where(np.isin(np.frombuffer(b, np.uint8), (ord("["), ord("{"))), 1, -1)
    return max(0, int(np.cumsum(steps).max()))


def too_deep(text: str, old_value: str | None, new_value: str | None) -> bool:
    """The SQL rule (ingest.py ``_TOO_DEEP``) for an event's text and its values' JSON."""
    if not (len(text.encode()) > 8192 or len((old_value or "").encode()) > MAX_DEPTH
            or len((new_value or "").encode()) > MAX_DEPTH):
        return False
    return depth(text) > MAX_DEPTH
