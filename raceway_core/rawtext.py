"""An event's raw JSON text, wherever the store keeps it. Every reader of raw goes here.

Most events hold their text in ``events.raw``. An in-memory load of a plain JSONL file
keeps none (``loading.load_file(lazy_raw=True)``): ``raw`` is NULL and ``raw_at`` is the
byte offset of the event's line in the file that ``raw_files`` names for its load
(``line_base = (seq >> REC_BITS) - line``). The text is read back from that file, after
checking that its size and modification time are still those seen when it was loaded:
a file changed or removed since gives ``RawUnavailable``, never another line.

What queries read from raw on every row is kept beside it (``note``, ``environment``):
``NOTE`` and ``ENVIRONMENT`` below read either.
"""

from __future__ import annotations

import mmap
import os
import zlib
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from raceway_core.dbutil import query_arrow
from raceway_core.errors import RacewayError
from raceway_core.schema import REC_BITS

# The kind's most telling field (a URL, a query, an error message) of events ``e``;
# the loader computes the same in ``note`` for the events whose text it does not keep.
NOTE = """
    CASE WHEN e.raw_at IS NOT NULL THEN e.note ELSE CASE e.kind
        WHEN 'HttpRequest' THEN e.raw->>'$.kind.HttpRequest.url'
        WHEN 'DatabaseQuery' THEN e.raw->>'$.kind.DatabaseQuery.query'
        WHEN 'DatabaseResult' THEN 'rows ' || coalesce(e.raw->>'$.kind.DatabaseResult.rows_affected', '?')
        WHEN 'Error' THEN coalesce(e.raw->>'$.kind.Error.error_type', 'Error') || ': '
                          || coalesce(e.raw->>'$.kind.Error.message', '')
        WHEN 'Custom' THEN e.raw->>'$.kind.Custom.name'
        WHEN 'MemoryFence' THEN e.raw->>'$.kind.MemoryFence.ordering'
        ELSE CASE WHEN prefix(e.kind, 'Unknown(') THEN left(CAST(e.raw->'$.kind' AS VARCHAR), 120) END
    END END"""


def custom_name(alias: str = "") -> str:
    """SQL: kind.Custom.name of a Custom event (``alias``: the events' table alias)."""
    a = alias + "." if alias else ""
    return (f"CASE WHEN {a}kind <> 'Custom' THEN NULL WHEN {a}raw_at IS NOT NULL THEN {a}note "
            f"ELSE {a}raw->>'$.kind.Custom.name' END")


def environment(alias: str = "") -> str:
    """SQL: metadata.environment."""
    a = alias + "." if alias else ""
    return f"CASE WHEN {a}raw_at IS NOT NULL THEN {a}environment ELSE {a}raw->>'$.metadata.environment' END"


# SQL: the file (raw_files row) of events ``e``; for ``SELECT e.seq, e.line, e.raw, e.raw_at``
LINE_BASE = f"((e.seq >> {REC_BITS}) - e.line)"
BLOCK = 32 << 20  # bytes scanned at a time by search


# (path, size, crc, size now, mtime now) -> the file's first ``size`` bytes are still those
# loaded: a file being written to only grows, and checking its old part once per change
# (4 GB/s) beats refusing every earlier event's text until the file is loaded again.
_GREW: dict[tuple, bool] = {}


def _only_grew(path: str, size: int, crc: int, st: os.stat_result) -> bool:
    key = (path, size, crc, st.st_size, st.st_mtime_ns)
    if key not in _GREW:
        got, left = 0, size
        with open(path, "rb") as f:
            while left > 0:
                block = f.read(min(left, 8 << 20))
                if not block:
                    break
                got, left = zlib.crc32(block, got), left - len(block)
        if len(_GREW) > 256:
            _GREW.clear()
        _GREW[key] = left == 0 and got == crc
    return _GREW[key]


class RawUnavailable(RacewayError):
    """The file an event's text is read back from changed or went away since it was loaded."""


