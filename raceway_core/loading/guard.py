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


# Byte classes for the one pass that finds where a candidate may start (bytes.translate):
# 1 what may precede a value or a sign, 2 the first letter of nan/inf, 3 what precedes
# an exponent, 4 the exponent's letter. A class pair is then one 16-bit comparison.
_CLASSES = bytearray(256)
for _chars, _code in ((b":,[ \t\r\n+-", 1), (b"nNiI", 2), (b"0123456789.", 3), (b"eE", 4)):
    for _c in _chars:
        _CLASSES[_c] = _code
_CLASSES = bytes(_CLASSES)
_VALUE_LETTER = 1 | 2 << 8  # little-endian pairs: (1, 2) and (3, 4)
_NUMBER_E = 3 | 4 << 8


_PIECE = 4 << 20  # bytes classified at a time: a 32 MB temporary per block raised the peak RSS by 100 MB


def _pairs(data: bytes | np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (below ``n``) of the second byte of each (1, 2) and (3, 4) class pair."""
    letters, es = [], []
    view = memoryview(data)
    for start in range(0, n - 1, _PIECE):
        # one byte more than the piece: the pair starting on its last byte
        classes = view[start:min(n, start + _PIECE + 1)].tobytes().translate(_CLASSES)
        for k in (0, 1):  # pairs starting at even, then odd offsets
            v = np.frombuffer(classes, "<u2", count=(len(classes) - k) // 2, offset=k)
            letters.append(np.flatnonzero(v == _VALUE_LETTER) * 2 + (start + k + 1))
            es.append(np.flatnonzero(v == _NUMBER_E) * 2 + (start + k + 1))
    return np.concatenate(letters), np.concatenate(es)


def candidate_offsets(arr: np.ndarray, data: bytes | None = None) -> np.ndarray:
    """Byte offsets in ``arr`` (uint8; ``data``, when given, starts with the same bytes)
    where a non-finite number may be: a superset.

    A translate of the block to byte classes (piece by piece) and four 16-bit
    comparisons find the starts: a letter n/i after what may precede a value, an 'e' after a digit or '.'
    (a sixth of the CPU of comparisons per byte); then, on those positions only,
    'nan' / 'inf' (any case) where a value may start, a sign allowed, and exponents
    of 3+ digits inside a number token (a hex id's "3e456" is not one).
    """
    n = len(arr)
    if n < 4:
        return np.empty(0, np.int64)
    letters, es = _pairs(arr if data is None else data, n)
    out = []
    # positions 0 and 1 have nothing (or only a sign) before them: always looked at
    start = np.concatenate([letters[letters < n - 2], np.array([0, 1], np.int64)])
    low = arr[start[:, None] + np.arange(3)[None, :]] | 0x20
    word = low[:, 0].astype(np.int64) << 16 | low[:, 1].astype(np.int64) << 8 | low[:, 2]
    start = start[(word == _NAN) | (word == _INF)]
    if len(start):  # the token starts where a value may: after [:,[ ], a sign allowed
        back = _gather(arr, start, -np.arange(1, 3))
        ok = _BEFORE[back[:, 0]] | (np.isin(back[:, 0], (ord("-"), ord("+"))) & _BEFORE[back[:, 1]])
        out.append(start[ok | (start < 2)])
    es = es[es < n - 3]
    # 3 exponent digits (or a sign and 2) right after ('e' after a digit or '.': the pairs)
    a1, a2, a3 = arr[es + 1], _DIGIT[arr[es + 2]], _DIGIT[arr[es + 3]]
    es = es[a2 & a3 & (_DIGIT[a1] | (a1 == ord("+")) | (a1 == ord("-")))]
    if len(es):
        es.sort()
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
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


_NAN = ord("n") << 16 | ord("a") << 8 | ord("n")
_INF = ord("i") << 16 | ord("n") << 8 | ord("f")


def non_finite_lines(data: bytes, arr: np.ndarray, offsets: np.ndarray) -> list[int]:
    """Indexes of the lines of ``data`` (line i is ``data[offsets[i]:offsets[i+1]]``)
    that hold a non-finite number, checked exactly among the candidates."""
    cand = candidate_offsets(arr, data)
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
