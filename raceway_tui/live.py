"""Live mode's link to a server: one sync at a time, the connection state and the
retry schedule the header shows.

The link knows nothing of Textual: ``sync()`` runs on a worker thread and returns
a ``SyncOutcome``; ``delay()`` says how long to wait before the next sync. A server
that went away is retried after 1, 2, 4 ... 30 s; a refused key (HTTP 401) too,
never at full speed.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from raceway_core.client import RacewayClient, SyncResult
from raceway_core.errors import RemoteError
from raceway_core.store import Store

MAX_BACKOFF = 30.0


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failed syncs in a row (1, 2, 4 ... 30)."""
    return min(MAX_BACKOFF, 2.0 ** max(0, failures - 1))


@dataclass(frozen=True)
class SyncOutcome:
    result: SyncResult | None  # None when the sync failed
    error: str | None
    change: str | None  # "connected", "disconnected", "reconnected" on a transition, else None


class LiveLink:
    """The client and what the header shows about it. ``sync`` is called from one worker
    thread at a time; the UI thread only reads the state."""

    def __init__(self, url: str, store: Store, api_key: str | None = None, interval: float = 2.0,
                 client: RacewayClient | None = None) -> None:
        self.client = client or RacewayClient(url, store, api_key=api_key)  # RemoteError for a bad URL
        self.url = self.client.url
        self.interval = interval
        self.connected: bool | None = None  # None until the first sync answered or failed
        self.ever_connected = False
        self.failures = 0
        self.error: str | None = None
        self.last_sync: dt.datetime | None = None  # local time of the last successful sync
        self.retry_at: float | None = None  # time.monotonic() of the next attempt while disconnected
        self.attempts: deque[float] = deque(maxlen=16)  # when the last syncs started (monotonic)
        self.syncs = 0
        self.events_pulled = 0
        self._running = threading.Lock()

    def close(self, wait: float = 2.0) -> None:
        """Close the connection; first wait a little for a running sync (it may be writing
        to the store, which the caller is about to close)."""
        got = self._running.acquire(timeout=wait)
        try:
            self.client.close()
        finally:
            if got:
                self._running.release()

    def sync(self) -> SyncOutcome:
        with self._running:
            self.attempts.append(time.monotonic())
            try:
                result = self.client.sync()
            except RemoteError as exc:
                return self._failed(str(exc))
            except Exception as exc:  # the local store failing: as visible as a network error
                return self._failed(f"{type(exc).__name__}: {exc}")
        change = None
        if self.connected is not True:
            change = "reconnected" if self.ever_connected else "connected"
        self.connected = self.ever_connected = True
        self.failures, self.error, self.retry_at = 0, None, None
        self.last_sync = dt.datetime.now()
        self.syncs += 1
        self.events_pulled += result.loaded
        return SyncOutcome(result, None, change)

    def _failed(self, message: str) -> SyncOutcome:
        change = "disconnected" if self.connected is not False else None
        self.connected = False
        self.failures += 1
        self.error = message
        self.retry_at = time.monotonic() + backoff(self.failures)
        return SyncOutcome(None, message, change)

    @property
    def unauthorized(self) -> bool:
        return self.error is not None and "HTTP 401" in self.error

    def next_sync(self, last: float, auto: bool) -> float | None:
        """When (``time.monotonic()``) to sync next, the last sync having ended at ``last``;
        None: only when asked (auto-refresh off)."""
        if not auto:
            return None
        if self.connected is False:
            return self.retry_at or last
        return last + self.interval

    def connection_text(self, auto: bool = True) -> str:
        """For the header: connecting, connected, or disconnected with the retry countdown."""
        if self.connected is None:
            return "connecting…"
        if self.connected:
            return "connected"
        what = "unauthorized: check RACEWAY_API_KEY" if self.unauthorized else "disconnected"
        if not auto:
            return f"{what} (r retries)"
        wait = max(0, math.ceil((self.retry_at or 0.0) - time.monotonic()))
        return f"{what}, retrying in {wait} s" if wait else f"{what}, retrying now"

    def synced_text(self) -> str:
        return f"synced {self.last_sync:%H:%M:%S}" if self.last_sync else "not synced yet"
