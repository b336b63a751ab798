"""Append records that arrive over time (server POSTs, client pulls) through the
same validation as files.

Each line is one batch: either its text (a POST body ``{"events": [...]}``, a
feed page, a server response; SQL finds the events) or the list of its events'
JSON texts, already split by the caller (much faster: DuckDB spreads many
small records over its threads, but not a few big ones it has to expand).
Lines are numbered absolutely from ``first_line`` (the store's
``meta.next_line``), so ``seq = (line << REC_BITS) + rec`` keeps arrival order
across batches and restarts, and ``rec`` is the index inside the line's batch.
The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.loading import guard, pyfast
from raceway_core.loading.ingest import Ingestor
from raceway_core.loading.known import KnownIds, id_hash
from raceway_core.loading.reading import CHUNK_SCHEMA, Problem
from raceway_core.schema import REC_BITS

MAX_LINE = (1 << 31) - 1  # the rejects/events `line` column is an INTEGER
# orjson reads integers past 64 bits as floats: look for 19 digits in a row
# (digits mapped to 0, then a substring search: 15x faster than a regex)
_DIGITS_TO_0 = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def event_texts(events: list, body: bytes) -> list[str] | None:
    """The JSON text of each event of a parsed batch, or None when re-serialising
    might change a value (a number of 19+ digits somewhere in ``body``): then
    pass the body text itself and let SQL find the events."""
    if _LONG_NUMBER in body.translate(_DIGITS_TO_0):
        return None
    dumps = orjson.dumps
    try:
        return [dumps(e).decode() for e in events]
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: SQL splits the body
        return None


@dataclass(frozen=True, slots=True)
class LineResult:
    """What became of one text: counts, and where its rejects and duplicates were."""

    loaded: int
    rejected: tuple[tuple[int | None, str], ...]  # (index in the batch or None, reason)
    duplicates: tuple[int | None, ...]  # index in the batch of each event already stored

    @property
    def records(self) -> int:
        return self.loaded + len(self.rejected) + len(self.duplicates)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    first_line: int
    loaded: int
    rejected: int
    duplicates: int
    lines: tuple[LineResult, ...]  # one per text, in order

    @property
    def records(self) -> int:
        return self.loaded + self.rejected + self.duplicates


PY_FAST_MAX = 2000  # events per batch up to which Python makes the rows (see pyfast)
_REC_MASK = (1 << REC_BITS) - 1


@dataclass(slots=True)
class Prepared:
    """A batch split into its events' JSON texts, with the row pyfast made of each
    (None: SQL decides). Made where the batch arrives (a request handler), so
    that this work overlaps the commit of the batches before."""

    texts: list[str]
    rows: list[tuple | None]  # pyfast.values of each


@dataclass(slots=True)
class Rows:
    """A batch whose every event pyfast accepted, as ``pyfast.row_columns``' table:
    made where the batch arrives (an ingest front, in another process), so that
    committing it is one Arrow insert with no Python per event."""

    table: pa.Table
    chars: int  # characters of its events' JSON (what ``sources.bytes`` counts)

    @classmethod
    def of(cls, prepared: Prepared) -> "Rows | None":
        """The rows of a prepared batch, or None when SQL has some of them to decide."""
        if None in prepared.rows:
            return None
        return cls(pyfast.row_columns(prepared.rows, prepared.texts), sum(map(len, prepared.texts)))

    @classmethod
    def stored(cls, table: pa.Table) -> "Rows":
        """Rows another store holds (a server's feed in Arrow): its JSON columns
        marked as JSON again, which Arrow export leaves as plain strings."""
        table = pyfast.as_json_columns(table.select(list(pyfast.ROW_COLUMNS)))
        chars = sum(pc.sum(pc.utf8_length(c)).as_py() or 0 for c in _raw_strings(table))
        return cls(table, chars)

    def texts(self) -> list[str]:
        """Its events' JSON texts."""
        return [t for c in _raw_strings(self.table) for t in c.to_pylist()]


def _raw_strings(table: pa.Table) -> list[pa.Array]:
    """The chunks of the raw column as plain strings (arrow.json wraps them)."""
    return [c.storage if isinstance(c, pa.ExtensionArray) else c for c in table.column("raw").chunks]


def prepare(events: list, texts: list[str]) -> Prepared:
    """``texts`` as ``event_texts`` gave them for the parsed ``events``."""
    if len(events) > PY_FAST_MAX:
        return Prepared(texts, [None] * len(texts))
    return Prepared(texts, [_shallow(pyfast.values(e), t) for e, t in zip(events, texts)])


def _shallow(row: tuple | None, text: str) -> tuple | None:
    """``row``, or None when its event may nest too deep: SQL rejects it then."""
    if row is not None and guard.too_deep(text, row[_OLD], row[_NEW]):
        return None
    return row


_OLD, _NEW = pyfast.COLUMNS.index("old_value"), pyfast.COLUMNS.index("new_value")


def line_size(line: str | Sequence[str] | Prepared | Rows) -> int:
    """Characters of JSON in one line (what ``sources.bytes`` counts)."""
    if isinstance(line, str):
        return len(line)
    if isinstance(line, Rows):
        return line.chars
    return sum(map(len, line.texts if isinstance(line, Prepared) else line))


def _parse_row(text: str) -> tuple | None:
    try:
        return _shallow(pyfast.values(orjson.loads(text)), text)
    except orjson.JSONDecodeError:
        return None


def ingest_texts(conn: duckdb.DuckDBPyConnection, lines: Sequence[str | Sequence[str] | Prepared], load_id: int,
                 source: str, first_line: int, known: KnownIds) -> BatchOutcome:
    """Validate and append ``lines`` (line ``first_line + i`` each) on ``conn``.

    Valid events go to ``events``, invalid ones to ``rejects`` with their reason,
    and events whose id is already stored (or repeated in the batch) are left
    out, the first appearance winning, exactly as when loading files. ``known``
    holds the ids stored before; the ids added are added to it.
    """
    n = len(lines)
    if first_line < 1 or first_line + n > MAX_LINE:
        raise ValueError(f"line numbers {first_line}..{first_line + n} out of range")
    if any(isinstance(x, Rows) for x in lines):
        if all(isinstance(x, Rows) for x in lines):
            out = _insert_rows(conn, lines, source, first_line, known)
            if out is not None:
                return out
        # repeats, or other kinds of lines beside: the general path below, from their texts
        lines = [x.texts() if isinstance(x, Rows) else x for x in lines]
    first_seq = first_line << REC_BITS
    ing = Ingestor(conn, load_id, source, 0, first_seq=first_seq)
    fast: list[tuple[int, tuple, str]] = []  # (seq, row, text) of the events Python made rows of
    sql_lines, sql_recs, sql_texts = [], [], []
    whole, split = [], []
    for i, x in enumerate(lines):
        if isinstance(x, str):
            whole.append((first_line + i, x))
        elif isinstance(x, Prepared):
            base = (first_line + i) << REC_BITS
            for rec, (text, r) in enumerate(zip(x.texts, x.rows)):
                if r is None:
                    sql_lines.append(first_line + i)
                    sql_recs.append(rec)
                    sql_texts.append(text)
                else:
                    fast.append((base + rec, r, text))
        else:
            split.append((first_line + i, x))
    small = sum(len(t) for _, t in split) <= PY_FAST_MAX  # small batches: rows in Python, no SQL to plan
    for ln, texts in split:
        for rec, text in enumerate(texts):
            r = _parse_row(text) if small else None
            if r is None:
                sql_lines.append(ln)
                sql_recs.append(rec)
                sql_texts.append(text)
            else:
                fast.append(((ln << REC_BITS) + rec, r, text))
    _guard(ing, whole, sql_lines, sql_recs, sql_texts)
    if sql_texts:
        table = pa.Table.from_arrays([pa.array(sql_lines, pa.int32()), pa.array(sql_recs, pa.int32()),
                                      pa.array(sql_texts, pa.string())], schema=CHUNK_SCHEMA)
        # a few record batches, so that DuckDB's threads share the work (-25% time)
        parts = table.to_batches(max_chunksize=max(256, -(-table.num_rows // 4)))
        ing.chunk(pa.Table.from_batches(parts, schema=CHUNK_SCHEMA), expand=False, records=table.num_rows)
    if whole:
        ing.chunk(pa.Table.from_arrays(
            [pa.array([ln for ln, _ in whole], pa.int32()), pa.nulls(len(whole), pa.int32()),
             pa.array([t for _, t in whole], pa.string())], schema=CHUNK_SCHEMA), expand=True)
    by_sql = bool(sql_texts or whole)
    dup_rows, fast = _dedupe(conn, known, fast, by_sql, first_seq, source)
    if fast:
        seqs, rows, texts = zip(*fast)
        conn.register("_pyfast", pyfast.rows_table(rows, texts, seqs, source))
        try:
            conn.execute("INSERT INTO events BY NAME SELECT * FROM _pyfast").fetchall()
        finally:
            conn.unregister("_pyfast")

    if by_sql:
        loaded = dict(conn.execute(
            "SELECT line, count(*) FROM events WHERE seq >= ? AND source = ? GROUP BY line",
            [first_seq, source]).fetchall())
    else:
        loaded = {}
        for seq, _, _ in fast:
            ln = seq >> REC_BITS
            loaded[ln] = loaded.get(ln, 0) + 1
    rejects: dict[int, list[tuple[int | None, str]]] = {}
    if ing.counts.rejected:
        for line, rec, reason in conn.execute(
                "SELECT line, rec, reason FROM rejects WHERE load_id = ? AND source = ? AND line >= ? "
                "ORDER BY line, rec NULLS FIRST", [load_id, source, first_line]).fetchall():
            rejects.setdefault(line, []).append((rec, reason))
    dups: dict[int, list[int | None]] = {}
    for line, rec in sorted(dup_rows, key=lambda r: (r[0], -1 if r[1] is None else r[1])):
        dups.setdefault(line, []).append(rec)

    lines = tuple(
        LineResult(loaded.get(line, 0), tuple(rejects.get(line, ())), tuple(dups.get(line, ())))
        for line in range(first_line, first_line + n))
    return BatchOutcome(first_line, sum(r.loaded for r in lines), sum(len(r.rejected) for r in lines),
                        len(dup_rows), lines)


def _guard(ing: Ingestor, whole: list[tuple[int, str]], lines: list[int], recs: list[int],
           texts: list[str]) -> None:
    """Reject the events holding NaN, Infinity or 1e400 (see guard.py) before SQL,
    in place; a batch text holding one is split so its other events still go in."""
    problems: list[Problem] = []
    for i in reversed(_non_finite_texts(texts)):
        problems.append(Problem(lines[i], recs[i], guard.NON_FINITE_REASON, texts[i]))
        del lines[i], recs[i], texts[i]
    for i in reversed(_non_finite_texts([t for _, t in whole])):
        ln, text = whole.pop(i)
        events = guard.split_batch(text)
        if events is None:
            problems.append(Problem(ln, None, guard.NON_FINITE_REASON, text))
            continue
        for rec, ev in enumerate(events):
            if guard.non_finite(ev):
                problems.append(Problem(ln, rec, guard.NON_FINITE_REASON, ev))
            else:
                lines.append(ln)
                recs.append(rec)
                texts.append(ev)
    ing.problems(sorted(problems, key=lambda p: (p.line, -1 if p.rec is None else p.rec)))


def _non_finite_texts(texts: list[str]) -> list[int]:
    if not texts:
        return []
    parts = [t.encode("utf-8", "surrogatepass") for t in texts]
    offsets = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(b) + 1 for b in parts], out=offsets[1:])
    data = b"\n".join(parts) + b"\n"
    return guard.non_finite_lines(data, np.frombuffer(data, np.uint8), offsets)


def _insert_rows(conn, lines: Sequence[Rows], source: str, first_line: int,
                 known: KnownIds) -> BatchOutcome | None:
    """Commit-ready rows (``Rows``) in one insert; None when an id may be stored
    already or repeats within them: then the general path finds which."""
    ids: list[str] = []
    for x in lines:
        ids += x.table.column("id").to_pylist()
    hashes = list(map(id_hash, ids))
    if known.candidates(hashes) or len(set(ids)) != len(ids):
        return None
    seqs = np.concatenate([np.arange(x.table.num_rows, dtype=np.int64) + ((first_line + i) << REC_BITS)
                           for i, x in enumerate(lines)])
    table = pyfast.numbered(pa.concat_tables([x.table for x in lines]), seqs, source)
    conn.register("_rows", table)
    try:
        conn.execute("INSERT INTO events BY NAME SELECT * FROM _rows").fetchall()
    finally:
        conn.unregister("_rows")
    known.add(hashes)
    results = tuple(LineResult(x.table.num_rows, (), ()) for x in lines)
    return BatchOutcome(first_line, len(ids), 0, 0, results)


def _dedupe(conn, known: KnownIds, fast: list[tuple[int, tuple, str]], by_sql: bool, first_seq: int,
            source: str) -> tuple[list[tuple[int, int | None]], list[tuple[int, tuple, str]]]:
    """Find the repeats among this commit's events (ids stored before, or seen
    earlier in the commit): delete those SQL inserted already, drop those of
    ``fast``. Returns their (line, rec) and what is left of ``fast``."""
    if not by_sql:  # the usual commit (rows all made in Python, no repeats) in a few C-level passes
        ids = [r[0] for _, r, _ in fast]  # r[0]: the id
        hashes = list(map(id_hash, ids))
        if not known.candidates(hashes) and len(set(ids)) == len(ids):
            known.add(hashes)
            return [], fast
    cands = [(seq, r[0], seq >> REC_BITS, seq & _REC_MASK) for seq, r, _ in fast]
    if by_sql:  # what SQL inserted, in seq (arrival) order with the rest
        cands += conn.execute("SELECT seq, id, line, rec FROM events WHERE seq >= ? AND source = ?",
                              [first_seq, source]).fetchall()
        cands.sort()
    first: dict[str, int] = {}  # id -> seq of its first appearance in the commit
    dup: dict[int, tuple[int, int | None]] = {}  # seq -> (line, rec)
    for seq, eid, line, rec in cands:
        if eid in first:
            dup[seq] = (line, rec)
        else:
            first[eid] = seq
    ids = list(first)
    hashes = [id_hash(i) for i in ids]
    maybe = known.candidates(hashes)
    check = [i for i, h in zip(ids, hashes) if h in maybe]
    if check:  # settle the "maybe"s: repeats of stored events, or hash collisions
        stored = conn.execute("SELECT DISTINCT id FROM events WHERE seq < ? AND id IN (SELECT unnest(?))",
                              [first_seq, check]).fetchall()
        where = {seq: (line, rec) for seq, _, line, rec in cands}
        for (eid,) in stored:
            dup[first[eid]] = where[first[eid]]
    known.add(h for i, h in zip(ids, hashes) if first[i] not in dup)
    if not dup:
        return [], fast
    if by_sql:
        mine = {seq for seq, _, _ in fast}
        gone = [seq for seq in dup if seq not in mine]
        if gone:
            conn.execute("DELETE FROM events WHERE seq IN (SELECT unnest(?))", [gone]).fetchall()
    return list(dup.values()), [f for f in fast if f[0] not in dup]
