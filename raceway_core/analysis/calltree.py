"""The call tree of one trace: who started what, as an indented tree with durations.

A node is an event. A context (thread / task) is cut into *segments*: one starts at
its first event and at every event entered from another context of the trace by a
parent link (rule 2: a spawned task's first event) or a cross-service call (rule 5:
the callee's first event). A segment's first event hangs under the event that
entered it (the spawn, the outgoing request), or is a root; every other event of a
segment hangs under its first event. So a request's work shows under the request,
and a downstream service's work under the call that reached it. (Raceway SDKs also
chain ``parent_id`` from one event of a context to the next: as a tree that is a
path as deep as the context, so links inside a context are not used.)

A node's parent always comes earlier in the causal order (the edges used are live
edges of the causality graph, program order is the other), so this is a forest.
Children are in causal order; ``nodes`` lists the tree in pre-order, so a node's
subtree is the ``size`` rows after it. Intervals follow ``raceway_core.intervals``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from raceway_core.dbutil import query_arrow
from raceway_core.intervals import end_ns, start_ns

# The events of a trace in causal order, with the link that enters each from another
# context (a parent link first, then a call; the latest source on ties).
TREE_INPUT = f"""
WITH ev AS (SELECT seq, tord, ctx, pos FROM hb.ev WHERE trace_id = $t),
inc AS (
    SELECT g.dst AS seq, arg_max(g.src, (g.kind = 'parent', g.src_idx)) AS src,
           arg_max(g.kind, (g.kind = 'parent', g.src_idx)) AS via
    FROM hb.edges g SEMI JOIN ev ON ev.seq = g.dst
    WHERE NOT g.dropped AND g.kind IN ('parent', 'call') AND g.src_ctx <> g.dst_ctx AND NOT g.cross_trace
    GROUP BY g.dst
)
SELECT ev.seq, ev.tord, ev.ctx, ev.pos, inc.src AS link_src, inc.via,
       {start_ns('e')} AS start_ns, {end_ns('e')} AS end_ns
