"""Store.append (what the server and the client use): same validation as files,
arrival order across batches and restarts, per-line results, atomicity."""

from __future__ import annotations

import itertools
import json

import duckdb
import orjson
import pytest
from conftest import rows
from helpers import event, ndjson

from raceway_core.loading.batch import event_texts, prepare
from raceway_core.schema import REC_BITS
from raceway_core.server.channel import decode_batch, encode_batch
from raceway_core.store import Store

COMPARED = ("id", "trace_id", "parent_id", "timestamp", "ts_ns", "thread_id", "service", "kind", "variable",
            "access", "old_value", "new_value", "location", "lock_id", "function_name", "duration_ns",
            "http_method", "http_status", "clock", "lock_set", "raw")


def mixed_events() -> list:
    bad_kind = event(3, kind={"StateChange": {"variable": "x", "access_type": "Sideways"}})
    no_ts = event(4)
    del no_ts["timestamp"]
    return [event(0), event(1, kind={"LockAcquire": {"lock_id": "L", "lock_type": "Mutex", "location": "a:1"}}),
            event(2, kind={"Unheard": {"x": 1}}), bad_kind, no_ts, "text", event(5, thread="w"),
            event(0)]  # a repeat of ev-0


def split(events: list) -> list[str]:
    texts = event_texts(events, json.dumps(events).encode())
    assert texts is not None
    return texts


@pytest.mark.parametrize("form", ["body text", "split events"])
def test_a_posted_batch_ends_up_exactly_like_the_same_file(tmp_path, store, form):
    evs = mixed_events()
    store.keep_raw = True  # the file's lines kept in the store, as a server keeps a batch's
    [summary] = store.load([ndjson(tmp_path / "a.jsonl", evs)])
    with Store() as live:
        lid = live.open_live("server", "http")
        line = json.dumps({"events": evs}) if form == "body text" else split(evs)
        out = live.append(lid, "server", [line])
        assert (out.loaded, out.rejected, out.duplicates) == (summary.loaded, summary.rejected, summary.duplicates)
        cols = ", ".join(COMPARED)
        got, want = (rows(s, f"SELECT {cols} FROM events ORDER BY seq") for s in (live, store))
        for r in got + want:  # a batch's events are stored re-serialised: same JSON, other spacing
            r["raw"] = json.loads(r["raw"])
        assert got == want
        assert [r["reason"] for r in rows(live, "SELECT reason FROM rejects ORDER BY rec")] == \
            [r["reason"] for r in rows(store, "SELECT reason FROM rejects ORDER BY line")]


def test_rows_made_by_a_front_are_stored_exactly_like_the_same_file(tmp_path, store):
    # every kind the synthetic programs emit, all valid: the front sends Arrow rows
    from raceway_core.synth import config_for_events, generate

    evs = list(itertools.islice(generate(config_for_events(400, seed=3)), 400))
    kinds = {next(iter(e["kind"])) for e in evs}
    assert {"StateChange", "LockAcquire", "FunctionCall", "HttpRequest", "AsyncSpawn"} <= kinds
    store.keep_raw = True  # the file's lines kept in the store, as a server keeps a batch's
    [summary] = store.load([ndjson(tmp_path / "a.jsonl", evs)])
    with Store() as live:
        lid = live.open_live("server", "http")
        body = orjson.dumps({"events": evs})
        kind, data = encode_batch(prepare(evs, event_texts(evs, body)))
        assert kind == b"A"
        out = live.append(lid, "server", [decode_batch(kind, data)])
        assert (out.loaded, out.rejected, out.duplicates) == (summary.loaded, 0, 0) == (400, 0, 0)
        cols = ", ".join(COMPARED)
        got, want = (rows(s, f"SELECT {cols}, json_type(raw) AS raw_type FROM events ORDER BY seq")
                     for s in (live, store))
        for r in got + want:
            r["raw"] = json.loads(r["raw"])
        assert got == want


