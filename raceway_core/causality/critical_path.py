"""Critical path per trace: the happens-before path with the largest sum of durations.

Edges are the trace's own rules 1-5 (program order, parent, join, lock hand-off
inside the trace, cross-service call/return); given clocks are evidence of order,
not of waiting, so they are left out. Longest path by dynamic programming in
causal order; along a context between two events that receive edges the sums are
prefix sums, so only receiving events need a step in Python.

Ties are broken deterministically: the program-order predecessor wins, then the
source earliest in causal order; the path ends at its trace's event with the
largest total, the latest such event in causal order.
"""

from __future__ import annotations

import numpy as np


def longest_paths(n: int, ctx_rows: np.ndarray, ctx_start: np.ndarray, pos: np.ndarray,
                  dur: np.ndarray, topo_rank: np.ndarray, topo_rows: np.ndarray,
                  src: np.ndarray, dst: np.ndarray):
    """dp (path total ending at each row), best predecessor of each receiving row
    (-1 = the program-order predecessor or none), the receiving row of each row,
    and each row's program-order predecessor (-1 for a context's first)."""
    csum = np.empty(n, dtype=np.int64)
    seg_dur = dur[ctx_rows]
    cs = np.cumsum(seg_dur)
    starts = ctx_start[:-1]
    offset = np.repeat(np.r_[0, cs][starts], np.diff(ctx_start))
    csum[ctx_rows] = cs - offset
    recv = pos == 1
    recv[dst] = True
    # the last receiving row at or before each row, in its context
    sorted_recv = recv[ctx_rows]
    last = np.maximum.accumulate(np.where(sorted_recv, np.arange(n), 0))
    recv_of = np.empty(n, dtype=np.int64)
    recv_of[ctx_rows] = ctx_rows[last]
    prev = np.full(n, -1, dtype=np.int64)
    prev[ctx_rows[1:]] = ctx_rows[:-1]
    prev[ctx_rows[starts]] = -1

    order = np.argsort(dst, kind="stable")
    in_start = np.searchsorted(dst[order], np.arange(n + 1)).tolist()
    in_src = src[order].tolist()
    dp_recv = np.zeros(n, dtype=np.int64)
    best = np.full(n, -1, dtype=np.int64)
    dp_l = dp_recv.tolist()
    best_l = best.tolist()
    csum_l, recv_of_l, prev_l, dur_l = csum.tolist(), recv_of.tolist(), prev.tolist(), dur.tolist()
    rank_l = topo_rank.tolist()
    for r in topo_rows[recv[topo_rows]].tolist():
        pr = prev_l[r]
        top = dp_l[recv_of_l[pr]] + csum_l[pr] - csum_l[recv_of_l[pr]] if pr >= 0 else 0
        choice = -1
        for k in range(in_start[r], in_start[r + 1]):
            u = in_src[k]
            val = dp_l[recv_of_l[u]] + csum_l[u] - csum_l[recv_of_l[u]]
            if val > top or (val == top and choice >= 0 and rank_l[u] < rank_l[choice]) or (
                    val == top and pr < 0 and choice < 0):
                top, choice = val, u
        dp_l[r] = dur_l[r] + top
        best_l[r] = choice
    dp_recv = np.array(dp_l, dtype=np.int64)
    dp = dp_recv[recv_of] + csum - csum[recv_of]
    return dp, np.array(best_l, dtype=np.int64), recv_of, prev


def path_rows(end: int, best: np.ndarray, recv_of: np.ndarray, prev: np.ndarray) -> list[int]:
    """Rows of the path ending at ``end``, first to last."""
    out = []
    r = end
    while r >= 0:
        out.append(r)
        if recv_of[r] == r and best[r] >= 0:
            r = int(best[r])
        else:
            r = int(prev[r])
    out.reverse()
    return out
