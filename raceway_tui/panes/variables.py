"""Pane 4: variables with access and race counts; the selected one's audit trail."""

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
from raceway_tui.widgets.lines import FollowLines
from raceway_tui.widgets.table import Column, VirtualTable

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa

VAR_COLUMNS = [
    Column("variable", "variable", None),
    Column("accesses", "acc", 4, align="right", sort_key=lambda r: -r["accesses"], priority=1),
    Column("writes", "W", 3, align="right", sort_key=lambda r: -r["writes"], priority=2),

    Column("races", "races", 5, align="right", style=lambda r: fmt.RACING_STYLE if r["races"] else None,
           sort_key=lambda r: -r["races"]),
]


def _link(r: dict) -> str:
    if r["after_previous"] is None:
        return "first"
    return "→ ordered" if r["after_previous"] else "∥ concurrent"


def _change(r: dict) -> str:
    if fmt.access_letter(r["access"]) == "W":
        return f"{fmt.value(r['old_value'], 7)} → {fmt.value(r['new_value'], 7)}"
    v = r["new_value"] if r["new_value"] is not None else r["old_value"]
    return f"= {fmt.value(v, 14)}"


AUDIT_COLUMNS = [  # the location and the values in full are in the detail panel
    Column("step", "#", 3, align="right", priority=2),
    Column("access", "R/W", 3, text=lambda r: fmt.access_letter(r["access"]),
           style=lambda r: "bold" if fmt.access_letter(r["access"]) == "W" else None),
    Column("change", "old → new", 16, text=_change),
    Column("link", "after prev.", 12, text=_link, priority=1,
           style=lambda r: "red" if r["after_previous"] is False else ("green" if r["after_previous"] else "dim")),
    Column("racing", "race", 4, text=lambda r: "RACE" if r["racing"] else "",
           style=lambda r: fmt.RACING_STYLE if r["racing"] else None),
    Column("context", "context", None, text=lambda r: fmt.context_label(r["service"], r["thread_id"]), keep_end=True),
]


class VariablesPane(Pane):
    title = "Variables"
    BINDINGS = [Binding("escape", "back_to_variables", "Variables", show=False)]

    class AuditLoaded(Message):
        def __init__(self, key: tuple, variable: str, table: pa.Table | None, error: str | None = None,
                     racing: int = 0, concurrent: int = 0) -> None:
            super().__init__()
            self.key, self.variable, self.table, self.error = key, variable, table, error
            self.racing, self.concurrent = racing, concurrent  # counted in the worker

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.variable: str | None = None
        self.audit: pa.Table | None = None
        self.follow = self.debounced(self._audit_of)
        self.wanted: str | None = None  # a variable to open when the data arrives (from Hotspots)

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        with Horizontal():
            yield VirtualTable(VAR_COLUMNS, sortable=True, empty="No state changes.", id="variables-table")
            with Vertical(id="audit-box"):
                yield FollowLines(id="audit-title")
                yield VirtualTable(AUDIT_COLUMNS, empty="Select a variable.", id="audit-table")

    @property
    def variables(self) -> VirtualTable:
        return self.query_one("#variables-table", VirtualTable)

    @property
    def trail(self) -> VirtualTable:
        return self.query_one("#audit-table", VirtualTable)

    def focus_main(self) -> None:
        self.variables.focus()

    def fetch(self, session, key: tuple) -> pa.Table:
        return session.variables(trace_id=key[0])

    def main_table(self):
        return self.variables

    def current_event(self):
        row = self.trail.row() if self.audit is not None else None
        return (row["event_id"], None) if row is not None else None

    def row_key(self, row: dict):
        return row.get("variable")

    def show_data(self, data: pa.Table) -> None:
        self.variable = None
        self.variables.set_rows(data, cursor=0)
        if data.num_rows == 0:
            self.trail.set_rows(None, empty="No variables in this scope.")
            self.query_one("#audit-title", FollowLines).show(Text(""), shrink=True)
        self._open_wanted()

    def show_variable(self, name: str) -> None:
        """Open a variable's audit trail (now, or when the variables arrive)."""
        self.wanted = name
        if self.ready and self.data is not None:
            self._open_wanted()

    def _open_wanted(self) -> None:
        name, self.wanted = self.wanted, None
        if name is None:
            return
        i = self.variables.find(lambda r: r["variable"] == name)
        if i is None:
            self.app.notify(f"No variable {name} in this scope.", timeout=4)
            return
        self.variables.move_to(i)  # its audit trail loads
        self.trail.focus()

    def view_table(self):
        return self.audit if self.audit is not None and self.trail.has_focus else self.data

    # -- the audit trail -----------------------------------------------------------------
    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if event.table is self.variables:
            if event.row is not None and event.row["variable"] != self.variable:
                self.variable = event.row["variable"]
                self.follow(self.variable)  # once the keys stop
        elif event.row is not None:
            self.app.event_focused(event.row["event_id"], None)

    def _audit_of(self, variable: str) -> None:
        if variable != self.variable:
            return
        self.query_one("#audit-title", FollowLines).show(literal(f"Audit trail of {variable}: loading…", style="dim"))
        self._fetch_audit(self.app.session, self._key, variable, self.app.scope)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        if event.table is self.variables:
            self.follow.flush()
            self.trail.focus()
        elif event.row is not None:
            self.app.jump_to(event.row["event_id"], trace_id=self.app.scope)

    @work(thread=True, exclusive=True, group="audit", exit_on_error=False)
    def _fetch_audit(self, session, key: tuple, variable: str, trace_id: str | None) -> None:
        racing = concurrent = 0
        try:
            t, error = session.audit(variable, trace_id=trace_id), None
            # here, not on the UI thread: a hot variable of a big store has many accesses
            import pyarrow as pa
            import pyarrow.compute as pc

            t = t.append_column("step", pa.array(range(1, t.num_rows + 1), pa.int64()))
            racing = pc.sum(pc.fill_null(t["racing"], False).cast(pa.int64())).as_py() or 0
            concurrent = pc.sum(pc.equal(t["after_previous"], False).fill_null(False).cast(pa.int64())).as_py() or 0
        except Exception as exc:
            t, error = None, str(exc)
        if not get_current_worker().is_cancelled:
            self.post_message(self.AuditLoaded(key, variable, t, error, racing, concurrent))

    def on_variables_pane_audit_loaded(self, msg: AuditLoaded) -> None:
        msg.stop()
        if msg.key != self._key or msg.variable != self.variable:
            return
        if msg.error:
            self.app.notify(f"Audit trail: {msg.error}", severity="error")
            return
        t = msg.table
        self.audit = t
        races, conc = msg.racing, msg.concurrent
        self.query_one("#audit-title", FollowLines).show(Text.assemble(
            ("Audit trail of ", "bold"), literal(msg.variable, "bold yellow"),
            f"  {fmt.count(t.num_rows, 'access')} in causal order · {conc:,} not ordered after the previous one · ",
            (f"{races:,} racing", fmt.RACING_STYLE if races else "")))
        self.trail.set_rows(t, cursor=0)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "back_to_variables":
            return self.trail.has_focus
        return True

    def action_back_to_variables(self) -> None:
        self.variables.focus()
