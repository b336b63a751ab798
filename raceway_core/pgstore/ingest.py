"""Storing POSTed batches in the shared database, for the group committer.

``PgIngest.append`` is what ``Store.append`` is to the DuckDB server: the
writer thread hands it the bodies of one commit group. They are validated
exactly as the DuckDB store does (the same code, in a scratch in-memory
DuckDB whose transaction is rolled back), then the accepted events go in with
COPY and one ``INSERT ... ON CONFLICT (id) DO NOTHING`` in one transaction:
an id is stored once whichever server received it, and the conflicts are the
duplicates the answer reports. Returns only once the transaction committed.
"""

from __future__ import annotations

import io
import logging
import threading

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from raceway_core import schema
from raceway_core.dbutil import query_arrow
from raceway_core.loading.batch import BatchOutcome, LineResult, ingest_texts
from raceway_core.loading.known import KnownIds
from raceway_core.pgstore.pool import Pool

log = logging.getLogger("raceway.pgstore")

_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS raceway_in (line integer, rec integer, id text, trace_id text, "
          "ts_ns bigint, raw text) ON COMMIT DELETE ROWS")
# Rows in id order, so two servers inserting overlapping ids take their
# locks in the same order (no deadlock); returns the ones already stored.
_INSERT = """
    WITH ins AS (
        INSERT INTO raceway_events (id, trace_id, ts_ns, raw)
        SELECT id, trace_id, ts_ns, raw FROM raceway_in ORDER BY id
        ON CONFLICT (id) DO NOTHING RETURNING id)
    SELECT line, rec FROM raceway_in WHERE id NOT IN (SELECT id FROM ins)"""
_RETRIES = 3


class PgIngest:
    """The group committer's store when events go to PostgreSQL."""

    path = None  # no DuckDB WAL to checkpoint

    def __init__(self, pool: Pool, server: str | None) -> None:
        self.pool = pool
        self.server = server
        self._scratch = duckdb.connect(":memory:")
        schema.session_setup(self._scratch)
        schema.create(self._scratch)
        self._lock = threading.Lock()

    def _validate(self, lines, load_id: int, source: str) -> tuple[BatchOutcome, pa.Table, list]:
        cur = self._scratch
        cur.execute("BEGIN TRANSACTION").fetchall()
        try:
            out = ingest_texts(cur, lines, load_id, source, 1, KnownIds())
            rows = query_arrow(cur, "SELECT line, rec, id, trace_id, ts_ns, CAST(raw AS VARCHAR) AS raw "
                                    "FROM events ORDER BY seq")
            rejects = cur.execute("SELECT rec, reason, raw FROM rejects").fetchall() if out.rejected else []
        finally:
            cur.execute("ROLLBACK").fetchall()
        return out, rows, rejects

    def append(self, load_id: int, source: str, lines: list) -> BatchOutcome:
        with self._lock:
            out, rows, rejects = self._validate(lines, load_id, source)
            dups = self._store(rows, rejects)
        return _with_duplicates(out, dups)

    def _store(self, rows: pa.Table, rejects: list) -> list[tuple[int, int]]:
        """Commit the rows and rejects; the (line, rec) of rows whose id was stored already."""
        import psycopg

        csv = io.BytesIO()
        if rows.num_rows:
            pacsv.write_csv(rows, csv, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
        data = csv.getvalue()
        for attempt in range(_RETRIES):
            committing = False
            try:
                with self.pool.connection() as conn:
                    with conn.transaction():
                        dups = []
                        if rows.num_rows:
                            conn.execute(_STAGE)
                            with conn.cursor().copy("COPY raceway_in FROM STDIN (FORMAT csv)") as cp:
                                cp.write(data)
                            dups = conn.execute(_INSERT).fetchall()
                        if rejects:
                            with conn.cursor().copy(
                                    "COPY raceway_rejects (server, rec, reason, raw) FROM STDIN") as cp:
                                for rec, reason, raw in rejects:
                                    cp.write_row((self.server, rec, reason, raw))
                        committing = True
                    return dups
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                if attempt == _RETRIES - 1:
                    raise
                log.info("commit retried: %s", exc)
            except psycopg.OperationalError as exc:
                # a connection that broke (the database restarted) before COMMIT was
                # sent: nothing was stored, so a fresh connection may try again; after,
                # whether it committed is unknown and the client's retry settles it
                if committing or attempt == _RETRIES - 1:
                    raise
                log.info("connection lost before commit, retrying on a new one: %s", exc)
        raise AssertionError("unreachable")


def _with_duplicates(out: BatchOutcome, dups: list[tuple[int, int]]) -> BatchOutcome:
    """The scratch store's outcome, with the rows the database already held
    counted as duplicates (line numbers are 1-based, as validated)."""
    if not dups:
        return out
    by_line: dict[int, list[int]] = {}
    for line, rec in dups:
        by_line.setdefault(line - 1, []).append(rec)
    lines = []
    for i, r in enumerate(out.lines):
        extra = by_line.get(i)
        if extra:
            d = tuple(sorted([*r.duplicates, *extra], key=lambda x: -1 if x is None else x))
            r = LineResult(r.loaded - len(extra), r.rejected, d)
        lines.append(r)
    return BatchOutcome(out.first_line, out.loaded - len(dups), out.rejected, out.duplicates + len(dups),
                        tuple(lines))
