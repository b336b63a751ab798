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
from collections.abc import Callable

R, W, AR, AW = 0, 1, 2, 3
CLASS_OF = {"Read": R, "Write": W, "AtomicRead": AR, "AtomicWrite": AW, "AtomicRMW": AW}
_WRITES = {W, AW}
_ATOMIC = {AR, AW}


def conflicts(a: int, b: int) -> bool:
    return (a in _WRITES or b in _WRITES) and not (a in _ATOMIC and b in _ATOMIC)


# classes an access of each class conflicts with, as a bit mask
QUERY = [sum(1 << c for c in range(4) if conflicts(k, c)) for k in range(4)]


def sweep(var: list[int], cls: list[int], ctx: list[int],
          locks: list[frozenset | None], before: Callable[[int, int], bool]) -> tuple[array, array, int]:
    """Accesses 0..m-1 sorted by (variable, causal order). ``before(a, i)``: access a
    happens before access i. Returns the racing pairs as two parallel arrays of access
    indices (earlier-processed first) and the number of nodes examined."""
    out_a, out_b = array("q"), array("q")
    add_a, add_b = out_a.append, out_b.append
    m = len(var)
    mask = [0] * m
    cov: list[list[int] | None] = [None] * m
    is_root = bytearray(m)
    visited = 0
    start = 0
    while start < m:
        end = start
        v = var[start]
        while end < m and var[end] == v:
            end += 1
        roots: dict[int, dict[int, None]] = {}
        last_in_ctx: dict[int, int] = {}
        for i in range(start, end):
            ci, xi = cls[i], ctx[i]
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
                    visited += 1
                    if before(f, i):
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
                            la, li = locks[a], locks[i]
                            if not (la and li and la & li):
                                add_a(a)
                                add_b(i)
                        below = cov[a]
                        if below:
                            for c in below:
                                if mask[c] & q:
                                    visited += 1
                                    if not before(c, i):
                                        stack.append(c)
                if not bucket:
                    del roots[bucket_mask]
            cov[i] = children or None
            mask[i] = mi
            is_root[i] = 1
            roots.setdefault(mi, {})[i] = None
            last_in_ctx[xi] = i
        start = end
    return out_a, out_b, visited