def test_per_line_results_name_indexes_and_reasons(store):
    lid = store.open_live("server", "http")
    evs = mixed_events()
    # one line as body text, the next as split events: both kinds in one commit
    out = store.append(lid, "server", [json.dumps({"events": evs}), split([event(1), event(9)])])
    first, second = out.lines
    assert first.loaded == 4 and first.duplicates == (7,)
    assert [i for i, _ in first.rejected] == [3, 4, 5]
    assert "access_type" in first.rejected[0][1] and "timestamp" in first.rejected[1][1]
    assert second.loaded == 1 and second.duplicates == (0,) and second.rejected == ()
    assert (out.loaded, out.rejected, out.duplicates, out.records) == (5, 3, 2, 10)
    src = rows(store, "SELECT records, loaded, rejected, duplicates FROM sources WHERE load_id = ?", [lid])
    assert src == [{"records": 10, "loaded": 5, "rejected": 3, "duplicates": 2}]


def test_seq_keeps_arrival_order_after_file_loads_and_reopening(tmp_path):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.load([ndjson(tmp_path / "f.jsonl", [event(i) for i in range(3)])])
        lid = s.open_live("server", "http")
        s.append(lid, "server", [json.dumps({"events": [event(10), event(11)]})])
    with Store(db) as s:
        lid = s.open_live("server", "http")
        out = s.append(lid, "server", [json.dumps([event(12)]), json.dumps({"events": [event(13)]})])
        got = rows(s, "SELECT id, seq, line, rec FROM events ORDER BY seq")
    assert [r["id"] for r in got] == ["ev-0", "ev-1", "ev-2", "ev-10", "ev-11", "ev-12", "ev-13"]
    assert len({r["seq"] for r in got}) == 7
    for r in got:  # seq is (line << REC_BITS) + rec: line numbers are absolute for appended batches
        if r["id"] in ("ev-12", "ev-13"):
            assert r["seq"] == (r["line"] << REC_BITS) + r["rec"]
    assert out.lines[1].loaded == 1 and out.first_line + 1 == got[-1]["line"]


def test_meta_is_written_with_the_events_and_a_failure_writes_nothing(store, monkeypatch):
    lid = store.open_live("client", "pull")
    store.append(lid, "client", [json.dumps({"events": [event(1)]})], meta={"feed:x": "c1"})
    assert store.meta("feed:x") == "c1"
    before = store.counts()
    next_line = store.meta("next_line")

    import raceway_core.store as store_mod

    def boom(*a, **k):
        raise duckdb.IOException("disk full (simulated)")
    real = store_mod.ingest_texts

    def fail_after_insert(cur, *a, **k):
        real(cur, *a, **k)  # the events are in, then the transaction fails
        boom()
    monkeypatch.setattr(store_mod, "ingest_texts", fail_after_insert)
    with pytest.raises(duckdb.IOException):
        store.append(lid, "client", [json.dumps({"events": [event(2)]})], meta={"feed:x": "c2"})
    monkeypatch.undo()
    assert store.counts() == before and store.meta("feed:x") == "c1" and store.meta("next_line") == next_line
    out = store.append(lid, "client", [json.dumps({"events": [event(2)]})])  # the store still works
    assert out.loaded == 1


def test_version_moves_only_when_events_were_added(store):
    lid = store.open_live("server", "http")
    v = store.version
    store.append(lid, "server", [json.dumps({"events": [event(1)]})])
    assert store.version > v
    v = store.version
    store.append(lid, "server", [json.dumps({"events": [event(1), {"id": "x"}]})])  # duplicate + reject
    assert store.version == v


def test_numbers_past_64_bits_keep_their_digits(store):
    big = "123456789012345678901234567890"
    body = ('{"events": [' + json.dumps(event(1)).replace('"old_value": 1', '"old_value": ' + big) + "]}").encode()
    assert big.encode() in body
    assert event_texts(json.loads(body)["events"], body) is None  # splitting would turn it into a float
    lid = store.open_live("server", "http")
    assert store.append(lid, "server", [body.decode()]).loaded == 1
    raw = rows(store, "SELECT CAST(raw AS VARCHAR) AS raw FROM events")[0]["raw"]
    assert big in raw
