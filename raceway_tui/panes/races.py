"""Pane 3: race groups, expandable to their pairs; the selected pair side by side with
vector clocks, lock sets and the engine's explanation of why they are concurrent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from raceway_tui import format as fmt
from raceway_tui.literal import literal
from raceway_tui.panes.base import Pane, PaneScroll
from raceway_tui.widgets.table import Column, VirtualTable

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa


PAIR_LIMIT = 200


def _c0(r):
    if r["type"] == "group":
        return "▾" if r["expanded"] else "▸"
    return "  ·" if r["type"] == "pair" else ""


def _race_text(r):
    if r["type"] == "group":
        return (f"{r['variable']}   {fmt.location(r['first_location'], 1) or '?'} ↔ "
                f"{fmt.location(r['second_location'], 1) or '?'}")
    if r["type"] == "pair":
        return (f"{fmt.short_id(r['first_id'])} {fmt.short_id(r['first_thread'], 18)} {fmt.access_letter(r['first_access'])}"
                f"  ↔  {fmt.short_id(r['second_id'])} {fmt.short_id(r['second_thread'], 18)} "
                f"{fmt.access_letter(r['second_access'])}"
                + ("   (cross-trace)" if r["first_trace"] != r["second_trace"] else ""))
    return r["text"]


COLUMNS = [
    Column("c0", "", 3, text=_c0),
    Column("severity", "severity", 8, text=lambda r: r["severity"] if r["type"] == "group" else "",
           style=lambda r: fmt.SEVERITY_STYLE.get(r.get("severity")), priority=1),
    Column("kind", "kind", 11, priority=2, text=lambda r: r["kind"] if r["type"] == "group" else (f"#{r['n']}" if r["type"] == "pair" else "")),
    Column("race", "variable · locations / pair", None, text=_race_text,
           style=lambda r: "dim" if r["type"] == "more" else None),
    Column("count", "pairs", 8, align="right", text=lambda r: f"{r['count']:,}" if r["type"] == "group" else ""),
]


@dataclass
class RaceData:
    pair_count: int
    groups: list[dict]
    trace_id: str | None  # the scope the groups were computed for
    variable_scope: str = "auto"  # what one variable is (engine option)


def side_panel(title: str, rec: dict, style: str, other: dict) -> Group:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold grey70", no_wrap=True)
    t.add_column(overflow="fold")
    access = rec.get("access") or "?"
    t.add_row("event", literal(rec["id"], style="bold"))
    t.add_row("trace", literal(fmt.short_id(rec.get("trace_id"), 13)))
    t.add_row("context", literal(fmt.context_label(rec.get("service"), rec.get("thread_id"))))
    change = (f"{fmt.value(rec.get('old_value'))} → {fmt.value(rec.get('new_value'))}" if access in fmt.WRITES
              else fmt.value(rec.get("new_value") if rec.get("new_value") is not None else rec.get("old_value")))
    t.add_row("access", literal(f"{access} {rec.get('variable')}  {change}", style=fmt.RACING_STYLE))
    t.add_row("location", literal(fmt.location(rec.get("location"), 3) or "-"))
    t.add_row("time", literal(fmt.timestamp(rec.get("timestamp"))))
    # its own context and the partner's first: how far each knows the other is the point
    focus = [fmt.context_label(r.get("service"), r.get("context")) for r in (rec, other)]
    t.add_row("clock", literal(fmt.clock_text(rec.get("vector_clock"), focus, limit=6)))
    locks = rec.get("held_locks")
    t.add_row("locks", literal(", ".join(locks) if locks else "∅ (no lock held)"))
    return Group(Text(title, style=style), t)


def explanation(why) -> Group:
    parts = [Text("Why they race: ", style="bold") + literal(why.text)]
    for s in why.steps:
        parts.append(literal(f"  • {s['text']}", style="grey70"))
    return Group(*parts)


class RacesPane(Pane):
    title = "Races"
    BINDINGS = [
        Binding("right_square_bracket", "next_race", "Next race"),
        Binding("left_square_bracket", "prev_race", "Prev race"),
        Binding("space,l,right", "toggle", "Expand"),
        Binding("h,left", "collapse", "Collapse", show=False),
        Binding("s", "scope", "Scope"),
        Binding("v", "variable_scope", "Variables"),
    ]

    class Expanded(Message):
        """Pairs of groups (index -> pairs); ``then`` says where the cursor goes (see _after_expand)."""

        def __init__(self, key: tuple, pairs: dict[int, list[dict]], then: str | None, focus: int | None,
                     error: str | None = None) -> None:
            super().__init__()
            self.key, self.pairs, self.then, self.focus, self.error = key, pairs, then, focus, error

    class PairLoaded(Message):
        def __init__(self, ids: tuple[str, str], a: dict | None, b: dict | None, why, error: str | None = None) -> None:
            super().__init__()
            self.ids, self.a, self.b, self.why, self.error = ids, a, b, why, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.all_traces = False  # scope: False = the chosen trace, True = all traces
        self.groups: list[dict] = []
        self.expanded: dict[int, list[dict]] = {}
        self.pair: tuple[str, str] | None = None
        self._restore_pair: tuple[str, str] | None = None  # the pair selected before a refresh
        self.follow = self.debounced(self._show_pair)
        # [ and ] pressed while an expansion is fetched (or the groups load) wait for it: each
        # press moves from where the previous one lands, not from the row before it
        self._moving = False  # a [ or ] waits for its group's pairs
        self._queued: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="races-summary")
        yield VirtualTable(COLUMNS, empty="No races.", id="races-table")
        with PaneScroll(id="pair-detail"):
            yield Static(id="race-why")
            with Horizontal(id="pair-sides"):
                yield Static(id="race-a")
                yield Static(id="race-b")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#races-table", VirtualTable)

    def focus_main(self) -> None:
        self.table.focus()

    def scope_trace(self) -> str | None:
        return None if self.all_traces else self.app.scope

    def extra_key(self) -> tuple:
        return (self.all_traces,)

    # -- data --------------------------------------------------------------------------------
    def fetch(self, session, key: tuple) -> RaceData:
        trace_id = None if key[-1] else key[0]
        rep = session.races(trace_id=trace_id, max_pairs=0)
        return RaceData(rep.pair_count, rep.groups.to_pylist(), trace_id, session.options.variable_scope)

    def show_data(self, data: RaceData) -> None:
        # a refresh (new events) opens again the groups that were open, and finds the pair again
        was_open = {_group_key(self.groups[g]) for g in self.expanded if g < len(self.groups)} \
            if self.same_view else set()
        cur = self.table.row()
        self._restore_pair = (cur["first_id"], cur["second_id"]) if was_open and cur and cur["type"] == "pair" \
            else None
        self.groups = data.groups
        self.expanded = {}
        scope = "all traces" if data.trace_id is None else f"trace {fmt.short_id(data.trace_id)}"
        crit = sum(g["count"] for g in data.groups if g["severity"] == "critical")
        self.query_one("#races-summary", Static).update(Text.assemble(
            (f"{fmt.count(data.pair_count, 'racing pair')} in {fmt.count(len(data.groups), 'group')}",
             "bold dark_orange" if data.pair_count else "bold green"),
            f" ({crit:,} write-write, critical) · scope: ", literal(scope, "bold"),
            " · variables: ", literal(data.variable_scope, "bold")))
        self._moving = False  # a fetch for the previous data: its result is dropped
        self._rebuild(cursor=0, empty="No races in this scope." if data.trace_id else "No races found.")
        if not self.groups:
            self.follow.cancel()
            self._show_pair(None)
        reopen = {gi: g for gi, g in enumerate(self.groups) if _group_key(g) in was_open}
        if reopen:
            self._moving = True  # the keys wait for the groups to open again
            self._fetch_pairs(self.app.session, self._key, reopen, self.scope_trace(), "keep", None)
        else:
            self.call_after_refresh(self._run_queued)  # keys pressed while the groups loaded

    def view_table(self) -> pa.Table | None:
        import pyarrow as pa

        return pa.Table.from_pylist(self.groups) if self.groups else None

    def main_table(self):
        return self.table

    def row_key(self, row: dict):
        # a group (pairs are collapsed by a refresh: the cursor goes back to their group)
        if row.get("type") == "more":
            return None
        return (row.get("variable"), row.get("kind"), row.get("first_location"), row.get("second_location"))

    def _rebuild(self, cursor: int | None, empty: str | None = None) -> None:
        rows = []
        for gi, g in enumerate(self.groups):
            rows.append({"type": "group", "g": gi, "p": -1, "expanded": gi in self.expanded, **g})
            pairs = self.expanded.get(gi)
            if pairs is not None:
                for pi, p in enumerate(pairs):
                    rows.append({"type": "pair", "g": gi, "p": pi, "n": pi + 1, **p})
                if g["count"] > len(pairs):
                    rows.append({"type": "more", "g": gi, "p": len(pairs),
                                 "text": f"… {fmt.count(g['count'] - len(pairs), 'more pair')} (stored pairs shown: "
                                         f"{len(pairs):,}; export for the list)"})
        self.table.set_rows(rows, cursor=cursor, empty=empty)

    def _index(self, g: int, p: int) -> int | None:
        return self.table.find(lambda r: r["g"] == g and r["p"] == p)

    # -- expanding and moving ------------------------------------------------------------
    def _expand(self, g: int, then: str | None = None) -> None:
        if g in self.expanded:
            self._after_expand(g, then)
            return
        self._fetch_pairs(self.app.session, self._key, {g: self.groups[g]}, self.scope_trace(), then, g)

    @work(thread=True, exclusive=True, group="pairs", exit_on_error=False)
    def _fetch_pairs(self, session, key, groups: dict[int, dict], trace_id, then, focus) -> None:
        from raceway_core.browse import group_pairs

        try:
            pairs = {g: group_pairs(session, grp, trace_id, PAIR_LIMIT).to_pylist() for g, grp in groups.items()}
            error = None
        except Exception as exc:
            pairs, error = {}, str(exc)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Expanded(key, pairs, then, focus, error))

    def on_races_pane_expanded(self, msg: Expanded) -> None:
        msg.stop()
        if msg.key != self._key:
            return
        self._moving = False
        if msg.error:
            self._queued.clear()
            self.app.notify(f"Races: {msg.error}", severity="error", markup=False)
            return
        cur = self.table.row()
        self.expanded.update(msg.pairs)
        self._rebuild(cursor=None)
        if msg.then == "keep":  # after a refresh: the row the cursor is on, or the pair it was on
            self._keep_cursor(cur)
        else:
            self._after_expand(msg.focus, msg.then)
        self._run_queued()

    def _run_queued(self) -> None:
        while self._queued and not self._moving and self.ready:
            self._step(self._queued.pop(0))

    def _keep_cursor(self, cur: dict | None) -> None:
        want, self._restore_pair = self._restore_pair, None
        if cur is None:
            return
        i = None
        if want is not None and cur["type"] == "group":
            i = self.table.find(lambda r: r["type"] == "pair" and (r["first_id"], r["second_id"]) == want)
        if i is None:
            i = self._index(cur["g"], cur["p"] if cur["type"] != "more" else -1)
        if i is not None:
            self.table.move_to(i)

    def _after_expand(self, g: int, then: str | None) -> None:
        pairs = self.expanded.get(g) or []
        if then == "first" and pairs:
            self.table.move_to(self._index(g, 0))
        elif then == "last" and pairs:
            self.table.move_to(self._index(g, len(pairs) - 1))
        else:
            self.table.move_to(self._index(g, -1))

    def _position(self) -> tuple[int, int] | None:
        r = self.table.row()
        if r is None:
            return None
        return r["g"], (r["p"] if r["type"] != "more" else len(self.expanded.get(r["g"], [])) - 1)

    def action_next_race(self) -> None:
        self._step("next")

    def action_prev_race(self) -> None:
        self._step("prev")

    def _step(self, direction: str) -> None:
        if self._moving or not self.ready:  # after the pairs (or the groups) being fetched
            self._queued.append(direction)
            return
        if direction == "toggle":
            self._toggle()
            return
        if direction == "collapse":
            self._collapse()
            return
        pos = self._position()
        if pos is None:
            return
        g, p = pos
        if direction == "next":
            pairs = self.expanded.get(g)
            if pairs is not None and p + 1 < len(pairs):
                self.table.move_to(self._index(g, p + 1))
            elif p == -1 and pairs is None:
                self._expand_moving(g, "first")
            elif g + 1 < len(self.groups):
                self._expand_moving(g + 1, "first")
            else:
                self.app.notify("No more races.", timeout=2)
        elif p > 0:
            self.table.move_to(self._index(g, p - 1))
        elif g > 0:
            self._expand_moving(g - 1, "last")
        else:
            self.app.notify("This is the first race.", timeout=2)

    def _expand_moving(self, g: int, then: str | None) -> None:
        if g not in self.expanded:
            self._moving = True  # cleared when the pairs arrive
        self._expand(g, then)

    def action_toggle(self) -> None:
        self._step("toggle")

    def action_collapse(self) -> None:
        self._step("collapse")

    def _toggle(self) -> None:
        r = self.table.row()
        if r is None:
            return
        g = r["g"]
        if g in self.expanded:
            self._collapse()
        else:
            self._expand_moving(g, None)

    def _collapse(self) -> None:
        r = self.table.row()
        if r is None or r["g"] not in self.expanded:
            return
        del self.expanded[r["g"]]
        self._rebuild(cursor=None)
        self.table.move_to(self._index(r["g"], -1))

    def action_scope(self) -> None:
        if self.app.scope is None:
            self.app.notify("Showing all traces; choose a trace to scope the races to it.", timeout=3)
            return
        self.all_traces = not self.all_traces
        self.sync()

    def action_variable_scope(self) -> None:
        """Cycle what one variable is (auto, global, service, instance) and analyse again."""
        from raceway_core.causality.raceinput import SCOPES

        app = self.app
        if app.session is None or not app.analysed:
            app.notify("The analysis is not ready yet.", timeout=3)
            return
        cur = app.session.options.variable_scope
        nxt = SCOPES[(SCOPES.index(cur) + 1) % len(SCOPES)] if cur in SCOPES else SCOPES[0]
        app.session.set_variable_scope(nxt)
        app.notify(f"Variable scope: {nxt}; analysing again", timeout=3)
        app._follow()

    # -- the selected pair ---------------------------------------------------------------------
    def _pair_of(self, r: dict | None) -> tuple[str, str] | None:
        if r is None:
            return None
        if r["type"] == "pair":
            return r["first_id"], r["second_id"]
        g = self.groups[r["g"]]
        return g["example_first"], g["example_second"]

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        self.follow(self._pair_of(event.row))  # once the keys stop

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        pair = self._pair_of(event.row)  # a group row jumps to its first pair
        if pair is not None:
            self.app.jump_to(pair[0], partner=pair[1])

    def _show_pair(self, pair: tuple[str, str] | None) -> None:
        if pair == self.pair:
            return
        self.pair = pair
        for w in ("#race-a", "#race-b", "#race-why"):
            self.query_one(w, Static).update("", layout=False)
        if pair is not None:
            self.query_one("#race-why", Static).update(Text("loading the pair…", style="dim"), layout=False)
            self._fetch_pair(self.app.session, pair)

    @work(thread=True, exclusive=True, group="pair", exit_on_error=False)
    def _fetch_pair(self, session, pair: tuple[str, str]) -> None:
        try:
            a, b = session.event(pair[0]), session.event(pair[1])
            why, error = session.explain(pair[0], pair[1]), None
        except Exception as exc:
            a = b = why = None
            error = str(exc)
        if not get_current_worker().is_cancelled:
            self.post_message(self.PairLoaded(pair, a, b, why, error))

    def on_races_pane_pair_loaded(self, msg: PairLoaded) -> None:
        msg.stop()
        if msg.ids != self.pair:
            return
        if msg.error:
            self.query_one("#race-why", Static).update(literal(msg.error, style="red"), layout=False)
            return
        # fixed sizes (app.tcss): showing another pair repaints them, without a layout of the screen
        self.query_one("#race-a", Static).update(side_panel("A · first access", msg.a, "bold", msg.b), layout=False)
        self.query_one("#race-b", Static).update(side_panel("B · second access", msg.b, "bold", msg.a), layout=False)
        self.query_one("#race-why", Static).update(explanation(msg.why), layout=False)


def _group_key(g: dict) -> tuple:
    return g["variable"], g["kind"], g["severity"], g["first_location"], g["second_location"]
