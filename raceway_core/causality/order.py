"""A causal (topological) order of all events, and which edges had to be dropped.

The (timestamp, appearance) order is a topological order whenever every edge goes
forward in it - the common case. Clock skew between machines can make a
cross-service or parent edge point backwards; then Kahn's algorithm, preferring
the earliest event among those ready, gives the order closest to time. An edge
that closes a cycle (a parent stamped after its child in the same context, a
skewed call that contradicts program order) is dropped and recorded, so the
order stays a partial order and the verdicts stay consistent.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


@dataclass
class Topo:
    rank: np.ndarray  # row -> position in the causal order
    rows: np.ndarray  # position -> row
    dropped: np.ndarray  # edge indices that were dropped to break cycles


def causal_order(idx: np.ndarray, ctx_rows: np.ndarray, ctx_start: np.ndarray,
                 src: np.ndarray, dst: np.ndarray) -> Topo:
    """Rows are events; idx their (timestamp, seq) rank; ctx_rows lists rows by
    (ctx, pos) with ctx_start[c] the offset of context c; src/dst edge rows."""
    n = len(idx)
    if len(src) == 0 or bool(np.all(idx[src] < idx[dst])):
        rows = np.argsort(idx, kind="stable")
        return Topo(rank=idx.copy(), rows=rows, dropped=np.empty(0, dtype=np.int64))
    return _kahn(idx, ctx_rows, ctx_start, src, dst, n)


def _kahn(idx, ctx_rows, ctx_start, src, dst, n) -> Topo:
    nxt = np.full(n, -1, dtype=np.int64)  # program-order successor
    ctx_of = np.empty(n, dtype=np.int64)
    n_ctx = len(ctx_start) - 1
    for c in range(n_ctx):
        seg = ctx_rows[ctx_start[c]:ctx_start[c + 1]]
        nxt[seg[:-1]] = seg[1:]
        ctx_of[seg] = c
    indeg = np.zeros(n, dtype=np.int64)
    indeg[nxt[nxt >= 0]] += 1
    np.add.at(indeg, dst, 1)
    order = np.argsort(src, kind="stable")
    out_start = np.searchsorted(src[order], np.arange(n + 1))
    in_order = np.argsort(dst, kind="stable")
    in_start = np.searchsorted(dst[in_order], np.arange(n + 1))

    idx_l = idx.tolist()
    indeg_l = indeg.tolist()
    nxt_l = nxt.tolist()
    dst_l, src_l = dst.tolist(), src.tolist()
    order_l, out_l = order.tolist(), out_start.tolist()
    in_order_l, in_l = in_order.tolist(), in_start.tolist()
    done = bytearray(n)
    dead = bytearray(len(src))
    head = [int(ctx_rows[ctx_start[c]]) for c in range(n_ctx)]  # next unprocessed row per context
    heap = [(idx_l[r], r) for r in range(n) if indeg_l[r] == 0]
    heapq.heapify(heap)
    rank = [0] * n
    count = 0
    dropped = []
    while count < n:
        if not heap:  # a cycle: release the earliest blocked context head
            best = None
            for c in range(n_ctx):
                r = head[c]
                if r >= 0 and not done[r] and (best is None or idx_l[r] < idx_l[best]):
                    best = r
            for k in range(in_l[best], in_l[best + 1]):
                e = in_order_l[k]
                if not dead[e] and not done[src_l[e]]:
                    dead[e] = 1
                    dropped.append(e)
                    indeg_l[best] -= 1
            heapq.heappush(heap, (idx_l[best], best))
        _, r = heapq.heappop(heap)
        done[r] = 1
        rank[r] = count
        count += 1
        s = nxt_l[r]
        head[int(ctx_of[r])] = s
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
