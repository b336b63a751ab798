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
HOLD_MAX = 10.0  # s the precomputation waits at most for a shown pane's own query


class Warmer:
    """One worker thread at a time works through a queue of (pane, key); a new scope or
    analysis replaces the queue and interrupts the fetch running (its queries: see
    Store.interrupt). A pane shown that loads its own data comes first: the fetch running
    for another pane is interrupted and queued again, and the next one waits until the
    shown pane has its data (a running precomputation query held a visit up 0.4-1 s)."""

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
        self.current: tuple[Pane, tuple] | None = None  # the job being fetched
        self.thread_id: int | None = None  # the thread fetching it
        self._cut: tuple[Pane, tuple] | None = None  # the job interrupted
        self._pass = 0  # bumped by every pass: an interrupted job of an older pass is dropped
        self.hold = threading.Event()  # clear: a shown pane is loading, the next fetch waits
        self.hold.set()
        self.interrupts = 0  # fetches interrupted (tests)

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

    def _interrupt(self, unless: Pane | None = None) -> None:
        """Interrupt the fetch running (unless it is ``unless``'s); its thread resumes itself."""
        session = self.app.session
        with self.lock:  # with the thread's resume under the same lock: never left stopped
            job, tid = self.current, self.thread_id
            if job is None or tid is None or session is None or job[0] is unless or self._cut is job:
                return
            self._cut = job
            self.interrupts += 1
            session.store.interrupt(tid)

    def yield_to(self, pane: Pane) -> None:
        """A shown pane loads its data (or waits for the fetch running for it): that first."""
        self.hold.clear()
        self._interrupt(unless=pane)

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
            self._pass += 1
        self._interrupt()  # for the scope or analysis before: its result would not be shown
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
        self.hold.set()
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
        self.hold.set()
        if self.after_shown is pane:
            self.after_shown = None
            self.start()

    def close(self) -> None:
        """The app closes: no more fetches; the one running is interrupted."""
        with self.lock:
            self.queue.clear()
            self._pass += 1  # the fetch interrupted is not queued again
        self._interrupt()
        self.hold.set()

    def _put_off_pass(self) -> None:
        self._later = None
        # an app timer: it can fire while the app closes, after the panes are gone
        if self.app.query("#panes"):
            self.start()

    def _run(self, session) -> None:
        worker = get_current_worker()
        tid = threading.get_ident()
        while True:
            self.hold.wait(HOLD_MAX)  # a shown pane's own query first
            with self.lock:
                if not self.queue or worker.is_cancelled:  # done, or the app is closing
                    self.running = False
                    self._took = time.monotonic() - self._started
                    return
                job = self.current = self.queue.popleft()
                self.thread_id, this_pass = tid, self._pass
            pane, key = job
            msg = pane.fetch_quietly(session, key)
            with self.lock:
                cut, self.current = self._cut is job, None
                if cut:
                    self._cut = None
                    session.store.resume(tid)
                    if msg.error is not None and this_pass == self._pass:  # still wanted: again later
                        self.queue.appendleft(job)
                        continue
            # to the app, which hands it to the pane: a pane not visited yet is not mounted,
            # and its messages would wait for its mount (an interrupted job of a pass gone: its
            # error drops it, see Pane.warm_dropped)
            self.app.post_message(msg)


def warmer_of(app: RacewayApp) -> Warmer:
    warmer = getattr(app, "_warmer", None)
    if warmer is None:
        warmer = app._warmer = Warmer(app)
    return warmer


def warm_panes(app: RacewayApp, follow: bool = False) -> None:
    """Start precomputing the hidden panes' data for the current scope and analysis
    (``follow``: after new events in live mode, see FOLLOW_GAP)."""
    warmer_of(app).start(follow)
