"""Pane c: the call tree of the chosen trace, a flame view in text: spawned tasks and
cross-service calls under what started them, each node with its duration and a bar
placed in its root's span. Nodes are drawn from the core's pre-order a chunk at a time."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from raceway_tui import format as fmt
from raceway_tui.literal import literal
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.lazy import CHUNK, LazyRows, LazyTable
from raceway_tui.widgets.table import Column

BAR = 20
MAX_GUIDES = 24  # deeper nodes show their last levels after an ellipsis


def bar(start: int, end: int, root_start: int, root_end: int, width: int = BAR) -> str:
    """``[start, end]`` placed in ``[root_start, root_end]``: full cells, at least one mark."""
    span = root_end - root_start
    if span <= 0:
        return "▏".ljust(width)
    a = (start - root_start) / span * width
    b = (end - root_start) / span * width
    lo = min(width - 1, max(0, int(math.floor(a))))
    hi = min(width, max(lo + 1, int(math.ceil(b))))
    cells = "▏" if end <= start else "█" * (hi - lo)
    return (" " * lo + cells).ljust(width)


def what(r: dict) -> str:
    """What a node did: its kind and one line of detail."""
    kind = fmt.KIND_SHORT.get(r.get("kind") or "", r.get("kind") or "?")
    return f"{kind} {fmt.summary(r)}".strip()


COLUMNS = [
    Column("tree", "call tree", None, text=lambda r: r["tree"], style=fmt.event_style, sortable=False),
    Column("service", "service", 12, text=lambda r: r["service"] or "", priority=2, sortable=False),
    Column("ms", "ms", 10, align="right", sortable=False,
           text=lambda r: fmt.ms(r["ms"], 3) if r["ms"] else "·"),
    Column("bar", "", BAR, text=lambda r: r["bar"], priority=1, sortable=False,
           style=lambda r: "dark_orange" if r["share"] > 0.2 else "grey62"),
]


@dataclass
class TreeData:
    trace_id: str | None
    tree: Any = None  # raceway_core.analysis.calltree.CallTree
    first: list[dict] | None = None  # rows of the first chunk (fetched in the worker)


class CallTreePane(Pane):
    title = "Call tree"
    DEFAULT_CSS = """
    #calltree-summary { height: auto; padding: 0 1; }
    """
    BINDINGS = [
        Binding("space", "toggle", "Collapse/expand"),
        Binding("left,h", "collapse", "Collapse", show=False),
        Binding("right,l", "expand", "Expand", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.call_tree = None
        self.collapsed: set[int] = set()
        self.shown_nodes = None  # node index of each shown row (numpy)
        self._arrays: dict = {}
        self._row_cache: dict[int, dict] = {}  # node -> its event row, for the tree shown
        self._cache_lock = threading.Lock()  # rows are read in worker threads (LazyTable)

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="calltree-summary")
        yield LazyTable(COLUMNS, empty="No events.", id="calltree-table")

    @property
    def table(self) -> LazyTable:
        return self.query_one("#calltree-table", LazyTable)

    def focus_main(self) -> None:
        self.table.focus()

    def main_table(self):
        return None  # the cursor is kept by node (see show_data), not by scanning rows

    # -- data --------------------------------------------------------------------------
    def fetch(self, session, key: tuple) -> TreeData:
        trace_id = key[0]
        if trace_id is None:
            return TreeData(None)
        tree = session.call_tree(trace_id)
        data = TreeData(trace_id, tree)
        if tree.count:
            data.first = session.call_tree_rows(tree, list(range(min(CHUNK, tree.count)))).to_pylist()
        return data

    def show_data(self, data: TreeData) -> None:
        import numpy as np

        summary = self.query_one("#calltree-summary", Static)
        # a refresh (new events) keeps the event under the cursor and the folded ones, by seq:
        # node numbers change when events join the tree
        old = self.call_tree if self.same_view else None
        at = self._node_at_cursor() if old is not None else None
        keep_seq = int(old.column("seq")[at]) if at is not None else None
        folded_seqs = old.column("seq")[sorted(self.collapsed)] if old is not None and self.collapsed else []
        if data.trace_id is None:
            self.call_tree, self.shown_nodes = None, None
            summary.update(Text("Choose a trace (t): the call tree is per trace.", style="yellow"))
            self.table.set_rows([], empty="Choose a trace (t) to see its call tree.")
            return
        tree = data.tree
        same = old is not None and old.trace_id == tree.trace_id
        seqs = tree.column("seq")
        self.collapsed = set(np.flatnonzero(np.isin(seqs, folded_seqs)).tolist()) if same else set()
        found = np.flatnonzero(seqs == keep_seq) if same and keep_seq is not None else []
        keep = int(found[0]) if len(found) else None
        self.call_tree = tree
        self._row_cache = {}
        n = tree.nodes
        self._arrays = {k: n[k].to_numpy() for k in ("parent", "size", "last", "depth", "root", "start_ns",
                                                      "end_ns", "span_start_ns", "span_end_ns")}
        roots = int((self._arrays["parent"] < 0).sum())
        span = 0.0
        if tree.count:
            r = self._arrays["root"]
            span = max(float(self._arrays["span_end_ns"][i] - self._arrays["span_start_ns"][i]) for i in set(r.tolist()))
        summary.update(Text.assemble(
            ("Call tree ", "bold"), literal(fmt.short_id(tree.trace_id, 12), "bold"),
            f"  {fmt.count(tree.count, 'event')} · {fmt.count(roots, 'root')} · longest root span {fmt.ms(span / 1e6)} ms",
            ("\nspawned tasks and called services under what started them; bars: time within the root's span",
             "italic"),
            ("  ←/→ collapse/expand · space toggle · Enter: timeline", "dim")))
        self._draw_tree(first=data.first, node=keep if keep is not None else 0)

    def _draw_tree(self, first: list[dict] | None = None, node: int = 0) -> None:
        tree = self.call_tree
        self.shown_nodes = tree.visible(self.collapsed)
        if first:
            self._row_cache = {r["node"]: r for r in first}
        shown = self.shown_nodes
        rows = LazyRows(len(shown), lambda start, count: self._rows(tree, shown, start, count),
                        cached=lambda start, count: self._cached_rows(shown, start, count))
        import numpy as np

        at = int(np.searchsorted(self.shown_nodes, node)) if len(self.shown_nodes) else 0
        at = min(at, max(0, len(self.shown_nodes) - 1))
        if len(self.shown_nodes) and self.shown_nodes[at] != node:  # hidden: its shown ancestor
            at = max(0, at - 1)
        self.table.set_rows(rows, cursor=at, empty="The trace has no events.")

    def _rows(self, tree, shown, start: int, count: int) -> list[dict]:
        """Rows of shown nodes (a worker thread: a query for the events not read before)."""
        nodes = shown[start:start + count].tolist()
        cache, session = self._row_cache, self.app.session
        with self._cache_lock:
            known = {n: cache[n] for n in nodes if n in cache}
        missing = [n for n in nodes if n not in known]
        got = {r["node"]: r for r in session.call_tree_rows(tree, missing).to_pylist()} if missing else {}
        known.update(got)
        with self._cache_lock:
            if tree is self.call_tree:  # still the tree shown: keep them for folds
                if len(cache) > 50_000:
                    cache.clear()
                cache.update(got)
        rows = [dict(known[n]) for n in nodes]
        return self._decorate(rows, start)

    def _cached_rows(self, shown, start: int, count: int) -> list[dict] | None:
        """The rows without a query when every event was read before (a fold redraws them)."""
        nodes = shown[start:start + count].tolist()
        cache = self._row_cache
        with self._cache_lock:
            rows = [cache.get(n) for n in nodes]
        if None in rows:
            return None
        return self._decorate([dict(r) for r in rows], start)

    def _decorate(self, rows: list[dict], start: int) -> list[dict]:
        a = self._arrays
        for r in rows:
            i = r["node"]
            root = int(a["root"][i])
            s, e = int(a["span_start_ns"][i]), int(a["span_end_ns"][i])
            rs, re = int(a["span_start_ns"][root]), int(a["span_end_ns"][root])
            r["ms"] = (e - s) / 1e6
            r["share"] = (e - s) / (re - rs) if re > rs else 0.0
            r["bar"] = bar(s, e, rs, re)
            r["tree"] = self._guides(i) + what(r)
        return rows

    def _guides(self, i: int) -> str:
        a = self._arrays
        depth = int(a["depth"][i])
        mark = "▸ " if i in self.collapsed else ("▾ " if a["size"][i] else "─ " if depth else "• ")
        if depth == 0:
            return mark
        levels = self.call_tree.open_levels(i)
        cut = len(levels) > MAX_GUIDES
        levels = levels[-MAX_GUIDES:]
        head = (f"…{depth} " if cut else "") + "".join("│ " if open_ else "  " for open_ in levels)
        return head + ("└" if a["last"][i] else "├") + mark

    # -- moving and folding ---------------------------------------------------------------
    def _node_at_cursor(self) -> int | None:
        if self.shown_nodes is None or not len(self.shown_nodes):
            return None
        return int(self.shown_nodes[min(self.table.cursor, len(self.shown_nodes) - 1)])

    def _go(self, node: int) -> None:
        import numpy as np

        at = int(np.searchsorted(self.shown_nodes, node))
        if at < len(self.shown_nodes) and self.shown_nodes[at] == node:
            self.table.move_to(at)

    def action_toggle(self) -> None:
        node = self._node_at_cursor()
        if node is None or not self._arrays["size"][node]:
            return
        self.collapsed ^= {node}
        self._draw_tree(node=node)

    def action_collapse(self) -> None:
        node = self._node_at_cursor()
        if node is None:
            return
        if self._arrays["size"][node] and node not in self.collapsed:
            self.collapsed.add(node)
            self._draw_tree(node=node)
        elif self._arrays["parent"][node] >= 0:
            self._go(int(self._arrays["parent"][node]))

    def action_expand(self) -> None:
        node = self._node_at_cursor()
        if node is None or not self._arrays["size"][node]:
            return
        if node in self.collapsed:
            self.collapsed.discard(node)
            self._draw_tree(node=node)
        else:
            self._go(node + 1)  # pre-order: the first child follows

    # -- the detail panel and jumps ---------------------------------------------------------
    def current_event(self):
        row = self.table.row() if self.shown_nodes is not None else None
        return (row["id"], row) if row is not None else None

    def view_table(self):
        if self.call_tree is None:
            return None
        return self.call_tree.nodes

    def on_virtual_table_highlighted(self, event: LazyTable.Highlighted) -> None:
        event.stop()
        if event.row is not None:
            self.app.event_focused(event.row["id"], event.row)

    def on_virtual_table_selected(self, event: LazyTable.Selected) -> None:
        event.stop()
        if event.row is not None:
            self.app.jump_to(event.row["id"], trace_id=self.app.scope)
