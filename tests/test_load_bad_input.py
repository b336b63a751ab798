"""Bad input: valid events always load; each bad record is a reject with a reason."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import rows
from helpers import document, event, ndjson, write_lines


def _rejects(store):
    return [(r["line"], r["rec"], r["reason"]) for r in
            rows(store, "SELECT line, rec, reason FROM rejects ORDER BY line, rec NULLS FIRST")]


def _load_one(store, path):
    [s] = store.load([path])
    assert s.records == s.loaded + s.rejected + s.duplicates
    return s


def _without(ev: dict, key: str) -> dict:
    return {k: v for k, v in ev.items() if k != key}


@pytest.mark.parametrize("field", ["id", "trace_id", "timestamp", "kind"])
def test_missing_required_field(store, tmp_path, field):
    lines = [json.dumps(event(1)), json.dumps(_without(event(2), field)), json.dumps(event(3))]
    s = _load_one(store, write_lines(tmp_path / "m.jsonl", lines))
    assert (s.loaded, s.rejected) == (2, 1)
    assert _rejects(store) == [(2, None, f"missing '{field}'")]
    assert s.line() == f"{tmp_path / 'm.jsonl'}: loaded 2 events, 1 rejected (line 2: missing '{field}')"


@pytest.mark.parametrize("override, reason", [
    ({"trace_id": 42}, "field 'trace_id' must be a string, got integer"),
    ({"id": None}, "field 'id' is null"),
    ({"parent_id": ["x"]}, "field 'parent_id' must be a string, got array"),
    ({"kind": 7}, "field 'kind' must be an object, got integer"),
    ({"metadata": "oops"}, "field 'metadata' must be an object, got string"),
    ({"metadata": {"thread_id": 5}}, "field 'metadata.thread_id' must be a string, got integer"),
    ({"metadata": {"thread_id": "t", "duration_ns": "slow"}}, "field 'metadata.duration_ns' must be a number, got string"),
    ({"metadata": {"thread_id": "t", "duration_ns": -5}}, "field 'metadata.duration_ns' is negative"),
    ({"causality_vector": {"a": 1}}, "field 'causality_vector' must be an array, got object"),
    ({"causality_vector": [["a", "b"]]}, "field 'causality_vector' must be a list of [component, counter] pairs"),
    ({"causality_vector": [[1, 2]]}, "field 'causality_vector' must name components with strings"),
    ({"lock_set": [1]}, "field 'lock_set' must be a list of strings"),
    ({"timestamp": "yesterday"}, "field 'timestamp' is not a valid timestamp: yesterday"),
    ({"timestamp": "2026-13-45T99:00:00Z"}, "field 'timestamp' is not a valid timestamp: 2026-13-45T99:00:00Z"),
    ({"timestamp": 1793534400}, "field 'timestamp' must be a string, got integer"),
    ({"kind": {"StateChange": {"variable": "x", "access_type": "Poke"}}},
     "field 'kind.StateChange.access_type' must be one of Read, Write, AtomicRead, AtomicWrite, AtomicRMW; got Poke"),
    ({"kind": {"StateChange": {"access_type": "Read"}}}, "missing 'kind.StateChange.variable'"),
    ({"kind": {"LockAcquire": {"lock_id": 3}}}, "field 'kind.LockAcquire.lock_id' must be a string, got integer"),
    ({"kind": {"HttpResponse": {"status": "ok"}}}, "field 'kind.HttpResponse.status' must be an integer, got string"),
    ({"kind": {"AsyncSpawn": "t1"}}, "field 'kind.AsyncSpawn' must be an object, got string"),
    ({"kind": {}}, "field 'kind' must hold exactly one variant, got 0 keys"),
    ({"kind": {"Foo": {}, "Bar": {}}}, "field 'kind' must hold exactly one variant, got 2 keys"),
])
def test_wrong_types(store, tmp_path, override, reason):
    ev = event(2, **override)
    s = _load_one(store, ndjson(tmp_path / "w.jsonl", [event(1), ev]))
    assert (s.loaded, s.rejected) == (1, 1)
    assert _rejects(store) == [(2, None, reason)]


def test_not_json_and_truncated_lines(store, tmp_path):
    good = json.dumps(event(1))
    lines = ["this is not json", good, json.dumps(event(3))[:40], "{{not json}}", json.dumps(event(5))]
    s = _load_one(store, write_lines(tmp_path / "j.jsonl", lines))
    assert (s.records, s.loaded, s.rejected) == (5, 2, 3)
    got = _rejects(store)
    assert [g[0] for g in got] == [1, 3, 4]
    assert got[0][2].startswith("not valid JSON")
    assert got[1][2] == "truncated JSON (line ends at column 40 inside a value)"
    assert got[2][2].startswith("not valid JSON")
    raw = {r["line"]: r["raw"] for r in rows(store, "SELECT line, raw FROM rejects")}
    assert raw[3] == json.dumps(event(3))[:40]


def test_non_object_records(store, tmp_path):
    s = _load_one(store, write_lines(tmp_path / "n.jsonl", ["42", '"x"', json.dumps({"events": [1, event(9)]})]))
    assert (s.records, s.loaded, s.rejected) == (4, 1, 3)
    assert _rejects(store) == [(1, None, "not an event object (got integer)"),
                               (2, None, "not an event object (got string)"),
                               (3, 0, "not an event object (got integer)")]


def test_invalid_utf8_line(store, tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(json.dumps(event(1)).encode() + b"\n" + b'{"id": "\xff\xfe"}\n' + json.dumps(event(3)).encode() + b"\n")
    s = _load_one(store, path)
    assert (s.loaded, s.rejected) == (2, 1)
    [(line, rec, reason)] = _rejects(store)
    assert (line, reason) == (2, "invalid UTF-8 at column 9")


def test_empty_file(store, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n")
    s = _load_one(store, path)
    assert (s.records, s.loaded, s.rejected) == (0, 0, 0)
    assert s.notes == ("empty file",)
    assert s.line() == f"{path}: loaded 0 events [empty file]"


def test_missing_file(store, tmp_path):
    [s] = store.load([tmp_path / "nope.jsonl"])
    assert s.fatal == "file not found" and not s.ok
    assert s.line() == f"{tmp_path / 'nope.jsonl'}: cannot read: file not found"


def test_directory(store, tmp_path):
    [s] = store.load([tmp_path])
    assert s.fatal == "is a directory"


def test_truncated_gzip_keeps_complete_records(store, tmp_path):
    lines = [json.dumps(event(i)) for i in range(1, 201)]
    blob = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    s = _load_one(store, path)
    assert s.loaded > 0
    assert any(n.startswith("truncated gzip") for n in s.notes)
    # every loaded event is a complete, original one, in order from the start
    ids = [r["id"] for r in rows(store, "SELECT id FROM events ORDER BY seq")]
    assert ids == [f"ev-{i}" for i in range(1, len(ids) + 1)]
    # the record cut by the truncation, if any, is a reject rather than lost
    assert s.rejected in (0, 1)
    if s.rejected:
        assert _rejects(store)[0][2].startswith("truncated JSON")


def test_corrupt_gzip_is_a_note_not_a_crash(store, tmp_path):
    blob = bytearray(gzip.compress(("\n".join(json.dumps(event(i)) for i in range(50)) + "\n").encode()))
    blob[40:60] = b"\x00" * 20
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(bytes(blob))
    s = _load_one(store, path)
    assert any("gzip" in n for n in s.notes)


def test_truncated_pretty_array_keeps_complete_events(store, tmp_path):
    text = json.dumps([event(1), event(2), event(3)], indent=2)
    path = tmp_path / "a.json"
    path.write_text(text[: text.index('"ev-3"') + 10])
    s = _load_one(store, path)
    assert (s.records, s.loaded, s.rejected) == (3, 2, 1)
    [(line, rec, reason)] = _rejects(store)
    assert rec == 2 and reason == "truncated JSON (input ends inside this record)"


def test_syntax_error_inside_array_resynchronises(store, tmp_path):
    text = json.dumps([event(1), event(2), event(3)], indent=2)
    broken = text.replace('"trace_id": "trace-1",', '"trace_id": "trace-1",,', 1)  # breaks event 1 only
    path = tmp_path / "a.json"
    path.write_text(broken)
    s = _load_one(store, path)
    assert (s.records, s.loaded, s.rejected) == (3, 2, 1)
    assert [r["id"] for r in rows(store, "SELECT id FROM events ORDER BY seq")] == ["ev-2", "ev-3"]


def test_broken_one_line_batch_is_salvaged(store, tmp_path):
    line = json.dumps({"events": [event(1), event(2), event(3)]})
    path = write_lines(tmp_path / "b.jsonl", [line[:-60], json.dumps(event(4))])
    s = _load_one(store, path)
    assert (s.loaded, s.rejected) == (3, 1)
    assert [r["id"] for r in rows(store, "SELECT id FROM events ORDER BY seq")] == ["ev-1", "ev-2", "ev-4"]
    assert _rejects(store)[0][:2] == (1, 2)


def test_server_listing_without_events_is_an_error(store, tmp_path):
    doc = {"success": True, "data": {"traces": [], "total_traces": 0}, "error": None}
    [s] = store.load([document(tmp_path / "l.json", doc)])
    assert s.fatal and "no events" in s.fatal


def test_nothing_lost_between_bad_records(store, tmp_path):
    good = [event(i) for i in range(1, 101)]
    lines = []
    for i, e in enumerate(good):
        lines.append(json.dumps(e))
        if i % 10 == 0:
            lines.append("garbage")
    s = _load_one(store, write_lines(tmp_path / "g.jsonl", lines))
    assert (s.loaded, s.rejected) == (100, 10)


def test_bad_records_in_many_chunks_each_checked_against_their_own_chunk(store, tmp_path, monkeypatch):
    """A file read in many blocks, a few bad lines in several of them (and in the last line
    of a block): every good event loads once, each bad line is a reject at its line, and no
    good record of a chunk is taken for a duplicate (the careful path compares each chunk's
    records with the rows of that chunk only)."""
    from raceway_core.loading import reading

    monkeypatch.setattr(reading, "BLOCK", 2048)  # ~6 events a block
    lines, bad = [], set()
    for i in range(1, 201):
        if i % 17 == 0 or i % 29 == 0:
            lines.append(json.dumps({**event(i), "trace_id": 42}))
            bad.add(i)
        else:
            lines.append(json.dumps(event(i)))
    s = _load_one(store, write_lines(tmp_path / "bad.jsonl", lines))
    assert (s.records, s.loaded, s.rejected, s.duplicates) == (200, 200 - len(bad), len(bad), 0)
    assert [r[0] for r in _rejects(store)] == sorted(bad)
    stored = [(r["line"], r["id"]) for r in rows(store, "SELECT line, id FROM events ORDER BY seq")]
    assert stored == [(i, event(i)["id"]) for i in range(1, 201) if i not in bad]
