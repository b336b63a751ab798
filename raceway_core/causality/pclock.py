"""Persistent (immutable, structure-sharing) vector clocks over dense context ids.

A clock is a fixed-depth trie of 32-way tuples; leaves hold counters, ``None`` is
an all-zero subtree. Updates copy one root-to-leaf path; joins skip shared or
empty subtrees, so the common case - a context learning what one other context
knew, which already contained most of its own knowledge - touches a handful of
nodes even when clocks hold tens of thousands of components (a lock handed from
request to request across a whole run).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import compress
from operator import is_not

W = 32
BITS = 5
MASK = W - 1
ZERO_LEAF = (0,) * W


class Clocks:
    """Operations on clocks of ``n`` components (contexts 0..n-1)."""

    def __init__(self, n: int) -> None:
        depth = 1
        while W ** depth < max(n, 1):
            depth += 1
        self.depth = depth  # number of levels; level depth-1 is the leaves
        # a clock of few components is one short leaf: joins are one C-level map
        self.zero_leaf = (0,) * max(n, 1) if depth == 1 else ZERO_LEAF

    # -- read ---------------------------------------------------------------
    def get(self, clock, k: int) -> int:
        node = clock
        shift = BITS * (self.depth - 1)
        while node is not None:
            if shift == 0:
                return node[k & MASK]
            node = node[(k >> shift) & MASK]
            shift -= BITS
        return 0

    def items(self, clock) -> Iterator[tuple[int, int]]:
        """Non-zero (component, value) pairs in component order."""
        yield from self._items(clock, self.depth - 1, 0)

    def _items(self, node, level: int, base: int):
        if node is None:
            return
        if level == 0:
            for i, v in enumerate(node):
                if v:
                    yield (base << BITS) | i, v
            return
        for i, child in enumerate(node):
            if child is not None:
                yield from self._items(child, level - 1, (base << BITS) | i)

    # -- write --------------------------------------------------------------
    def set(self, clock, k: int, v: int):
        """A new clock equal to ``clock`` with component k set to v."""
        return self._set(clock, self.depth - 1, k, v)

    def _set(self, node, level: int, k: int, v: int):
        i = (k >> (BITS * level)) & MASK
        if level == 0:
            leaf = list(node) if node is not None else list(self.zero_leaf)
            if leaf[i] == v and node is not None:
                return node
            leaf[i] = v
            return tuple(leaf)
        children = list(node) if node is not None else [None] * W
        children[i] = self._set(children[i], level - 1, k, v)
        return tuple(children)

    def join(self, a, b):
        """Component-wise maximum; returns ``a`` or ``b`` itself when one covers the other."""
        if a is b or b is None:
            return a
        if a is None:
            return b
        return self._join(a, b, self.depth - 1)

    def _join(self, a, b, level: int):
        if level == 0:
            m = tuple(map(max, a, b))
            if m == a:
                return a
            if m == b:
                return b
            return m
        # find differing children at C speed; usually only one or two differ
        out = None
        for i in compress(range(W), map(is_not, a, b)):
            x, y = a[i], b[i]
            if y is None:
                continue
            c = y if x is None else self._join(x, y, level - 1)
            if c is not x:
                if out is None:
                    out = list(a)
                out[i] = c
        if out is None:
            return a
        t = tuple(out)
        return b if t == b else t

    def leq(self, a, b) -> bool:
        """True when every component of a is <= the same component of b."""
        return self.join(a, b) == b if a is not b else True
