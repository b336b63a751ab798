"""Vector clocks for every event, computed over the whole happens-before graph.

One component per context. Only events that receive an edge from another
context (and first events) need work: their clock is the join of their
predecessor's and their sources' clocks. Every other event's clock is the
last such snapshot of its context with its own position set. Snapshots are
persistent tries (pclock), so a clock that knows 50,000 contexts costs a few
nodes to derive from another.
"""

from __future__ import annotations

import bisect

import numpy as np

from raceway_core.causality.pclock import Clocks


class ClockTable:
    def __init__(self, n_ctx: int, ctx: np.ndarray, pos: np.ndarray) -> None:
        self.ops = Clocks(n_ctx)
        self.ctx = ctx
        self.pos = pos
        self.snap_pos: list[list[int]] = [[] for _ in range(n_ctx)]
        self.snap_clock: list[list] = [[] for _ in range(n_ctx)]

    def build(self, topo_rows: np.ndarray, recv_mask: np.ndarray,
              in_start: np.ndarray, in_src: np.ndarray) -> None:
        """Sweep receive points in causal order. in_src[in_start[r]:in_start[r+1]]
        are the rows with an edge into row r."""
        ops, ctx_l, pos_l = self.ops, self.ctx.tolist(), self.pos.tolist()
        in_start_l, in_src_l = in_start.tolist(), in_src.tolist()
        snap_pos, snap_clock = self.snap_pos, self.snap_clock
        for r in topo_rows[recv_mask[topo_rows]].tolist():
            x, p = ctx_l[r], pos_l[r]
            clock = snap_clock[x][-1] if snap_clock[x] else None
            for k in range(in_start_l[r], in_start_l[r + 1]):
                u = in_src_l[k]
                y, q = ctx_l[u], pos_l[u]
                ps = snap_pos[y]
                i = bisect.bisect_right(ps, q) - 1
                src_clock = ops.set(snap_clock[y][i], y, q)
                clock = ops.join(clock, src_clock)
            clock = ops.set(clock, x, p)
            snap_pos[x].append(p)
            snap_clock[x].append(clock)

    # -- queries --------------------------------------------------------------
    def snapshot(self, r: int):
        x, p = int(self.ctx[r]), int(self.pos[r])
        i = bisect.bisect_right(self.snap_pos[x], p) - 1
        return self.snap_clock[x][i]

    def knows(self, r: int, c: int) -> int:
        """How far event r knows context c: VC(r)[c]."""
        if int(self.ctx[r]) == c:
            return int(self.pos[r])
        return self.ops.get(self.snapshot(r), c)

    def before(self, a: int, b: int) -> bool:
        """a -> b (strict happens-before)."""
        if a == b:
            return False
        return self.knows(b, int(self.ctx[a])) >= int(self.pos[a])

    def clock(self, r: int) -> dict[int, int]:
        """The full clock of event r: context -> position."""
        out = dict(self.ops.items(self.snapshot(r)))
        out[int(self.ctx[r])] = int(self.pos[r])
        return out

    def snapshot_index(self, rows_by_ctx_pos: np.ndarray, recv_mask: np.ndarray) -> tuple[list, np.ndarray]:
        """All snapshots as one list, and for each row the index of its snapshot there."""
        flat, base = [], {}
        for x, clocks in enumerate(self.snap_clock):
            base[x] = len(flat)
            flat.extend(clocks)
        n = len(rows_by_ctx_pos)
        is_recv = recv_mask[rows_by_ctx_pos]
        last = np.maximum.accumulate(np.where(is_recv, np.arange(n), 0))
        # k-th receive point of a context -> its snapshot number inside the context
        recv_rank = np.cumsum(is_recv) - 1
        ctx_sorted = self.ctx[rows_by_ctx_pos]
        first_rank = np.zeros(len(self.snap_clock), dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, ctx_sorted[1:] != ctx_sorted[:-1]])
        first_rank[ctx_sorted[starts]] = recv_rank[starts]
        local = recv_rank[last] - first_rank[ctx_sorted]
        bases = np.array([base[x] for x in range(len(self.snap_clock))], dtype=np.int64)
        out = np.empty(n, dtype=np.int64)
        out[rows_by_ctx_pos] = bases[ctx_sorted] + local
        return flat, out
