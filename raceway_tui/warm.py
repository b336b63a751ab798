"""Precompute what the panes show: once the analysis is shown (or another trace is chosen),
fetch each hidden pane's data on a worker thread, one pane after the other in tab order,
so that visiting a pane shows it at once instead of starting its query then. A pane
visited before its turn waits for the running fetch instead of starting a second one.
Results are the pane's own ``fetch`` for its current key: what a visit would get.

Live mode: new events every couple of seconds would start the whole precomputation
again each time. After such a refresh, the next pass waits until FOLLOW_GAP seconds
(or twice the last pass) after the previous one started; a pane visited meanwhile
fetches its own data, as before the precomputation."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

if TYPE_CHECKING:
    from raceway_tui.app import RacewayApp
    from raceway_tui.panes.base import Pane


FOLLOW_GAP = 10.0  # s between precomputation passes while following new events


class Warmer:
    """One worker thread at a time works through a queue of (pane, key); a new scope or
    analysis replaces the queue (the fetch running finishes: one query)."""

    def __init__(self, app: RacewayApp) -> None:
        self.app = app
        self.queue: deque[tuple[Pane, tuple]] = deque()
        self.lock = threading.Lock()
        self.running = False
        self.passes = 0  # passes started (tests)
        self._started = 0.0  # time.monotonic() of the last pass's start
        self._took = 0.0  # seconds the last finished pass took
        self._later = None  # the timer of a pass put off (live mode)
        self.after_shown: Pane | None = None  # a pass waits for this (shown) pane's own data

    @property
    def busy(self) -> bool:
        return self.running

    def claim(self, pane: Pane, key: tuple) -> bool:
        """A visited pane fetches its data itself when its turn has not come yet (True):
        it does not wait for the panes before it in the queue."""
        with self.lock:
            try:
                self.queue.remove((pane, key))
            except ValueError:
                return False  # being fetched (or done): its result comes
        return True

    def start(self, follow: bool = False) -> None:
        """A pass over the hidden panes; ``follow`` (new events in live mode): put off until
        the gap after the previous pass is over."""
        app = self.app
        if follow:
            wait = self._started + max(FOLLOW_GAP, 2 * self._took) - time.monotonic()
            if wait > 0:
                if self._later is None:
                    self._later = app.set_timer(wait, self._put_off_pass)
                return
        if self._later is not None:
            self._later.stop()
            self._later = None
        self._started = time.monotonic()
        with self.lock:
            dropped, self.queue = list(self.queue), deque()
        for pane, key in dropped:
            pane.warm_dropped(key)
        self.after_shown = None
        if app.session is None:
            return
        shown = app.active_pane
        current = app.pane(shown)
        if current.busy:  # loading its own data (or waiting for it): that first, on both cores
            self.after_shown = current  # (a trace chosen: the pass's queries slowed it 2-3x)
            return
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
        self.passes += 1
        app.run_worker(lambda: self._run(app.session), thread=True, group="warm", exit_on_error=False,
                       name="raceway-warm")

    def shown_ready(self, pane: Pane) -> None:
        """The shown pane has its data: the pass put off for it starts now."""
        if self.after_shown is pane:
            self.after_shown = None
            self.start()

    def _put_off_pass(self) -> None:
        self._later = None
        # an app timer: it can fire while the app closes, after the panes are gone
        if self.app.query("#panes"):
            self.start()

    def _run(self, session) -> None:
        worker = get_current_worker()
        while True:
            with self.lock:
                if not self.queue or worker.is_cancelled:  # done, or the app is closing
                    self.running = False
                    self._took = time.monotonic() - self._started
                    return
                pane, key = self.queue.popleft()
            # to the app, which hands it to the pane: a pane not visited yet is not mounted,
            # and its messages would wait for its mount
            self.app.post_message(pane.fetch_quietly(session, key))


def warmer_of(app: RacewayApp) -> Warmer:
    warmer = getattr(app, "_warmer", None)
    if warmer is None:
        warmer = app._warmer = Warmer(app)
    return warmer


def warm_panes(app: RacewayApp, follow: bool = False) -> None:
    """Start precomputing the hidden panes' data for the current scope and analysis
    (``follow``: after new events in live mode, see FOLLOW_GAP)."""
    warmer_of(app).start(follow)
