"""Analyses over a snapshot of the store, so that ingest never waits on them.

An analysis reads the events in many statements and must see one state of
them. Holding appends back meanwhile (``Store.frozen``) stalled every POST for
as long as the engine ran (12 s on 320k events). Instead, the events are copied
in one statement (DuckDB gives a statement one consistent view, and appends go
on meanwhile) into a private in-memory store, and the engine runs there.

A snapshot serves every request made at or before the store version it was
taken at; results are cached per snapshot. At most ``max_running`` requests
compute at once (a copy and an engine run cost one core each); the next one
gets ``Busy`` (503 with Retry-After) instead of queueing without bound.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

from raceway_core.server.analysis import Analyses
from raceway_core.store import Store

log = logging.getLogger("raceway.server")

COPY_ROWS = 50_000  # rows per Arrow batch while copying
CACHED_RESULTS = 256  # per snapshot


_SWITCH = sys.getswitchinterval()
ANALYSIS_SWITCH = 0.0005  # seconds
ANALYSIS_NICE = 10


def _share_gil(analysing: bool) -> None:
    """While an analysis runs in this process, hand the GIL over more often: the
    event loop and the writer take it back many times per commit (DuckDB drops
    and retakes it per call), and each time waited up to the switch interval
    (5 ms) behind the engine's Python stages."""
    sys.setswitchinterval(ANALYSIS_SWITCH if analysing else _SWITCH)


def _lower_priority() -> None:
    """This thread's CPU priority lowered (Linux: a thread has its own nice value)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ANALYSIS_NICE)
        except OSError as exc:
            log.info("analysis threads keep their priority: %s", exc)


class Busy(Exception):
    """Too many analyses are running; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy with other analyses; retry in {retry_after} s")
        self.retry_after = retry_after


class _Snapshot:
    def __init__(self, version: int, store: Store, options: dict, analyses: Analyses | None = None) -> None:
        self.version = version
        self.store = store
        self.analyses = analyses or Analyses(store, **options)
        self.results: OrderedDict = OrderedDict()
        self.users = 0
        self.retired = False
        self.copied = (0, -1)  # (events, largest seq) copied: what a later snapshot appends to


def _copied(store: Store) -> tuple[int, int]:
    n, top = store.conn.execute("SELECT count(*), coalesce(max(seq), -1) FROM events").fetchall()[0]
    return int(n), int(top)


