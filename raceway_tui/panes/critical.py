"""Pane 2: the critical path of the chosen trace (or every trace's path length)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from raceway_tui import format as fmt
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.table import Column, VirtualTable

BAR = 10

STEP_COLUMNS = [
    Column("step", "#", 4, align="right"),
    Column("kind", "kind", 9, text=lambda r: fmt.KIND_SHORT.get(r["kind"], r["kind"]), style=lambda r: fmt.kind_style(r["kind"])),
    Column("context", "service", 16, text=lambda r: r["service"] or r["thread_id"]),  # the detail names the thread
    Column("what", "what", None, text=lambda r: r["what"]),
    Column("duration_ms", "ms", 9, align="right", text=lambda r: fmt.ms(r["duration_ms"], 3)),
    Column("share", "share", 6, align="right", text=lambda r: f"{r['share'] * 100:.1f}%"),
    Column("bar", "", BAR, text=lambda r: fmt.bar(r["share"], BAR), style=lambda r: "dark_orange" if r["share"] > 0.2 else "grey62"),
]

PATH_COLUMNS = [
    Column("trace_id", "trace", 10, text=lambda r: fmt.short_id(r["trace_id"])),
    Column("duration_ms", "path ms", 10, align="right", text=lambda r: fmt.ms(r["duration_ms"])),
    Column("trace_span_ms", "span ms", 10, align="right", text=lambda r: fmt.ms(r["trace_span_ms"])),
    Column("percentage", "path/span", 9, align="right",
           text=lambda r: "-" if r["percentage"] is None else f"{r['percentage']:.0f}%"),
    Column("steps", "events", 7, align="right"),
    Column("bar", "", None, text=lambda r: fmt.bar((r["percentage"] or 0) / 100, 20), sortable=False),
]


def _what(r: dict) -> str:
    parts = [r.get("function_name") and f"{r['function_name']}()", r.get("variable")]
    what = " ".join(p for p in parts if p)
    loc = fmt.location(r.get("location"), 1)
    return f"{what}  {loc}".strip() if loc else what


class CriticalPane(Pane):
    title = "Critical path"

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
        trace_id = key[0]
        if trace_id is None:
            return ("all", session.critical_paths())
        return ("trace", session.critical_path(trace_id))

    def main_table(self):
        return self.table

    def row_key(self, row: dict):
        return row.get("id") or row.get("trace_id")  # a step of the path, or a trace's path

    def show_data(self, data) -> None:
        mode, value = data
        table = self.table
        summary = self.query_one("#critical-summary", Static)
        if mode == "all":
            rows = [{"trace_id": cp.trace_id, "duration_ms": cp.duration_ms, "trace_span_ms": cp.trace_span_ms,
                     "percentage": cp.percentage, "steps": cp.events.num_rows} for cp in value]
            rows.sort(key=lambda r: -r["duration_ms"])
            table.columns, table.sortable = PATH_COLUMNS, True
            summary.update(Text.assemble(("Critical paths of every trace", "bold"),
                                         ("  (longest first; Enter shows a trace's path)", "dim")))
            table.set_rows(rows, empty="No traces.")
            return
        cp = value
        total = cp.duration_ms or 0.0
        rows = []
        for r in cp.events.to_pylist():
            r["what"] = _what(r)
            r["share"] = (r["duration_ms"] / total) if total else 0.0
            rows.append(r)
        table.columns, table.sortable = STEP_COLUMNS, False
        pct = "-" if cp.percentage is None else f"{cp.percentage:.0f}%"
        summary.update(Text.assemble(
            ("Critical path ", "bold"), (fmt.short_id(cp.trace_id, 12), "bold"),
            f"  path {fmt.ms(cp.duration_ms)} ms of a {fmt.ms(cp.trace_span_ms)} ms span ({pct})",
            f" · sum of all durations {fmt.ms(cp.sum_ms)} ms · {len(rows)} events", ("  Enter: go to the event", "dim")))
        table.set_rows(rows, empty="The trace has no events with a path.")

    def view_table(self):
        if self.data is None:
            return None
        mode, value = self.data
        if mode == "trace":
            return value.events
        import pyarrow as pa

        return pa.table({"trace_id": [c.trace_id for c in value], "duration_ms": [c.duration_ms for c in value],
                         "trace_span_ms": [c.trace_span_ms for c in value], "sum_ms": [c.sum_ms for c in value],
                         "percentage": [c.percentage for c in value]})

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if event.row is not None and "id" in event.row:
            self.app.event_focused(event.row["id"], event.row)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        r = event.row
        if r is None:
            return
        if "id" in r:
            self.app.jump_to(r["id"], trace_id=self.app.scope)
        else:
            self.app.choose_trace(r["trace_id"])
