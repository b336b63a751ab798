"""Keeps a server's DuckDB store (its analysis cache) in step with the shared
database's feed: in the background, and on demand before a read, so a trace
posted to any server is seen by the next read on every server."""

from __future__ import annotations

import logging
import threading

import orjson

from raceway_core.pgstore import feed
from raceway_core.pgstore.pool import Pool
from raceway_core.store import Store

log = logging.getLogger("raceway.pgstore")

PAGE = 5000
CURSOR_KEY = "pg_feed"


class Follower:
    def __init__(self, pool: Pool, cache: Store, store_id: str, interval: float = 0.25) -> None:
        self.pool = pool
        self.cache = cache
        self.store_id = store_id
        self.interval = interval
        self.load_id = cache.open_live("postgresql", "pull:postgresql", None)
        saved = orjson.loads(cache.meta(CURSOR_KEY) or "{}")
        # a cache filled from another database: start over (stored ids are recognised)
        self.cursor = saved.get("cursor", "") if saved.get("store_id") == store_id else ""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raceway-pg-follower", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def catch_up(self) -> int:
        """Pull every event committed below the feed's horizon; how many were new."""
        with self._lock:
            added = 0
            while True:
                with self.pool.connection() as conn:
                    page = feed.page(conn, self.cursor, PAGE)
                if page.events:
                    state = orjson.dumps({"cursor": page.next_cursor, "store_id": self.store_id}).decode()
                    out = self.cache.append(self.load_id, "postgresql", [page.events], meta={CURSOR_KEY: state})
                    added += out.loaded
                self.cursor = page.next_cursor
                if not page.has_more:
                    return added

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.catch_up()
                self.error = None
            except Exception as exc:  # the database away for a moment: try again next tick
                if self.error != str(exc):
                    log.warning("following the shared database failed: %s", exc)
                self.error = str(exc)
