"""Pane 6: service -> service calls with counts and latency, and a small text graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from raceway_tui import format as fmt
from raceway_tui.literal import visible
from raceway_tui.panes.base import Pane, PaneScroll
from raceway_tui.widgets.table import Column, VirtualTable

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa

COLUMNS = [
    Column("from", "from", None),
    Column("to", "to", None),
    Column("calls", "calls", 7, align="right", sort_key=lambda r: -r["calls"]),

    Column("mean_ms", "mean ms", 9, align="right", text=lambda r: fmt.ms(r["mean_ms"]),
           sort_key=lambda r: -(r["mean_ms"] or 0), priority=2),
    Column("p95_ms", "p95 ms", 9, align="right", text=lambda r: fmt.ms(r["p95_ms"]),
           sort_key=lambda r: -(r["p95_ms"] or 0), priority=1),
]


def graph(rows: list[dict]) -> Text:
    """Each root service with its callees indented below it (a call tree; cycles cut)."""
    out = Text()
    if not rows:
        out.append("No calls between services in this scope.", style="dim")
        return out
    callees: dict[str, list[dict]] = {}
    called = set()
    for r in rows:
        callees.setdefault(r["from"], []).append(r)
        called.add(r["to"])
    roots = [s for s in callees if s not in called] or sorted(callees)[:1]

    def walk(service: str, prefix: str, path: set[str]) -> None:
        kids = callees.get(service, [])
        for i, r in enumerate(kids):
            last = i == len(kids) - 1
            out.append(prefix + ("└─▶ " if last else "├─▶ "), style="grey62")
            out.append(visible(r["to"]), style="bold")
            out.append(f"  {r['calls']:,} call{'s' if r['calls'] != 1 else ''} · mean {fmt.ms(r['mean_ms'])} ms"
                       f" · p95 {fmt.ms(r['p95_ms'])} ms", style="dodger_blue1")
            if r["to"] in path:
                out.append("  (cycle)\n", style="yellow")
                continue
            out.append("\n")
            walk(r["to"], prefix + ("    " if last else "│   "), path | {r["to"]})

    for root in sorted(roots):
        out.append(visible(root) + "\n", style="bold")
        walk(root, "", {root})
    return out


class DependenciesPane(Pane):
    title = "Dependencies"

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield VirtualTable(COLUMNS, sortable=True, empty="No service dependencies.", id="deps-table")
        with PaneScroll(id="deps-graph-box"):
            yield Static(id="deps-graph")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#deps-table", VirtualTable)

    def focus_main(self) -> None:
        self.table.focus()

    def fetch(self, session, key: tuple) -> pa.Table:
        return session.dependencies(trace_id=key[0])

    def main_table(self):
        return self.table

    def row_key(self, row: dict):
        return (row.get("from"), row.get("to"))

    def show_data(self, data: pa.Table) -> None:
        self.table.set_rows(data, cursor=0, empty="No calls between services in this scope.")
        self.query_one("#deps-graph", Static).update(graph(data.to_pylist()))

    def view_table(self):
        return self.data

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
