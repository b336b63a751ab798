"""Appends store an event id once: against everything stored before (by appends,
file loads, an earlier run on the same file) and within the commit, first
appearance winning. The check runs on a set of id hashes (KnownIds); these
tests hold it to a brute-force reference, collisions included."""

from __future__ import annotations

import json
import random

import numpy as np
import orjson
from conftest import rows
from helpers import event, ndjson

from raceway_core.loading import batch, known
from raceway_core.loading.batch import event_texts, prepare
from raceway_core.loading.known import KnownIds
from raceway_core.server.channel import decode_batch, encode_batch
from raceway_core.store import Store


def prepared(events: list) -> batch.Prepared:
    body = orjson.dumps({"events": events})
    return prepare(events, event_texts(events, body))


def as_text(events: list) -> str:
    return json.dumps({"events": events})


def as_list(events: list) -> list[str]:
    return [json.dumps(e) for e in events]


def via_front(events: list) -> batch.Rows | batch.Prepared:
    """What the store's process gets from an ingest front: Arrow rows when every
    event has one, through the channel's encoding and back."""
    return decode_batch(*encode_batch(prepared(events)))


FORMS = (prepared, as_text, as_list, via_front)  # the kinds of line Store.append takes


def stored(s: Store) -> list[tuple[str, str]]:
    """(id, new_value) of every stored event, in arrival order."""
    return [(r["id"], r["new_value"]) for r in rows(s, "SELECT id, new_value FROM events ORDER BY seq")]


def mark(i: int, version: int) -> dict:
    """Event ``ev-i`` whose new_value tells which sending of it was stored."""
    ev = event(i)
    ev["kind"]["StateChange"]["new_value"] = version
    return ev


def test_repeats_within_one_commit_keep_the_first_in_every_form(store):
    lid = store.open_live("server", "http")
    lines = [form([mark(1, 10), mark(2, 10), mark(1, 11)]) for form in FORMS]
    out = store.append(lid, "server", lines)
    assert stored(store) == [("ev-1", "10"), ("ev-2", "10")]
    assert [(r.loaded, r.duplicates) for r in out.lines] == [(2, (2,)), (0, (0, 1, 2)), (0, (0, 1, 2)),
                                                             (0, (0, 1, 2))]
    assert (out.loaded, out.duplicates) == (2, 10)


def test_repeats_across_commits_and_a_mix_of_fast_and_sql_rows(store):
    lid = store.open_live("server", "http")
    store.append(lid, "server", [prepared([mark(1, 1), mark(2, 1)])])
    odd = mark(3, 1)
    odd["kind"] = {"Teleport": {"to": "mars"}}  # an unknown variant: stored by the SQL path
    out = store.append(lid, "server", [prepared([mark(2, 2), odd, mark(4, 2)]), as_text([mark(3, 3), mark(1, 3)])])
    assert [r.duplicates for r in out.lines] == [(0,), (0, 1)]
    assert stored(store) == [("ev-1", "1"), ("ev-2", "1"), ("ev-3", None), ("ev-4", "2")]
    assert store.counts()["events"] == 4


def test_a_restart_on_the_same_file_still_knows_every_id(tmp_path):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        lid = s.open_live("server", "http")
        s.append(lid, "server", [prepared([mark(i, 1) for i in range(50)])])
    with Store(db) as s:
        lid = s.open_live("server", "http")
        out = s.append(lid, "server", [prepared([mark(i, 2) for i in range(45, 55)])])
        assert (out.loaded, out.duplicates) == (5, 5)
        assert stored(s) == [(f"ev-{i}", "1") for i in range(50)] + [(f"ev-{i}", "2") for i in range(50, 55)]


def test_events_loaded_from_files_before_and_between_appends_count_as_stored(tmp_path):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.load([ndjson(tmp_path / "a.jsonl", [mark(i, 0) for i in range(10)])])
    with Store(db) as s:  # a server started on a db that files were loaded into
        lid = s.open_live("server", "http")
        assert s.append(lid, "server", [prepared([mark(i, 1) for i in range(8, 12)])]).loaded == 2
        # a file loaded while appends go on (the set of ids must follow)
        s.load([ndjson(tmp_path / "b.jsonl", [mark(i, 2) for i in range(20, 25)])])
        out = s.append(lid, "server", [as_list([mark(i, 3) for i in range(22, 27)])])
        assert (out.loaded, out.duplicates) == (2, 3)
        got = dict(stored(s))
        assert len(got) == s.counts()["events"] == 19
        assert [got[f"ev-{i}"] for i in (9, 10, 22, 26)] == ["0", "1", "2", "3"]


def test_hash_collisions_never_drop_an_event(store, monkeypatch):
    # every id gets one of two hashes: nearly every check is a "maybe" the table settles
    monkeypatch.setattr(known, "id_hash", lambda eid: len(eid) % 2)
    monkeypatch.setattr(batch, "id_hash", lambda eid: len(eid) % 2)
    store._known = None
    lid = store.open_live("server", "http")
    rng = random.Random(7)
    reference: dict[str, int] = {}  # id -> version stored (the first sent)
    for version in range(6):
        evs = [mark(rng.randrange(40), version) for _ in range(15)]
        out = store.append(lid, "server", [rng.choice(FORMS)(evs)])
        new = 0
        for e in evs:
            if e["id"] not in reference:
                reference[e["id"]] = version
                new += 1
        assert (out.loaded, out.duplicates) == (new, len(evs) - new)
    assert sorted(stored(store)) == sorted((i, str(v)) for i, v in reference.items())


def test_a_failed_commit_leaves_its_ids_storable(store, monkeypatch):
    lid = store.open_live("server", "http")
    import raceway_core.store as store_mod
    real = store_mod.ingest_texts

    def fail(*a, **k):
        real(*a, **k)  # the ids went into the set, then the transaction fails
        raise RuntimeError("disk full (simulated)")
    monkeypatch.setattr(store_mod, "ingest_texts", fail)
    try:
        store.append(lid, "server", [prepared([mark(1, 1)])])
    except RuntimeError:
        pass
    else:
        raise AssertionError("the append should have failed")
    monkeypatch.undo()
    assert store.append(lid, "server", [prepared([mark(1, 2)])]).loaded == 1
    assert stored(store) == [("ev-1", "2")]


def test_known_ids_never_forget_a_hash_across_folds(monkeypatch):
    monkeypatch.setattr(known, "_FOLD_AT", 64)
    rng = np.random.default_rng(3)
    k = KnownIds(rng.integers(-2**63, 2**63 - 1, 500, dtype=np.int64))
    reference = set(int(x) for x in k._base)
    for _ in range(20):
        new = [int(x) for x in rng.integers(-2**63, 2**63 - 1, 50, dtype=np.int64)]
        new += rng.choice(sorted(reference), 5).tolist()  # some already there
        k.add(new)
        reference.update(new)
        probe = sorted(reference)[::7] + [int(x) for x in rng.integers(-2**63, 2**63 - 1, 50, dtype=np.int64)]
        assert k.candidates(probe) == {p for p in probe if p in reference}
    assert np.all(np.diff(k._base) > 0)  # sorted, no repeats
