"""Stores filled by appends (a server's POSTs, a live source) checkpoint as they grow,
as file loads do: in memory the rows are then compressed, not held as written."""

from __future__ import annotations

import json

import pytest

from helpers import event
from raceway_core import loading
from raceway_core.store import Store


def _uncompressed_segments(store: Store) -> int:
    """Segments of the kind column held as written (a checkpoint compresses them;
    id and parent_id are stored uncompressed on purpose)."""
    return store.sql("SELECT count(*) AS n FROM pragma_storage_info('events') "
                     "WHERE column_name = 'kind' AND compression = 'Uncompressed'").column("n")[0].as_py()


def _segments(store: Store) -> int:
    return store.sql("SELECT count(*) AS n FROM pragma_storage_info('events') "
                     "WHERE column_name = 'kind'").column("n")[0].as_py()


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(loading, "COMPACT_ROWS", 300)


def _append(store: Store, load_id: int, start: int, n: int) -> None:
    out = store.append(load_id, "post", [[json.dumps(event(i)) for i in range(start, start + n)]])
    assert out.loaded == n


@pytest.mark.parametrize("on_disk", [False, True])
def test_appends_checkpoint_when_the_events_double(tmp_path, small_threshold, on_disk):
    with Store(tmp_path / "s.duckdb" if on_disk else None) as store:
        load_id = store.open_live("post", "http")
        _append(store, load_id, 0, 200)
        assert _uncompressed_segments(store) > 0  # below the threshold: as written
        _append(store, load_id, 200, 200)  # 400 >= 300: checkpointed
        assert _uncompressed_segments(store) == 0 < _segments(store)
        _append(store, load_id, 400, 200)  # 600 < 2 x 400: not yet
        assert _uncompressed_segments(store) > 0
        _append(store, load_id, 600, 200)  # 800 >= 2 x 400
        assert _uncompressed_segments(store) == 0
        assert store.counts()["events"] == 800
        if on_disk:
            assert not (tmp_path / "s.duckdb.wal").exists() or (tmp_path / "s.duckdb.wal").stat().st_size < 4096


def test_appends_after_a_load_count_from_what_the_load_left(tmp_path, small_threshold):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(event(i)) + "\n" for i in range(1000)))
    with Store() as store:
        [s] = store.load([path])
        assert s.loaded == 1000
        load_id = store.open_live("post", "http")
        _append(store, load_id, 1000, 500)  # 1,500 < 2 x 1,000
        assert _uncompressed_segments(store) > 0
        _append(store, load_id, 1500, 600)  # 2,100 >= 2,000
        assert _uncompressed_segments(store) == 0
        assert store.counts()["events"] == 2100


def test_an_in_memory_load_holds_at_most_a_row_group_as_written(tmp_path, monkeypatch):
    """A load checkpoints each time the events cross a multiple of COMPACT_ROWS (DuckDB's
    row group), so that the rows held uncompressed stay under a row group and a chunk
    whatever the size of the file (checkpoints at each doubling held up to half of it)."""
    monkeypatch.setattr(loading, "COMPACT_ROWS", 1000)
    monkeypatch.setattr(loading.reading, "BLOCK", 64 << 10)  # a few hundred events a chunk
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(event(i)) + "\n" for i in range(6500)))
    with Store() as store:
        [s] = store.load([path])
        assert s.loaded == 6500
        raw_rows = store.sql("SELECT coalesce(sum(count), 0) AS n FROM pragma_storage_info('events') "
                             "WHERE column_name = 'kind' AND compression = 'Uncompressed'").column("n")[0].as_py()
        assert raw_rows < 1000
        ids = store.sql("SELECT id FROM events ORDER BY seq").column("id").to_pylist()
    assert ids == [event(i)["id"] for i in range(6500)]
