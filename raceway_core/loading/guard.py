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

_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[np.arange(48, 58)] = True
_NUMERIC = _DIGIT.copy()  # what a JSON number is made of
_NUMERIC[[ord(c) for c in ".+-eE"]] = True
_BEFORE = np.zeros(256, dtype=bool)  # what may precede a value: outside strings, a number starts after these
_BEFORE[[ord(c) for c in ":,[ \t\r\n"]] = True
_AFTER = np.zeros(256, dtype=bool)  # what may follow a number
_AFTER[[ord(c) for c in ",}] \t\r\n"]] = True
_LOOK = 8  # bytes looked at around a candidate (a longer number is a candidate anyway)


def _gather(arr: np.ndarray, pos: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """arr[pos + step] for each position (rows) and step (columns), clipped to arr."""
    return arr[np.clip(pos[:, None] + steps[None, :], 0, len(arr) - 1)]


def _first_other(mask: np.ndarray) -> np.ndarray:
    """Per row, the index of the first False (the row length when none)."""
    other = ~mask
    return np.where(other.any(axis=1), other.argmax(axis=1), mask.shape[1])


def candidate_offsets(arr: np.ndarray) -> np.ndarray:
    """Byte offsets in ``arr`` (uint8) where a non-finite number may be: a superset.

    A few passes over the block find the bigrams 'na', 'nf' and 'e' + digit; what
    follows works on those positions only: 'nan' / 'inf' (any case) where a value may start,
    and exponents of 3+ digits inside a number token (a hex id's "3e456" is not one).
    """
    n = len(arr)
    if n < 4:
        return np.empty(0, np.int64)
    low = arr | 0x20  # ASCII letters folded to lower case (other bytes do not matter here)
    out = []
    # rare bigrams first ('na', 'nf': a comparison of shifted views each), then the
    # third letter only at those: a pass per letter cost 4x more (millions of 'n's)
    na = np.flatnonzero((low[:-2] == ord("n")) & (low[1:-1] == ord("a")))
    nan = na[low[na + 2] == ord("n")]
    nf = np.flatnonzero((low[1:-1] == ord("n")) & (low[2:] == ord("f")))
    inf = nf[low[nf] == ord("i")]
    for start in (nan, inf):
        if len(start):  # the token starts where a value may: after [:,[ ], a sign allowed
            back = _gather(arr, start, -np.arange(1, 3))
            ok = _BEFORE[back[:, 0]] | (np.isin(back[:, 0], (ord("-"), ord("+"))) & _BEFORE[back[:, 1]])
            out.append(start[ok | (start < 2)])
    # an 'e' then a digit or sign (43..57 is '+' to '9': a superset), in one pass each
    es = np.flatnonzero((low[1:-3] == ord("e")) & ((arr[2:-2] - 43) <= 14)) + 1
    # 3 exponent digits (or a sign and 2) right after, a digit or '.' right before
    a1, a2, a3 = arr[es + 1], _DIGIT[arr[es + 2]], _DIGIT[arr[es + 3]]
    es = es[a2 & a3 & (_DIGIT[a1] | (a1 == ord("+")) | (a1 == ord("-")))
            & (_DIGIT[arr[es - 1]] | (arr[es - 1] == ord(".")))]
    if len(es):
        ahead = _gather(arr, es, np.arange(1, _LOOK + 1))
        sign = (ahead[:, 0] == ord("+")) | (ahead[:, 0] == ord("-"))
        digits = _DIGIT[ahead]
        digits[sign, 0] = True
        run = _first_other(digits)  # bytes of the exponent (sign included)
        long_exp = (run - sign) >= 3
        end = ahead[np.arange(len(es)), np.minimum(run, _LOOK - 1)]
        ends_number = (run >= _LOOK) | _AFTER[end]
        behind = _gather(arr, es, -np.arange(1, _LOOK + 1))
        k = _first_other(_NUMERIC[behind])  # back to the start of the mantissa
        starts_value = (k >= _LOOK) | _BEFORE[behind[np.arange(len(es)), np.minimum(k, _LOOK - 1)]] | (es - k <= 0)
        out.append(es[long_exp & ends_number & starts_value])
    # a run of 309+ digits (past a double) holds 9 consecutive samples 32 bytes apart
    samples = _DIGIT[arr[::32]]
    if len(samples) > 8:  # shorter text cannot hold such a run
        run9 = samples[:-8].copy()
        for k in range(1, 9):
            run9 &= samples[k:len(samples) - 8 + k]
        out.append(np.flatnonzero(run9) * 32)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


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
