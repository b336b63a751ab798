"""Pane 9: hotspots. Four small ranked tables: variables by accesses, writes and races;
functions by calls and time; services by events; locks by hand-offs and longest hold.
] / [ move between the tables, s sorts the focused one. Enter: a variable opens its audit
trail (Variables), a service its row in Services, a function lists its calls (slowest
first) and a lock its acquisitions and releases below; Enter on one of those goes to the
event in the timeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from raceway_tui import format as fmt
from raceway_tui.literal import literal
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.table import Column, VirtualTable

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa


def _desc(key: str):
    return lambda r: -r[key] if r[key] is not None else None


VARIABLE_COLUMNS = [
    Column("variable", "variable", None),
    Column("accesses", "acc", 6, align="right", sort_key=_desc("accesses")),
    Column("writes", "W", 5, align="right", sort_key=_desc("writes"), priority=1),
    Column("races", "races", 6, align="right", sort_key=_desc("races"),
           style=lambda r: fmt.RACING_STYLE if r["races"] else None),
]
FUNCTION_COLUMNS = [
    Column("function", "function", None),
    Column("calls", "calls", 6, align="right", sort_key=_desc("calls")),
    Column("total_ms", "total ms", 9, align="right", text=lambda r: fmt.ms(r["total_ms"], 1),
           sort_key=_desc("total_ms")),
    Column("max_ms", "max ms", 9, align="right", text=lambda r: fmt.ms(r["max_ms"], 1), sort_key=_desc("max_ms"),
           priority=1),
]
SERVICE_COLUMNS = [
    Column("service", "service", None),
    Column("events", "events", 8, align="right", sort_key=_desc("events")),
    Column("traces", "traces", 6, align="right", sort_key=_desc("traces"), priority=1),
    Column("contexts", "ctx", 5, align="right", sort_key=_desc("contexts"), priority=2),
]
LOCK_COLUMNS = [
    Column("lock_id", "lock", None),
    Column("handoffs", "handoff", 7, align="right", sort_key=_desc("handoffs")),
    Column("max_hold_ms", "max hold", 9, align="right", text=lambda r: fmt.ms(r["max_hold_ms"], 3),
           sort_key=_desc("max_hold_ms")),
    Column("acquisitions", "acq", 5, align="right", sort_key=_desc("acquisitions"), priority=2),
    Column("total_hold_ms", "held ms", 8, align="right", text=lambda r: fmt.ms(r["total_hold_ms"], 1),
           sort_key=_desc("total_hold_ms"), priority=1),
]


def _when(r: dict) -> str:
    return r["timestamp"].strftime("%H:%M:%S.%f") if r["timestamp"] else "-"


LOCK_EVENT_COLUMNS = [
    Column("timestamp", "time", 15, text=_when, sortable=False),
    Column("kind", "", 7, text=lambda r: "acquire" if r["kind"] == "LockAcquire" else "release",
           style=lambda r: fmt.KIND_STYLE["LockAcquire"]),
    Column("hold_ms", "held ms", 9, align="right", text=lambda r: fmt.ms(r["hold_ms"], 3) if r["hold_ms"] is not None
           else "", sort_key=_desc("hold_ms")),
    Column("handoff", "hand-off", 8, text=lambda r: "◀ other" if r["handoff"] else "", priority=2),
    Column("context", "context", None, text=lambda r: fmt.context_label(r["service"], r["thread_id"]), keep_end=True),
    Column("trace_id", "trace", 8, text=lambda r: fmt.short_id(r["trace_id"]), priority=1),
]
CALL_COLUMNS = [
    Column("duration_ms", "ms", 10, align="right", text=lambda r: fmt.ms(r["duration_ms"], 3),
           sort_key=_desc("duration_ms")),
    Column("timestamp", "time", 15, text=_when, sortable=False, priority=2),
    Column("context", "context", None, text=lambda r: fmt.context_label(r["service"], r["thread_id"]), keep_end=True),
    Column("trace_id", "trace", 8, text=lambda r: fmt.short_id(r["trace_id"]), priority=1),
]

TABLES = [("variables", "Variables", VARIABLE_COLUMNS), ("functions", "Functions", FUNCTION_COLUMNS),
          ("services", "Services", SERVICE_COLUMNS), ("locks", "Locks (contention)", LOCK_COLUMNS)]


class HotspotsPane(Pane):
    title = "Hotspots"
    BINDINGS = [
        Binding("right_square_bracket", "next_table", "Next table"),
        Binding("left_square_bracket", "prev_table", "Prev table"),
        Binding("escape", "close_list", "Close list", show=False),
    ]
    DEFAULT_CSS = """
    HotspotsPane #hotspots-summary, HotspotsPane .hot-title, HotspotsPane #hot-list-title { height: auto; padding: 0 1; }
    HotspotsPane .hot-row { height: 1fr; }
    HotspotsPane .hot-box { width: 1fr; }
    HotspotsPane .hot-box.left { border-right: vkey $panel-lighten-2; }
    HotspotsPane .hot-box:focus-within .hot-title { background: $accent 30%; }
    HotspotsPane .hot-box VirtualTable { height: 1fr; min-height: 3; }
    HotspotsPane #hot-list-title { border-top: hkey $panel-lighten-2; }
    HotspotsPane #hot-list { height: 1fr; min-height: 4; }
    """

    class ListLoaded(Message):
        def __init__(self, key: tuple, what: tuple, table: pa.Table | None, error: str | None = None) -> None:
            super().__init__()
            self.key, self.what, self.table, self.error = key, what, table, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.listing: tuple | None = None  # ("lock" | "function", name) listed below
        self.list_rows: pa.Table | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="hotspots-summary")
        for row in (TABLES[:2], TABLES[2:]):
            with Horizontal(classes="hot-row"):
                for i, (name, title, columns) in enumerate(row):
                    with Vertical(classes="hot-box left" if i == 0 else "hot-box"):
                        yield Static(Text(title, style="bold"), classes="hot-title", id=f"hot-{name}-title")
                        yield VirtualTable(columns, sortable=True, empty=f"No {name}.", id=f"hot-{name}")
        yield Static(id="hot-list-title")
        yield VirtualTable(CALL_COLUMNS, sortable=True, id="hot-list")

    def on_mount(self) -> None:
        self._show_list(False)

    def table(self, name: str) -> VirtualTable:
        return self.query_one(f"#hot-{name}", VirtualTable)

    @property
    def list_table(self) -> VirtualTable:
        return self.query_one("#hot-list", VirtualTable)

    def tables(self) -> list[VirtualTable]:
        out = [self.table(name) for name, _, _ in TABLES]
        return out + [self.list_table] if self.list_table.display else out

    def focus_main(self) -> None:
        self.table("variables").focus()

    def main_table(self):
        return self.table("variables")

    def row_key(self, row: dict):
        return row.get("variable")

    def fetch(self, session, key: tuple):
        return session.hotspots(trace_id=key[0])

    def show_data(self, data) -> None:
        scope = self.app.scope
        self.query_one("#hotspots-summary", Static).update(Text.assemble(
            ("Hotspots", "bold"), " · ", ("all traces" if scope is None else f"trace {fmt.short_id(scope)}", "bold"),
            ("  ] / [ table · s sort · Enter opens", "dim")))
        for name, _, _ in TABLES:
            self.table(name).set_rows(getattr(data, name), cursor=0 if not self.same_view else None,
                                      empty=f"No {name} in this scope.")
        if self.same_view and self.listing is not None:
            self._load_list(self.listing)
        else:
            self._show_list(False)

    def view_table(self):
        focused = self.screen.focused
        for name, _, _ in TABLES:
            if focused is self.table(name) and self.data is not None:
                return getattr(self.data, name)
        if focused is self.list_table:
            return self.list_rows
        return self.data.variables if self.data is not None else None

    def current_event(self):
        row = self.list_table.row() if self.list_table.display else None
        return (row["event_id"], None) if row is not None else None

    # -- moving between the tables ----------------------------------------------------------
    def _step(self, delta: int) -> None:
        tables = self.tables()
        focused = self.screen.focused
        i = tables.index(focused) if focused in tables else -delta
        tables[(i + delta) % len(tables)].focus()

    def action_next_table(self) -> None:
        self._step(1)

    def action_prev_table(self) -> None:
        self._step(-1)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "close_list":
            return self.list_table.display
        return True

    def action_close_list(self) -> None:
        kind = self.listing[0] if self.listing else "locks"
        self._show_list(False)
        self.table("locks" if kind == "lock" else "functions").focus()

    def _show_list(self, shown: bool) -> None:
        self.list_table.display = shown
        self.query_one("#hot-list-title", Static).display = shown
        if not shown:
            self.listing = None
            self.list_rows = None

    # -- Enter ------------------------------------------------------------------------------
    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if event.table is self.list_table and event.row is not None:
            self.app.event_focused(event.row["event_id"], None)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        r, app = event.row, self.app
        if r is None:
            return
        table = event.table
        if table is self.list_table:
            app.jump_to(r["event_id"], trace_id=r["trace_id"])
        elif table is self.table("variables"):
            self._remember()
            app.action_pane("variables", focus="audit-table")
            app.pane("variables").show_variable(r["variable"])  # as the scope names it, like the Variables pane
        elif table is self.table("services"):
            self._remember()
            app.action_pane("services")
            app.pane("services").show_service(r["service"])
        elif table is self.table("functions"):
            self._load_list(("function", r["function"]))
        elif table is self.table("locks"):
            self._load_list(("lock", r["lock_id"]))

    def _remember(self) -> None:
        """Esc in the pane we go to comes back here (the app's jump history)."""
        app = self.app
        focused = app.focused.id if app.focused is not None else None
        app.history.append(("hotspots", app.scope, focused, None, None))

    def _load_list(self, what: tuple) -> None:
        self.listing = what
        kind, name = what
        self.list_table.columns = LOCK_EVENT_COLUMNS if kind == "lock" else CALL_COLUMNS
        self._show_list(True)
        self.query_one("#hot-list-title", Static).update(
            literal(f"{'Events of lock' if kind == 'lock' else 'Calls of'} {name}: loading…", style="dim"))
        self.list_table.focus()
        self._fetch_list(self.app.session, self._key, what, self.app.scope)

    @work(thread=True, exclusive=True, group="hotspot-list", exit_on_error=False)
    def _fetch_list(self, session, key: tuple, what: tuple, trace_id: str | None) -> None:
        kind, name = what
        try:
            fn = session.lock_events if kind == "lock" else session.function_calls
            t, error = fn(name, trace_id=trace_id), None
        except Exception as exc:
            t, error = None, f"{type(exc).__name__}: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self.ListLoaded(key, what, t, error))

    def on_hotspots_pane_list_loaded(self, msg: ListLoaded) -> None:
        msg.stop()
        if msg.key != self._key or msg.what != self.listing:
            return
        if msg.error:
            self.app.notify(f"{msg.what[1]}: {msg.error}", severity="error")
            return
        from raceway_core.analysis.hotspots import LISTED

        kind, name = msg.what
        t = msg.table
        head = "Acquisitions and releases of lock " if kind == "lock" else "Calls of "
        order = " in time order" if kind == "lock" else ", slowest first"
        more = f" (the first {LISTED:,})" if t.num_rows >= LISTED else ""
        self.list_rows = t
        self.query_one("#hot-list-title", Static).update(Text.assemble(
            (head, "bold"), literal(name, "bold yellow"),
            f"  {fmt.count(t.num_rows, 'event')}{order}{more} · Enter: timeline · Esc: close"))
        self.list_table.set_rows(t, cursor=0)
