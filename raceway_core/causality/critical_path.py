"""Critical path per trace: the happens-before path with the largest sum of durations.

Edges are the trace's own rules 1-5 (program order, parent, join, lock hand-off
inside the trace, cross-service call/return); given clocks are evidence of order,
not of waiting, so they are left out. Longest path by dynamic programming in
causal order; along a context between two events that receive edges the sums are
prefix sums, so only receiving events need a step in Python.

Ties are broken deterministically: the program-order predecessor wins, then the
source earliest in causal order; the path ends at its trace's event with the
largest total, the latest such event in causal order.

The loop stays Python: compiled with numba it took 0.03 s instead of 0.45 s CPU at 1M
events, but importing numba (0.9 s) and loading the cached compiled code (0.6 s) cost a
CLI run more than that (measured under load 6-11).
"""

from __future__ import annotations

from array import array

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

    # The loop visits only receiving rows, in causal order, over compact per-receiver and
    # per-edge lists (Python lists of every row cost ~250 MB at 1M events): a row u's total
    # is its receiving row's total plus the durations after it, dp[recv_of[u]] + off[u].
    off = csum - csum[recv_of]
    rr = topo_rows[recv[topo_rows]]  # receiving rows in causal order
    rid = np.full(n, -1, dtype=np.int64)
    rid[rr] = np.arange(len(rr))
    pr = prev[rr]
    has_pr = pr >= 0
    prc = np.where(has_pr, pr, 0)
    pr_c = np.where(has_pr, rid[recv_of[prc]], -1)
    pr_off = np.where(has_pr, off[prc], 0)
    order = np.argsort(dst, kind="stable")
    in_start = np.searchsorted(dst[order], np.arange(n + 1))
    cnt = in_start[rr + 1] - in_start[rr]
    c_start = np.r_[0, np.cumsum(cnt)].astype(np.int64)
    at = np.repeat(in_start[rr] - c_start[:-1], cnt) + np.arange(int(c_start[-1]), dtype=np.int64)
    u = src[order][at]
    u_c, u_off, u_rank = rid[recv_of[u]], off[u], topo_rank[u]
    dp_c = [0] * len(rr)
    best_c = [-1] * len(rr)
    pr_c_l, pr_off_l, start_l = pr_c.tolist(), pr_off.tolist(), c_start.tolist()
    u_l, u_c_l, u_off_l, u_rank_l = u.tolist(), u_c.tolist(), u_off.tolist(), u_rank.tolist()
    dur_l = dur[rr].tolist()
    for k in range(len(rr)):
        pc = pr_c_l[k]
        top = dp_c[pc] + pr_off_l[k] if pc >= 0 else 0
        choice, choice_rank = -1, 0
        for e in range(start_l[k], start_l[k + 1]):
            val = dp_c[u_c_l[e]] + u_off_l[e]
            if val > top or (val == top and choice >= 0 and u_rank_l[e] < choice_rank) or (
                    val == top and pc < 0 and choice < 0):
                top, choice, choice_rank = val, u_l[e], u_rank_l[e]
        dp_c[k] = dur_l[k] + top
        best_c[k] = choice
    dp_recv = np.zeros(n, dtype=np.int64)
    dp_recv[rr] = dp_c
    best = np.full(n, -1, dtype=np.int64)
    best[rr] = best_c
    dp = dp_recv[recv_of] + off
    return dp, best, recv_of, prev


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


def paths_rows(ends: np.ndarray, best: np.ndarray, recv_of: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paths ending at each of ``ends`` (as path_rows), flat: rows first to last, path
    by path, and each path's length. The walk reads one predecessor array through a
    memoryview (numpy scalar indexing per step cost 0.3 s at 1M events)."""
    n = len(prev)
    pred = np.where((recv_of == np.arange(n)) & (best >= 0), best, prev).astype(np.int64)
    step = memoryview(pred)
    out = array("q")
    add = out.append
    lengths = []
    for r in np.asarray(ends, dtype=np.int64).tolist():
        before = len(out)
        while r >= 0:
            add(r)
            r = step[r]
        lengths.append(len(out) - before)
    rows = np.frombuffer(out, dtype=np.int64) if len(out) else np.zeros(0, dtype=np.int64)
    lengths = np.array(lengths, dtype=np.int64)
    # each path was walked from its end: reverse it in place
    start = np.repeat(np.r_[0, np.cumsum(lengths)][:-1], lengths)
    local = np.arange(len(rows)) - start
    return rows[start + np.repeat(lengths, lengths) - 1 - local], lengths
