"""What every main pane shares: load its data in its own exclusive worker when shown and
stale, show a loading state meanwhile, and a placeholder when there is nothing to show.

Fetched data is kept per key (scope, data generation, options): coming back to a pane
or a scope shows it at once. ``raceway_tui.warm`` fills that store in the background
after the analysis, so a pane's first visit need not wait for its query either."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.cache import LRUCache
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from raceway_core.errors import RacewayError
from raceway_tui.debounce import Debounce
from raceway_tui.literal import literal
from raceway_tui.warm import warmer_of

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa


class PaneScroll(VerticalScroll, can_focus=False):
    """A scrolling area inside a pane that never takes the focus: when a pane hides,
    Textual moves the focus to a focusable neighbour, and TabbedContent would switch

    back to the pane holding it."""


KEEP = 4  # fetched results kept per pane (scopes and generations to come back to)


class Pane(Vertical):
    title = ""
    needs_analysis = True  # the pane shows the engine's results, not just stored events

    class Loaded(Message):
        """A pane's data arrived from its worker (or the error that stopped it)."""

        def __init__(self, pane: "Pane", key: tuple, data: Any = None, error: str | None = None) -> None:
            super().__init__()
            self.pane, self.key, self.data, self.error = pane, key, data, error

    class Warmed(Message):
        """The precomputation fetched a pane's data for ``key`` (or the error that stopped it)."""

        def __init__(self, pane: "Pane", key: tuple, data: Any = None, error: str | None = None) -> None:
            super().__init__()
            self.pane, self.key, self.data, self.error = pane, key, data, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple | None = None
        self.busy = False  # a worker is loading the data
        self.data: Any = None  # what the pane shows, for export
        self._shown: tuple | None = None  # the key of the data shown
        self.same_view = False  # while show_data runs: it refreshes what was shown (new events)
        self.results: LRUCache[tuple, Any] = LRUCache(KEEP)  # key -> fetched data
        self.warming: set[tuple] = set()  # keys the precomputation is fetching
        self._debounces: list[Debounce] = []

    def debounced(self, fn) -> Debounce:
        """``fn`` called once the keys stop (see raceway_tui.debounce)."""
        d = Debounce(self, fn)
        self._debounces.append(d)
        return d

    @property
    def waiting(self) -> bool:
        """Work that follows the cursor waits for the keys to stop (tests wait for it)."""
        return any(d.pending for d in self._debounces)

    # -- what a pane implements ------------------------------------------------------------
    def fetch(self, session, key: tuple) -> Any:
        """Runs in a worker thread: ask the session for this pane's data."""
        raise NotImplementedError

    def show_data(self, data: Any) -> None:
        """Runs on the UI thread with what fetch returned."""
        raise NotImplementedError

    def fetch_ahead(self, session, key: tuple) -> Any:
        """Runs in the precomputation's thread: fetch, plus what a visit would ask for next."""
        return self.fetch(session, key)

    def extra_key(self) -> tuple:
        return ()

    def view_table(self) -> pa.Table | None:
        """The current view as a table, for export."""
        return None

    def focus_main(self) -> None:
        self.focus()

    def main_table(self):
        """The pane's main VirtualTable, whose cursor a refresh keeps (None: nothing kept)."""
        return None

    def row_key(self, row: dict):
        """What identifies a row of the main table across refreshes (None: it cannot be found again)."""
        return None

    def current_event(self) -> tuple[str, dict | None] | None:
        """The event under the pane's cursor (its id and a row to preview it), for the detail
        panel when the pane is shown again; None: no event there."""
        return None

    # -- loading ----------------------------------------------------------------------------
    @property
    def placeholder(self) -> Static:
        return self.query_one(".placeholder", Static)

    def say(self, text: str | Text | None) -> None:
        """Show a message instead of the pane's content (None: show the content)."""
        ph = self.placeholder
        ph.display = text is not None
        if text is not None:
            ph.update(text if isinstance(text, Text) else Text(text, style="dim"))

    def current_key(self) -> tuple:
        app = self.app
        return (app.scope, app.gen, app.analysed) + self.extra_key()

    def sync(self, force: bool = False) -> None:
        """Load the pane's data if the scope or the data changed since it was shown."""
        app = self.app
        if not self.is_mounted:  # not visited yet: synced when its first visit has mounted it
            return
        key = self.current_key()
        if key == self._key and not force:
            return
        self._key = key
        if app.session is None or (self.needs_analysis and not app.analysed):
            self.busy = False
            self.say(app.waiting_text())
            return
        if not force and key in self.results:  # fetched before, or by the precomputation
            self.busy = False
            self._show(key, self.results.get(key))
            return
        # The old content stays (and keeps the focus) under a loading line: covering it
        # with a LoadingIndicator would move the focus, and TabbedContent follows the focus.
        self.busy = True
        self.say(Text(f"Loading {self.title.lower()}…", style="dim italic"))
        # else the precomputation's result is shown when it comes (if its turn came: not queued)
        warmer = warmer_of(app)
        warmer.yield_to(self)  # its fetch for another pane stops, and waits for this one's data
        if force or key not in self.warming or warmer.claim(self, key):
            self.warming.discard(key)
            self._load(app.session, key)

    def warm_key(self) -> tuple | None:
        """The key whose data the precomputation should fetch now (None: nothing to do)."""
        app = self.app
        if app.session is None or (self.needs_analysis and not app.analysed):
            return None
        key = self.current_key()
        if key in self.results or key in self.warming or (key == self._key and self.busy):
            return None
        return key

    def fetch_quietly(self, session, key: tuple) -> Warmed:
        """Runs in a worker thread: fetch without showing anything (the precomputation)."""
        try:
            return self.Warmed(self, key, self.fetch_ahead(session, key))
        except RacewayError as exc:
            return self.Warmed(self, key, error=str(exc))
        except Exception as exc:  # a bug or a database failure: shown if the pane is visited
            return self.Warmed(self, key, error=f"{type(exc).__name__}: {exc}")

    @work(thread=True, exclusive=True, group="pane", exit_on_error=False)
    def _load(self, session, key: tuple) -> None:
        try:
            data, error = self.fetch(session, key), None
        except RacewayError as exc:
            data, error = None, str(exc)
        except Exception as exc:  # a bug or a database failure: a toast, never a traceback
            data, error = None, f"{type(exc).__name__}: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(self, key, data, error))

    def warmed(self, msg: Warmed) -> None:
        """The precomputation's result (handed over by the app: the pane may not be mounted yet)."""
        if msg.error is not None:
            self.warm_dropped(msg.key)  # fetched again if shown: the error is then said as usual
            return
        self.warming.discard(msg.key)
        self.results[msg.key] = msg.data
        if self.busy and msg.key == self._key:  # shown meanwhile: it waited for this result
            self.busy = False
            self._show(msg.key, msg.data)
            warmer_of(self.app).shown_ready(self)

    def warm_dropped(self, key: tuple) -> None:
        """The precomputation will not fetch ``key`` after all: fetch it here if it is awaited."""
        self.warming.discard(key)
        if self.busy and key == self._key and self.app.session is not None:
            self._load(self.app.session, key)

    def on_pane_loaded(self, msg: Loaded) -> None:
        if msg.pane is not self:
            return
        msg.stop()
        if msg.key != self._key:
            return
        self.busy = False
        if msg.error:
            self.say(literal(f"Could not load {self.title}: {msg.error}", style="red"))
            self.app.notify(f"{self.title}: {msg.error}", severity="error", timeout=8)
        else:
            self.results[msg.key] = msg.data
            self._show(msg.key, msg.data)
        warmer_of(self.app).shown_ready(self)  # the other panes' precomputation, put off for this one

    def _show(self, key: tuple, data: Any) -> None:
        self.data = data
        self.say(None)
        # a refresh of what is shown (same scope and options; new events or analysis: live mode)
        shown = self._shown
        self.same_view = shown is not None and (shown[0], shown[3:]) == (key[0], key[3:])
        keep = self._keep() if self.same_view else None
        self.show_data(data)
        self._shown = key
        if keep is not None:
            self._restore(*keep)

    def _keep(self) -> tuple | None:
        """The main table's cursor row and its screen line, to find them again after a refresh."""
        table = self.main_table()
        if table is None:
            return None
        row = table.row()
        ident = self.row_key(row) if row is not None else None
        return None if ident is None else (ident, table.cursor - round(table.scroll_y))

    def _restore(self, ident, offset: int) -> None:
        table = self.main_table()
        i = table.find(lambda r: self.row_key(r) == ident)
        if i is not None and i != table.cursor:
            table.scroll_to(y=max(0, i - offset), animate=False, immediate=True)
            table.move_to(i)

    @property
    def ready(self) -> bool:
        """Shown data matches the current scope (for tests and the benchmark)."""
        return self._key == self.current_key() and not self.busy
