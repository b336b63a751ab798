"""Pane 2: the critical path of the chosen trace (or every trace's path length)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from raceway_tui import format as fmt
from raceway_tui.literal import literal
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.table import Column, VirtualTable

BAR = 10

STEP_COLUMNS = [
    Column("step", "#", 4, align="right", priority=3),
    Column("kind", "kind", 9, text=lambda r: fmt.KIND_SHORT.get(r["kind"], r["kind"]), style=fmt.event_style),
    Column("context", "service", 16, text=lambda r: r["service"] or r["thread_id"], priority=2),  # detail: the thread
    Column("what", "what", None, text=lambda r: r["what"]),
    Column("duration_ms", "ms", 9, align="right", text=lambda r: fmt.ms(r["duration_ms"], 3)),
    Column("share", "share", 6, align="right", text=lambda r: f"{r['share'] * 100:.1f}%", priority=1),
    Column("bar", "", BAR, text=lambda r: fmt.bar(r["share"], BAR), priority=4,
           style=lambda r: "dark_orange" if r["share"] > 0.2 else "grey62"),
]

SPAN_COLUMNS = [  # Jaeger's path: self-time sections of spans
    Column("step", "#", 4, align="right"),
    Column("service", "service", 16, text=lambda r: r["service"] or ""),
    Column("operation", "span (operation)", None, text=lambda r: r["operation"] or r["span_id"]),
    Column("offset_ms", "at ms", 9, align="right", text=lambda r: fmt.ms(r["offset_ms"], 3)),
    Column("duration_ms", "self ms", 9, align="right", text=lambda r: fmt.ms(r["duration_ms"], 3)),
    Column("share", "share", 6, align="right", text=lambda r: f"{r['share'] * 100:.1f}%"),
    Column("bar", "", BAR, text=lambda r: fmt.bar(r["share"], BAR), style=lambda r: "dark_orange" if r["share"] > 0.2 else "grey62"),
]

PATH_COLUMNS = [
    Column("trace_id", "trace", 10, text=lambda r: fmt.short_id(r["trace_id"])),
    Column("duration_ms", "path ms", 10, align="right", text=lambda r: fmt.ms(r["duration_ms"])),
    Column("trace_span_ms", "span ms", 10, align="right", text=lambda r: fmt.ms(r["trace_span_ms"]), priority=1),
    Column("percentage", "path/span", 9, align="right",
           text=lambda r: "-" if r["percentage"] is None else f"{r['percentage']:.0f}%"),
    Column("steps", "events", 7, align="right", priority=2),
    Column("bar", "", None, text=lambda r: fmt.bar((r["percentage"] or 0) / 100, 20), sortable=False),
]


def _what(r: dict) -> str:
    """The function or variable, else what the event did (URL, status, lock, task), and where."""
    parts = [r.get("function_name") and f"{r['function_name']}()", r.get("variable")]
    what = " ".join(p for p in parts if p) or fmt.summary(r)
    loc = fmt.location(r.get("location"), 1)
    return f"{what}  {loc}".strip() if loc else what


class CriticalPane(Pane):
    """The happens-before path (ours) or, for traces imported from spans, Jaeger's (m switches)."""

    title = "Critical path"
    BINDINGS = [Binding("m", "toggle_method", "HB / Jaeger path")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.method = "hb"  # "hb": longest happens-before path; "span": Jaeger's span walk

    def extra_key(self) -> tuple:
        return (self.method,)

    def action_toggle_method(self) -> None:
        if self.app.scope is None:
            self.app.notify("Choose a trace first: Jaeger's path is per trace.", timeout=3)
            return
        self.method = "span" if self.method == "hb" else "hb"
        self.sync()

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="critical-summary")
        yield VirtualTable(STEP_COLUMNS, empty="No critical path.", id="critical-table")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#critical-table", VirtualTable)

    def focus_main(self) -> None:
        self.table.focus()

    def fetch(self, session, key: tuple):
        trace_id, method = key[0], key[3]  # the key's method: this may run on the precomputation's thread
        if trace_id is None:
            from raceway_core.browse import critical_overview

            return ("all", critical_overview(session))
        if method == "span":
            return ("span", (session.span_critical_path(trace_id), session.critical_path(trace_id)))
        return ("trace", (session.critical_path(trace_id), session.has_spans(trace_id)))

    def main_table(self):
        return self.table

    def current_event(self):
        row = self.table.row()
        if row is None or not row.get("id"):
            return None
        return row["id"], row if "kind" in row else None

    def row_key(self, row: dict):
        return row.get("id") or row.get("trace_id")  # a step of the path, or a trace's path

    def show_data(self, data) -> None:
        mode, value = data
        table = self.table
        summary = self.query_one("#critical-summary", Static)
        if mode == "all":
            rows = value.to_pylist()  # by trace id, then longest first (ties stay by trace id)
            rows.sort(key=lambda r: -r["duration_ms"])
            table.columns, table.sortable = PATH_COLUMNS, True
            summary.update(Text.assemble(("Critical paths of every trace", "bold"),
                                         ("  (longest first; Enter shows a trace's path)", "dim")))
            table.set_rows(rows, empty="No traces.")
            return
        if mode == "span":
            self._show_span(*value)
            return
        cp, has_spans = value
        total = cp.duration_ms or 0.0
        rows = []
        for r in cp.events.to_pylist():
            r["what"] = _what(r)
            r["share"] = (r["duration_ms"] / total) if total else 0.0
            rows.append(r)
        table.columns, table.sortable = STEP_COLUMNS, False
        pct = "-" if cp.percentage is None else f"{cp.percentage:.0f}%"
        summary.update(Text.assemble(
            ("Critical path ", "bold"), literal(fmt.short_id(cp.trace_id, 12), "bold"),
            f"  path {fmt.ms(cp.duration_ms)} ms of a {fmt.ms(cp.trace_span_ms)} ms span ({pct})",
            f" · sum of all durations {fmt.ms(cp.sum_ms)} ms · {fmt.count(len(rows), 'event')}",
            ("\nShowing: the longest happens-before path weighted by durations", "italic"),
            ("  (m: Jaeger's span path)" if has_spans else "", "dim"), ("  Enter: go to the event", "dim")))
        table.set_rows(rows, empty="The trace has no events with a path.")

    def _show_span(self, span, hb) -> None:
        table = self.table
        summary = self.query_one("#critical-summary", Static)
        table.columns, table.sortable = SPAN_COLUMNS, False
        total = span.duration_ns / 1e6
        t0 = min((s.start_ns for s in span.sections), default=0)
        rows = [{"step": i, "id": s.event_id, "span_id": s.span_id, "service": s.service, "operation": s.operation,
                 "offset_ms": (s.start_ns - t0) / 1e6, "duration_ms": s.self_ns / 1e6,
                 "share": (s.self_ns / 1e6 / total) if total else 0.0} for i, s in enumerate(span.sections)]
        notes = [f"{len(span.clipped)} clipped to their parent" if span.clipped else "",
                 f"{len(span.dropped)} outside their parent left out" if span.dropped else "",
                 f"{len(span.non_blocking)} non-blocking (follows-from, consumer) left out" if span.non_blocking else ""]
        notes = [n for n in notes if n]
        summary.update(Text.assemble(
            ("Critical path ", "bold"), literal(fmt.short_id(span.trace_id, 12), "bold"),
            f"  Jaeger's path {fmt.ms(total)} ms of a {fmt.ms(hb.trace_span_ms)} ms span · {fmt.count(len(rows), 'section')}",
            (" · spans: " + ", ".join(notes) if notes else "", "yellow"),
            ("\nShowing: Jaeger's critical path (last-finishing child walk, self time of each span)", "italic"),
            ("  (m: happens-before path)  Enter: go to the span", "dim")))
        table.set_rows(rows, empty="No spans in this trace: Jaeger's path needs traces imported from "
                                   "OTLP, Jaeger or Zipkin (m: happens-before path).")

    def view_table(self):
        if self.data is None:
            return None
        mode, value = self.data
        import pyarrow as pa

        if mode == "trace":
            return value[0].events
        if mode == "span":
            return pa.table({k: [getattr(s, k) for s in value[0].sections]
                             for k in ("span_id", "service", "operation", "start_ns", "end_ns", "event_id")})

        return value.select(["trace_id", "duration_ms", "trace_span_ms", "sum_ms", "percentage"])

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if event.row is not None and event.row.get("id"):
            self.app.event_focused(event.row["id"], event.row if "kind" in event.row else None)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        r = event.row
        if r is None:
            return
        if "id" in r:
            self.app.jump_to(r["id"], trace_id=self.app.scope)
        else:
            self.app.choose_trace(r["trace_id"])