FROM ev JOIN (SELECT * FROM events WHERE trace_id = $t) e USING (seq) LEFT JOIN inc USING (seq)
ORDER BY ev.tord
"""


@dataclass(frozen=True)
class CallTree:
    trace_id: str
    nodes: pa.Table  # pre-order: seq, depth, parent (node index, -1 root), size (descendants),
    #                  last (last child of its parent), via (root | parent | call | context),
    #                  root (its root's node index), start_ns, end_ns (the event's own interval),
    #                  span_start_ns, span_end_ns (its subtree's: earliest start, latest end)

    @property
    def count(self) -> int:
        return self.nodes.num_rows

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        return {}

    def column(self, name: str) -> np.ndarray:
        """A column as numpy (converted once: the view asks for it per drawn row)."""
        cols = self._columns
        if name not in cols:
            cols[name] = self.nodes[name].to_numpy()
        return cols[name]

    def visible(self, collapsed=()) -> np.ndarray:
        """Node indices shown when the nodes in ``collapsed`` hide their subtrees, in order."""
        if not collapsed:
            return np.arange(self.count, dtype=np.int64)
        size = self.column("size")
        shown = np.ones(self.count, dtype=bool)
        for c in collapsed:
            if 0 <= c < self.count:
                shown[c + 1:c + 1 + int(size[c])] = False
        return np.flatnonzero(shown)

    def open_levels(self, node: int) -> list[bool]:
        """For each ancestor level of ``node`` below the root (outermost first): whether that
        ancestor has a later sibling, i.e. whether a guide line passes at that level."""
        parent, last = self.column("parent"), self.column("last")
        out = []
        a = int(parent[node]) if node >= 0 else -1
        while a >= 0 and parent[a] >= 0:
            out.append(not bool(last[a]))
            a = int(parent[a])
        out.reverse()
        return out


def build(cur, trace_id: str) -> CallTree:
    """The call tree of a trace (empty for an unknown one); needs the hb tables."""
    t = query_arrow(cur, TREE_INPUT, {"t": trace_id})
    n = t.num_rows
    tord = t["tord"].to_numpy()
    if n and not np.array_equal(tord, np.arange(n)):
        raise ValueError("hb.ev.tord is not dense inside the trace")
    seq = t["seq"].to_numpy()
    ctx = t["ctx"].to_numpy().astype(np.int64)
    pos = t["pos"].to_numpy().astype(np.int64)
    link_src = t["link_src"].to_numpy(zero_copy_only=False)
    has_link = ~t["link_src"].is_null().to_numpy(zero_copy_only=False)
    via_in = np.array(t["via"].to_pylist(), dtype=object)
    start = t["start_ns"].to_numpy().astype(np.int64)
    end = t["end_ns"].to_numpy().astype(np.int64)

    # the link's source as a row (rows are causal positions); links from outside the rows are ignored
    order_by_seq = np.argsort(seq, kind="stable")
    src_row = np.full(n, -1, dtype=np.int64)
    if has_link.any():
        srcs = link_src[has_link].astype(np.int64)
        at = np.searchsorted(seq[order_by_seq], srcs)
        at = np.minimum(at, max(n - 1, 0))
        found = seq[order_by_seq][at] == srcs
        rows = np.flatnonzero(has_link)
        src_row[rows[found]] = order_by_seq[at[found]]
    src_row[src_row >= np.arange(n)] = -1  # never a later event (the causal order forbids it)
    linked = src_row >= 0

    # segments: a context's first event, or an event entered by a link
    seg_start = (pos == 1) | linked
    by_ctx = np.lexsort((pos, ctx))
    ctx_sorted = ctx[by_ctx]
    new_ctx = np.r_[True, ctx_sorted[1:] != ctx_sorted[:-1]] if n else np.zeros(0, dtype=bool)
    head_at = np.where(seg_start[by_ctx] | new_ctx, np.arange(n), 0)  # a context always starts a segment
    seg_root = np.empty(n, dtype=np.int64)
    seg_root[by_ctx] = by_ctx[np.maximum.accumulate(head_at)] if n else by_ctx
    is_head = seg_root == np.arange(n)

    parent = np.where(is_head, src_row, seg_root)
    via = np.where(is_head, np.where(linked, via_in, "root"), "context").astype(object)
    return _assemble(trace_id, seq, parent, via, start, end)


def _assemble(trace_id: str, seq: np.ndarray, parent: np.ndarray, via: np.ndarray,
              start: np.ndarray, end: np.ndarray) -> CallTree:
    """Pre-order, depths, subtree sizes and spans of a forest given by ``parent`` (rows in
    causal order, every parent before its children; children keep row order)."""
    n = len(seq)
    depth = _depths(parent)
    # bottom-up, one level at a time: subtree sizes and spans
    size = np.zeros(n, dtype=np.int64)
    sp_start, sp_end = start.copy(), end.copy()
    by_depth = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[by_depth], np.arange(int(depth.max(initial=0)) + 2))
    for d in range(int(depth.max(initial=0)), 0, -1):
        lvl = by_depth[bounds[d]:bounds[d + 1]]
        p = parent[lvl]
        np.add.at(size, p, size[lvl] + 1)
        np.minimum.at(sp_start, p, sp_start[lvl])
        np.maximum.at(sp_end, p, sp_end[lvl])
    # top-down: a child's place is its parent's + 1 + the subtrees of its earlier siblings
    pre = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=bool)
    for d in range(0, int(depth.max(initial=-1)) + 1):
        lvl = by_depth[bounds[d]:bounds[d + 1]]  # row order inside a level: siblings in causal order
        p = parent[lvl]
        grp = np.argsort(p, kind="stable")
        lvl, p = lvl[grp], p[grp]
        w = size[lvl] + 1
        cs = np.cumsum(w) - w  # exclusive, over the level
        first = np.r_[True, p[1:] != p[:-1]]
        starts = np.flatnonzero(first)
        group_of = np.cumsum(first) - 1
        before = cs - cs[starts][group_of]
        base = np.where(p >= 0, pre[np.maximum(p, 0)] + 1, 0)
        pre[lvl] = base + before
        last[lvl] = np.r_[first[1:], True]
    order = np.empty(n, dtype=np.int64)
    order[pre] = np.arange(n)
    parent_pre = np.where(parent[order] >= 0, pre[np.maximum(parent[order], 0)], -1)
    roots = np.where(parent_pre < 0, np.arange(n), -1)
    root = np.maximum.accumulate(roots) if n else roots
    nodes = pa.table({
        "seq": pa.array(seq[order], pa.int64()),
        "depth": pa.array(depth[order], pa.int32()),
        "parent": pa.array(parent_pre, pa.int64()),
        "size": pa.array(size[order], pa.int64()),
        "last": pa.array(last[order], pa.bool_()),
        "via": pa.array(via[order].tolist(), pa.string()),
        "root": pa.array(root, pa.int64()),
        "start_ns": pa.array(start[order], pa.int64()),
        "end_ns": pa.array(end[order], pa.int64()),
        "span_start_ns": pa.array(sp_start[order], pa.int64()),
        "span_end_ns": pa.array(sp_end[order], pa.int64()),
    })
    return CallTree(trace_id, nodes)


def _depths(parent: np.ndarray) -> np.ndarray:
    """Distance to the root of every node, by pointer doubling (log(depth) numpy passes):
    ``depth[i]`` is the distance from i to ``jump[i]``, or to the root once ``jump[i]`` is -1."""
    depth = (parent >= 0).astype(np.int64)
    jump = parent.copy()
    while True:
        live = np.flatnonzero(jump >= 0)
        if not len(live):
            return depth
        j = jump[live]
        depth[live] = depth[live] + depth[j]
        jump[live] = jump[j]
