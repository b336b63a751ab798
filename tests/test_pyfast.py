"""The Python fast path for small batches stores exactly what the SQL path stores."""

from __future__ import annotations

import json


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import event
from raceway_core.loading import batch
from raceway_core.store import Store

SETTINGS = settings(max_examples=int(__import__("os").environ.get("RACEWAY_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KINDS = [
    {"StateChange": {"variable": "acct", "old_value": 1.5, "new_value": {"a": [1, None]}, "location": "b.py:3",
                     "access_type": "AtomicRMW"}},
    {"StateChange": {"variable": "v", "access_type": "Read"}},
    {"LockAcquire": {"lock_id": "m", "lock_type": "Mutex", "location": "l.py:1"}},
    {"LockRelease": {"lock_id": "m"}},
    {"FunctionCall": {"function_name": "f", "module": "m", "args": {"x": 1}, "file": "f.py", "line": 12}},
    {"FunctionCall": {"function_name": "g", "line": 3}},
    {"AsyncSpawn": {"task_id": 17, "spawned_by": "main"}},
    {"AsyncAwait": {"future_id": "t-1", "awaited_at": "a.py:2"}},
    {"HttpRequest": {"method": "POST", "url": "/x", "headers": {}, "body": None, "location": "not a field here"}},
    {"HttpResponse": {"status": 503, "headers": {}, "body": None, "duration_ms": 12.25}},
    {"DatabaseQuery": {"query": "select", "database": "db", "duration_ms": 3}},
    {"MemoryFence": {"ordering": "SeqCst", "location": "f.c:9"}},
    {"Error": {"error_type": "E", "message": "boom", "stack_trace": []}},
    {"Custom": {"name": "c", "data": {"k": "v"}}},
    {"Teleport": {"where": "mars"}},
    "Custom",
]
TIMESTAMPS = ["2026-11-01T12:00:00.000001+00:00", "2026-11-01T12:00:00Z", "2026-11-01T12:00:00.123456789Z",
              "2026-11-01T13:30:00.5+01:30", "1969-12-31T23:59:59.9999995Z", "2026-11-01 12:00:00",
              "not a time", "2026-02-30T00:00:00Z"]
ODD = [None, 7, -1, 1.5, "s", [], {}, 10**20, 2**62, float("1e300")]


@st.composite
def events(draw):
    out = []
    for i in range(draw(st.integers(1, 12))):
        ev = event(i, kind=draw(st.sampled_from(KINDS)), ts=draw(st.sampled_from(TIMESTAMPS)),
                   thread=draw(st.sampled_from(["a", "b", "wörker"])),
                   causality_vector=draw(st.sampled_from([[], [["a", 1], ["b", 3]], [["a", -1]], None])),
                   lock_set=draw(st.sampled_from([[], ["m"], [1], None])))
        ev["metadata"]["duration_ns"] = draw(st.sampled_from([None, 0, 1500, 2.5, -3, 10**18, 2**60]))
        if draw(st.booleans()):  # a field of some odd value
            where = draw(st.sampled_from(["id", "trace_id", "parent_id", "metadata.thread_id",
                                          "metadata.service_name", "metadata.process_id", "metadata.tags"]))
            obj = ev["metadata"] if where.startswith("metadata.") else ev
            obj[where.split(".")[-1]] = draw(st.sampled_from(ODD))
        out.append(ev)
    if len(out) > 1 and draw(st.booleans()):
        out.append(dict(out[0]))  # a duplicate id
    return out


def _store_with(texts: list[str], fast_max: int):
    s = Store()
    old = batch.PY_FAST_MAX
    batch.PY_FAST_MAX = fast_max
    try:
        load_id = s.open_live("post", "http")
        out = s.append(load_id, "post", [texts])
    finally:
        batch.PY_FAST_MAX = old
    return s, out


def _rows(s: Store):
    t = s.sql("SELECT * EXCLUDE (raw) FROM events ORDER BY seq").to_pylist()
    for r in t:
        for k in ("old_value", "new_value"):
            r[k] = None if r[k] is None else json.loads(r[k])
    return t


@pytest.mark.slow
@SETTINGS
@given(evs=events())
def test_python_and_sql_paths_store_the_same(evs):
    texts = [json.dumps(e, allow_nan=False) for e in evs]
    fast, out_fast = _store_with(texts, 10_000)
    slow, out_slow = _store_with(texts, 0)
    try:
        assert _rows(fast) == _rows(slow)
        rej = "SELECT line, rec, reason FROM rejects ORDER BY line, rec"
        assert fast.sql(rej).to_pylist() == slow.sql(rej).to_pylist()
        assert (out_fast.loaded, out_fast.rejected, out_fast.duplicates) == (
            out_slow.loaded, out_slow.rejected, out_slow.duplicates)
    finally:
        fast.close()
        slow.close()


def test_the_fast_path_takes_plain_sdk_events():
    """Not a vacuous equivalence: ordinary events really go through Python."""
    from raceway_core.loading import pyfast

    evs = [json.loads(line)["events"] for line in open("sample_traces/original-sdk-distributed.jsonl")]
    flat = [e for batch_ in evs for e in batch_]
    taken = [pyfast.row(e) is not None for e in flat]
    assert all(taken)
    assert pyfast.row(event(1, kind={"Teleport": {}})) is None  # unknown variants: SQL decides
