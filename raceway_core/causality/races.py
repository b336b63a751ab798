"""Races: conflicting, concurrent, lock-disjoint accesses to one variable.

Not all pairs (the original Raceway's O(m·k²)): accesses of a variable are swept
in causal order keeping a *frontier forest*. Every access processed so far is
either a root (no later access is known to follow it) or hangs below a later
access it happens-before. When access e arrives:

- a root that happens-before e is adopted by e (it and everything below it
  precede e, so none of them can race with e);
- a root concurrent with e is examined, and so is every node below it that does
  not happen-before e: exactly the earlier accesses concurrent with e.

Each node records which access classes (R, W, AR, AW) lie in its subtree and
roots are bucketed by that mask, so a read never walks subtrees holding only
reads (concurrent readers cost nothing) and an atomic never walks atomics. With
synchronised accesses the forest stays a chain and each access costs O(1); the
work is otherwise proportional to the concurrent conflicting pairs reported.

The sweep *lists* pairs (in batches, so a caller can stop at its limit); counts
come from it only for short runs of one variable inside one trace (racelocal.py and
racecount.py count the rest from the clocks).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

R, W, AR, AW = 0, 1, 2, 3
CLASS_OF = {"Read": R, "Write": W, "AtomicRead": AR, "AtomicWrite": AW, "AtomicRMW": AW}
_WRITES = {W, AW}
_ATOMIC = {AR, AW}


def conflicts(a: int, b: int) -> bool:
    return (a in _WRITES or b in _WRITES) and not (a in _ATOMIC and b in _ATOMIC)


# classes an access of each class conflicts with, as a bit mask
QUERY = [sum(1 << c for c in range(4) if conflicts(k, c)) for k in range(4)]


@dataclass
class Accesses:
    """Accesses sorted by (variable, causal order), with what happens-before needs.

    For access j: ctx/pos (program order), trace, lid (its context's id inside the
    trace), L (trace-local clock: a tuple indexed by lid, or a trie when the trace
    is large), G (lock chains known: tuple indexed by chain) and F (chain -> first
    release reached). See clocks.py for why a -> b is decided by these.
    """

    var: list[int]
    cls: list[int]
    ctx: list[int]
    pos: list[int]
    trace: list[int]
    lid: list[int]
    L: list
    G: list
    F: list[dict]
    locks: list[frozenset | None]
    local_get: dict  # trace -> getter for tries deeper than one leaf (absent: a flat tuple)
    g_flat: bool  # G is a flat tuple (few chains)
    g_get: object
    # variable scope "auto": per access its process instance (-1: unknown), and per instance
    # its lifetime; instances whose lifetimes do not overlap never race. None: no such rule.
    inst: list[int] | None = None
    inst_start: list[int] | None = None
    inst_end: list[int] | None = None

    def take(self, order) -> "Accesses":
        """The accesses in another order (a list or array of indices)."""
        order = order.tolist() if hasattr(order, "tolist") else list(order)
        per = {name: [col[k] for k in order] for name, col in (
            ("var", self.var), ("cls", self.cls), ("ctx", self.ctx), ("pos", self.pos), ("trace", self.trace),
            ("lid", self.lid), ("L", self.L), ("G", self.G), ("F", self.F), ("locks", self.locks))}
        inst = [self.inst[k] for k in order] if self.inst is not None else None
        return Accesses(**per, local_get=self.local_get, g_flat=self.g_flat, g_get=self.g_get,
                        inst=inst, inst_start=self.inst_start, inst_end=self.inst_end)


def segments_by(keys: list[np.ndarray]) -> list[tuple[int, int]]:
    """[start, end) runs of equal keys (the arrays are sorted by them)."""
    m = len(keys[0]) if keys else 0
    if m == 0:
        return []
    change = np.zeros(m, dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    ends = np.r_[starts[1:], m]
    return list(zip(starts.tolist(), ends.tolist()))


def sweep(acc: Accesses) -> tuple[array, array, int]:
    """Every racing pair as two parallel arrays of access indices (earlier-processed first),
    and the number of happens-before checks made (tests and benchmarks)."""
    out_a, out_b = array("q"), array("q")
    stats = [0]
    for a, b in sweep_batches(acc, segments_by([np.asarray(acc.var)]), stats=stats):
        out_a.extend(a.tolist())
        out_b.extend(b.tolist())
    return out_a, out_b, stats[0]


def sweep_batches(acc: Accesses, segments: list[tuple[int, int]], batch: int = 1 << 16,
                  stats: list | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Racing pairs, segment by segment (each a run of accesses to one variable, in causal
    order), as batches of two int64 arrays of access indices (earlier-processed first).
    Nothing is kept between batches: a caller that stops early pays only for what it took."""
    out_a, out_b = array("q"), array("q")
    add_a, add_b = out_a.append, out_b.append
    inst, i_start, i_end = acc.inst, acc.inst_start, acc.inst_end
    var, cls, ctx, pos, trace, lid = acc.var, acc.cls, acc.ctx, acc.pos, acc.trace, acc.lid
    L, G, F, locks = acc.L, acc.G, acc.F, acc.locks
    local_get, g_flat, g_get = acc.local_get, acc.g_flat, acc.g_get
    m = len(var)
    mask = [0] * m
    cov: list[list[int] | None] = [None] * m
    is_root = bytearray(m)
    checks = 0

    # The happens-before test is written out below (twice) rather than called: it runs
    # millions of times and a call costs as much as the test. For f and the current i:
    #   same context: program order; same trace: i's local clock knows f;
    #   otherwise (or also): f reaches a lock chain release i knows.
    for start, end in segments:
        roots: dict[int, dict[int, None]] = {}
        last_in_ctx: dict[int, int] = {}
        for i in range(start, end):
            ci, xi, ti, pi_, li, gi = cls[i], ctx[i], trace[i], pos[i], L[i], G[i]
            lget = local_get.get(ti)
            q = QUERY[ci]
            children: list[int] = []
            mi = 1 << ci
            p = last_in_ctx.get(xi)
            if p is not None and is_root[p]:  # program order: the context's previous access
                del roots[mask[p]][p]
                is_root[p] = 0
                children.append(p)
                mi |= mask[p]
            for bucket_mask in list(roots):
                if not bucket_mask & q:
                    continue
                bucket = roots[bucket_mask]
                for f in list(bucket):
                    checks += 1
                    # -- does f happen before i?
                    if ctx[f] == xi:
                        hb = pos[f] < pi_
                    else:
                        hb = False
                        if trace[f] == ti and li is not None:
                            hb = (lget(li, lid[f]) if lget else li[lid[f]]) >= pos[f]
                        if not hb and F[f] and gi is not None:
                            for c, k in F[f].items():
                                if (gi[c] if g_flat else g_get(gi, c)) >= k:
                                    hb = True
                                    break
                    if hb:
                        del bucket[f]
                        is_root[f] = 0
                        children.append(f)
                        mi |= bucket_mask
                        continue
                    # f is concurrent with i: report it and search below it
                    stack = [f]
                    while stack:
                        a = stack.pop()
                        if (q >> cls[a]) & 1 and ctx[a] != xi:
                            la, lk = locks[a], locks[i]
                            if not (la and lk and la & lk) and (inst is None or (ia := inst[a]) < 0 or (ii := inst[i]) < 0
                                                                or not (i_end[ia] < i_start[ii] or i_end[ii] < i_start[ia])):
                                add_a(a)
                                add_b(i)
                        below = cov[a]
                        if below:
                            for c2 in below:
                                if not mask[c2] & q:
                                    continue
                                checks += 1
                                # -- does c2 happen before i? (as above)
                                if ctx[c2] == xi:
                                    hb = pos[c2] < pi_
                                else:
                                    hb = False
                                    if trace[c2] == ti and li is not None:
                                        hb = (lget(li, lid[c2]) if lget else li[lid[c2]]) >= pos[c2]
                                    if not hb and F[c2] and gi is not None:
                                        for c, k in F[c2].items():
                                            if (gi[c] if g_flat else g_get(gi, c)) >= k:
                                                hb = True
                                                break
                                if not hb:
                                    stack.append(c2)
                if not bucket:
                    del roots[bucket_mask]
            cov[i] = children or None
            mask[i] = mi
            is_root[i] = 1
            roots.setdefault(mi, {})[i] = None
            last_in_ctx[xi] = i
            if len(out_a) >= batch:
                yield np.frombuffer(out_a, dtype=np.int64).copy(), np.frombuffer(out_b, dtype=np.int64).copy()
                del out_a[:], out_b[:]
        if stats is not None:
            stats[0] = checks
    if stats is not None:
        stats[0] = checks
    if len(out_a):
        yield np.frombuffer(out_a, dtype=np.int64).copy(), np.frombuffer(out_b, dtype=np.int64).copy()
