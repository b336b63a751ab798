"""The store: duplicates, --db persistence and appends, counts, SQL errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import rows
from helpers import document, event, ndjson, write_lines
from raceway_core.errors import QueryError
from raceway_core.store import Store


def test_duplicate_within_a_file_keeps_the_first(store, tmp_path):
    first = event(1, thread="first")
    again = event(1, thread="second")  # same id, different content
    [s] = store.load([ndjson(tmp_path / "d.jsonl", [first, event(2), again])])
    assert (s.records, s.loaded, s.duplicates) == (3, 2, 1)
    assert "1 duplicate skipped" in s.line()
    assert rows(store, "SELECT thread_id FROM events WHERE id = 'ev-1'") == [{"thread_id": "first"}]


def test_duplicates_across_files_and_loads(store, tmp_path):
    a = ndjson(tmp_path / "a.jsonl", [event(1), event(2)])
    b = document(tmp_path / "b.json", {"events": [event(2), event(3)]})
    s1, s2 = store.load([a, b])
    assert (s1.loaded, s1.duplicates, s2.loaded, s2.duplicates) == (2, 0, 1, 1)
    [s3] = store.load([a])
    assert (s3.loaded, s3.duplicates) == (0, 2)
    assert rows(store, "SELECT count(*) AS n FROM events") == [{"n": 3}]


def test_duplicate_in_batch_lines(store, tmp_path):
    lines = [json.dumps({"events": [event(1), event(2)]}), json.dumps({"events": [event(2), event(3)]})]
    [s] = store.load([write_lines(tmp_path / "b.jsonl", lines)])
    assert (s.records, s.loaded, s.duplicates) == (4, 3, 1)
    assert rows(store, "SELECT line, rec FROM events WHERE id = 'ev-2'") == [{"line": 1, "rec": 1}]


def test_db_file_reopens_without_reparsing_and_appends(tmp_path):
    db = tmp_path / "store.duckdb"
    a = ndjson(tmp_path / "a.jsonl", [event(i) for i in range(1, 51)])
    with Store(db) as s:
        [sa] = s.load([a])
        assert sa.loaded == 50
    a.unlink()  # reopening must not need the source again
    with Store(db) as s:
        assert s.counts() == {"events": 50, "traces": 1, "rejected": 0}
        assert rows(s, "SELECT count(*) AS n FROM sources") == [{"n": 1}]
        b = ndjson(tmp_path / "b.jsonl", [event(i) for i in range(40, 61)])
        [sb] = s.load([b])
        assert (sb.loaded, sb.duplicates) == (10, 11)
    with Store(db) as s:
        assert s.counts()["events"] == 60
        seqs = [r["seq"] for r in rows(s, "SELECT seq FROM events ORDER BY seq")]
        assert len(set(seqs)) == 60  # the second load did not reuse line numbers


def test_reopen_is_fast_compared_to_loading(tmp_path):
    db = tmp_path / "s.duckdb"
    path = ndjson(tmp_path / "big.jsonl", [event(i, thread=f"t{i % 7}") for i in range(20_000)])
    with Store(db) as s:
        s.load([path])
    started = time.perf_counter()
    with Store(db) as s:
        assert s.counts()["events"] == 20_000
    # no timing assertion (benchmarks measure speed); reopening must not touch the file:
    path.unlink()
    with Store(db) as s:
        assert s.counts()["events"] == 20_000
    assert time.perf_counter() - started >= 0


def test_one_path_loads_as_one_file(tmp_path):
    path = ndjson(tmp_path / "one.jsonl", [event(0), event(1)])
    for given in (str(path), path):
        [summary] = Store().load(given)
        assert summary.loaded == 2 and summary.fatal is None


def test_a_file_store_keeps_raw_with_zstd(tmp_path):
    """schema.events_ddl rewrites the raw column's DDL for file stores: if the DDL changes
    and the rewrite no longer matches, raw falls back to DuckDB's default silently."""
    events = [event(i, thread=f"t{i % 3}") for i in range(3000)]
    path = ndjson(tmp_path / "e.jsonl", events)
    with Store(tmp_path / "s.duckdb") as st:
        assert st.load([path])[0].loaded == 3000
        st.conn.execute("CHECKPOINT")
        kinds = {r[0] for r in st.conn.execute(
            "SELECT compression FROM pragma_storage_info('main.events') WHERE column_name = 'raw' "
            "AND segment_type <> 'VALIDITY'").fetchall()}
    assert kinds == {"ZSTD"}, kinds


def test_sql_errors_are_query_errors(store):
    with pytest.raises(QueryError, match="nope"):
        store.sql("SELECT * FROM nope")


def test_core_does_not_import_ui_libraries():
    code = ("import sys, raceway_core, raceway_core.store, raceway_core.loading, raceway_core.synth; "
            "import raceway_core.errors; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_in_memory_load_is_compressed_as_it_goes(tmp_path, monkeypatch):
    """DuckDB compresses in-memory rows only at a checkpoint: a big load checkpoints every
    COMPACT_ROWS events (uncompressed, 1M events held 1.04 GB), and reads back the same."""
    import raceway_core.loading as loading

    monkeypatch.setattr(loading, "COMPACT_ROWS", 1000)
    monkeypatch.setattr(loading.reading, "BLOCK", 64 << 10)  # ~250 events a chunk
    events = [event(i, trace=f"t{i % 7}") for i in range(3000)]
    with Store() as s:
        [summary] = s.load([ndjson(tmp_path / "e.jsonl", events)])
        assert summary.loaded == 3000
        kinds = {c for (c,) in s.conn.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('events') WHERE column_name = 'raw'").fetchall()}
        assert kinds - {"Uncompressed"}, kinds
        ids = [r[0] for r in s.conn.execute("SELECT id FROM events ORDER BY seq").fetchall()]
        assert ids == [e["id"] for e in events]


def test_interrupt_stops_a_threads_running_query_and_its_next_ones_until_resumed():
    """The TUI's precomputation is interrupted when the user asks for a pane: its running
    query ends, its next cursor refuses, other threads query on, and resume lets it go on."""
    import threading

    from raceway_core.errors import Interrupted, RacewayError

    store = Store()
    started, got, tid = threading.Event(), [], []

    def endless() -> None:
        tid.append(threading.get_ident())
        started.set()
        try:  # hours of work: only an interrupt ends it
            store.sql("SELECT count(*) FROM range(1000000000000) a, range(1000) b")
        except RacewayError as exc:
            got.append(type(exc).__name__)
        try:
            store.sql("SELECT 1")
        except Interrupted:
            got.append("refused")
        resumed.wait()
        got.append(store.sql("SELECT 2 AS x")["x"].to_pylist())

    resumed = threading.Event()
    t = threading.Thread(target=endless, daemon=True)
    t.start()
    started.wait()
    while len(got) < 2 and t.is_alive():  # again until it lands: the query may not have started yet
        store.interrupt(tid[0])
        t.join(0.05)
    assert store.sql("SELECT 3 AS x")["x"].to_pylist() == [3]  # another thread is not stopped
    store.resume(tid[0])
    resumed.set()
    t.join(30)
    # the query interrupted (QueryError), or refused if the interrupt came before its cursor
    assert got[0] in ("QueryError", "Interrupted") and got[1:] == ["refused", [2]]
