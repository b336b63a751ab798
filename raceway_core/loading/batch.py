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
import orjson
import pyarrow as pa

from raceway_core.loading import pyfast
from raceway_core.loading.ingest import Ingestor
from raceway_core.loading.reading import CHUNK_SCHEMA
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
    return [dumps(e).decode() for e in events]


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


_DEDUPE = """
DELETE FROM events WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, row_number() OVER (PARTITION BY id ORDER BY seq) AS rn
        FROM events
        WHERE id IN (SELECT id FROM events WHERE seq >= $first_seq AND source = $source)
    ) WHERE rn > 1 AND seq >= $first_seq
) RETURNING line, rec
"""


PY_FAST_MAX = 2000  # events per batch up to which Python makes the rows (see pyfast)


def _fast_rows(conn, ing: Ingestor, source: str, lines: list[int], recs: list[int], texts: list[str]):
    """Insert the events pyfast accepts; return what is left for SQL."""
    keep_rows, keep_texts, keep_lines, keep_recs = [], [], [], []
    left_lines, left_recs, left_texts = [], [], []
    for ln, rc, text in zip(lines, recs, texts):
        try:
            r = pyfast.row(orjson.loads(text))
        except orjson.JSONDecodeError:
            r = None
        if r is None:
            left_lines.append(ln)
            left_recs.append(rc)
            left_texts.append(text)
        else:
            keep_rows.append(r)
            keep_texts.append(text)
            keep_lines.append(ln)
            keep_recs.append(rc)
    if keep_rows:
        conn.register("_pyfast", pyfast.rows_table(keep_rows, keep_texts, keep_lines, keep_recs, source))
        try:
            conn.execute("INSERT INTO events BY NAME SELECT * FROM _pyfast").fetchall()
        finally:
            conn.unregister("_pyfast")
        ing.counts.records += len(keep_rows)
        ing.counts.loaded += len(keep_rows)
    return left_lines, left_recs, left_texts


def ingest_texts(conn: duckdb.DuckDBPyConnection, lines: Sequence[str | Sequence[str]], load_id: int,
                 source: str, first_line: int) -> BatchOutcome:
    """Validate and append ``lines`` (line ``first_line + i`` each) on ``conn``.

    Valid events go to ``events``, invalid ones to ``rejects`` with their reason,
    and events whose id is already stored (or repeated in the batch) are removed
    again, the first appearance winning, exactly as when loading files.
    """
    n = len(lines)
    if first_line < 1 or first_line + n > MAX_LINE:
        raise ValueError(f"line numbers {first_line}..{first_line + n} out of range")
    first_seq = first_line << REC_BITS
    ing = Ingestor(conn, load_id, source, 0, first_seq=first_seq)
    split = [(first_line + i, x) for i, x in enumerate(lines) if not isinstance(x, str)]
    whole = [(first_line + i, x) for i, x in enumerate(lines) if isinstance(x, str)]
    if split:
        sql_lines = [ln for ln, texts in split for _ in texts]
        sql_recs = [r for _, texts in split for r in range(len(texts))]
        sql_texts = [t for _, texts in split for t in texts]
        if len(sql_texts) <= PY_FAST_MAX:  # small batches: rows in Python, no SQL to plan
            sql_lines, sql_recs, sql_texts = _fast_rows(conn, ing, source, sql_lines, sql_recs, sql_texts)
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
    dup_rows = conn.execute(_DEDUPE, {"first_seq": first_seq, "source": source}).fetchall()

    if not whole and not dup_rows and not ing.counts.rejected and ing.counts.loaded == sum(len(t) for _, t in split):
        loaded = {ln: len(texts) for ln, texts in split}  # every event went in
    else:
        loaded = dict(conn.execute(
            "SELECT line, count(*) FROM events WHERE seq >= ? AND source = ? GROUP BY line",
            [first_seq, source]).fetchall())
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
