"""Happens-before for every pair of events, in space that stays small.

A classic vector clock has one component per context. Requests that meet at a
global lock (a metrics mutex every request takes) spread knowledge of every
context to every other, so clocks hold tens of thousands of components and each
lock acquire changes hundreds of them. Here an event's clock has two small parts:

- L: a vector clock over the contexts of its own trace, carried only along edges
  inside the trace (program order, parent, join, calls, trusted clocks, lock
  hand-offs between the trace's own contexts);
- G: for each lock *chain*, the latest release on it that happened before.

Any path from a to b that leaves a's trace does so first through a lock
hand-off (or a parent or join link into another trace, treated as a one-release chain),
from a release r that a reaches inside its trace. Releases of a lock are split
into chains in which each release happens before the next (true for a mutex used
as a mutex; a chain breaks where that cannot be shown, e.g. readers of an RW
lock). So with F(a)[c] = the first release of chain c that a reaches inside its
trace:

    a -> b  iff  (same trace and L(b)[ctx a] >= pos a)
             or  F(a)[c] <= G(b)[c] for some chain c.

L and G are persistent tries (pclock), computed at the few events where they
change; F is computed backwards at the events that can send.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from itertools import chain

import numpy as np

from raceway_core.causality.pclock import Clocks


@dataclass
class Chains:
    """Lock chains: which rows are releases on which chain, at which index (1-based)."""

    n: int  # number of chains
    own: dict[int, list[tuple[int, int]]]  # row -> [(chain, index)]
    label: list[str]  # per chain, for explanations


def lock_label(lock: str, k: int) -> str:
    """The label of lock ``lock``'s k-th kept chain (1-based), as explanations show it."""
    return f"lock '{lock}'" + (f" (chain {k})" if k > 1 else "")


def lock_chains(release_rows: np.ndarray, release_lock: list[str], ctx: np.ndarray, pos: np.ndarray,
                trace_of_ctx: np.ndarray, handoff_src: np.ndarray, handoff_dst: np.ndarray,
                cross_parent_src: np.ndarray) -> Chains:
    """Chains of releases (rows sorted by lock, then time) plus one-release chains for
    parent links into other traces.

    Release i+1 continues release i's chain when it provably follows it: the same
    context later on, or i was handed to an acquire that precedes i+1 in its context.
    """
    m = len(release_rows)
    locks = np.array(release_lock, dtype=object)
    same_lock = np.zeros(m, dtype=bool)
    if m > 1:
        same_lock[1:] = locks[1:] == locks[:-1]
    rr = release_rows
    follows = np.zeros(m, dtype=bool)
    if m > 1:
        follows[1:] = same_lock[1:] & (ctx[rr[1:]] == ctx[rr[:-1]]) & (pos[rr[:-1]] < pos[rr[1:]])
    # hand-offs from release i to an acquire that precedes release i+1 in its context
    order = np.argsort(rr, kind="stable")
    at = np.searchsorted(rr[order], handoff_src)
    is_rel = (at < m) & (rr[order][np.minimum(at, max(m - 1, 0))] == handoff_src) if m else np.zeros(0, bool)
    i = order[at[is_rel]] if m else np.zeros(0, dtype=np.int64)
    a = handoff_dst[is_rel]
    ok = (i + 1 < m)
    i, a = i[ok], a[ok]
    nxt = rr[i + 1]
    good = same_lock[i + 1] & (ctx[a] == ctx[nxt]) & (pos[a] < pos[nxt])
    follows[i[good] + 1] = True
    chain = np.cumsum(~follows) - 1
    starts = np.flatnonzero(~follows)
    index = np.arange(m) - starts[chain] + 1 if m else np.zeros(0, dtype=np.int64)
    # Only a chain that hands off into another trace can carry a path out of a trace;
    # a lock used inside one trace is program order and hand-offs, which L covers.
    trace = trace_of_ctx[ctx]
    crossing_edge = is_rel.copy()
    crossing_edge[is_rel] = trace[handoff_src[is_rel]] != trace[handoff_dst[is_rel]]
    crossing = np.unique(chain[order[at[crossing_edge]]]) if crossing_edge.any() else np.zeros(0, np.int64)
    keep = np.full(int(chain.max()) + 1 if m else 0, -1, dtype=np.int64)
    keep[crossing] = np.arange(len(crossing))
    kept = keep[chain] >= 0 if m else np.zeros(0, bool)
    # a release row is one event: one (chain, index) each (a comprehension, not setdefault per row)
    own: dict[int, list[tuple[int, int]]] = {
        r: [ck] for r, ck in zip(rr[kept].tolist(), zip(keep[chain[kept]].tolist(), index[kept].tolist()))}
    labels = []
    per_lock: dict[str, int] = {}
    for c in crossing.tolist():
        lock = locks[starts[c]]
        per_lock[lock] = per_lock.get(lock, 0) + 1
        labels.append(lock_label(lock, per_lock[lock]))
    n = len(crossing)
    for src in sorted(set(cross_parent_src.tolist())):
        labels.append("parent or join link into another trace")
        own.setdefault(src, []).append((n, 1))
        n += 1
    return Chains(n, own, labels)


