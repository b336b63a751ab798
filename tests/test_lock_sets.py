"""The races stage's lock sets: interned per distinct set, equal to building one per access."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
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


# -- the engine's lock sets (numpy) against its SQL walk ------------------------------------

_op = st.one_of(
    st.tuples(st.just("acq"), st.sampled_from(["a", "b", "zz", "é"])),
    st.tuples(st.just("rel"), st.sampled_from(["a", "b", "zz", "é"])),  # unmatched releases too
    st.tuples(st.just("acc"), st.one_of(st.none(), st.lists(st.sampled_from(["m", "a", "n"]), max_size=3))),
)


_programs = (st.lists(st.lists(_op, max_size=12), min_size=1, max_size=4), st.lists(st.integers(0, 3), max_size=40))


@settings(max_examples=15, deadline=None)
@given(*_programs)
def test_engine_lock_sets_equal_the_sql_walk_on_a_few_programs(tmp_path_factory, contexts, interleave):
    """`make test`'s few examples of the test below (60 examples, slow)."""
    test_engine_lock_sets_equal_the_sql_walk.hypothesis.inner_test(tmp_path_factory, contexts, interleave)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(*_programs)
def test_engine_lock_sets_equal_the_sql_walk(tmp_path_factory, contexts, interleave):
    """hb.locksets as the engine builds it (segmented sums over arrays) equals the SQL
    reference it replaced (window walk clamped at 0 + ASOF join), on random acquire/release
    sequences (re-entrant, unmatched releases, contexts with only a given lock_set)."""
    import json

    from raceway_core import TraceSession

    events, t = [], 0
    left = [list(ops) for ops in contexts]
    turns = [i % len(left) for i in interleave] + [i for i, ops in enumerate(left) for _ in ops]
    for c in turns:
        if not left[c]:
            continue
        op, arg = left[c].pop(0)
        t += 1
        if op == "acc":
            kind = {"StateChange": {"variable": "v", "old_value": None, "new_value": 1, "location": "x.py:1",
                                    "access_type": "Write"}}
        else:
            kind = {"LockAcquire" if op == "acq" else "LockRelease": {"lock_id": arg, "lock_type": "Mutex",
                                                                     "location": "l.py:1"}}
        events.append({"id": f"e{t}", "trace_id": "T", "parent_id": None,
                       "timestamp": f"2026-11-01T12:00:00.{t:06d}Z", "kind": kind,
                       "metadata": {"thread_id": f"c{c}", "service_name": "s"},
                       "causality_vector": [], "lock_set": (arg or []) if op == "acc" else []})
    if not events:
        return
    p = tmp_path_factory.mktemp("ls") / "t.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([p]) as s:
        eng = s.engine
        got = {r["seq"]: r["locks"] for r in s.sql("SELECT seq, locks FROM hb.locksets").to_pylist()}
        cur = s.store.cursor()
        try:
            eng._locksets(cur)  # the SQL reference, in place of the engine's table
        finally:
            cur.close()
        want = {r["seq"]: r["locks"] for r in s.sql("SELECT seq, locks FROM hb.locksets").to_pylist()}
    assert got == want
