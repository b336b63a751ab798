"""Pane 7: potential deadlocks. One row per context of each lock cycle found (who holds
what, where, and what it waits for), then the cycles ruled out and why; Enter jumps
to the acquisition in the timeline with the held lock's acquire highlighted.

Lock ids are global, so the pane always covers all traces."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from raceway_core.report import deadlock_document
from raceway_tui import format as fmt
from raceway_tui.panes.base import Pane, PaneScroll
from raceway_tui.widgets.table import Column, VirtualTable

SUPPRESSED_STYLE = "grey62"


def visible(value) -> str:
    """Lock ids, contexts and locations as typed, control characters shown as escapes."""
    s = "" if value is None else str(value)
    return s if s.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def _cycle(r: dict) -> str:
    return " → ".join(map(visible, r["locks"] + r["locks"][:1])) if r["first"] else ""


COLUMNS = [
    Column("severity", "severity", 10, text=lambda r: (r["severity"] if r["type"] == "cycle" else "ruled out")
           if r["first"] else "",
           style=lambda r: fmt.SEVERITY_STYLE.get(r["severity"]) if r["type"] == "cycle" else SUPPRESSED_STYLE),
    Column("cycle", "lock cycle", 24, text=_cycle),
    Column("context", "context", 22, keep_end=True, text=lambda r: visible(r.get("context"))),
    Column("holds", "holds · at", None,
           text=lambda r: visible(f"{r['holding']}  {fmt.location(r['holding_location'], 1) or '?'}")
           if r["type"] == "cycle" else visible("; ".join(r["reasons"]))),
    Column("wants", "waits for · at", None,
           text=lambda r: visible(f"{r['acquiring']}  {fmt.location(r['acquiring_location'], 1) or '?'}")
           if r["type"] == "cycle" else ""),
]


def rows_of(doc: dict) -> list[dict]:
    rows = []
    for gi, g in enumerate(doc["groups"]):
        for i, e in enumerate(g["example"]):
            rows.append({"type": "cycle", "g": gi, "first": i == 0, "locks": g["locks"], "severity": g["severity"],
                         **e})
    for s in doc["suppressed"]:
        rows.append({"type": "suppressed", "first": True, "locks": s["locks"], "severity": None,
                     "reasons": s["reasons"]})
    return rows


def describe(doc: dict, row: dict) -> Group:
    """Why a cycle is a potential deadlock (or why it was ruled out), with every site."""
    if row["type"] == "suppressed":
        return Group(Text(visible("Lock cycle " + " → ".join(row["locks"] + row["locks"][:1]) + ": not reported, "
                                  + "; ".join(row["reasons"]) + "."), style=SUPPRESSED_STYLE))
    g = doc["groups"][row["g"]]
    ex = g["example"]
    parts = [Text("Potential deadlock: ", style="bold") + Text(visible(
        ", while ".join(f"{e['context']} holds {e['holding']} and waits for {e['acquiring']}" for e in ex))
        + ". No acquisition here happens before another (program order, spawns, joins and calls; "
          "the locks' own hand-offs do not count) and no lock is held across them.")]
    parts.append(Text("Sites (holding → acquiring, instances):", style="bold"))
    for e, n in zip(g["edges"], g["instances"]):
        parts.append(Text(visible(f"  {e['holding']} → {e['acquiring']}: {n:,} acquisitions"), style="grey70"))
        for s in e["sites"]:
            parts.append(Text(visible(f"    {s['holding_location'] or '?'} → {s['acquiring_location'] or '?'}"
                                      f"  ×{s['count']:,}")))
    parts.append(Text("Enter: show the acquisition in the timeline (the held lock's acquire highlighted)",
                      style="dim italic"))
    return Group(*parts)


class DeadlocksPane(Pane):
    title = "Deadlocks"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.follow = self.debounced(self._describe)

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="deadlocks-summary")
        yield VirtualTable(COLUMNS, empty="No lock cycles.", id="deadlocks-table")
        with PaneScroll(id="deadlock-detail-box"):
            yield Static(id="deadlock-detail")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#deadlocks-table", VirtualTable)

    def focus_main(self) -> None:
        self.table.focus()

    def current_key(self) -> tuple:
        app = self.app
        return (None, app.gen, app.analysed)  # all traces whatever the scope: lock ids are global

    def fetch(self, session, key: tuple) -> dict:
        return deadlock_document(session.deadlocks())

    def show_data(self, doc: dict) -> None:
        n, ruled = doc["count"], len(doc["suppressed"])
        self.query_one("#deadlocks-summary", Static).update(Text.assemble(
            (f"{n:,} potential deadlocks", "bold red" if n else "bold green"),
            f" (lock cycles) · {ruled:,} ruled out · {len(doc['lock_order']):,} lock-order edges · scope: ",
            ("all traces", "bold")))
        self.table.set_rows(rows_of(doc), cursor=0,
                            empty="No lock cycles: no context takes locks in an order another reverses.")
        self.query_one("#deadlock-detail", Static).update("")

    def view_table(self):
        import pyarrow as pa

        rows = rows_of(self.data) if self.data else []
        return pa.Table.from_pylist([{k: v for k, v in r.items() if k not in ("first", "g")} for r in rows]) \
            if rows else None

    def main_table(self):
        return self.table

    def row_key(self, row: dict):
        return (tuple(row["locks"]), row["type"], row.get("holding"))

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        self.follow(event.row)  # once the keys stop

    def _describe(self, row: dict | None) -> None:
        detail = self.query_one("#deadlock-detail", Static)
        detail.update(describe(self.data, row) if row is not None and self.data else "")

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        r = event.row
        if r is not None and r["type"] == "cycle":
            self.app.jump_to(r["acquiring_event"], partner=r["holding_event"], trace_id=r["trace_id"])
