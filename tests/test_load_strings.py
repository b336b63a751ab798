"""Any string round-trips exactly through every load path, and dedupe holds across paths.

Issue 15.2: the SQL path kept JSON escapes (`a"b` stored as `a\\"b`), so the same id
stored through two paths was two ids.
"""

from __future__ import annotations

import gzip
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import event
from raceway_core import rawtext
from raceway_core.loading import batch
from raceway_core.store import Store

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# any text a JSON file can hold: quotes, backslashes, control characters, unicode (no lone surrogates)
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12)
PLAIN_PICKS = st.sampled_from(['a"b', "a\nb", "\x1b[31m", "back\\slash", "tab\there", "\\u0041", "é€𝄞", "\x00"])
STRINGS = PLAIN_PICKS | TEXT


def _event(i: int, s: str, kind: str = "StateChange") -> dict:
    kinds = {
        "StateChange": {"StateChange": {"variable": s, "old_value": s, "new_value": {s: [s]},
                                        "location": s, "access_type": "Write"}},
        "LockAcquire": {"LockAcquire": {"lock_id": s, "lock_type": "Mutex", "location": s}},
        "FunctionCall": {"FunctionCall": {"function_name": s, "module": s, "args": {}, "file": s, "line": 3}},
        "AsyncSpawn": {"AsyncSpawn": {"task_id": s, "spawned_by": s}},
    }
    ev = event(i, kind=kinds[kind], parent=s)
    ev["id"] = f"{s}#{i}"
    ev["trace_id"] = s
    ev["metadata"].update(thread_id=s, service_name=s, instance_id=s, distributed_span_id=s)
    ev["lock_set"] = [s]
    ev["causality_vector"] = [[s, 1]]
    return ev


def _expected(ev: dict) -> dict:
    (kind, p), = ev["kind"].items()
    loc = p.get("location") if kind != "FunctionCall" else f"{p['file']}:{p['line']}"
    return {
        "id": ev["id"], "trace_id": ev["trace_id"], "parent_id": ev["parent_id"],
        "thread_id": ev["metadata"]["thread_id"], "service": ev["metadata"]["service_name"],
        "instance_id": ev["metadata"]["instance_id"], "span_id": ev["metadata"]["distributed_span_id"],
        "variable": p.get("variable"), "location": loc, "lock_id": p.get("lock_id"),
        "function_name": p.get("function_name"), "task_id": p.get("task_id"),
        "old_value": p.get("old_value"), "new_value": p.get("new_value"),
        "lock_set": ev["lock_set"], "clock": [{"c": c, "n": n} for c, n in ev["causality_vector"]],
        "raw": ev,
    }


def _stored(store: Store) -> list[dict]:
    rows = store.sql("SELECT id, trace_id, parent_id, thread_id, service, instance_id, span_id, variable, location, "
                     "lock_id, function_name, task_id, CAST(old_value AS VARCHAR) AS old_value, "
                     "CAST(new_value AS VARCHAR) AS new_value, lock_set, clock "
                     "FROM events ORDER BY seq").to_pylist()
    cur = store.cursor()
    try:  # stored, or read back from the file (an in-memory load of NDJSON: rawtext)
        for r, text in zip(rows, rawtext.all_texts(cur), strict=True):
            r["raw"] = text
    finally:
        cur.close()
    for r in rows:
        for k in ("old_value", "new_value", "raw"):
            r[k] = None if r[k] is None else json.loads(r[k])
    return rows


# -- the paths -------------------------------------------------------------------------


def file_path(form: str):
    def load(store: Store, events: list[dict], tmp_path):
        if form == "ndjson":
            data = "\n".join(json.dumps(e, ensure_ascii=False) for e in events).encode() + b"\n"
        elif form == "ndjson-ascii":
            data = "\n".join(json.dumps(e) for e in events).encode() + b"\n"
        elif form == "document":
            data = json.dumps(events, indent=2, ensure_ascii=False).encode()
        elif form == "batch-line":
            data = json.dumps({"events": events}, ensure_ascii=False).encode() + b"\n"
        elif form == "gzip":
            data = gzip.compress(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
        else:
            raise ValueError(form)
        p = tmp_path / f"in-{form}-{store.counts()['events']}.json"
        p.write_bytes(data)
        [s] = store.load([p])
        assert s.ok and s.rejected == 0, s.line()
        return s.loaded, s.duplicates
    return load


def append_path(form: str):
    def load(store: Store, events: list[dict], tmp_path):
        load_id = store.open_live("post", "http")
        texts = [orjson.dumps(e).decode() for e in events]
        old = batch.PY_FAST_MAX
        if form == "texts-big":  # what a batch over PY_FAST_MAX events takes: the SQL path
            batch.PY_FAST_MAX = 0
        try:
            if form in ("texts-small", "texts-big"):
                line = texts
            elif form == "body":
                line = json.dumps({"events": events}, ensure_ascii=False)
            elif form == "prepared":
                line = batch.prepare(events, texts)
            elif form == "rows":
                line = batch.Rows.of(batch.prepare(events, texts))
                assert line is not None  # pyfast took every event
            else:
                raise ValueError(form)
            out = store.append(load_id, "post", [line])
        finally:
            batch.PY_FAST_MAX = old
        assert out.rejected == 0, out
        return out.loaded, out.duplicates
    return load


PATHS = {f"file-{f}": file_path(f) for f in ("ndjson", "ndjson-ascii", "document", "batch-line", "gzip")}
PATHS |= {f"append-{f}": append_path(f) for f in ("texts-small", "texts-big", "body", "prepared", "rows")}
KINDS = ["StateChange", "LockAcquire", "FunctionCall", "AsyncSpawn"]


@pytest.mark.parametrize("path", sorted(PATHS))
@SETTINGS
@given(strings=st.lists(STRINGS, min_size=1, max_size=4))
def test_strings_round_trip_exactly(path, strings, tmp_path):
    events = [_event(i, s, KINDS[i % len(KINDS)]) for i, s in enumerate(strings)]
    with Store() as store:
        loaded, _ = PATHS[path](store, events, tmp_path)
        assert loaded == len(events)
        got = _stored(store)
    want = [_expected(e) for e in events]
    for g, w in zip(got, want):
        assert g == w


@pytest.mark.parametrize("second", sorted(PATHS))
# from a file into every path in `make test`; from the two append forms (20 more stores x 6
# examples, 13 s of CPU) in `make test-slow`
@pytest.mark.parametrize("first", ["file-ndjson", pytest.param("append-texts-small", marks=pytest.mark.slow),
                                   pytest.param("append-texts-big", marks=pytest.mark.slow)])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=STRINGS)
def test_dedupe_across_paths(first, second, s, tmp_path):
    events = [_event(0, s), _event(1, s + '"\\', "LockAcquire")]
    with Store() as store:
        assert PATHS[first](store, events, tmp_path) == (2, 0)
        assert PATHS[second](store, events, tmp_path) == (0, 2)
        assert store.counts()["events"] == 2
        assert [r["id"] for r in _stored(store)] == [e["id"] for e in events]