class Snapshots:
    def __init__(self, store: Store, max_running: int = 2, **options) -> None:
        self.store = store
        self.options = options  # Analyses' switches (race_detection, anomaly_detection)
        self.max_running = max_running
        self._running = 0
        self._lock = threading.Lock()  # guards the fields here
        self._build = threading.Lock()  # one copy and engine run at a time
        self._current: _Snapshot | None = None
        self.last_build_seconds = 1.0
        self.builds = 0
        self.grown = 0  # of the builds, those that appended to the last snapshot (incremental)
        self._pool = ThreadPoolExecutor(max_running, thread_name_prefix="raceway-analysis", initializer=_lower_priority)

    def submit(self, key: tuple, fn, *args) -> Future:
        """``fn(analyses, *args)`` over a snapshot at least as new as the store is
        now, in one of this object's threads (their CPU priority lowered: ingest
        comes first); its result cached under ``key`` for that snapshot. Raises
        ``Busy`` at once when ``max_running`` analyses are computing."""
        wanted = self.store.version
        with self._lock:
            snap = self._current
            if snap is not None and snap.version >= wanted and key in snap.results:
                snap.results.move_to_end(key)
                done: Future = Future()
                done.set_result(snap.results[key])
                return done
            if self._running >= self.max_running:
                raise Busy(max(1, math.ceil(self.last_build_seconds)))
            self._running += 1
            if self._running == 1:
                _share_gil(True)
        try:
            return self._pool.submit(self._compute, wanted, key, fn, *args)
        except BaseException:
            self._done()
            raise

    def run(self, key: tuple, fn, *args):
        """``submit`` and wait."""
        return self.submit(key, fn, *args).result()

    def _done(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                _share_gil(False)

    def _compute(self, wanted: int, key: tuple, fn, *args):
        try:
            snap = self._acquire(wanted)
            try:
                with self._lock:
                    if key in snap.results:
                        return snap.results[key]
                result = fn(snap.analyses, *args)
                with self._lock:
                    snap.results[key] = result
                    while len(snap.results) > CACHED_RESULTS:
                        snap.results.popitem(last=False)
                return result
            finally:
                self._release(snap)
        finally:
            self._done()

    def _acquire(self, wanted: int) -> _Snapshot:
        with self._lock:
            snap = self._current
            if snap is not None and snap.version >= wanted:
                snap.users += 1
                return snap
        with self._build:  # the request before this one may be taking a fresh one right now
            with self._lock:
                snap = self._current
                if snap is not None and snap.version >= wanted:
                    snap.users += 1
                    return snap
            fresh = self._take()
            with self._lock:
                old, self._current = self._current, fresh
                fresh.users += 1
                if old is not None:
                    old.retired = True
                    if old.users == 0:
                        old.store.close()
            return fresh

    def _release(self, snap: _Snapshot) -> None:
        with self._lock:
            snap.users -= 1
            close = snap.retired and snap.users == 0
        if close:
            snap.store.close()

    def _take(self) -> _Snapshot:
        """Copy the events into a new in-memory store and analyse them there; or, when the
        last snapshot is idle, append the new events to it and analyse incrementally."""
        started = time.perf_counter()
        version = self.store.version  # before the copy: the copy holds at least this much
        snap = self._grow(version)
        if snap is not None:
            self.last_build_seconds = time.perf_counter() - started
            self.builds += 1
            self.grown += 1
            log.info("analysis snapshot of version %d grown in %.2f s", version, self.last_build_seconds)
            return snap
        copy = Store()
        try:
            copy.set_threads(1)  # the other cores are for ingest: the front and the commits
            cur = self.store.cursor()
            try:
                reader = cur.sql("SELECT * FROM events").to_arrow_reader(COPY_ROWS)
                for batch in reader:  # noqa: B007 - read by name in the SQL below
                    copy.conn.execute("INSERT INTO events SELECT * FROM batch").fetchall()
            finally:
                cur.close()
            snap = _Snapshot(version, copy, self.options)
            snap.copied = _copied(copy)
            snap.analyses.session.analyze()
        except BaseException:
            copy.close()
            raise
        self.last_build_seconds = time.perf_counter() - started
        self.builds += 1
        log.info("analysis snapshot of version %d taken in %.2f s", version, self.last_build_seconds)
        return snap

    def _grow(self, version: int) -> _Snapshot | None:
        """The current snapshot's store with the events added since, analysed again (the
        session analyses only what they change: causality/incremental.py), when no request
        is using it; None otherwise, or when events it holds were removed since (retention)."""
        with self._lock:
            old = self._current
            if old is None or old.users or old.retired:
                return None
            self._current = None  # no request attaches to it while it grows
            old.retired = True
        try:
            n, top = old.copied
            cur = self.store.cursor()
            try:
                if cur.execute("SELECT count(*) FROM events WHERE seq <= ?", [top]).fetchall()[0][0] != n:
                    raise LookupError("events were removed since the snapshot")
                reader = cur.sql(f"SELECT * FROM events WHERE seq > {int(top)}").to_arrow_reader(COPY_ROWS)
                added = 0
                for batch in reader:  # noqa: B007 - read by name in the SQL below
                    old.store.conn.execute("INSERT INTO events SELECT * FROM batch").fetchall()
                    added += batch.num_rows
            finally:
                cur.close()
            if added:
                old.store.bump()
            snap = _Snapshot(version, old.store, self.options, analyses=old.analyses)
            snap.copied = _copied(old.store)
            snap.analyses.session.analyze()
            return snap
        except Exception as exc:
            log.info("analysis snapshot taken afresh: %s", exc)
            old.store.close()
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            snap, self._current = self._current, None
        if snap is not None:
            snap.retired = True
            if snap.users == 0:
                snap.store.close()
