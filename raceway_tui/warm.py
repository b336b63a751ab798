"""Precompute what the panes show: once the analysis is shown (or another trace is chosen),
fetch each hidden pane's data on a worker thread, one pane after the other in tab order,
so that visiting a pane shows it at once instead of starting its query then. A pane
visited before its turn waits for the running fetch instead of starting a second one.
Results are the pane's own ``fetch`` for its current key: what a visit would get."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

if TYPE_CHECKING:
    from raceway_tui.app import RacewayApp
    from raceway_tui.panes.base import Pane


class Warmer:
    """One worker thread at a time works through a queue of (pane, key); a new scope or
    analysis replaces the queue (the fetch running finishes: one query)."""

    def __init__(self, app: RacewayApp) -> None:
        self.app = app
        self.queue: deque[tuple[Pane, tuple]] = deque()
        self.lock = threading.Lock()
        self.running = False

    @property
    def busy(self) -> bool:
        return self.running

    def start(self) -> None:
        app = self.app
        with self.lock:
            dropped, self.queue = list(self.queue), deque()
        for pane, key in dropped:
            pane.warm_dropped(key)
        if app.session is None:
            return
        shown = app.active_pane
        jobs = []
        for pid, _, _ in app.PANES:
            pane = app.pane(pid)
            key = pane.warm_key() if pid != shown else None
            if key is not None:
                pane.warming.add(key)
                jobs.append((pane, key))
        with self.lock:
            self.queue.extend(jobs)
            if self.running or not self.queue:
                return
            self.running = True
        app.run_worker(lambda: self._run(app.session), thread=True, group="warm", exit_on_error=False,
                       name="raceway-warm")

    def _run(self, session) -> None:
        worker = get_current_worker()
        while True:
            with self.lock:
                if not self.queue or worker.is_cancelled:  # done, or the app is closing
                    self.running = False
                    return
                pane, key = self.queue.popleft()
            pane.post_message(pane.fetch_quietly(session, key))


def warm_panes(app: RacewayApp) -> None:
    """Start precomputing the hidden panes' data for the current scope and analysis."""
    warmer = getattr(app, "_warmer", None)
    if warmer is None:
        warmer = app._warmer = Warmer(app)
    warmer.start()
