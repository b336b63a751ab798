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
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

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


def sweep(acc: Accesses) -> tuple[array, array, int]:
    """Racing pairs as two parallel arrays of access indices (earlier-processed first),
    and the number of happens-before checks made."""
    out_a, out_b = array("q"), array("q")
    add_a, add_b = out_a.append, out_b.append
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
    start = 0
    while start < m:
        end = start
        v = var[start]
        while end < m and var[end] == v:
            end += 1
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
                            if not (la and lk and la & lk):
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
        start = end
    return out_a, out_b, checks