class Lines:
    """Reads events' lines back from their files (open once each, checked once each)."""

    def __init__(self, cur) -> None:
        self.files = {lb: (path, size, mtime, crc) for lb, path, size, mtime, crc in cur.execute(
            "SELECT line_base, path, size, mtime_ns, crc FROM raw_files").fetchall()}
        self._open: dict[int, mmap.mmap | bytes] = {}

    def data(self, line_base: int) -> mmap.mmap | bytes:
        got = self._open.get(line_base)
        if got is not None:
            return got
        if line_base not in self.files:
            raise RawUnavailable("the store does not say which file this event's text is in")
        path, size, mtime, crc = self.files[line_base]
        try:
            st = os.stat(path)
            if (st.st_size != size or st.st_mtime_ns != mtime) and not (
                    st.st_size > size and _only_grew(path, size, crc, st)):
                raise RawUnavailable(f"{path} changed since it was loaded (size or modification time differ): "
                                     "its events' raw JSON cannot be read back; load the file again")
            with open(path, "rb") as f:
                got = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except OSError as exc:
            raise RawUnavailable(f"cannot read {path} back for its events' raw JSON "
                                 f"({exc.strerror or exc}); load the file again") from None
        self._open[line_base] = got
        return got

    def line(self, line_base: int, at: int) -> str:
        data = self.data(line_base)
        size = self.files[line_base][1]  # a file that grew since: its last loaded line ends there
        end = data.find(b"\n", at, size)
        text = data[at:end if end >= 0 else size].rstrip(b"\r")
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:  # cannot be what was loaded (the loader checked it)
            raise RawUnavailable(f"{self.files[line_base][0]} changed since it was loaded; load it again") from None

    def close(self) -> None:
        for m in self._open.values():
            if isinstance(m, mmap.mmap):
                m.close()
        self._open.clear()

    def __enter__(self) -> "Lines":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fill(cur, rows: list[dict]) -> list[dict]:
    """Rows with seq, line, raw, raw_at: their ``raw`` read back where it is not stored."""
    lazy = [r for r in rows if r.get("raw") is None and r.get("raw_at") is not None]
    if lazy:
        with Lines(cur) as lines:
            for r in lazy:
                r["raw"] = lines.line((r["seq"] >> REC_BITS) - r["line"], r["raw_at"])
    return rows


def event_raw(cur, seq: int) -> str | None:
    """The raw JSON text of the event ``seq`` (None: no such event)."""
    rows = cur.execute("SELECT seq, line, CAST(raw AS VARCHAR) AS raw, raw_at FROM events WHERE seq = ?",
                       [seq]).fetchall()
    if not rows:
        return None
    return fill(cur, [dict(zip(("seq", "line", "raw", "raw_at"), rows[0]))])[0]["raw"]


def texts(batches: Iterator[pa.RecordBatch], cur) -> Iterator[str]:
    """The raw texts of record batches holding seq, line, raw (as VARCHAR), raw_at."""
    with Lines(cur) as lines:
        for b in batches:
            seq, line, raw, at = (b.column(i).to_pylist() for i in range(4))
            for s, ln, r, a in zip(seq, line, raw, at):
                yield r if r is not None else lines.line((s >> REC_BITS) - ln, a)


def search(cur, needle: str) -> pa.Table:
    """The seqs (column ``seq``) of the events whose text is not stored and whose line
    contains ``needle`` (lower case), as ``contains(lower(raw), needle)`` finds the others."""
    found = []
    with Lines(cur) as lines:
        for lb in sorted(lines.files):
            ev = query_arrow(cur, f"SELECT e.seq, e.raw_at FROM events e WHERE e.raw_at IS NOT NULL "
                                  f"AND {LINE_BASE} = $lb ORDER BY e.raw_at", {"lb": lb})
            if not ev.num_rows:
                continue
            offs = ev["raw_at"].to_numpy()
            seqs = ev["seq"].to_numpy()
            starts = _line_starts_with(lines, lb, offs, needle)
            idx = np.searchsorted(offs, starts)
            ok = idx < len(offs)
            ok[ok] = offs[idx[ok]] == starts[ok]  # a line holding no event of its own: none
            found.append(seqs[idx[ok]])
    seqs = np.concatenate(found) if found else np.empty(0, np.int64)
    return pa.table({"seq": pa.array(seqs, pa.int64())})


def _line_starts_with(lines: Lines, lb: int, offs: np.ndarray, needle: str) -> np.ndarray:
    """Offsets of the lines of file ``lb`` whose lower-cased text contains ``needle``."""
    data = lines.data(lb)
    if not needle.isascii():  # bytes.lower() is ASCII only: lower each line as text
        return np.array([a for a in offs.tolist() if needle in lines.line(lb, a).lower()], np.int64)
    pat = needle.encode()
    if b"\n" in pat:  # no line holds one
        return np.empty(0, np.int64)
    out: list[int] = []
    a, n = 0, min(len(data), lines.files[lb][1])  # a file that grew since: its loaded part
    while a < n:
        b = data.rfind(b"\n", a, a + BLOCK) + 1 if a + BLOCK < n else n
        if b <= a:  # a line longer than a block
            b = data.find(b"\n", a + BLOCK)
            b = n if b < 0 else b + 1
        low = data[a:b].lower()
        i = low.find(pat)
        while i >= 0:
            out.append(a + low.rfind(b"\n", 0, i) + 1)
            nl = low.find(b"\n", i)
            if nl < 0:
                break
            i = low.find(pat, nl + 1)
        a = b
    return np.array(out, np.int64)


def all_texts(cur, where: str = "", params: dict | None = None) -> list[str]:
    """The raw texts of the events (``where``: a SQL condition on them), in seq order."""
    sql = (f"SELECT seq, line, CAST(raw AS VARCHAR) AS raw, raw_at FROM events "
           f"{'WHERE ' + where if where else ''} ORDER BY seq")
    table = query_arrow(cur, sql, params)
    return list(texts(table.to_batches(), cur))
