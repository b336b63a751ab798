"""Pane 8: services. Per service its traces, events, failures, span latency (p50 / p95 /
max) and self time, the races touching it, callers and callees; Enter lists its traces
below (slowest span first), Enter on one of them chooses that trace as the scope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from raceway_tui import format as fmt
from raceway_tui.literal import literal
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.lines import FollowLines
from raceway_tui.widgets.table import Column, VirtualTable

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa


def _desc(key: str):
    return lambda r: -(r[key] or 0) if r[key] is not None else None


COLUMNS = [
    Column("service", "service", None),
    Column("traces", "traces", 6, align="right", sort_key=_desc("traces"), priority=3),
    Column("events", "events", 7, align="right", sort_key=_desc("events"), priority=5),
    Column("failures", "fail", 5, align="right", sort_key=_desc("failures"), priority=4,
           style=lambda r: "red" if r["failures"] else None),
    Column("spans", "spans", 6, align="right", sort_key=_desc("spans"), priority=6),
    Column("p50_ms", "p50 ms", 9, align="right", text=lambda r: fmt.ms(r["p50_ms"]), sort_key=_desc("p50_ms")),
    Column("p95_ms", "p95 ms", 9, align="right", text=lambda r: fmt.ms(r["p95_ms"]), sort_key=_desc("p95_ms"),
           priority=2),
    Column("max_ms", "max ms", 9, align="right", text=lambda r: fmt.ms(r["max_ms"]), sort_key=_desc("max_ms"),
           priority=1),
    Column("self_p50_ms", "self p50", 10, align="right", text=lambda r: fmt.ms(r["self_p50_ms"]),
           sort_key=_desc("self_p50_ms")),
    Column("races", "races", 6, align="right", sort_key=_desc("races"),
           text=lambda r: "…" if r["races"] is None else f"{r['races']:,}",
           style=lambda r: fmt.RACING_STYLE if r["races"] else None),
]

TRACE_COLUMNS = [
    Column("trace_id", "trace", 10, text=lambda r: fmt.short_id(r["trace_id"])),
    Column("start", "start", 15, text=lambda r: r["start"].strftime("%H:%M:%S.%f")[:-3] if r["start"] else "-",
           priority=2),
    Column("events", "events", 7, align="right", sort_key=_desc("events")),
    Column("failures", "fail", 5, align="right", sort_key=_desc("failures"), priority=1,
           style=lambda r: "red" if r["failures"] else None),
    Column("spans", "spans", 6, align="right", sort_key=_desc("spans"), priority=3),
    Column("max_ms", "slowest span ms", 16, align="right", text=lambda r: fmt.ms(r["max_ms"]),
           sort_key=_desc("max_ms")),
    Column("self_ms", "its self ms", 12, align="right", text=lambda r: fmt.ms(r["self_ms"]),
           sort_key=_desc("self_ms"), priority=4),
]


def describe(row: dict | None) -> Text:
    """One line on the highlighted service: who calls it, whom it calls."""
    if row is None:
        return Text("")
    out = Text.assemble(literal(row["service"], "bold"), ("  called by ", "dim"))
    out.append_text(literal(", ".join(row["callers"])) if row["callers"] else Text("no service", style="dim"))
    out.append("  ·  calls ", style="dim")
    out.append_text(literal(", ".join(row["callees"])) if row["callees"] else Text("no service", style="dim"))
    out.append("  ·  Enter: its traces", style="dim italic")
    return out


class ServicesPane(Pane):
    title = "Services"
    BINDINGS = [Binding("escape", "back_to_services", "Services", show=False)]
    DEFAULT_CSS = """
    ServicesPane #services-summary, ServicesPane #service-line, ServicesPane #service-traces-title {
        height: auto; padding: 0 1;
    }
    ServicesPane #services-table { height: 1fr; min-height: 4; }
    ServicesPane #service-traces-title { border-top: hkey $panel-lighten-2; }
    ServicesPane #service-traces-table { height: 1fr; min-height: 4; }
    """

    class RacesCounted(Message):
        def __init__(self, key: tuple, races: dict | None, error: str | None = None) -> None:
            super().__init__()
            self.key, self.races, self.error = key, races, error

    class TracesLoaded(Message):
        def __init__(self, key: tuple, service: str, table: pa.Table | None, error: str | None = None) -> None:
            super().__init__()
            self.key, self.service, self.table, self.error = key, service, table, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.service: str | None = None  # whose traces the lower table lists
        self.wanted: str | None = None  # a service to highlight when the data arrives (from Hotspots)
        self.trace_rows: pa.Table | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="services-summary")
        yield VirtualTable(COLUMNS, sortable=True, empty="No services.", id="services-table")
        yield FollowLines(id="service-line")
        yield Static(id="service-traces-title")
        yield VirtualTable(TRACE_COLUMNS, sortable=True, empty="Enter on a service lists its traces.",
                           id="service-traces-table")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#services-table", VirtualTable)

    @property
    def traces(self) -> VirtualTable:
        return self.query_one("#service-traces-table", VirtualTable)

    def focus_main(self) -> None:
        self.table.focus()

    def main_table(self):
        return self.table

    def row_key(self, row: dict):
        return row.get("service")

    def fetch(self, session, key: tuple) -> pa.Table:
        # the races column follows (counting them takes seconds on a million events)
        return session.services(trace_id=key[0], races=False)

    def fetch_ahead(self, session, key: tuple) -> pa.Table:
        return session.services(trace_id=key[0], races=True)  # the races column too: no query on the visit

    def show_data(self, data: pa.Table) -> None:
        scope = self.app.scope
        self.query_one("#services-summary", Static).update(Text.assemble(
            (fmt.count(data.num_rows, "service"), "bold"), " · ",
            ("all traces" if scope is None else f"trace {fmt.short_id(scope)}", "bold"),
            (" · latency of spans (start to end); self: less the spans they call", "dim")))
        if self.table.sort_column is None:
            self.table.sort_column = "self_p50_ms"  # the core's order, shown as a sort the user can change
        self.table.set_rows(data, cursor=0, empty="No service names in this scope.")
        if not self.same_view or self.service not in set(data["service"].to_pylist()):
            self.service = None
            self.trace_rows = None
            self.traces.set_rows(None, empty="Enter on a service lists its traces.")
            self.query_one("#service-traces-title", Static).update("")
        elif self.service is not None:
            self._load_traces(self.service)
        self._select_wanted()
        if data.num_rows and data["races"].null_count:
            self._count_races(self.app.session, self._key)

    @work(thread=True, exclusive=True, group="service-races", exit_on_error=False)
    def _count_races(self, session, key: tuple) -> None:
        try:
            races, error = session.service_races(key[0]), None
        except Exception as exc:
            races, error = None, f"{type(exc).__name__}: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self.RacesCounted(key, races, error))

    def on_services_pane_races_counted(self, msg: RacesCounted) -> None:
        msg.stop()
        if msg.key != self._key or self.data is None:
            return
        if msg.error:
            self.app.notify(f"Races by service: {msg.error}", severity="error")
            return
        from raceway_core.analysis.service_stats import with_races

        self.data = with_races(self.data, msg.races)
        table = self.table
        row = table.row()
        table.set_rows(self.data, cursor=None)
        if row is not None:  # the cursor stays on its service whatever the sort
            i = table.find(lambda r: r["service"] == row["service"])
            if i is not None:
                table.move_to(i)

    def view_table(self):
        return self.trace_rows if self.trace_rows is not None and self.traces.has_focus else self.data

    def show_service(self, name: str) -> None:
        """Highlight a service (now, or when the data arrives) and list its traces."""
        self.wanted = name
        if self.ready and self.data is not None:
            self._select_wanted()

    def _select_wanted(self) -> None:
        name, self.wanted = self.wanted, None
        if name is None:
            return
        i = self.table.find(lambda r: r["service"] == name)
        if i is None:
            self.app.notify(f"No service {name} in this scope.", timeout=4)
            return
        self.table.move_to(i)
        self.table.focus()
        self._load_traces(name)

    # -- the service's traces ---------------------------------------------------------------
    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if event.table is self.table:
            self.query_one("#service-line", FollowLines).show(describe(event.row))

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        if event.row is None:
            return
        if event.table is self.table:
            self._load_traces(event.row["service"])
            self.traces.focus()
        else:
            self.app.choose_trace(event.row["trace_id"])
            self.table.focus()

    def _load_traces(self, service: str) -> None:
        self.service = service
        self.query_one("#service-traces-title", Static).update(
            literal(f"Traces of {service}: loading…", style="dim"))
        self._fetch_traces(self.app.session, self._key, service, self.app.scope)

    @work(thread=True, exclusive=True, group="service-traces", exit_on_error=False)
    def _fetch_traces(self, session, key: tuple, service: str, trace_id: str | None) -> None:
        try:
            t, error = session.service_traces(service, trace_id=trace_id), None
        except Exception as exc:
            t, error = None, f"{type(exc).__name__}: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self.TracesLoaded(key, service, t, error))

    def on_services_pane_traces_loaded(self, msg: TracesLoaded) -> None:
        msg.stop()
        if msg.key != self._key or msg.service != self.service:
            return
        if msg.error:
            self.app.notify(f"Traces of {msg.service}: {msg.error}", severity="error")
            return
        self.trace_rows = msg.table
        self.query_one("#service-traces-title", Static).update(Text.assemble(
            ("Traces of ", "bold"), literal(msg.service, "bold yellow"),
            f"  {fmt.count(msg.table.num_rows, 'trace')}, slowest span first · Enter: choose the trace · Esc: back"))
        self.traces.set_rows(msg.table, cursor=0)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "back_to_services":
            return self.traces.has_focus
        return True

    def action_back_to_services(self) -> None:
        self.table.focus()

