"""The races stage's lock sets: interned per distinct set, equal to building one per access."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from raceway_core.causality.raceinput import interned_lock_sets as _interned_lock_sets

lock = st.sampled_from(["a", "b", "acct:alice", "", "x\x1fy", "x", "y"])
lock_list = st.one_of(st.none(), st.lists(lock, min_size=1, max_size=3, unique=True).map(sorted))


@settings(max_examples=200, deadline=None)
@given(st.lists(lock_list, max_size=30), st.randoms(use_true_random=False))
def test_interned_lock_sets_match_one_set_per_access(lists, rnd):
    order = list(range(len(lists)))
    rnd.shuffle(order)
    got = _interned_lock_sets(pa.chunked_array([pa.array(lists, pa.list_(pa.string()))]), np.array(order, dtype=np.int64))
    assert got == [None if lists[i] is None else frozenset(lists[i]) for i in order]
