"""Pane 5: operations far slower than their baseline; sortable by z and severity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from raceway_tui import format as fmt
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.table import Column, VirtualTable

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa


def _operation(key: str) -> str:
    """FunctionCall(name) reads as name()."""
    if key and key.startswith("FunctionCall(") and key.endswith(")"):
        return key[len("FunctionCall("):-1] + "()"
    return key


COLUMNS = [
    Column("severity", "severity", 9, style=lambda r: fmt.SEVERITY_STYLE.get(r["severity"]),
           sort_key=lambda r: (-fmt.SEVERITY_RANK.get(r["severity"], 0), -(r["z"] or 0))),
    Column("z", "z", 7, align="right", text=lambda r: "-" if r["z"] is None else f"{r['z']:.1f}",
           sort_key=lambda r: -r["z"] if r["z"] is not None else None, priority=2),
    Column("actual_ms", "actual ms", 10, align="right", text=lambda r: fmt.ms(r["actual_ms"], 3),
           sort_key=lambda r: -r["actual_ms"]),
    Column("expected_ms", "expected", 10, align="right", text=lambda r: fmt.ms(r["expected_ms"], 3), priority=3),
    Column("ratio", "×", 5, align="right",
           text=lambda r: f"{r['actual_ms'] / r['expected_ms']:.1f}" if r["expected_ms"] else "-",
           sort_key=lambda r: -(r["actual_ms"] / r["expected_ms"]) if r["expected_ms"] else None, priority=4),
    Column("key", "operation", None, text=lambda r: _operation(r["key"])),
    Column("trace_id", "trace", 8, text=lambda r: fmt.short_id(r["trace_id"]), priority=1),
    Column("event_id", "event", 8, text=lambda r: fmt.short_id(r["event_id"]), sortable=False, priority=5),
]


class AnomaliesPane(Pane):
    title = "Anomalies"

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="anomalies-summary")
        yield VirtualTable(COLUMNS, sortable=True, empty="No anomalies.", id="anomalies-table")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#anomalies-table", VirtualTable)

    def focus_main(self) -> None:
        self.table.focus()

    def fetch(self, session, key: tuple) -> pa.Table:
        return session.anomalies(trace_id=key[0])

    def show_data(self, data: pa.Table) -> None:
        sev = data["severity"].to_pylist() if data.num_rows else []
        self.query_one("#anomalies-summary", Static).update(Text.assemble(
            (fmt.count(data.num_rows, "anomaly"), "bold yellow" if data.num_rows else "bold green"),
            f" ({sev.count('critical'):,} critical, {sev.count('warning'):,} warning, {sev.count('minor'):,} minor)"))
        if self.table.sort_column is None:
            self.table.sort_column = "z"  # the analysis's own ranking, shown as a sort the user can change
        self.table.set_rows(data, cursor=0, empty=self._empty_text(data.num_rows))

    def _empty_text(self, shown: int) -> str:
        """In a trace without anomalies, say how many the other traces have (and how to see them)."""
        scope = self.app.scope
        total = (self.app.status.info.counts or {}).get("anomalies") or 0
        if scope is None or shown or not total:
            return "No anomalies in this scope." if scope else "No anomalies."
        return (f"No anomalies in trace {fmt.short_id(scope)}; {fmt.count(total, 'anomaly')} in all traces "
                "(t, then All and Enter, shows them).")

    def view_table(self):
        return self.data

    def main_table(self):
        return self.table

    def current_event(self):
        row = self.table.row()
        return (row["event_id"], None) if row is not None else None

    def row_key(self, row: dict):
        return row.get("event_id")

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if event.row is not None:
            self.app.event_focused(event.row["event_id"], None)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        if event.row is not None:
            self.app.jump_to(event.row["event_id"], trace_id=event.row["trace_id"])
