"""The trace list: a filter box and a sortable table, with an "All traces" entry on top."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input

from raceway_tui import format as fmt
from raceway_tui.widgets.table import Column, VirtualTable

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa

ALL = {"trace_id": None, "label": "All", "events": None, "services": None, "duration_ms": None,
       "races": None, "anomalies": None, "failures": None, "start": None}



def _marks(r: dict) -> str:
    """✗ a failed request (HTTP 4xx / 5xx, an error), ! a race, ▲ an anomaly."""
    if r["trace_id"] is None:
        return "∗"
    return ("✗" if r.get("failures") else " ") + ("!" if r.get("races") else " ") + ("▲" if r.get("anomalies") else " ")


def _mark_style(r: dict) -> str | None:
    if r.get("failures"):
        return "bold red"
    if r.get("races"):
        return fmt.RACING_STYLE
    return "yellow" if r.get("anomalies") else None


def _services(r: dict) -> str:
    if r["trace_id"] is None:
        return "every trace"
    return ", ".join(r["services"] or [])


COLUMNS = [
    Column("marks", "", 3, text=_marks, style=_mark_style, sortable=False),
    Column("label", "trace", 8, text=lambda r: r["label"] if r["trace_id"] is None else fmt.short_id(r["trace_id"]),
           style=lambda r: "bold" if r["trace_id"] is None else None, sort_key=lambda r: r["trace_id"] or ""),
    Column("events", "events", 6, align="right", text=lambda r: "" if r["events"] is None else f"{r['events']:,}",
           sort_key=lambda r: -(r["events"] or 0), priority=1),
    Column("duration_ms", "ms", 7, align="right",
           text=lambda r: "" if r["duration_ms"] is None else fmt.ms(r["duration_ms"], 1),
           sort_key=lambda r: -(r["duration_ms"] or 0.0), priority=3),
    Column("races", "races", 5, align="right", text=lambda r: "" if r.get("races") is None else f"{r['races']:,}",
           style=lambda r: fmt.RACING_STYLE if r.get("races") else None, sort_key=lambda r: -(r.get("races") or 0),
           priority=4),  # the marks say it too
    Column("services", "services", None, text=_services, style=lambda r: "dim" if r["trace_id"] is None else None,
           sort_key=lambda r: ",".join(r["services"] or []), priority=2),
]


class TraceList(Vertical):
    """Enter (or a click) chooses a trace; posts Chosen(trace_id or None for all)."""

    BINDINGS = [Binding("f", "filter", "Filter"),
                Binding("escape", "clear_filter", "Clear filter", show=False)]

    class Chosen(Message):
        def __init__(self, trace_id: str | None) -> None:
            super().__init__()
            self.trace_id = trace_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[dict] = []
        self.chosen: str | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: id, service…", id="trace-filter")
        yield VirtualTable(COLUMNS, sortable=True, pinned=lambda r: r["trace_id"] is None,
                           empty="Loading…", id="trace-table")  # the list shows "All" once loaded

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#trace-table", VirtualTable)

    def set_traces(self, traces: pa.Table | list[dict] | None) -> None:
        """Show these traces: an Arrow table, or its rows already as dicts (made off the UI thread)."""
        rows = traces if isinstance(traces, list) else (traces.to_pylist() if traces is not None else [])
        for r in rows:
            r["label"] = r["trace_id"]
        self.rows = rows
        self._show(keep=True)

    def _show(self, keep: bool = False) -> None:
        q = self.query_one("#trace-filter", Input).value.strip().lower()
        rows = [r for r in self.rows
                if not q or q in r["trace_id"].lower() or any(q in (s or "").lower() for s in r.get("services") or [])]
        table = self.table
        current, offset = table.row(), table.cursor - round(table.scroll_y)
        total = sum(r["events"] for r in self.rows)
        items = [dict(ALL, events=total)] + rows
        table.set_rows(items, cursor=0)
        if keep and current is not None:
            i = table.find(lambda r: r["trace_id"] == current["trace_id"])
            if i is not None:  # the same row, at the same height on screen
                table.scroll_to(y=max(0, i - offset), animate=False, immediate=True)
                table.move_to(i)

    def select(self, trace_id: str | None) -> None:
        """Put the cursor on a trace (without posting Chosen)."""
        self.chosen = trace_id
        i = self.table.find(lambda r: r["trace_id"] == trace_id)
        if i is not None:
            self.table.move_to(i)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        if event.row is not None:
            self.chosen = event.row["trace_id"]
            self.post_message(self.Chosen(event.row["trace_id"]))

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()

    def action_filter(self) -> None:
        self.query_one("#trace-filter", Input).focus()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "clear_filter":  # Esc elsewhere is the app's "back"
            return self.query_one("#trace-filter", Input).has_focus
        return True

    def action_clear_filter(self) -> None:
        self.query_one("#trace-filter", Input).value = ""
        self.table.focus()
