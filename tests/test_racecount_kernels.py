"""The identity-deduplicated kernels of racecount.py against the per-item loops they replaced."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from raceway_core.causality import racecount
from raceway_core.causality.pclock import Clocks


def _pool_and_picks(make):
    """A few shared objects (some equal but distinct), and a list picking among them."""
    return st.integers(1, 6).flatmap(lambda k: st.tuples(
        st.lists(make, min_size=k, max_size=k),
        st.lists(st.integers(0, k - 1), max_size=40)))


@settings(max_examples=60, deadline=None)
@given(_pool_and_picks(st.one_of(st.none(), st.tuples(st.integers(0, 3)))))
def test_by_identity_numbers_objects_by_first_occurrence(data):
    pool, picks = data
    objs = [pool[p] for p in picks]
    first, inv = racecount.by_identity(objs)
    seen: dict[int, int] = {}  # the reference: a dict per item
    ref_first, ref_inv = [], []
    for n, o in enumerate(objs):
        if id(o) not in seen:
            seen[id(o)] = len(ref_first)
            ref_first.append(n)
        ref_inv.append(seen[id(o)])
    assert first.tolist() == ref_first
    assert inv.tolist() == ref_inv
    assert all(objs[first[inv[n]]] is objs[n] for n in range(len(objs)))


def _old_chain_clocks(G, chains, items):
    out = np.zeros((len(G), len(chains)), dtype=np.int64)
    col = {k: n for n, k in enumerate(chains)}
    for n, g in enumerate(G):
        if g is not None:
            for k, v in items(g):
                if k in col:
                    out[n, col[k]] = v
    return out


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 70).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 9)), max_size=5), min_size=1, max_size=6),
    st.lists(st.integers(-1, 5), max_size=30),
    st.sets(st.integers(0, n - 1), max_size=6))))
def test_chain_clocks_match_reading_every_clock(data):
    n, sets, picks, chains = data
    ops = Clocks(n)  # n > 32: tries deeper than one leaf (the general path)
    pool = []
    for s in sets:
        c = None
        for k, v in s:
            if ops.get(c, k) < v:
                c = ops.set(c, k, v)
        pool.append(c)
    G = [pool[p % len(pool)] if p >= 0 else None for p in picks]
    chains = sorted(chains)
    got = racecount._chain_clocks(G, chains, ops.items)
    assert got.tolist() == _old_chain_clocks(G, chains, ops.items).tolist()


def test_minimal_entries_are_shared_per_snapshot():
    f1, f2 = {0: 2}, {0: 2}  # equal but distinct snapshots
    release_row = {(0, 2): 5}
    out = racecount.minimal_entries([f1, None, f1, f2, {}], release_row, lambda r: {}, np.arange(10))
    assert out == [((0, 2),), (), ((0, 2),), ((0, 2),), ()]
    assert out[0] is out[2]
