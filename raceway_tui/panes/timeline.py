"""Pane 1: the causal timeline of the chosen trace (or of all traces), with search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from raceway_tui import format as fmt
from raceway_tui.literal import visible
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.timeline import TimelineModel, TimelineView, legend

if TYPE_CHECKING:
    from raceway_core.browse import SearchResult


class TimelinePane(Pane):
    title = "Timeline"
    needs_analysis = False  # before the analysis it shows events in time order

    class Located(Message):
        def __init__(self, gen: int, row: int | None, event_id: str, highlight: frozenset,
                     search: SearchResult | None = None, query: str = "", offset: int | None = None) -> None:
            super().__init__()
            self.gen, self.row, self.event_id, self.highlight = gen, row, event_id, highlight
            self.search, self.query = search, query
            self.offset = offset  # keep the event this many lines below the top (None: centre it)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pending: tuple[str, frozenset] | None = None  # go to this event once the model is shown
        self.pending_search: tuple[str, bool] | None = None  # or search then
        self.last_search: str = ""
        self.last_result: SearchResult | None = None
        self.searching: float | None = None  # time.monotonic() when the running search started
        self._search_timer = None

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="timeline-legend")
        yield TimelineView(id="timeline-view")
        yield Static(id="timeline-status")

    @property
    def view(self) -> TimelineView:
        return self.query_one(TimelineView)

    def focus_main(self) -> None:
        self.view.focus()

    # -- data --------------------------------------------------------------------------------
    def fetch(self, session, key: tuple) -> TimelineModel:
        return TimelineModel.build(session, key[0])

    def show_data(self, model: TimelineModel) -> None:
        view = self.view
        old = view.model
        keep = view.row() if old is not None and old.trace_id == model.trace_id else None
        highlight = view.highlight if keep is not None else frozenset()
        top = round(view.scroll_y)
        offset = view.cursor - top
        if keep is None:
            view.set_model(model, cursor=0, highlight=highlight)
        else:  # the same scope again (new events, the analysis done): stay where the user was
            view.set_model(model, cursor=view.cursor, highlight=highlight, top=top)
        self.query_one("#timeline-legend", Static).update(legend(model, max(40, self.size.width)))
        self._status()
        if self.pending_search is not None:
            text, backwards = self.pending_search
            self.pending_search = None
            self._start_search(model, text, view.cursor, backwards)
        elif self.pending is not None:
            event_id, hl = self.pending
            self.pending = None
            self._locate(model, event_id, hl)
        elif keep is not None and (model.causal != old.causal or model.count != old.count):
            # the same event (and screen line) after the order changed or events were added
            self._locate(model, keep["id"], highlight, offset)

    def view_table(self):
        return None  # the timeline exports through a worker (see the app's export)

    def current_event(self):
        row = self.view.row()
        return (row["id"], row) if row is not None else None

    # -- going to an event -----------------------------------------------------------------
    def goto_event(self, event_id: str, highlight=frozenset()) -> None:
        """Put the cursor on an event (after the model for the current scope is shown)."""
        highlight = frozenset(highlight)
        if self.ready and self.view.model is not None:
            self._locate(self.view.model, event_id, highlight)
        else:
            self.pending = (event_id, highlight)

    @work(thread=True, exclusive=True, group="locate", exit_on_error=False)
    def _locate(self, model: TimelineModel, event_id: str, highlight: frozenset, offset: int | None = None) -> None:
        try:
            row = model.timeline.locate(event_id)
        except Exception as exc:
            self.app.call_from_thread(self.app.notify, f"Could not find {event_id}: {exc}", severity="error")
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Located(model.gen, row, event_id, highlight, offset=offset))

    def search(self, text: str, backwards: bool = False) -> None:
        """Move to the next (previous) match, in the timeline of the current scope: when that
        is still loading, once it is shown."""
        self.last_search = text
        self.last_result = None  # the old count is not this search's
        if not self.ready or self.view.model is None:
            self.pending_search = (text, backwards)
            self._status()
            return
        self._start_search(self.view.model, text, self.view.cursor, backwards)

    def _start_search(self, model: TimelineModel, text: str, after: int, backwards: bool) -> None:
        """A search replaces the one running (its result is dropped); the status line counts
        the seconds, Esc cancels."""
        import time

        self.searching = time.monotonic()
        if self._search_timer is None:
            self._search_timer = self.set_interval(0.5, self._status)
        self._status()
        self._search(model, text, after, backwards)

    def cancel_search(self) -> bool:
        """Esc while a search runs: stop waiting for it (True when one was running)."""
        if self.searching is None:
            return False
        self.workers.cancel_group(self, "locate")
        self._search_done()
        self.app.notify(f"Search for {self.last_search!r} cancelled.", timeout=3)
        return True

    def _search_done(self) -> None:
        self.searching = None
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        self._status()

    @work(thread=True, exclusive=True, group="locate", exit_on_error=False)
    def _search(self, model: TimelineModel, text: str, after: int, backwards: bool) -> None:
        try:
            res = model.timeline.search(text, after, backwards)
        except Exception as exc:
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self.app.notify, f"Search failed: {exc}", severity="error")
                self.app.call_from_thread(self._search_done)
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Located(model.gen, res.row, "", frozenset(), search=res, query=text))

    def on_timeline_pane_located(self, msg: Located) -> None:
        msg.stop()
        view = self.view
        if view.model is None or msg.gen != view.model.gen:
            return
        if msg.search is not None:
            self.last_result = msg.search
            self.searching = None
            self._search_done()
            if msg.row is None:
                where = (f" in trace {self.app.scope[:8]} (t, then All traces, searches everywhere)"
                         if self.app.scope else "")
                self.app.notify(f"No event matches {msg.query!r}{where}.", severity="warning", timeout=5)
            else:
                view.goto(msg.row)
            self._status()
            return
        if msg.row is None:
            self.app.notify(f"Event {msg.event_id} is not in this timeline.", severity="warning", timeout=4)
            return
        if msg.offset is not None:
            view.scroll_to(y=max(0, msg.row - msg.offset), animate=False, immediate=True)
        view.goto(msg.row, highlight=msg.highlight, center=msg.offset is None)

    def _status(self) -> None:
        t = Text()
        r = self.last_result
        if self.last_search:
            t.append(f"/{visible(self.last_search)}", style="bold")
            if self.searching is not None:
                import time

                secs = time.monotonic() - self.searching
                t.append(f"  searching… {secs:.0f} s (Esc cancels)", style="yellow")
            elif r is not None:
                t.append(f"  {fmt.count(r.matches, 'match')}"
                         + (" (event id)" if r.by == "id" and r.matches else ""), style="dim")
            t.append("   n next · N previous", style="dim")
        else:
            t.append("● HTTP ", style="dodger_blue1")
            t.append("● DB ", style="green3")
            t.append("● state ", style="yellow")
            t.append("● error ", style="bold red")
            t.append("● lock ", style="magenta")
            t.append("● async ", style="cyan")
            t.append("◆ racing access ", style="bold dark_orange")
            t.append("  ⇠ edge from another context · / search", style="dim")
        self.query_one("#timeline-status", Static).update(t)
