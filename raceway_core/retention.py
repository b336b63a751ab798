"""Retention (``serve --retain 7d``): traces whose newest event is older than
the limit are removed whole, from the DuckDB store and from a shared
PostgreSQL database, a few hundred traces per transaction so ingest never
waits long behind a removal."""

from __future__ import annotations

import logging
import re
import threading
import time

log = logging.getLogger("raceway.retention")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
BATCH = 500  # traces removed per transaction


def parse_duration(text: str) -> float:
    """'7d', '12h', '30m', '90s', '2w' (or a number of seconds) in seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 7d, 12h, 30m or 90s")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def remove_old_duckdb(store, cutoff_ns: int) -> int:
    """Remove from a DuckDB ``Store`` the traces whose newest event is before ``cutoff_ns``; events removed."""
    removed = 0
    cur = store.cursor()
    try:
        while True:
            with store.frozen():  # appends wait for this batch only
                n = cur.execute(
                    "DELETE FROM events WHERE trace_id IN (SELECT trace_id FROM events GROUP BY trace_id "
                    "HAVING max(ts_ns) < ? LIMIT ?)", [cutoff_ns, BATCH]).fetchall()[0][0]
                if n:
                    store.bump()  # analyses cached against the old events are stale
            removed += n
            if not n:
                return removed
    finally:
        cur.close()


_PG_DELETE = """
    DELETE FROM raceway_events WHERE trace_id IN (
        SELECT trace_id FROM raceway_events GROUP BY trace_id HAVING max(ts_ns) < %s LIMIT %s)"""


def remove_old_pg(pool, cutoff_ns: int) -> int:
    """The same in the shared database (row locks only: other servers keep inserting)."""
    removed = 0
    while True:
        with pool.connection() as conn, conn.transaction():
            # one server at a time does it; the others find nothing left to do
            if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", [0x5261636577617902]).fetchone()[0]:
                return removed
            n = conn.execute(_PG_DELETE, [cutoff_ns, BATCH]).rowcount
        removed += n
        if not n:
            return removed


class Retention:
    """Runs the removal every ``every`` seconds in a thread of its own."""

    def __init__(self, keep_seconds: float, store, shared=None, every: float = 60.0) -> None:
        self.keep_seconds = keep_seconds
        self.store = store
        self.shared = shared
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raceway-retention", daemon=True)
        self.removed = 0

    def start(self) -> "Retention":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def run_once(self) -> int:
        cutoff = time.time_ns() - int(self.keep_seconds * 1e9)
        n = 0
        if self.shared is not None:
            n += remove_old_pg(self.shared.pool, cutoff)
        n += remove_old_duckdb(self.store, cutoff)  # a shared store's cache applies the same rule
        if n:
            log.info("retention: removed %d events of traces older than %gs", n, self.keep_seconds)
        self.removed += n
        return n

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a busy store: next time
                log.warning("retention pass failed: %s", exc)
            self._stop.wait(self.every)
