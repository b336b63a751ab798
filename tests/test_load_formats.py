"""Every container of the wire format loads the same events, with source and line."""

from __future__ import annotations

import json

import pytest

from conftest import rows
from helpers import document, event, ndjson, write_lines
from raceway_core import rawtext

EVENTS = [event(i, thread=f"t{i % 2}") for i in range(1, 6)]
IDS = [e["id"] for e in EVENTS]


def _ids(store):
    return [r["id"] for r in rows(store, "SELECT id FROM events ORDER BY seq")]


@pytest.mark.parametrize("gz", [False, True])
def test_ndjson_of_events(store, tmp_path, gz):
    path = ndjson(tmp_path / ("e.jsonl.gz" if gz else "e.jsonl"), EVENTS, gz=gz)
    [s] = store.load([path])
    assert (s.records, s.loaded, s.rejected, s.duplicates) == (5, 5, 0, 0)
    assert s.mode == ("ndjson.gz" if gz else "ndjson")
    assert _ids(store) == IDS
    assert [r["line"] for r in rows(store, "SELECT line FROM events ORDER BY seq")] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("gz", [False, True])
def test_ndjson_of_batches(store, tmp_path, gz):
    lines = [json.dumps({"events": EVENTS[:2]}), json.dumps({"events": EVENTS[2:]})]
    path = write_lines(tmp_path / "b.jsonl", lines, gz=gz)
    [s] = store.load([path])
    assert (s.records, s.loaded, s.rejected) == (5, 5, 0)
    assert _ids(store) == IDS
    got = [(r["line"], r["rec"]) for r in rows(store, "SELECT line, rec FROM events ORDER BY seq")]
    assert got == [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("wrap", ["array", "events", "response"])
def test_documents(store, tmp_path, wrap, indent, gz):
    doc = {"array": EVENTS, "events": {"events": EVENTS},
           "response": {"success": True, "data": {"trace_id": "trace-1", "events": EVENTS}, "error": None}}[wrap]
    [s] = store.load([document(tmp_path / "d.json", doc, gz=gz, indent=indent)])
    assert (s.records, s.loaded, s.rejected) == (5, 5, 0), s.line()
    assert _ids(store) == IDS


def test_pretty_array_lines_point_at_each_event(store, tmp_path):
    path = document(tmp_path / "d.json", EVENTS, indent=2)
    store.load([path])
    text = path.read_text().splitlines()
    for r in rows(store, "SELECT id, line FROM events"):
        # the event's opening brace is on its line, and its id a few lines below
        assert text[r["line"] - 1].strip() == "{"
        assert f'"id": "{r["id"]}"' in "\n".join(text[r["line"] - 1: r["line"] + 3])


def test_typed_columns(store, tmp_path):
    evs = [
        event(1, kind={"StateChange": {"variable": "acct.balance", "old_value": {"v": 1000}, "new_value": 900,
                                       "location": "bank.py:42", "access_type": "AtomicRMW"}},
              ts="2026-11-01T12:00:00.123456789Z", parent="ev-0",
              causality_vector=[["svc#1", 3], ["other#2", 7]], lock_set=["acct"]),
        event(2, kind={"LockAcquire": {"lock_id": "acct", "lock_type": "Mutex", "location": "bank.py:40"}}),
        event(3, kind={"FunctionCall": {"function_name": "transfer", "module": "bank", "args": {},
                                        "file": "bank.py", "line": 10}}),
        event(4, kind={"HttpRequest": {"method": "POST", "url": "/t", "headers": {}, "body": None}}),
        event(5, kind={"HttpResponse": {"status": 503, "headers": {}, "body": None, "duration_ms": 12.5}}),
        event(6, kind={"AsyncSpawn": {"task_id": "task-9", "spawned_by": "main"}}),
        event(7, kind={"AsyncAwait": {"future_id": "task-9", "awaited_at": "main.py:3"}}),
        event(8, kind={"DatabaseQuery": {"query": "select 1", "database": "db", "duration_ms": 2}},
              metadata={"thread_id": "w", "service_name": "api", "instance_id": "api-1", "duration_ns": 7000,
                        "distributed_span_id": "span-b", "upstream_span_id": "span-a"}),
    ]
    store.load([ndjson(tmp_path / "t.jsonl", evs)])
    r = {x["id"]: x for x in rows(store, "SELECT * FROM events")}
    sc = r["ev-1"]
    assert sc["kind"] == "StateChange" and sc["variable"] == "acct.balance" and sc["access"] == "AtomicRMW"
    assert json.loads(sc["old_value"]) == {"v": 1000} and json.loads(sc["new_value"]) == 900
    assert sc["location"] == "bank.py:42" and sc["parent_id"] == "ev-0"
    assert sc["ts_ns"] == 1793534400123456789  # nanoseconds kept beyond TIMESTAMPTZ's microseconds
    assert sc["clock"] == [{"c": "svc#1", "n": 3}, {"c": "other#2", "n": 7}]
    assert sc["lock_set"] == ["acct"]
    assert json.loads(rawtext.fill(store.cursor(), [sc])[0]["raw"]) == evs[0]
    assert r["ev-2"]["lock_id"] == "acct" and r["ev-2"]["location"] == "bank.py:40"
    assert r["ev-3"]["function_name"] == "transfer" and r["ev-3"]["location"] == "bank.py:10"
    assert r["ev-4"]["http_method"] == "POST"
    assert r["ev-5"]["http_status"] == 503 and r["ev-5"]["duration_ns"] == 12_500_000
    assert r["ev-6"]["task_id"] == "task-9" and r["ev-7"]["future_id"] == "task-9"
    db = r["ev-8"]
    assert (db["service"], db["instance_id"], db["span_id"], db["upstream_span_id"], db["thread_id"]) == (
        "api", "api-1", "span-b", "span-a", "w")
    assert db["duration_ns"] == 7000  # metadata.duration_ns wins over the kind's duration_ms


def test_escaped_strings_and_unicode(store, tmp_path):
    ev = event(1, trace='tr"ace\\1', thread="wörker-☃",
               kind={"StateChange": {"variable": 'a"b', "old_value": None, "new_value": "x",
                                     "location": "f.py:1", "access_type": "Read"}})
    store.load([ndjson(tmp_path / "u.jsonl", [ev])])
    [r] = rows(store, "SELECT trace_id, thread_id, variable FROM events")
    assert r == {"trace_id": 'tr"ace\\1', "thread_id": "wörker-☃", "variable": 'a"b'}


def test_unknown_kind_is_kept_not_rejected(store, tmp_path):
    ev = event(1, kind={"Teleport": {"where": "mars"}})
    [s] = store.load([ndjson(tmp_path / "k.jsonl", [ev, event(2, kind="Custom")])])
    assert (s.loaded, s.rejected) == (2, 0)
    r = {x["id"]: x for x in rows(store, "SELECT id, kind, raw FROM events")}
    assert r["ev-1"]["kind"] == "Unknown(Teleport)"
    assert json.loads(r["ev-1"]["raw"])["kind"] == {"Teleport": {"where": "mars"}}
    assert r["ev-2"]["kind"] == "Custom"


def test_many_files_one_store_keep_input_order(store, tmp_path):
    a = ndjson(tmp_path / "a.jsonl", EVENTS[:3])
    b = document(tmp_path / "b.json", {"events": EVENTS[3:]})
    summaries = store.load([a, b])
    assert [s.loaded for s in summaries] == [3, 2]
    assert _ids(store) == IDS
    assert {r["source"] for r in rows(store, "SELECT DISTINCT source FROM events")} == {str(a), str(b)}


def test_windows_line_endings_and_blank_lines(store, tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"\r\n".join(json.dumps(e).encode() for e in EVENTS[:2]) + b"\r\n\r\n   \n")
    [s] = store.load([path])
    assert (s.records, s.loaded, s.rejected) == (2, 2, 0)
    texts = rawtext.all_texts(store.cursor())
    assert texts == [json.dumps(e) for e in EVENTS[:2]]
