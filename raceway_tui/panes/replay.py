"""Pane p: replay the chosen trace step by step in causal order (the timeline's order):
the current event, each variable's value at that point, the live contexts, and a race's
accesses highlighted (with the partner) as the replay passes them. The state of a step
comes from the core's arrays (no query); the steps list fetches a chunk at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Static

from raceway_tui import format as fmt
from raceway_tui.literal import literal
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.lazy import CHUNK, LazyRows, LazyTable
from raceway_tui.widgets.table import Column, VirtualTable

SPEEDS = (1, 2, 4, 8, 16, 32, 64)  # steps per second
LIVE_SHOWN = 12  # live contexts listed; the rest counted


def _step_style(pane: "ReplayPane"):
    def style(r: dict) -> str | None:
        if r["step"] in pane.partners:
            return "bold reverse dark_orange"
        return fmt.event_style(r)
    return style


def _value(v) -> str:
    return fmt.value(v, 40)


VAR_COLUMNS = [
    Column("variable", "variable", None, sortable=False),
    Column("value", "value", 16, sortable=False,
           text=lambda r: _value(r["value"]) if r["written_step"] is not None
           else (f"(read {_value(r['seen'])})" if r["last_step"] is not None else "—"),
           style=lambda r: "bold yellow" if r["changed"] else (None if r["written_step"] is not None else "grey50")),
    Column("written_step", "at", 6, align="right", sortable=False,
           text=lambda r: "" if r["written_step"] is None else f"#{r['written_step']}"),
    Column("writer", "by", 14, keep_end=True, priority=1, sortable=False, text=lambda r: r["writer"] or ""),
]


@dataclass
class ReplayData:
    trace_id: str | None
    replay: Any = None  # raceway_core.analysis.replay.Replay
    first: list[dict] | None = None


class ReplayPane(Pane):
    title = "Replay"
    DEFAULT_CSS = """
    #replay-status, #replay-current { height: auto; padding: 0 1; }
    #replay-body { height: 1fr; }
    #replay-steps { width: 3fr; }
    #replay-side { width: 2fr; border-left: vkey $panel-lighten-2; }
    #replay-vars { height: 1fr; }
    #replay-live { height: auto; max-height: 50%; padding: 0 1; }
    """
    BINDINGS = [
        Binding("space", "play", "Play/pause"),
        Binding("right,l", "step(1)", "Step", show=False),
        Binding("left,h", "step(-1)", "Back", show=False),
        Binding("plus,equals_sign", "speed(1)", "Faster"),
        Binding("minus", "speed(-1)", "Slower"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.replay = None
        self.step = 0
        self.playing = False
        self.speed = 2  # index into SPEEDS
        self.partners: set[int] = set()  # race partners of the current step (highlighted)
        self.current_state = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="replay-status")
        yield Static(id="replay-current")
        with Horizontal(id="replay-body"):
            yield LazyTable(self._step_columns(), empty="No steps.", id="replay-steps")
            with Vertical(id="replay-side"):
                yield VirtualTable(VAR_COLUMNS, empty="No variables in this trace.", id="replay-vars")
                yield Static(id="replay-live")

    def _step_columns(self) -> list[Column]:
        return [
            Column("step", "#", 6, align="right", sortable=False),
            Column("mark", "", 1, sortable=False, text=lambda r: "◆" if r["racing"] else " ",
                   style=lambda r: fmt.RACING_STYLE),
            Column("context", "context", 16, keep_end=True, priority=2, sortable=False),
            Column("what", "event", None, sortable=False,
                   text=lambda r: f"{fmt.KIND_SHORT.get(r['kind'], r['kind'])} {fmt.summary(r)}",
                   style=_step_style(self)),
        ]

    @property
    def steps_table(self) -> LazyTable:
        return self.query_one("#replay-steps", LazyTable)

    @property
    def vars_table(self) -> VirtualTable:
        return self.query_one("#replay-vars", VirtualTable)

    def focus_main(self) -> None:
        self.steps_table.focus()

    # -- data --------------------------------------------------------------------------
    def fetch(self, session, key: tuple) -> ReplayData:
        trace_id = key[0]
        if trace_id is None:
            return ReplayData(None)
        rep = session.replay(trace_id)
        return ReplayData(trace_id, rep, rep.page(0, CHUNK).to_pylist() if rep.steps else None)

    def show_data(self, data: ReplayData) -> None:
        same = self.same_view and self.replay is not None and data.replay is not None \
            and self.replay.trace_id == data.replay.trace_id
        resume = same and self.playing  # new events (live mode) do not stop a replay
        self.pause()
        self.replay = data.replay
        if data.trace_id is None or not data.replay.steps:
            self.current_state, self.partners = None, set()
            msg = ("Choose a trace (t): the replay steps through one trace." if data.trace_id is None
                   else "The trace has no events.")
            self.query_one("#replay-status", Static).update(Text(msg, style="yellow"))
            self.query_one("#replay-current", Static).update("")
            self.query_one("#replay-live", Static).update("")
            self.steps_table.set_rows([], empty=msg)
            self.vars_table.set_rows([])
            return
        rep = data.replay
        step = min(self.step, rep.steps - 1) if same else 0
        self.steps_table.set_rows(LazyRows(rep.steps, lambda start, count: rep.page(start, count).to_pylist(),
                                           data.first), cursor=step)
        self._at(step)
        if resume:
            self.action_play()

    # -- stepping ----------------------------------------------------------------------
    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if event.table.id != "replay-steps" or event.row is None or self.replay is None:
            return
        self._at(event.index)  # (no detail panel here: the current event is shown above)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        if event.table.id == "replay-steps" and event.row is not None:
            self.pause()
            self.app.jump_to(event.row["id"], trace_id=self.app.scope)

    def _at(self, step: int) -> None:
        """Show the state at ``step`` (the steps table's cursor is there already)."""
        rep = self.replay
        self.step = step
        st = rep.state(step)
        self.current_state = st
        old = self.partners
        self.partners = set(st.races["partner_step"].to_pylist())
        for s in old | self.partners:  # the highlight moves with the cursor
            self.steps_table._refresh_row(s)
        vt = self.vars_table
        vt.set_rows(st.variables, cursor=None)
        changed = st.variables["changed"].to_pylist()
        if True in changed:
            vt.move_to(changed.index(True))
        self._show_status()
        self._show_current(st)
        self._show_live(st)

    def _show_status(self) -> None:
        rep = self.replay
        n = rep.steps
        done = (self.step + 1) / n
        width = 30
        filled = round(done * width)
        self.query_one("#replay-status", Static).update(Text.assemble(
            ("Replay ", "bold"), literal(fmt.short_id(rep.trace_id, 12), "bold"),
            f"  step {self.step:,} of {n - 1:,}  ",
            ("▶ playing" if self.playing else "⏸ paused", "bold green" if self.playing else "bold"),
            f" · {SPEEDS[self.speed]} steps/s  ",
            ("█" * filled + "░" * (width - filled), "cyan"),
            (f"  ◆ the first {rep.pairs_marked:,} of {rep.pairs_total:,} racing pairs marked"
             if rep.pairs_marked < rep.pairs_total else "", "yellow"),
            ("\nspace play/pause · ←/→ step · +/- speed · home/end · Enter: timeline", "dim")))

    def _show_current(self, st) -> None:
        row = self.steps_table.row(self.step)
        out = Text()
        if row is not None:
            out.append(f"#{self.step} ", style="bold")
            out.append_text(literal(row["context"], "grey70"))
            out.append("  ")
            out.append_text(literal(f"{row['kind']}  {fmt.summary(row)}", fmt.event_style(row)))
            if row.get("location"):
                out.append_text(literal(f"  {fmt.location(row['location'])}", "grey62"))
        for r in st.races.to_pylist():
            side = "earlier" if r["partner_first"] else "later"
            out.append("\n◆ RACE ", style=fmt.RACING_STYLE)
            out.append(f"{r['severity']} {r['kind']} on ", style="dark_orange")
            out.append_text(literal(r["variable"], "bold"))
            out.append(f" with step #{r['partner_step']} ({side}) ", style="dark_orange")
            out.append_text(literal(f"{r['partner_context']}  {fmt.short_id(r['partner_id'])}", "grey70"))
        self.query_one("#replay-current", Static).update(out)

    def _show_live(self, st) -> None:
        live = st.live.to_pylist()
        out = Text(f"Live contexts: {len(live):,}\n", style="bold")
        for r in live[:LIVE_SHOWN]:
            out.append("▶ " if r["current"] else "  ", style="bold green")
            out.append_text(literal(r["context"], "bold" if r["current"] else ""))
            out.append(f"  {r['done']}/{r['events']} events, #{r['first_step']}–#{r['last_step']}\n", style="grey62")
        if len(live) > LIVE_SHOWN:
            out.append(f"  … {len(live) - LIVE_SHOWN:,} more\n", style="grey62")
        self.query_one("#replay-live", Static).update(out)

    def action_step(self, delta: int) -> None:
        if self.replay is None or not self.replay.steps:
            return
        self.pause()
        self.steps_table.move_to(max(0, min(self.replay.steps - 1, self.step + delta)))

    # -- playing -------------------------------------------------------------------------
    def action_play(self) -> None:
        if self.replay is None or not self.replay.steps:
            return
        if self.playing:
            self.pause()
            return
        if self.step >= self.replay.steps - 1:
            self.steps_table.move_to(0)  # from the start again
        self.playing = True
        self._start_timer()
        self._show_status()

    def _start_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_interval(1 / SPEEDS[self.speed], self._tick)

    def pause(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.playing:
            self.playing = False
            if self.replay is not None and self.replay.steps:
                self._show_status()

    def _tick(self) -> None:
        if not self.playing or self.replay is None or self.app.active_pane != "replay":
            self.pause()
            return
        if self.step >= self.replay.steps - 1:
            self.pause()
            return
        self.steps_table.move_to(self.step + 1)

    def action_speed(self, delta: int) -> None:
        self.speed = max(0, min(len(SPEEDS) - 1, self.speed + delta))
        if self.playing:
            self._start_timer()
        if self.replay is not None and self.replay.steps:
            self._show_status()

    # -- export and the detail panel -----------------------------------------------------
    def current_event(self):
        row = self.steps_table.row() if self.replay is not None else None
        return (row["id"], row) if row is not None else None

    def view_table(self):
        return self.current_state.variables if self.current_state is not None else None