class HappensBefore:
    def __init__(self, n_ctx: int, ctx: np.ndarray, pos: np.ndarray, trace_of_ctx: np.ndarray) -> None:
        self.ctx, self.pos = ctx, pos
        self.n = len(ctx)
        self.trace_of_ctx = trace_of_ctx
        # trace-local context ids (dense per trace) and one trie shape per trace size
        order = np.lexsort((np.arange(n_ctx), trace_of_ctx))
        local = np.empty(n_ctx, dtype=np.int64)
        sizes: dict[int, int] = {}
        for c in order.tolist():
            t = int(trace_of_ctx[c])
            local[c] = sizes.get(t, 0)
            sizes[t] = local[c] + 1
        self.local = local
        self.local_ops = {t: Clocks(s) for t, s in sizes.items()}
        self.l_pos: list[list[int]] = [[] for _ in range(n_ctx)]
        self.l_clock: list[list] = [[] for _ in range(n_ctx)]
        self.g_pos: list[list[int]] = [[] for _ in range(n_ctx)]
        self.g_clock: list[list] = [[] for _ in range(n_ctx)]
        self.f_pos: list[list[int]] = [[] for _ in range(n_ctx)]
        self.f_val: list[list[dict]] = [[] for _ in range(n_ctx)]

    # -- build ------------------------------------------------------------------
    def build(self, topo_rows: np.ndarray, src: np.ndarray, dst: np.ndarray, chains: Chains) -> None:
        n = self.n
        trace = self.trace_of_ctx[self.ctx]
        local_edge = trace[src] == trace[dst]
        self.chains = chains
        self.g_ops = Clocks(chains.n)
        self._forward_local(topo_rows, src[local_edge], dst[local_edge])
        self._forward_global(topo_rows, src, dst, chains)
        self._backward(topo_rows, src[local_edge], dst[local_edge], chains)
        self.n_edges = len(src)
        del n

    def _edges_of(self, rows: np.ndarray, key: np.ndarray, other: np.ndarray):
        """For each of ``rows`` (in the order given), its edges (those whose ``key`` end is the
        row) as the ``other`` ends: per-row start offsets into the flat array of other ends.
        The sweeps read these compact lists, not lists of every row (~36 MB each at 1M events)."""
        order = np.argsort(key, kind="stable")
        start = np.searchsorted(key[order], np.arange(self.n + 1))
        cnt = start[rows + 1] - start[rows]
        c_start = np.r_[0, np.cumsum(cnt)].astype(np.int64)
        at = np.repeat(start[rows] - c_start[:-1], cnt) + np.arange(int(c_start[-1]), dtype=np.int64)
        return c_start.tolist(), other[order][at]

    def _forward_local(self, topo_rows, src, dst) -> None:
        recv = self.pos == 1
        recv[dst] = True
        rows = topo_rows[recv[topo_rows]]
        start, u = self._edges_of(rows, dst, src)
        xs = self.ctx[rows]
        x_l, p_l, lx_l = xs.tolist(), self.pos[rows].tolist(), self.local[xs].tolist()
        t_l = self.trace_of_ctx[xs].tolist()
        y_l, q_l, ly_l = self.ctx[u].tolist(), self.pos[u].tolist(), self.local[self.ctx[u]].tolist()
        l_pos, l_clock, local_ops = self.l_pos, self.l_clock, self.local_ops
        bisect_right = bisect.bisect_right
        for k in range(len(x_l)):
            x, p = x_l[k], p_l[k]
            ops = local_ops[t_l[k]]
            clock = l_clock[x][-1] if l_clock[x] else None
            if ops.depth > 1:  # a trace of more than 32 contexts: the trie operations
                for e in range(start[k], start[k + 1]):
                    y, q, ly = y_l[e], q_l[e], ly_l[e]
                    if ops.get(clock, ly) >= q:
                        continue  # already known, and so is everything u knew
                    i = bisect_right(l_pos[y], q) - 1
                    clock = ops.join(clock, ops.set(l_clock[y][i], ly, q))
                l_pos[x].append(p)
                l_clock[x].append(ops.set(clock, lx_l[k], p))
                continue
            # one leaf (the usual trace): Clocks.get/set/join written out, same results and
            # identities (the calls cost as much as the work)
            for e in range(start[k], start[k + 1]):
                y, q, ly = y_l[e], q_l[e], ly_l[e]
                if clock is not None and clock[ly] >= q:
                    continue  # already known, and so is everything u knew
                i = bisect_right(l_pos[y], q) - 1
                theirs = l_clock[y][i]
                leaf = list(theirs if theirs is not None else ops.zero_leaf)
                if leaf[ly] != q or theirs is None:
                    leaf[ly] = q
                    theirs = tuple(leaf)
                if clock is None:
                    clock = theirs
                elif theirs is not clock:
                    m = tuple(map(max, clock, theirs))
                    if m != clock:
                        clock = theirs if m == theirs else m
            lx = lx_l[k]
            if clock is None:
                leaf = list(ops.zero_leaf)
                leaf[lx] = p
                clock = tuple(leaf)
            elif clock[lx] != p:
                leaf = list(clock)
                leaf[lx] = p
                clock = tuple(leaf)
            l_pos[x].append(p)
            l_clock[x].append(clock)

    def _forward_global(self, topo_rows, src, dst, chains: Chains) -> None:
        step = np.zeros(self.n, dtype=bool)
        step[dst] = True
        if chains.own:
            step[np.fromiter(chains.own, dtype=np.int64)] = True
        rows = topo_rows[step[topo_rows]]
        start, u = self._edges_of(rows, dst, src)
        ops = self.g_ops
        r_l, x_l, p_l = rows.tolist(), self.ctx[rows].tolist(), self.pos[rows].tolist()
        y_l, q_l = self.ctx[u].tolist(), self.pos[u].tolist()
        g_pos, g_clock, own = self.g_pos, self.g_clock, chains.own
        flat, zero = ops.depth == 1, ops.zero_leaf
        bisect_right = bisect.bisect_right
        for k in range(len(r_l)):
            x, p = x_l[k], p_l[k]
            clock = g_clock[x][-1] if g_clock[x] else None
            for e in range(start[k], start[k + 1]):
                y = y_l[e]
                i = bisect_right(g_pos[y], q_l[e]) - 1
                if i >= 0:
                    other = g_clock[y][i]
                    if not flat:
                        clock = ops.join(clock, other)
                    elif other is not None and other is not clock:
                        # Clocks.join on one leaf (few chains, the usual case), written out:
                        # the call cost as much as the join; same identities returned
                        if clock is None:
                            clock = other
                        else:
                            m = tuple(map(max, clock, other))
                            if m != clock:
                                clock = other if m == other else m
            for c, idx in own.get(r_l[k], ()):
                if flat:
                    if (clock[c] if clock is not None else 0) < idx:
                        leaf = list(clock if clock is not None else zero)
                        leaf[c] = idx
                        clock = tuple(leaf)
                elif ops.get(clock, c) < idx:
                    clock = ops.set(clock, c, idx)
            if g_clock[x] and clock is g_clock[x][-1]:
                continue
            g_pos[x].append(p)
            g_clock[x].append(clock)

    def _backward(self, topo_rows, src, dst, chains: Chains) -> None:
        """F at every event that can send: releases, and sources of edges inside the trace."""
        send = np.zeros(self.n, dtype=bool)
        send[src] = True
        if chains.own:
            send[np.fromiter(chains.own, dtype=np.int64)] = True
        rows = topo_rows[send[topo_rows]][::-1]
        start, d = self._edges_of(rows, src, dst)
        r_l, x_l, p_l = rows.tolist(), self.ctx[rows].tolist(), self.pos[rows].tolist()
        y_l, q_l = self.ctx[d].tolist(), self.pos[d].tolist()
        own = chains.own
        f_pos, f_val = self.f_pos, self.f_val  # built back to front, reversed at the end
        for k in range(len(r_l)):
            x, p = x_l[k], p_l[k]
            val = f_val[x][-1] if f_val[x] else None  # the next send point in x
            merged = None
            for e in range(start[k], start[k + 1]):
                y, q = y_l[e], q_l[e]
                ps = f_pos[y]  # descending positions, built backwards
                i = _first_at_or_after_desc(ps, q)
                if i is None:
                    continue
                other = f_val[y][i]
                if other:
                    merged = _min_merge(merged if merged is not None else dict(val or {}), other)
            for c, idx in own.get(r_l[k], ()):
                if merged is None:
                    merged = dict(val or {})
                if merged.get(c, idx + 1) > idx:
                    merged[c] = idx
            f_pos[x].append(p)
            f_val[x].append(merged if merged is not None else (val or {}))
        for x in range(len(f_pos)):
            f_pos[x].reverse()
            f_val[x].reverse()

    # -- queries ------------------------------------------------------------------
    def local_snapshot(self, r: int):
        x = int(self.ctx[r])
        i = bisect.bisect_right(self.l_pos[x], int(self.pos[r])) - 1
        return self.l_clock[x][i]

    def global_snapshot(self, r: int):
        x = int(self.ctx[r])
        i = bisect.bisect_right(self.g_pos[x], int(self.pos[r])) - 1
        return self.g_clock[x][i] if i >= 0 else None

    def reaches(self, r: int) -> dict:
        """F(r): chain -> first release index reachable from r inside its trace."""
        x = int(self.ctx[r])
        i = bisect.bisect_left(self.f_pos[x], int(self.pos[r]))
        return self.f_val[x][i] if i < len(self.f_pos[x]) else {}

    def knows_local(self, b: int, c: int) -> int:
        """How far event b knows context c of its own trace (0 for other traces)."""
        if int(self.ctx[b]) == c:
            return int(self.pos[b])
        if self.trace_of_ctx[c] != self.trace_of_ctx[int(self.ctx[b])]:
            return 0
        ops = self.local_ops[int(self.trace_of_ctx[c])]
        return ops.get(self.local_snapshot(b), int(self.local[c]))

    def before(self, a: int, b: int) -> bool:
        if a == b:
            return False
        ca = int(self.ctx[a])
        if self.knows_local(b, ca) >= int(self.pos[a]):
            return True
        fa = self.reaches(a)
        if not fa:
            return False
        gb = self.global_snapshot(b)
        get = self.g_ops.get
        return any(get(gb, c) >= i for c, i in fa.items())

    def clock(self, r: int) -> tuple[dict[int, int], dict[int, int]]:
        """(context -> position known, inside the trace; chain -> last release known)."""
        x = int(self.ctx[r])
        t = int(self.trace_of_ctx[x])
        ops = self.local_ops[t]
        members = np.flatnonzero(self.trace_of_ctx == t)
        by_local = {int(self.local[c]): int(c) for c in members}
        local = {by_local[k]: v for k, v in ops.items(self.local_snapshot(r))}
        local[x] = int(self.pos[r])
        known = dict(self.g_ops.items(self.global_snapshot(r)))
        return local, known

    # -- batch access for the race sweep -------------------------------------------
    def columns(self, rows: np.ndarray) -> dict[str, list]:
        """Per row, as parallel lists: trace, ctx, local id, pos, L and G snapshots, F."""
        ctx = self.ctx[rows]
        pos = self.pos[rows]
        key = (ctx << 32) | pos
        out = {"trace": self.trace_of_ctx[ctx].tolist(), "ctx": ctx.tolist(),
               "local": self.local[ctx].tolist(), "pos": pos.tolist()}
        for name, positions, values, side, empty in (("L", self.l_pos, self.l_clock, "right", None),
                                                      ("G", self.g_pos, self.g_clock, "right", None),
                                                      ("F", self.f_pos, self.f_val, "left", {})):
            flat_key, flat_val = _flatten(positions, values)
            n = len(flat_key)
            i = np.searchsorted(flat_key, key, side=side) - (1 if side == "right" else 0)
            ok = (i >= 0) & (i < n)
            ok[ok] &= (flat_key[i[ok]] >> 32) == ctx[ok]
            vals = np.empty(n + 1, dtype=object)  # the last slot: "none known"
            vals[:n] = flat_val
            vals[n] = empty
            out[name] = vals[np.where(ok, i, n)].tolist()
        return out


def _flatten(positions: list[list[int]], values: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys (ctx << 32 | position) of every context's snapshots, and the snapshots
    (an object array: they are tuples, tries or dicts)."""
    lengths = np.fromiter(map(len, positions), dtype=np.int64, count=len(positions))
    total = int(lengths.sum())
    flat_pos = np.fromiter(chain.from_iterable(positions), dtype=np.int64, count=total)
    keys = (np.repeat(np.arange(len(positions), dtype=np.int64), lengths) << 32) | flat_pos
    vals = np.fromiter(chain.from_iterable(values), dtype=object, count=total)
    return keys, vals


def _min_merge(into: dict, other: dict) -> dict:
    for c, i in other.items():
        if into.get(c, i + 1) > i:
            into[c] = i
    return into


def _first_at_or_after_desc(ps: list[int], q: int) -> int | None:
    """In a list of descending positions, the index of the smallest position >= q."""
    lo, hi = 0, len(ps)
    # ps descending: find the last index with ps[i] >= q
    while lo < hi:
        mid = (lo + hi) // 2
        if ps[mid] >= q:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1 if lo > 0 else None
