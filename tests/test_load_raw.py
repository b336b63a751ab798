"""The raw JSON a file load keeps is each record's line as written (the detail panel's
"raw JSON" view and export show it), whatever the line ends, and it stays in the store
when the file is gone; a line that is not JSON never reaches the events' raw column."""

from __future__ import annotations

import json

import pytest

from helpers import event, raw_texts
from raceway_core.store import Store


def _lines() -> list[str]:
    out = []
    for i in range(6):
        ev = event(i, thread=f"t-{i} ünïcode \u2028 \"quoted\" \\ back")
        if i % 2:
            out.append(json.dumps(ev, ensure_ascii=False))  # spaces after separators, raw UTF-8
        else:
            out.append(json.dumps(ev, separators=(",", ":")))  # compact, \\u escapes
    out[3] = "  " + out[3] + " \t"  # whitespace around the record is part of its line
    return out


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_raw_is_the_line_byte_for_byte(tmp_path, end):
    lines = _lines()
    path = tmp_path / "in.jsonl"
    path.write_bytes("".join(x + end for x in lines).encode())
    with Store() as store:
        [s] = store.load([path])
        assert s.loaded == len(lines) and s.rejected == 0
        raws = raw_texts(store)  # read back from the file (rawtext)
    assert raws == lines
    with Store(keep_raw=True) as store:  # or kept in the store
        store.load([path])
        raws = store.sql("SELECT CAST(raw AS VARCHAR) AS r FROM events ORDER BY seq").column("r").to_pylist()
    assert raws == lines


def test_raw_stays_when_the_file_is_gone(tmp_path):
    lines = _lines()
    path = tmp_path / "in.jsonl"
    path.write_text("".join(x + "\n" for x in lines))
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        store.load([path])
    path.unlink()
    with Store(db, read_only=True) as store:
        raws = store.sql("SELECT CAST(raw AS VARCHAR) AS r FROM events ORDER BY seq").column("r").to_pylist()
    assert raws == lines


def test_a_line_that_is_not_json_is_a_reject_not_raw(tmp_path):
    lines = _lines()
    bad = ['{"id": "x", "trace_id": ', "NaN", "{\"id\": 1,,}", '{"id": "ev-9"} trailing']
    path = tmp_path / "in.jsonl"
    path.write_text("".join(x + "\n" for x in lines[:3] + bad + lines[3:]))
    with Store() as store:
        [s] = store.load([path])
        assert (s.loaded, s.rejected) == (len(lines), len(bad))
        assert all(json.loads(t) for t in raw_texts(store))
        rejected = store.sql("SELECT line, raw FROM rejects ORDER BY line").to_pylist()
    assert [r["line"] for r in rejected] == [4, 5, 6, 7]
    assert [r["raw"] for r in rejected] == bad
