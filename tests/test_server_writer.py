"""The group committer in-process: shared commits, isolation of a failing body,
checkpoints, and stopping."""

from __future__ import annotations

import json
import os
import threading

import pytest
from helpers import event

from raceway_core.server.writer import GroupCommitter, ShuttingDown
from raceway_core.store import Store


def body(*ids) -> str:
    return json.dumps({"events": [event(i) for i in ids]})


def test_bodies_queued_together_share_one_commit_and_get_their_own_results(tmp_path):
    with Store(tmp_path / "w.duckdb") as store:
        w = GroupCommitter(store, store.open_live("server", "http"), "server", linger=0.2)
        futures = [w.submit(body(i, i + 100), 2) for i in range(5)]  # queued before the thread runs
        futures.append(w.submit(body(0), 1))  # a duplicate of the first body's first event
        w.start()
        results = [f.result(timeout=30) for f in futures]
        w.stop()
        assert w.stats.commits == 1 and w.stats.largest_group == 6
        assert [r.loaded for r in results] == [2] * 5 + [0]
        assert results[-1].duplicates == (0,)
        assert store.counts()["events"] == 10


def test_a_body_that_breaks_its_commit_fails_alone(tmp_path, monkeypatch):
    with Store(tmp_path / "w.duckdb") as store:
        real = store.append

        def append(load_id, source, lines, **kw):
            if any("poison" in (x if isinstance(x, str) else "".join(x)) for x in lines):
                raise RuntimeError("disk on fire")
            return real(load_id, source, lines, **kw)
        monkeypatch.setattr(store, "append", append)
        w = GroupCommitter(store, store.open_live("server", "http"), "server", linger=0.2)
        good = [w.submit(body(i), 1) for i in range(3)]
        bad = w.submit(json.dumps({"events": [event("poison")]}), 1)
        w.start()
        assert [f.result(timeout=30).loaded for f in good] == [1, 1, 1]
        with pytest.raises(RuntimeError, match="disk on fire"):
            bad.result(timeout=30)
        w.stop()
        assert store.counts()["events"] == 3 and w.stats.failures == 1


def test_a_growing_wal_is_checkpointed(tmp_path):
    db = tmp_path / "w.duckdb"
    with Store(db) as store:
        w = GroupCommitter(store, store.open_live("server", "http"), "server", checkpoint_wal_bytes=1)
        w.start()
        w.submit(body(*range(50)), 50).result(timeout=30)
        w.stop()
        wal = f"{db}.wal"
        assert not os.path.exists(wal) or os.path.getsize(wal) == 0
        assert store.counts()["events"] == 50


def test_stop_commits_what_is_queued_then_refuses_more(tmp_path):
    with Store(tmp_path / "w.duckdb") as store:
        w = GroupCommitter(store, store.open_live("server", "http"), "server")
        queued = [w.submit(body(i), 1) for i in range(4)]
        w.start()
        stopper = threading.Thread(target=w.stop)
        stopper.start()
        stopper.join(30)
        assert all(f.result(timeout=1).loaded == 1 for f in queued)
        with pytest.raises(ShuttingDown):
            w.submit(body(9), 1)
        assert store.counts()["events"] == 4
