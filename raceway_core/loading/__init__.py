"""Loading trace files into the store: formats -> Arrow -> DuckDB."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from raceway_core.loading.ingest import Ingestor
from raceway_core.loading.reading import Chunk, Source, display_name
from raceway_core.loading.summary import LoadSummary, reject_label

__all__ = ["COMPACT_ROWS", "LoadSummary", "checkpoint", "load_file"]

_DONE = object()


def _prefetch(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Read the next chunks in a thread while DuckDB works on this one.

    Splitting lines (numpy) and building Arrow arrays release the GIL, as does
    DuckDB, so reading and parsing overlap.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            for c in chunks:
                while not stop.is_set():
                    try:
                        q.put(c, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
        finally:
            q.put(_DONE)

    t = threading.Thread(target=run, name="raceway-reader", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not _DONE:
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
    if failure:
        raise failure[0]


# DuckDB's row group (122,880 rows). A checkpoint compresses the rows held as written; one
# each time the events cross a multiple of it compresses each full row group once (only a
# partial last one again), so an in-memory load holds at most a row group and a chunk
# uncompressed. Checkpoints at each doubling held up to half the load as written (1M
# events: 1.67 GB peak RSS, 6.8 s CPU of checkpoints; at each row group: 0.93 GB, 4.6 s).
COMPACT_ROWS = 122_880


def checkpoint(conn: duckdb.DuckDBPyConnection) -> bool:
    """Compress what the store holds so far (1M events: 1.04 GB -> 0.48 GB in memory,
    +30% load CPU); False when another transaction keeps DuckDB from it: the
    rest of this load then stays as it is."""
    try:
        conn.execute("CHECKPOINT").fetchall()
    except duckdb.TransactionException:
        return False
    return True


def load_file(conn: duckdb.DuckDBPyConnection, path: Path, load_id: int, line_base: int,
              name: str | None = None, options=None, compact: bool = False,
              lazy_raw: bool = False) -> tuple[LoadSummary, int]:
    """Load one file on ``conn``; returns its summary and the number of lines it used.

    Chunks commit one by one (big transactions hold everything in memory twice);
    if loading fails half-way, what this load added is removed again. ``compact``
    (an in-memory store, chunks committed one by one): checkpoint each time the events
    the store holds cross a multiple of COMPACT_ROWS, which is when DuckDB compresses
    the rows in memory. ``lazy_raw``: the events of a plain JSONL file keep where their
    line is rather than its text (``rawtext``), for stores that live no longer than the file.
    """
    started = time.perf_counter()
    src = Source(Path(path), name or display_name(Path(path)), options=options)
    stat = None
    grown: list[tuple] = []  # earlier loads of this file, now changed: (line_base, size, crc)
    if lazy_raw:
        try:  # before reading: a change while loading then shows when reading back
            stat = Path(path).stat()
            src.offsets = Path(path).is_file()
        except OSError:
            pass
        if src.offsets:
            grown = conn.execute("SELECT line_base, size, crc FROM raw_files WHERE path = ? AND "
                                 "(size <> ? OR mtime_ns <> ?) AND size <= ?",
                                 [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_size]).fetchall()
            src.crc_marks = {size: None for _, size, _ in grown if size}
    ing = Ingestor(conn, load_id, src.name, line_base)
    held = conn.execute("SELECT count(*) FROM events").fetchall()[0][0] if compact else 0
    compacted = held
    try:
        # one chunk read ahead: reading is several times faster than inserting, so a deeper
        # queue only held another 32 MB block and its Arrow arrays (+40-60 MB peak RSS at 1M)
        for chunk in _prefetch(src.chunks(), depth=1):
            ing.chunk(chunk.table, chunk.expand, chunk.records)
            if compact and (held + ing.counts.loaded) // COMPACT_ROWS > compacted // COMPACT_ROWS:
                compacted = held + ing.counts.loaded
                compact = checkpoint(conn)
        if src.fatal:
            return LoadSummary(src.name, "", 0, 0, 0, 0, fatal=src.fatal,
                               seconds=time.perf_counter() - started, bytes=src.bytes_read), 0
        ing.problems(src.problems)
        ing.dedupe()
        if src.offsets and stat is not None:
            # what was read (a file growing meanwhile: more than stat said) and the time before
            # reading (a file changed meanwhile then fails the check when read back)
            conn.execute("INSERT INTO raw_files VALUES (?, ?, ?, ?, ?)",
                         [line_base, str(Path(path).resolve()), src.bytes_read, stat.st_mtime_ns, src.crc]).fetchall()
            for lb, size, crc in grown:  # the file only grew since (a reload): its lines are where they were
                if size and src.crc_marks.get(size) == crc:
                    conn.execute("UPDATE raw_files SET size = ?, mtime_ns = ?, crc = ? WHERE line_base = ?",
                                 [src.bytes_read, stat.st_mtime_ns, src.crc, lb]).fetchall()
    except BaseException:
        ing.undo()
        raise
    c = ing.counts
    examples = tuple(
        reject_label(line, rec, reason)
        for line, rec, reason in conn.execute(
            "SELECT line, rec, reason FROM rejects WHERE load_id = ? AND source = ? "
            "ORDER BY line NULLS LAST, rec NULLS FIRST LIMIT 3", [load_id, src.name]).fetchall()
    )
    summary = LoadSummary(
        source=src.name, mode=src.mode, records=c.records, loaded=c.loaded, rejected=c.rejected,
        duplicates=c.duplicates, examples=examples, notes=tuple(src.notes + ing.notes),
        seconds=time.perf_counter() - started, bytes=src.bytes_read,
    )
    return summary, src.lines + 1
