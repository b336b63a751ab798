"""The DuckDB store: in memory by default, or a file that reopens without re-parsing.

One connection is owned by the Store; every other thread works on its own
cursor (``store.cursor()``), as DuckDB connections are not shared across threads.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from raceway_core import schema
from raceway_core.dbutil import query_arrow
from raceway_core.errors import Interrupted, QueryError, StoreError
from raceway_core import loading
from raceway_core.loading import LoadSummary, load_file
from raceway_core.loading.batch import BatchOutcome, Prepared, Rows, ingest_texts, line_size
from raceway_core.loading.known import KnownIds


class Store:
    def __init__(self, path: str | Path | None = None, *, read_only: bool = False, keep_raw: bool = False) -> None:
        self.path = None if path in (None, ":memory:") else Path(path)
        # In memory, a plain JSONL file's events keep where their line is, not its text
        # (rawtext); ``keep_raw``: keep the text (for SQL of one's own that reads events.raw).
        self.keep_raw = keep_raw
        try:
            self.conn = duckdb.connect(str(self.path) if self.path else ":memory:", read_only=read_only)
        except (duckdb.Error, OSError) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        schema.session_setup(self.conn)
        self._configure()
        if not read_only:
            schema.create(self.conn, on_disk=self.path is not None)
        self._write_lock = threading.Lock()
        self._cursor_lock = threading.Lock()
        self._cursors: dict[int, weakref.WeakSet] = {}  # thread id -> its cursors (for interrupt)
        self._stopped: set[int] = set()  # threads interrupted until resume
        self._version = 0
        self._append_cur: duckdb.DuckDBPyConnection | None = None
        # Kept by appends, dropped by anything else that writes events or meta:
        self._known: KnownIds | None = None  # the stored ids, for appends' duplicate check
        self._line: int | None = None  # meta.next_line
        # Appends checkpoint (compress, fold the WAL) each time the events double, as loads do:
        self._held: int | None = None  # events in the table, None: count them
        self._compacted: int | None = None  # events at the last checkpoint, None: as many as held

    def _configure(self) -> None:
        # Appends commit chunk by chunk; checkpoint once after a load rather than
        # every 16 MB of WAL, which would recompress the same row groups again and again.
        self._tmp = tempfile.mkdtemp(prefix="raceway-duckdb-")
        self.conn.execute("SET checkpoint_threshold = '64GB'").fetchall()
        self.conn.execute(f"SET temp_directory = '{self._tmp}'").fetchall()

    # -- connections ---------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not thread-safe).
        UTC comes from the store's connection (a global setting)."""
        ident = threading.get_ident()
        with self._cursor_lock:
            if ident in self._stopped:
                raise Interrupted("queries of this thread were interrupted")
            cur = self.conn.cursor()
            self._cursors.setdefault(ident, weakref.WeakSet()).add(cur)
        return cur

    def interrupt(self, thread_id: int) -> None:
        """Stop a thread's queries (a background precomputation the user's request overtook):
        its running query ends with duckdb.InterruptException, and cursor() raises Interrupted
        in that thread until ``resume(thread_id)``."""
        with self._cursor_lock:
            self._stopped.add(thread_id)
            cursors = list(self._cursors.get(thread_id, ()))
        for cur in cursors:
            try:
                cur.interrupt()
            except duckdb.Error:  # closed meanwhile
                pass

    def resume(self, thread_id: int) -> None:
        """Let an interrupted thread query again."""
        with self._cursor_lock:
            self._stopped.discard(thread_id)
            if not self._cursors.get(thread_id):
                self._cursors.pop(thread_id, None)  # threads come and go

    def _loading_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor that can run the loader's SQL (its macros made on it)."""
        cur = self.conn.cursor()
        schema.session_setup(cur)
        return cur

    def close(self) -> None:
        # A worker thread may be taking a cursor from the connection at this very moment:
        # DuckDB then refuses the close rather than waiting; the call is over in microseconds.
        for _ in range(100):
            try:
                self.conn.close()
                break
            except duckdb.ResourceInUseException:
                time.sleep(0.02)
        else:
            self.conn.close()  # still busy after 2 s: let the error out
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- loading --------------------------------------------------------------
    @property
    def version(self) -> int:
        """Increases whenever events are added: analyses cache against it."""
        return self._version

    def bump(self) -> None:
        self._version += 1

    def load(self, paths: Iterable[str | Path] | str | Path, options=None) -> list[LoadSummary]:
        """Load files (any supported container or importer format, plain or gzip).

        ``options`` is a ``raceway_core.formats.ImportOptions`` (force a format,
        ShiViz regex, ...). One summary per file.
        """
        if isinstance(paths, (str, Path)):  # one file (a str iterated would be one "file" per character)
            paths = [paths]
        out = []
        with self._write_lock:
            self._known = self._line = self._held = self._compacted = None
            cur = self._loading_cursor()
            threads = self._fewer_threads(cur)
            try:
                for p in paths:
                    # A file store takes each file in one transaction: DuckDB then writes the
                    # row groups straight into the file instead of the WAL chunk by chunk
                    # (which cost as much again as the load, and the checkpoint after).
                    # In memory, chunks commit one by one (a transaction would hold them twice).
                    whole = self.path is not None
                    if whole:
                        cur.execute("BEGIN TRANSACTION").fetchall()
                    try:
                        load_id, line_base = self._next_ids(cur)
                        summary, used = load_file(cur, Path(p), load_id, line_base, name=str(p), options=options,
                                                  compact=not whole, lazy_raw=not (whole or self.keep_raw))
                        self._record(cur, load_id, Path(p), summary, line_base + used)
                    except BaseException:
                        if whole:
                            with contextlib.suppress(duckdb.Error):
                                cur.execute("ROLLBACK").fetchall()
                        raise
                    if whole:
                        cur.execute("COMMIT").fetchall()
                    out.append(summary)
            finally:
                with contextlib.suppress(duckdb.Error):
                    cur.execute(f"SET threads = {threads}").fetchall()
                cur.close()
            if any(s.loaded for s in out):
                self.bump()
                if self.path is not None:
                    self.conn.execute("CHECKPOINT").fetchall()
        return out

    @staticmethod
    def _fewer_threads(cur) -> int:
        """One DuckDB thread fewer while a file loads (at least one): the loader's reader
        thread keeps a core busy, and DuckDB's threads contending with it for the other
        cores cost more CPU than they save (2 cores: 1M events -12% CPU). Returns the
        setting to restore."""
        threads = int(cur.execute("SELECT current_setting('threads')").fetchall()[0][0])
        cur.execute(f"SET threads = {max(1, threads - 1)}").fetchall()
        return threads

    # -- live sources: a server's POSTs, a client's pulls ----------------------------
    def open_live(self, source: str, mode: str, path: str | None = None) -> int:
        """A ``sources`` row for a source that keeps appending; returns its load_id."""
        with self._write_lock:
            cur = self._appender()
            load_id, _ = self._next_ids(cur)
            cur.execute("INSERT INTO sources VALUES (?, ?, ?, ?, now(), 0, 0, 0, 0, 0, [])",
                        [load_id, source, path, mode]).fetchall()
        return load_id

    def known_ids(self) -> KnownIds:
        """The ids appends check against, read from the table the first time
        (a server calls this as it starts rather than in its first commit)."""
        with self._write_lock:
            return self._known_ids()

    def _known_ids(self) -> KnownIds:
        if self._known is None:
            self._known = KnownIds.from_store(self._appender())
        return self._known

    def append(self, load_id: int, source: str, lines: list[str | list[str] | Prepared | Rows], *,
               meta: dict[str, str] | None = None) -> BatchOutcome:
        """Validate and add batches in one transaction, committed on return.

        Each line is a batch: its text (``{"events": [...]}``, a server response,
        an array), the list of its events' JSON texts (see ``event_texts``),
        those with their rows already made (``batch.prepare``), or those rows as
        an Arrow table (``batch.Rows``).
        ``meta`` entries are written in the same transaction (a client's sync cursor).
        """
        with self._write_lock:
            cur = self._appender()
            known = self._known_ids()
            cur.execute("BEGIN TRANSACTION").fetchall()
            try:
                known_line = self._next_line(cur) if self._line is None else self._line
                first_line = max(known_line, 1)
                out = ingest_texts(cur, lines, load_id, source, first_line, known)
                size = sum(map(line_size, lines))
                cur.execute(
                    "UPDATE sources SET bytes = bytes + ?, records = records + ?, loaded = loaded + ?, "
                    "rejected = rejected + ?, duplicates = duplicates + ? WHERE load_id = ?",
                    [size, out.records, out.loaded, out.rejected, out.duplicates, load_id]).fetchall()
                rows = [("next_line", str(first_line + len(lines))), *(meta or {}).items()]
                if known_line:  # an UPDATE costs a third of an upsert
                    cur.execute("UPDATE meta SET value = ? WHERE key = 'next_line'", [rows.pop(0)[1]]).fetchall()
                if rows:
                    cur.execute("INSERT OR REPLACE INTO meta VALUES " + ", ".join(["(?, ?)"] * len(rows)),
                                [x for row in rows for x in row]).fetchall()
                cur.execute("COMMIT").fetchall()
            except BaseException:
                self._line = None
                with contextlib.suppress(duckdb.TransactionException):  # a failed COMMIT ended it already
                    cur.execute("ROLLBACK").fetchall()
                raise
            self._line = first_line + len(lines)
            if out.loaded:
                self.bump()
                self._compact(cur, out.loaded)
        return out

    def _compact(self, cur, added: int) -> None:
        """Checkpoint after appends once the events doubled since the last one: a store
        filled by a server or a live source is then compressed (in memory) and its WAL
        folded (a file) as it grows, at a cost linear in the events (see load_file)."""
        if self._held is None:
            self._held = cur.execute("SELECT count(*) FROM events").fetchall()[0][0]
        else:
            self._held += added
        if self._compacted is None:
            self._compacted = self._held - added
        if self._held >= max(loading.COMPACT_ROWS, 2 * self._compacted) and loading.checkpoint(cur):
            self._compacted = self._held

    @contextlib.contextmanager
    def frozen(self):
        """Hold back appends and loads meanwhile: for work that reads the events
        in several statements and needs them not to change in between."""
        with self._write_lock:
            yield

    def meta(self, key: str) -> str | None:
        rows = self.sql("SELECT value FROM meta WHERE key = ?", [key]).column("value").to_pylist()
        return rows[0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock:
            self._line = None
            self._appender().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value]).fetchall()

    def set_threads(self, n: int) -> None:
        """DuckDB's worker threads for every cursor of this store."""
        self._appender().execute(f"SET threads = {int(n)}").fetchall()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (fails while others read)."""
        with self._write_lock:
            self._appender().execute("CHECKPOINT").fetchall()

    def _appender(self) -> duckdb.DuckDBPyConnection:
        # one cursor for appends, only ever used under the write lock
        if self._append_cur is None:
            self._append_cur = self._loading_cursor()
        return self._append_cur

    def _next_ids(self, cur) -> tuple[int, int]:
        load_id = cur.execute("SELECT coalesce(max(load_id), 0) + 1 FROM sources").fetchall()[0][0]
        return load_id, self._next_line(cur)

    def _next_line(self, cur) -> int:
        rows = cur.execute("SELECT value FROM meta WHERE key = 'next_line'").fetchall()
        return int(rows[0][0]) if rows else 0

    def _record(self, cur, load_id: int, path: Path, s: LoadSummary, next_line: int) -> None:
        cur.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?)",
            [load_id, s.source, str(path.resolve()) if path.exists() else str(path), s.mode, s.bytes,
             s.records, s.loaded, s.rejected, s.duplicates, list(s.notes) + ([s.fatal] if s.fatal else [])],
        ).fetchall()
        cur.execute("INSERT OR REPLACE INTO meta VALUES ('next_line', ?)", [str(next_line)]).fetchall()

    # -- queries --------------------------------------------------------------
    def sql(self, query: str, params: list | None = None) -> pa.Table:
        """Run SQL against the store; the result as an Arrow table."""
        cur = self.cursor()
        try:
            return query_arrow(cur, query, params)
        except duckdb.Error as exc:
            raise QueryError(str(exc).strip()) from exc
        finally:
            cur.close()

    def counts(self) -> dict[str, int]:
        cur = self.cursor()
        try:
            events, traces = cur.execute("SELECT count(*), count(DISTINCT trace_id) FROM events").fetchall()[0]
            rejected = cur.execute("SELECT count(*) FROM rejects").fetchall()[0][0]
        finally:
            cur.close()
        return {"events": events, "traces": traces, "rejected": rejected}
