"""Group commit: one writer thread turns the bodies of concurrent POSTs into one
transaction, then answers each of them.

A commit has a fixed cost (a few statements, the WAL sync) whatever its size;
while one runs, the next POSTs queue up and all go into the following one.
Their rows are made in the request handlers meanwhile (``batch.prepare``), so
the writer only turns them into one Arrow table and inserts it. A POST is
answered only after its commit, so an acknowledged event survives a crash.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from raceway_core.loading.batch import Prepared, Rows, line_size
from raceway_core.store import Store

log = logging.getLogger("raceway.server")

_STOP = object()


class ShuttingDown(RuntimeError):
    """The writer has stopped; nothing more is accepted."""


@dataclass
class _Pending:
    payload: str | list[str] | Prepared | Rows  # the body text, or its events (see Store.append)
    events: int
    future: Future = field(default_factory=Future)

    @property
    def size(self) -> int:
        return line_size(self.payload)


@dataclass
class WriterStats:
    commits: int = 0
    bodies: int = 0
    events: int = 0
    last_commit_ms: float = 0.0
    largest_group: int = 0
    failures: int = 0
    busy_seconds: float = 0.0  # wall time spent committing


class GroupCommitter:
    def __init__(self, store: Store, load_id: int, source: str, *, max_events: int = 50_000,
                 max_bytes: int = 64 << 20, linger: float = 0.004, linger_events: int = 5_000,
                 checkpoint_wal_bytes: int = 256 << 20) -> None:
        self.store = store
        self.load_id = load_id
        self.source = source
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.linger = linger
        self.linger_events = linger_events
        self.checkpoint_wal_bytes = checkpoint_wal_bytes
        self.stats = WriterStats()
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._accepting = True
        self._lock = threading.Lock()  # orders submit() against stop()
        self._thread = threading.Thread(target=self._run, name="raceway-writer", daemon=True)
        self._last_checkpoint_try = 0.0
        self._recent_groups: deque[int] = deque([1 << 30], maxlen=20)  # bodies per commit; at first: wait

    def start(self) -> None:
        self._thread.start()

    def submit(self, payload: str | list[str] | Prepared | Rows, events: int) -> Future:
        """Queue one body; the future resolves to its LineResult once committed."""
        item = _Pending(payload, events)
        with self._lock:
            if not self._accepting:
                raise ShuttingDown("the server is shutting down")
            self._q.put(item)
        return item.future

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything already queued, then stop the thread."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._q.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("writer did not finish within %.0f s; queued events were not committed", timeout)

    # -- the writer thread ------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._q.get()
            if item is _STOP:
                break
            group, events, size = [item], item.events, item.size
            # A small group waits a moment for more: the clients answered by the
            # last commit are about to post again, and without the wait they would
            # settle into cohorts taking turns with half-full commits. It stops
            # waiting once it is as big as the biggest recent group: those are back.
            deadline = time.monotonic() + self.linger
            expect = max(self._recent_groups)
            while events < self.max_events and size < self.max_bytes:
                wait = deadline - time.monotonic() if events < self.linger_events and len(group) < expect else 0.0
                try:
                    nxt = self._q.get(timeout=wait) if wait > 0 else self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
                events += nxt.events
                size += nxt.size
            self._recent_groups.append(len(group))
            self._commit(group)
            self._maybe_checkpoint()

    def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            out = self.store.append(self.load_id, self.source, [p.payload for p in group])
        except Exception as exc:
            if len(group) > 1:  # one bad body must not fail the others: commit them one by one
                log.warning("group commit of %d bodies failed (%s); retrying one by one", len(group), exc)
                for p in group:
                    self._commit([p])
                return
            self.stats.failures += 1
            log.error("commit failed: %s", exc)
            group[0].future.set_exception(exc)
            return
        s = self.stats
        s.commits += 1
        s.bodies += len(group)
        s.events += out.loaded
        s.largest_group = max(s.largest_group, len(group))
        s.last_commit_ms = (time.perf_counter() - started) * 1000
        s.busy_seconds += s.last_commit_ms / 1000
        for p, result in zip(group, out.lines):
            p.future.set_result(result)

    def _maybe_checkpoint(self) -> None:
        """Keep the WAL (replayed on every restart) from growing without bound."""
        path = self.store.path
        if path is None or time.monotonic() - self._last_checkpoint_try < 5:
            return
        try:
            wal = os.path.getsize(f"{path}.wal")
        except OSError:
            return  # no WAL yet
        if wal < self.checkpoint_wal_bytes:
            return
        self._last_checkpoint_try = time.monotonic()
        try:
            self.store.checkpoint()
        except Exception as exc:  # readers in flight: try again later
            log.info("checkpoint postponed: %s", exc)

