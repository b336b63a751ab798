"""The explorer. `create_app` is the one factory the CLI, the tests and the benchmark use.

Everything shown comes from ``raceway_core`` (TraceSession, browse) and is fetched in
workers that post typed messages: loading and the analysis on a background thread
(paint first, fill in as results arrive), each pane in its own exclusive worker.

Live mode (``server=``): one loop pulls from the server on a worker thread, then, when
new events arrived, re-analyses and refreshes the views in place (same trace, pane,
focus and timeline position). Syncs and analyses never overlap; a key press during
one asks for one more sync afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from raceway_core.errors import RacewayError
from raceway_tui import format as fmt
from raceway_tui import paths
from raceway_tui.background import in_background
from raceway_tui.commands import RacewayCommands
from raceway_tui.literal import visible
from raceway_tui.panes.anomalies import AnomaliesPane
from raceway_tui.panes.base import Pane
from raceway_tui.panes.calltree import CallTreePane
from raceway_tui.panes.critical import CriticalPane
from raceway_tui.panes.dashboard import DashboardPane
from raceway_tui.panes.deadlocks import DeadlocksPane
from raceway_tui.panes.dependencies import DependenciesPane
from raceway_tui.panes.hotspots import HotspotsPane
from raceway_tui.panes.races import RacesPane
from raceway_tui.panes.services import ServicesPane
from raceway_tui.panes.replay import ReplayPane
from raceway_tui.panes.timeline import TimelinePane
from raceway_tui.panes.variables import VariablesPane
from raceway_tui.screens import ErrorScreen, HelpScreen
from raceway_tui.warm import warm_panes
from raceway_tui.widgets.detail import EventDetail
from raceway_tui.widgets.keybar import KeyBar
from raceway_tui.widgets.status import StatusBar
from raceway_tui.widgets.timeline import TimelineView
from raceway_tui.widgets.traces import TraceList

if TYPE_CHECKING:  # DuckDB, Arrow and httpx load on a worker thread: the first frame does not wait
    from raceway_core.session import TraceSession
    from raceway_tui.live import LiveLink, SyncOutcome

_AUTO = object()  # jump_to: find the scope from the events' traces


class PaneTabs(TabbedContent):
    """The panes. Only keys (and the tabs) switch them: Textual's TabbedContent also follows
    the focus, and a table hidden with its pane hands the focus to a neighbour in that same
    pane (Textual's blur on hide), which switched back to the pane just left."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.stop()
        event.prevent_default()  # not TabbedContent's handler too
        focused = self.screen.focused
        if focused is not None and event.tab_pane.id != self.active and event.tab_pane in focused.ancestors:
            self.app.focus_pane()  # a hidden pane holds the focus: back to the pane shown


class RacewayApp(App):
    TITLE = "raceway-tui"
    CSS_PATH = "styles/app.tcss"
    COMMANDS = App.COMMANDS | {RacewayCommands}
    # (id, title, key): the key shows the pane and starts its tab's label
    PANES = [("dashboard", "Dashboard", "0"),
             ("timeline", "Timeline", "1"), ("critical", "Critical path", "2"), ("races", "Races", "3"),
             ("variables", "Variables", "4"), ("anomalies", "Anomalies", "5"), ("dependencies", "Dependencies", "6"),
             ("deadlocks", "Deadlocks", "7"),
             ("services", "Services", "8"),
             ("hotspots", "Hotspots", "9"),
             ("calltree", "Call tree", "c"),
             ("replay", "Replay", "p")]
    TAB_LABELS = {"critical": "Critical"}
    TAB_SHORT = {"dashboard": "Dash",
                 "timeline": "Time", "critical": "Crit", "races": "Race", "variables": "Vars", "anomalies": "Anom",
                 "dependencies": "Deps", "deadlocks": "Lock",
                 "services": "Svcs",
                 "hotspots": "Hots",
                 "calltree": "Tree",
                 "replay": "Play"}  # when the full labels do not fit
    NARROW, TINY, SHORT = 100, 70, 30  # columns: narrower trace list / hidden trace list; rows: smaller detail
    LIST_WIDTH = {False: 40, True: 26}  # the trace list's width, wide / narrow (app.tcss #traces)
    NO_DETAIL = {"races", "dependencies", "deadlocks",
                 "dashboard",
                 "services",
                 "hotspots",
                 "replay"}  # panes that show their own details
    BINDINGS = [
        *[Binding(key, f"pane('{pid}')", title, show=False) for pid, title, key in PANES],
        Binding("tab", "next_pane", "Next pane", show=False, priority=True),
        Binding("shift+tab", "prev_pane", "Previous pane", show=False, priority=True),
        Binding("slash", "search", "Search"),
        Binding("n", "search_next(False)", "Next match", show=False),
        Binding("N", "search_next(True)", "Previous match", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("t", "focus_traces", "Traces", show=False),
        Binding("T", "toggle_traces", "Hide/show traces", show=False),
        Binding("d", "toggle_detail", "Detail", show=False),
        Binding("D", "focus_detail", "Scroll detail", show=False),
        Binding("r", "reload", "Reload", show=False),
        Binding("a", "toggle_auto", "Auto-refresh", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    class Progress(Message):
        """A stage of the analysis started (posted from the analysis thread)."""

        def __init__(self, stage: str, index: int, total: int) -> None:
            super().__init__()
            self.stage, self.index, self.total = stage, index, total

    def __init__(self, files: list[Path], db: Path | None = None, server: str | None = None,
                 session: TraceSession | None = None, options=None, api_key: str | None = None,
                 interval: float = 2.0, variable_scope: str | None = None, pane: str = "dashboard") -> None:
        super().__init__()
        # no animations: the tab underline's slide re-rendered the screen ~15 times per pane
        # switch (UI-thread CPU over 23 visits at 100k events: 3.9 s with, 3.1-3.3 s without)
        self.animation_level = "none"
        if pane not in {p for p, _, _ in self.PANES}:
            raise ValueError(f"unknown pane {pane!r} (one of {', '.join(p for p, _, _ in self.PANES)})")
        self.initial_pane = pane  # shown first
        self.files = files
        self.variable_scope = variable_scope  # the engine's variable scope (None: the session's)
        self.options = options  # raceway_core.formats.ImportOptions for the files, or None
        self.db = db
        self.server = server
        self.session: TraceSession | None = session
        self._own_session = session is None
        self.scope: str | None = None  # the chosen trace; None = all traces
        self.gen = 0  # bumped whenever the data or its analysis changed
        self.analysed = False
        self.state = "starting"
        self.trace_rows: list[dict] = []
        self.live_refresh = server is not None  # live mode follows the server by default
        self.api_key = api_key  # None: RACEWAY_API_KEY, if set
        self.sync_interval = interval
        self.link: LiveLink | None = None
        self.syncing = False  # a sync is running (live mode)
        self._wake = asyncio.Event()  # sync now: `r`, or auto-refresh switched on
        # where jumps came from: pane, scope, focused widget, timeline event, highlight
        self.history: list[tuple] = []
        self.export_dir = paths.export_dir()  # made when the first export is written
        self._busy = False
        self._focus_after_switch: str | None = None
        self._stage = ""
        self._stage_started = 0.0
        self.first_paint: float | None = None  # when the first timeline rows were drawn (benchmark)
        self.traces_shown: bool | None = None  # the trace list: None = by the terminal's width, else T chose
        self.crash_log: Path | None = None  # where an unhandled exception's traceback went
        self.crash_line = ""  # what the command prints about it on exit
        self._status_bar: StatusBar | None = None
        self._tabs: TabbedContent | None = None
        self._panes: dict[str, Pane] = {}  # made in compose; mounted on their first visit
        self._mounting: dict[str, asyncio.Future] = {}

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """A toast. Never markup: messages carry file names, error texts and trace data
        (``markup`` is accepted for Widget.notify, which passes it, and ignored)."""
        super().notify(visible(message, multiline=True), title=visible(title), severity=severity, timeout=timeout,
                       markup=False)

    def _fatal_error(self) -> None:
        """An unhandled exception: one line on exit, the traceback in a log (see crash.py)."""
        import sys

        from raceway_tui import crash

        exc = sys.exc_info()[1] or self._exception
        log = crash.write_log(exc) if exc is not None else None
        self.crash_log = log
        self.crash_line = (crash.one_line(exc, log) if exc is not None else
                           "raceway-tui: internal error, the explorer stopped")
        # printed by the command once the terminal is restored (cli._run), unwrapped
        self._close_messages_no_wait()

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            yield TraceList(id="traces")
            with Vertical(id="main"):
                # only the pane shown first is mounted now: the 12 panes' widgets took ~1.3 s of a 2 s
                # first paint at 1M events under load; the others mount on their first visit
                self._panes = {pid: self._make_pane(pid) for pid, _, _ in self.PANES}
                with PaneTabs(id="panes", initial=self.initial_pane):
                    for pid, title, key in self.PANES:
                        with TabPane(f"{key} {self.TAB_LABELS.get(pid, title)}", id=pid):
                            if pid == self.initial_pane:
                                yield self._panes[pid]
                yield Input(placeholder="search: event id prefix, kind, variable, location or any text "
                                        "(id: kind: var: loc:)", id="search")
                yield EventDetail(id="detail")
        yield KeyBar(id="keys")  # not Textual's Footer: it composed itself again on every focus change

    def _make_pane(self, pid: str) -> Pane:
        cls = {"dashboard": DashboardPane,
               "timeline": TimelinePane, "critical": CriticalPane, "races": RacesPane,
               "variables": VariablesPane, "anomalies": AnomaliesPane, "dependencies": DependenciesPane,
               "deadlocks": DeadlocksPane,
               "services": ServicesPane,
               "hotspots": HotspotsPane,
               "calltree": CallTreePane,
               "replay": ReplayPane}[pid]
        return cls(id=f"pane-{pid}")

    def pane(self, pid: str | None = None) -> Pane:
        """A pane, mounted or not (see ensure_pane): its state, keys and data are there either way;
        its widgets only once mounted (``pane.is_mounted``)."""
        return self._panes[pid or self.active_pane]

    def focus_pane(self) -> None:
        """Focus the shown pane's main widget (a pane being mounted is focused when its mount is done)."""
        pane = self.pane()
        if pane.is_mounted:
            pane.focus_main()

    async def ensure_pane(self, pid: str) -> Pane:
        """The pane, mounted (its widgets composed): mounts it on its first use."""
        pane = self._panes[pid]
        if not pane.is_mounted:
            task = self._mounting.get(pid)
            if task is None:
                tab = self.query_one("#panes", TabbedContent).get_pane(pid)
                task = self._mounting[pid] = asyncio.ensure_future(self._mount_into(tab, pane))
            await task
        return pane

    @staticmethod
    async def _mount_into(tab, pane) -> None:
        await tab.mount(pane)

    @property
    def active_pane(self) -> str:
        tabs = self._tabs
        if tabs is None:  # kept: a query walks the whole screen, and this is asked on every key
            tabs = self._tabs = self.query_one("#panes", TabbedContent)
        return tabs.active or self.initial_pane

    @property
    def status(self) -> StatusBar:
        if self._status_bar is None:  # kept: a query walks the whole screen (the 1 s tick asked every time)
            self._status_bar = self.query_one("#status", StatusBar)
        return self._status_bar

    def source_label(self) -> str:
        if self.server:
            return self.server
        names = [f.name for f in self.files]
        if not names:
            return str(self.db) if self.db else "(empty store)"
        return names[0] + (f" +{len(names) - 1} more" if len(names) > 1 else "")

    # -- small terminals ------------------------------------------------------------------
    def on_resize(self, event) -> None:
        self._fit()

    def _fit(self) -> None:
        """Under 100 columns the trace list narrows; under 70 it hides (T shows it); tabs
        abbreviate when their full labels do not fit; under 30 rows the detail panel is
        smaller (see app.tcss)."""
        w, h = self.size
        self.set_class(w < self.NARROW, "narrow")
        self.set_class(h < self.SHORT, "short")
        hidden = not self.traces_shown if self.traces_shown is not None else w < self.TINY
        self.set_class(hidden, "hide-traces")
        tabs = self.query_one("#panes", TabbedContent)
        room = w - (0 if hidden else self.LIST_WIDTH[w < self.NARROW]) - 1
        active = tabs.active
        for labels in self._tab_labels(active):  # full, short, then keys only (the active tab short)
            if sum(len(label) + 2 for label in labels.values()) <= room:  # a tab pads its label by 1 each side
                break
        for pid, label in labels.items():
            tab = tabs.get_tab(pid)
            if tab.label_text != label:  # a relabel lays the tab bar out again: only on a change
                tab.label = label
        if hidden and self.query_one(TraceList).has_focus_within:
            self.focus_pane()

    def _tab_labels(self, active: str | None) -> list[dict[str, str]]:
        full = {pid: f"{key} {self.TAB_LABELS.get(pid, title)}" for pid, title, key in self.PANES}
        short = {pid: f"{key} {self.TAB_SHORT[pid]}" for pid, _, key in self.PANES}
        keys = {pid: short[pid] if pid == active else key for pid, _, key in self.PANES}
        return [full, short, keys]

    def action_toggle_traces(self) -> None:
        self.traces_shown = self.has_class("hide-traces")
        self._fit()

    def action_focus_detail(self) -> None:
        """Move into the detail panel: j / k / PgUp / PgDn scroll it, Esc goes back."""
        if self.active_pane in self.NO_DETAIL or self.query_one(EventDetail).has_class("hide-detail"):
            self.notify("No detail panel here (d shows it; Races shows its own).", timeout=3)
            return
        self.query_one(EventDetail).focus()

    def on_mount(self) -> None:
        self._fit()
        self.query_one(Tabs).can_focus = False
        self.query_one("#search", Input).display = False
        self.status.set(source=self.source_label(), state="starting", live=self.server is not None,
                        auto_refresh=self.live_refresh, connection="connecting…", synced="not synced yet")
        self.pane(self.initial_pane).focus_main()
        self.set_interval(1.0, self._tick)
        self.call_after_refresh(self._start)  # the first frame before DuckDB and Arrow load

    def on_unmount(self) -> None:
        warmer = getattr(self, "_warmer", None)
        if warmer is not None:
            warmer.close()  # a precomputation waiting for a pane would hold up the exit
        if self.link is not None:
            self.link.close()  # waits (briefly) for a sync writing to the store
        if self.session is not None and self._own_session:
            self.session.close()

    # -- the session: open, load, analyse ----------------------------------------------------
    def waiting_text(self) -> Text:
        if self.state == "error":
            return Text("Nothing to show: loading failed.", style="red")
        if self.state in ("starting", "loading"):
            return Text("Loading…", style="dim")
        return Text(f"Waiting for the analysis{': ' + self._stage if self._stage else ''}… "
                    "(the timeline already shows the events in time order)", style="dim")

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.status.set(state=state, detail=detail)

    @work(exclusive=True, group="session", exit_on_error=False)
    async def _start(self) -> None:
        try:
            await self._open_and_load()
        except Exception as exc:  # a bug or a broken store: a dialog, not a traceback
            self._fail("Loading failed", f"{type(exc).__name__}: {exc}")

    async def _open_and_load(self) -> None:
        if self.session is None:
            try:
                self.session = await in_background(_open_session, self.db, name="raceway-open")
            except RacewayError as exc:
                self._fail("Cannot open the store", str(exc))
                return
        if self.variable_scope:
            self.session.set_variable_scope(self.variable_scope)
        if self.files:
            loaded = await self._load_files()
            if loaded is None:
                return
        if self.server:
            from raceway_tui.live import LiveLink

            try:
                self.link = LiveLink(self.server, self.session.store, self.api_key, self.sync_interval)
            except RacewayError as exc:
                self._fail("Cannot connect", str(exc))
                return
            self._set_state("loading", f"pulling from {self.link.url}")
            self._live_loop()
            return
        await self._refresh_data()

    async def _load_files(self) -> int | None:
        """Load every file; one toast per file with problems. None when nothing could be read."""
        lines, total, problems = [], 0, 0
        for i, f in enumerate(self.files):
            self._set_state("loading", f"{f.name} ({i + 1}/{len(self.files)})")
            try:
                summaries = await in_background(self.session.load, [f], self.options, name="raceway-load")
            except RacewayError as exc:
                lines.append(visible(f"{f}: {exc}"))
                problems += 1
                continue
            for s in summaries:
                lines.append(visible(s.line()))
                total += s.loaded
                if s.fatal or s.rejected:
                    problems += 1
                    self.notify(s.line(), severity="error" if s.fatal else "warning", timeout=10)
        counts = await in_background(self.session.store.counts)
        if counts["events"] == 0 and problems:  # an empty file is not an error; unreadable ones are
            self._fail("Nothing could be loaded", "\n".join(lines))
            return None
        return total

    async def _refresh_data(self, follow: bool = False) -> None:
        """Show the stored events now (time order), then the analysis when it is done.

        ``follow`` (live mode, new events): the analysed views stay as they are until the
        new analysis is done, then update in place, without a detour through time order."""
        session = self.session
        self._busy = True
        try:
            self._stage, self._stage_started = "", time.monotonic()
            if follow and self.analysed:
                self._set_state("analysing", "new events")
            else:
                self.analysed = session.analysed
                self.gen += 1
                shown = self.pane()
                if not shown.needs_analysis:  # its query (the timeline's first page) runs beside the trace list's
                    shown.sync()
                counts, traces = await in_background(_stored_traces, session)
                self._show_traces(traces, counts, keep=follow)
                self._set_state("analysing")
                self.refresh_panes()
            try:
                counts, traces = await in_background(self._analyse, session, name="raceway-analysis")
            except RacewayError as exc:
                self._fail("The analysis failed", str(exc))
                return
            except Exception as exc:  # an engine bug: say so, keep the time-ordered view usable
                self._fail("The analysis failed", f"{type(exc).__name__}: {exc}")
                return
            self.analysed = True
            self.gen += 1
            self._show_traces(traces, counts, keep=follow)
            self._set_state("ready")
            self.refresh_panes()
            warm_panes(self, follow=follow)  # the other panes' first page, before they are visited
            self.query_one(EventDetail).reload()
        finally:
            self._busy = False

    def _analyse(self, session: TraceSession):
        session.analyze(progress=lambda stage, i, n: self.post_message(self.Progress(stage, i, n)))
        return session.counts(), session.traces().to_pylist()  # Python rows here, not on the UI thread

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Workers catch what they expect; anything else still ends in a toast, not a traceback."""
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.notify(f"{event.worker.name}: {type(err).__name__}: {err}", severity="error", timeout=10)

    def on_pane_warmed(self, msg: Pane.Warmed) -> None:
        msg.pane.warmed(msg)

    def on_raceway_app_progress(self, msg: Progress) -> None:
        if self.state == "analysing":
            self._stage = f"{msg.stage} ({msg.index + 1}/{msg.total})"
            self._stage_started = self._stage_started or time.monotonic()
            self._tick()

    def _tick(self) -> None:
        # shutting down: the 1 s timer can fire after the screen's widgets went
        if self._status_bar is None or not self._status_bar.is_attached:
            return
        if self.state == "analysing":
            secs = int(time.monotonic() - self._stage_started)
            self.status.set(detail=f"{self._stage} {secs}s" if self._stage else f"{secs}s")
        elif self.link is not None:
            self._show_link()  # the retry countdown
        elif self.live_refresh and not self._busy and self.session is not None and self.analysed:
            if not self.session.analysed:  # new events arrived in a shared session
                self._follow()

    @work(exclusive=True, group="session", exit_on_error=False)
    async def _follow(self) -> None:
        try:
            await self._refresh_data()
        except Exception as exc:
            self._fail("Refreshing failed", f"{type(exc).__name__}: {exc}")

    # -- live mode --------------------------------------------------------------------------
    @work(exclusive=True, group="live", exit_on_error=False)
    async def _live_loop(self) -> None:
        """Sync, refresh the views when events arrived, wait; until the app exits."""
        first = True
        while True:
            try:
                out = await self._sync_once()
                fresh = out.result is not None and (out.result.loaded or out.result.rejected)
                if first or fresh:
                    await self._refresh_data(follow=not first)
                    first = False
            except Exception as exc:  # a bug: a dialog (one at a time, see _fail), and the loop goes on
                self._fail("Refreshing failed", f"{type(exc).__name__}: {exc}")
            await self._wait_next()

    async def _sync_once(self) -> SyncOutcome:
        link = self.link
        self.syncing = True
        self._show_link()
        try:
            out = await in_background(link.sync, name="raceway-sync")
        finally:
            self.syncing = False
        if out.change == "disconnected":  # one toast per transition, not per retry
            hint = "" if link.unauthorized else " Retrying with backoff; r retries now."
            self.notify(f"{out.error}.{hint}", title="Disconnected", severity="error", timeout=8)
        elif out.change == "reconnected":
            self.notify(f"Reconnected to {link.url}; continuing from the last sync.", timeout=4)
        self._show_link()
        return out

    async def _wait_next(self) -> None:
        """Until the next sync is due, or `r` / `a` asked for one (also while the last sync or
        analysis ran: that request is kept). The schedule is looked at again every 50 ms:
        `a` may switch auto-refresh off meanwhile."""
        last = time.monotonic()
        while not self._wake.is_set():
            due = self.link.next_sync(last, self.live_refresh)
            if due is not None and time.monotonic() >= due:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), 0.05)
            except asyncio.TimeoutError:
                pass
        self._wake.clear()

    def _show_link(self) -> None:
        link = self.link
        if link is None:
            return
        self.status.set(synced=link.synced_text(), connection=link.connection_text(self.live_refresh),
                        connected=link.connected)

    def _fail(self, title: str, message: str) -> None:
        self._set_state("error", title)
        self.refresh_panes()
        if not isinstance(self.screen, ErrorScreen):  # live mode fails again on new events: one dialog
            self.push_screen(ErrorScreen(title, message))

    def _show_traces(self, traces: list[dict], counts: dict, keep: bool = False) -> None:
        """``traces``: one dict per trace (made in the worker: 8,000 traces of 1M events took
        0.1-0.2 s twice on the UI thread); ``keep``: a refresh of the same data; the list cursor
        and scroll stay where the user left them."""
        self.trace_rows = traces
        tl = self.query_one(TraceList)
        tl.set_traces(traces)
        if not keep:
            tl.select(self.scope)
        self.status.set(counts=counts)

    def refresh_panes(self) -> None:
        self.pane().sync()

    # -- scope, panes, jumps ----------------------------------------------------------------
    def choose_trace(self, trace_id: str | None) -> None:
        self.set_scope(trace_id)
        self.query_one(TraceList).select(trace_id)

    def set_scope(self, trace_id: str | None) -> None:
        if trace_id == self.scope:
            return
        self.scope = trace_id
        self.status.set(scope=trace_id)
        # after the current handler: a jump or a "back" may switch panes too, and only the
        # pane then shown should load (the others catch up when shown)
        self.call_later(lambda: (self.pane().sync(), warm_panes(self)))

    def on_trace_list_chosen(self, msg: TraceList.Chosen) -> None:
        self.set_scope(msg.trace_id)
        self.focus_pane()

    def action_pane(self, pid: str, focus: str | None = None) -> None:
        """Show a pane and focus its main widget (or the widget with id ``focus``)."""
        tabs = self.query_one("#panes", TabbedContent)
        self._focus_after_switch = focus
        if tabs.active != pid:
            tabs.active = pid  # continues in on_tabbed_content_tab_activated
        elif self.pane(pid).is_mounted:  # else its mount, under way, goes on there
            self._pane_shown(pid)

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not self.query("#panes"):  # shutting down: the tabs' widgets are gone
            return
        self._fit()  # with keys-only tabs, the active one shows its name
        pid = event.pane.id
        await self.ensure_pane(pid)  # its first visit mounts it (keys pressed meanwhile wait)
        if self.active_pane == pid and self.query("#panes"):
            self._pane_shown(pid)

    def _pane_shown(self, pid: str) -> None:
        # on the panel itself: a class on #main restyled every widget of the 12 panes (~90% of a switch)
        self.query_one(EventDetail).set_class(pid in self.NO_DETAIL, "no-detail")
        pane = self.pane(pid)
        pane.sync()
        shown = pane.current_event() if pid not in self.NO_DETAIL else None
        if shown is not None:  # the panel shows this pane's event, not the last pane's
            self.event_focused(*shown)
        focus, self._focus_after_switch = self._focus_after_switch, None
        target = self.query(f"#{focus}") if focus else None
        if target:
            target.first().focus()
        else:
            pane.focus_main()

    def _cycle(self, step: int) -> None:
        ids = [p for p, _, _ in self.PANES]
        self.action_pane(ids[(ids.index(self.active_pane) + step) % len(ids)])

    def action_next_pane(self) -> None:
        self._cycle(1)

    def action_prev_pane(self) -> None:
        self._cycle(-1)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("next_pane", "prev_pane") and isinstance(self.screen, ModalScreen):
            return False  # Tab belongs to the dialog (command palette, help)
        return True

    def jump_to(self, event_id: str, partner: str | None = None, trace_id=_AUTO) -> None:
        """Show an event in the timeline (with its partner highlighted); Esc comes back."""
        if trace_id is _AUTO:
            self._resolve_jump(event_id, partner)
            return
        focused = self.focused.id if self.focused is not None else None
        timeline = self.pane("timeline")
        view = timeline.view if timeline.is_mounted else None  # not visited yet: mounted by this jump
        here = view.row() if view is not None and self.active_pane == "timeline" else None
        self.history.append((self.active_pane, self.scope, focused, here and here["id"],
                             view.highlight if view is not None else frozenset()))
        self.choose_trace(trace_id)
        self.action_pane("timeline")
        self.pane("timeline").goto_event(event_id, {event_id, partner} - {None})

    @work(thread=True, exclusive=True, group="jump", exit_on_error=False)
    def _resolve_jump(self, event_id: str, partner: str | None) -> None:
        ids = [i for i in (event_id, partner) if i]
        try:
            t = self.session.store.sql("SELECT DISTINCT trace_id FROM events WHERE id IN (SELECT unnest($ids))",
                                       {"ids": ids})
            traces = set(t["trace_id"].to_pylist())
        except Exception as exc:
            self.call_from_thread(self.notify, f"Cannot jump to {event_id}: {exc}", severity="error")
            return
        scope = self.scope
        target = scope if scope is not None and traces <= {scope} else (traces.pop() if len(traces) == 1 else None)
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self.jump_to, event_id, partner, target)

    def on_timeline_view_follow(self, msg: TimelineView.Follow) -> None:
        self.jump_to(msg.event_id, trace_id=_AUTO if self.scope is not None else None)

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.display:
            search.display = False
            self.focus_pane()
            return
        if self.active_pane == "timeline" and self.pane("timeline").is_mounted and self.pane("timeline").cancel_search():
            return
        if self.history:
            pid, scope, focused, event_id, highlight = self.history.pop()
            self.choose_trace(scope)
            self.action_pane(pid, focus=focused)
            if event_id is not None:  # back to where the timeline was
                self.pane("timeline").goto_event(event_id, highlight)
            return
        self.action_focus_traces()

    def action_focus_traces(self) -> None:
        if self.has_class("hide-traces"):
            self.traces_shown = True
            self._fit()
        self.query_one(TraceList).table.focus()

    # -- the detail panel ---------------------------------------------------------------
    def event_focused(self, event_id: str | None, preview: dict | None) -> None:
        if self.session is not None:
            self.query_one(EventDetail).show(self.session, event_id, preview)

    def on_timeline_view_highlighted(self, msg: TimelineView.Highlighted) -> None:
        if self.first_paint is None:
            self.first_paint = time.perf_counter()
        self.event_focused(msg.row["id"], msg.row)

    def action_toggle_detail(self) -> None:
        self.query_one(EventDetail).toggle_class("hide-detail")

    # -- search ----------------------------------------------------------------------------
    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.value = ""
        search.focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        event.input.display = False
        text = event.value.strip()
        if self.active_pane != "timeline":
            self.action_pane("timeline")
        pane = await self.ensure_pane("timeline")
        pane.focus_main()
        if text:
            pane.search(text)

    async def action_search_next(self, backwards: bool) -> None:
        pane = await self.ensure_pane("timeline")
        if not pane.last_search:
            self.notify("Nothing searched yet: press / first.", timeout=3)
            return
        if self.active_pane != "timeline":
            self.action_pane("timeline")
        pane.search(pane.last_search, backwards)

    # -- reload, auto-refresh, export, help ------------------------------------------------
    def action_reload(self) -> None:
        if self.link is not None:  # live mode: sync now (or right after the running sync / analysis)
            self._wake.set()
            if self._busy or self.syncing:
                self.notify("Syncing again when the current sync and analysis are done.", timeout=3)
            return
        if self._busy or self.session is None:
            self.notify("Still loading or analysing; try again when ready.", timeout=3)
            return
        self._reload()

    @work(exclusive=True, group="session", exit_on_error=False)
    async def _reload(self) -> None:
        try:
            await self._reload_files()
        except Exception as exc:
            self._fail("Reloading failed", f"{type(exc).__name__}: {exc}")

    async def _reload_files(self) -> None:
        before = self.session.store.version
        if self.files:
            await self._load_files()
        if self.session.store.version == before and self.session.analysed:
            self.notify("No new events.", timeout=3)
            self._set_state("ready")
            return
        await self._refresh_data()

    def action_toggle_auto(self) -> None:
        self.live_refresh = not self.live_refresh
        self.status.set(auto_refresh=self.live_refresh)
        if self.link is not None:
            if self.live_refresh:
                self._wake.set()  # sync now, then every interval
            self._show_link()
        self.notify(f"Auto-refresh {'on: views follow new events' if self.live_refresh else 'off'}.", timeout=3)

    def action_export(self, kind: str) -> None:
        pid = self.active_pane
        scope = fmt.short_id(self.scope) if self.scope else "all"
        path = self.export_dir / f"raceway-{pid}-{scope}-{dt.datetime.now():%Y%m%d-%H%M%S}.{kind}"
        pane = self.pane(pid)
        if pid == "timeline":
            model = pane.view.model
            if model is None:
                self.notify("Nothing to export yet.", severity="warning")
                return
            self._export(lambda: model.timeline.table(), path)
            return
        table = pane.view_table()
        if table is None:
            self.notify("Nothing to export in this view.", severity="warning")
            return
        self._export(lambda: table, path)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, get_table, path: Path) -> None:
        try:
            from raceway_core.export import write_table

            table = get_table()
            path.parent.mkdir(parents=True, exist_ok=True)
            write_table(table, path)
        except RacewayError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        except Exception as exc:
            self.call_from_thread(self.notify, f"Export failed: {type(exc).__name__}: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, f"Exported {fmt.count(table.num_rows, 'row')} to {path}", timeout=6)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def _open_session(db: Path | None) -> "TraceSession":
    from raceway_core.session import TraceSession

    return TraceSession.open([], db)


def _stored_traces(session):
    """The counts and trace list of what is stored, before the analysis."""
    from raceway_core.browse import trace_list

    return session.store.counts(), trace_list(session.store).to_pylist()


def create_app(files: list[Path] | None = None, db: Path | None = None, server: str | None = None,
               options=None, session: TraceSession | None = None, api_key: str | None = None,
               interval: float = 2.0, variable_scope: str | None = None, pane: str = "dashboard") -> RacewayApp:
    """The explorer on trace files (read with import ``options``), a --db store, a --server
    (live mode: pulls every ``interval`` seconds, sends ``api_key`` or RACEWAY_API_KEY), or an
    already open session; ``pane``: the pane shown first (an id of RacewayApp.PANES)."""
    return RacewayApp([Path(f) for f in files or []], db=db, server=server, session=session, options=options,
                      api_key=api_key, interval=interval, variable_scope=variable_scope, pane=pane)
