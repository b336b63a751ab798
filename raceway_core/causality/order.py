"""A causal (topological) order of all events, and which edges had to be dropped.

The (timestamp, appearance) order is a topological order whenever every edge goes
forward in it - the common case. Clock skew between machines can make a
cross-service or parent edge point backwards; then Kahn's algorithm, preferring
the earliest event among those ready, gives the order closest to time. When it
is stuck, what is left holds every cycle (a parent stamped after its child in the
same context, a skewed call that contradicts program order): ``cycles`` picks the
few edges on them to drop, which are recorded, so the order stays a partial
order and the verdicts stay consistent.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from raceway_core.causality.cycles import edges_to_drop


@dataclass
class Topo:
    rank: np.ndarray  # row -> position in the causal order
    rows: np.ndarray  # position -> row
    dropped: np.ndarray  # edge indices that were dropped to break cycles


def causal_order(idx: np.ndarray, ctx_rows: np.ndarray, ctx_start: np.ndarray,
                 src: np.ndarray, dst: np.ndarray, ts: np.ndarray | None = None) -> Topo:
    """Rows are events; idx their (timestamp, seq) rank and ts their timestamp;
    ctx_rows lists rows by (ctx, pos) with ctx_start[c] the offset of context c;
    src/dst edge rows."""
    n = len(idx)
    if len(src) == 0 or bool(np.all(idx[src] < idx[dst])):
        rows = np.argsort(idx, kind="stable")
        return Topo(rank=idx.copy(), rows=rows, dropped=np.empty(0, dtype=np.int64))
    return _kahn(idx, ctx_rows, ctx_start, src, dst, n, idx if ts is None else ts)


def _kahn(idx, ctx_rows, ctx_start, src, dst, n, ts) -> Topo:
    nxt = np.full(n, -1, dtype=np.int64)  # program-order successor
    ctx_of = np.empty(n, dtype=np.int64)
    pos_of = np.empty(n, dtype=np.int64)
    n_ctx = len(ctx_start) - 1
    for c in range(n_ctx):
        seg = ctx_rows[ctx_start[c]:ctx_start[c + 1]]
        nxt[seg[:-1]] = seg[1:]
        ctx_of[seg] = c
        pos_of[seg] = np.arange(len(seg))
    indeg = np.zeros(n, dtype=np.int64)
    indeg[nxt[nxt >= 0]] += 1
    np.add.at(indeg, dst, 1)
    order = np.argsort(src, kind="stable")
    out_start = np.searchsorted(src[order], np.arange(n + 1))

    idx_l = idx.tolist()
    indeg_l = indeg.tolist()
    nxt_l = nxt.tolist()
    dst_l, src_l = dst.tolist(), src.tolist()
    order_l, out_l = order.tolist(), out_start.tolist()
    done = bytearray(n)
    dead = bytearray(len(src))
    heap = [(idx_l[r], r) for r in range(n) if indeg_l[r] == 0]
    heapq.heapify(heap)
    rank = [0] * n
    count = 0
    dropped = []
    while count < n:
        if not heap:  # stuck: what is left holds every cycle
            if not _break_cycles(src_l, dst_l, done, dead, dropped, indeg_l, heap, idx_l, ctx_of, pos_of, ts):
                raise RuntimeError("causal order: stuck without a cycle")
        _, r = heapq.heappop(heap)
        done[r] = 1
        rank[r] = count
        count += 1
        s = nxt_l[r]
        if s >= 0:
            indeg_l[s] -= 1
            if indeg_l[s] == 0:
                heapq.heappush(heap, (idx_l[s], s))
        for k in range(out_l[r], out_l[r + 1]):
            e = order_l[k]
            if dead[e]:
                continue
            d = dst_l[e]
            indeg_l[d] -= 1
            if indeg_l[d] == 0:
                heapq.heappush(heap, (idx_l[d], d))
    rank_a = np.array(rank, dtype=np.int64)
    rows = np.empty(n, dtype=np.int64)
    rows[rank_a] = np.arange(n)
    return Topo(rank=rank_a, rows=rows, dropped=np.array(sorted(dropped), dtype=np.int64))


def _break_cycles(src_l, dst_l, done, dead, dropped, indeg_l, heap, idx_l, ctx_of, pos_of, ts) -> bool:
    """Drop the edges ``cycles`` picks among those between unprocessed events; push
    the events that become ready. False if there was no cycle."""
    alive = [e for e in range(len(src_l)) if not dead[e] and not done[src_l[e]]]
    pairs = sorted({(src_l[e], dst_l[e]) for e in alive})
    ctx_l, pos_l, ts_l = ctx_of.tolist(), pos_of.tolist(), ts.tolist()
    gone = set(edges_to_drop(ctx_l, pos_l, pairs,
                             lambda p: (ts_l[p[1]] - ts_l[p[0]], idx_l[p[0]], idx_l[p[1]]), idx_l))
    if not gone:
        return False
    for e in alive:
        if (src_l[e], dst_l[e]) in gone:
            dead[e] = 1
            dropped.append(e)
            d = dst_l[e]
            indeg_l[d] -= 1
            if indeg_l[d] == 0:
                heapq.heappush(heap, (idx_l[d], d))
    return True
