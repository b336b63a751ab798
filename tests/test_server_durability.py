"""Acknowledged means committed: SIGKILL, SIGTERM and many parallel clients against
real `raceway-tui serve` processes on a DuckDB file."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
from helpers import event
from server_proc import ServerProcess

from raceway_core.store import Store


def batch(client: int, b: int, size: int = 100) -> list[dict]:
    return [event(f"c{client}-b{b}-{i}", trace=f"trace-{client}-{b % 7}", thread=f"t{client}")
            for i in range(size)]


def stored_ids(db) -> list[str]:
    with Store(db, read_only=True) as st:
        return st.sql("SELECT id FROM events ORDER BY seq").column("id").to_pylist()


def poster(url: str, client: int, acked: list[str], stop: threading.Event, size: int = 50,
           pause: float = 0.0) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        b = 0
        while not stop.is_set():
            evs = batch(client, b, size)
            try:
                r = http.post("/events", content=orjson.dumps({"events": evs}), headers={"content-type": "application/json"})
            except httpx.HTTPError:
                return  # the server is gone: this batch was never acknowledged
            if r.status_code == 200:
                acked.extend(e["id"] for e in evs)
            b += 1
            stop.wait(pause)


def while_posting(srv: ServerProcess, acked_at_least: int, action) -> list[str]:
    """Three clients post until ``acked_at_least`` events are acknowledged, then ``action()``
    runs with posts in flight; the ids the server acknowledged."""
    acked: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=poster, args=(srv.url, c, acked, stop)) for c in range(3)]
    for t in threads:
        t.start()
    try:
        while len(acked) < acked_at_least:
            threading.Event().wait(0.01)
        action()
    finally:
        stop.set()
        for t in threads:
            t.join()
        srv.kill()
    return acked


def test_sigkill_loses_no_acknowledged_event_and_stores_none_twice(tmp_path, server_mode):
    db = tmp_path / "kill.duckdb"
    srv = ServerProcess(db, mode=server_mode).start()
    acked = while_posting(srv, 3000, srv.kill)  # mid-stream: posts are in flight
    ids = stored_ids(db)  # opening replays the WAL
    assert len(ids) == len(set(ids)), "an event was stored twice"
    missing = set(acked) - set(ids)
    assert not missing, f"{len(missing)} acknowledged events lost"

    # restarted on the same file: everything is there once, and arrival order continues
    with ServerProcess(db, mode=server_mode) as srv2, httpx.Client(base_url=srv2.url, timeout=60) as http:
        assert http.get("/status").json()["data"]["events_captured"] == len(ids)
        last_cursor = http.get("/api/events", params={"limit": 20000}).json()["data"]["next_cursor"]
        late = batch(9, 0, 10)
        resent = [{"id": i, **{k: v for k, v in event(0).items() if k != "id"}} for i in ids[:5]]
        r = http.post("/events", content=orjson.dumps({"events": late + resent}), headers={"content-type": "application/json"})
        assert r.json()["ingested"] == 10 and r.json()["duplicates"] == 5
        after = http.get("/api/events", params={"after": last_cursor}).json()["data"]["events"]
        assert [e["id"] for e in after] == [e["id"] for e in late]
    ids2 = stored_ids(db)
    assert len(ids2) == len(set(ids2)) == len(ids) + 10


def test_sigterm_answers_in_flight_posts_commits_and_closes(tmp_path, server_mode):
    db = tmp_path / "term.duckdb"
    srv = ServerProcess(db, mode=server_mode).start()
    codes = []
    acked = while_posting(srv, 1500, lambda: codes.append(srv.stop()))
    code = codes[0]
    assert code == 0, "".join(srv.output)
    assert "database closed" in "".join(srv.output)
    assert not (tmp_path / "term.duckdb.wal").exists(), "the WAL was not folded into the file on shutdown"
    ids = stored_ids(db)
    assert len(ids) == len(set(ids))
    assert not set(acked) - set(ids)


def test_eight_clients_in_parallel_store_every_event_once(tmp_path, server_mode):
    db = tmp_path / "many.duckdb"
    n_clients, n_batches = 8, 50  # 8 x 5,000 events, batches of 100
    with ServerProcess(db, mode=server_mode) as srv:
        def run(client: int) -> tuple[int, int]:
            ingested = dups = 0
            with httpx.Client(base_url=srv.url, timeout=60) as http:
                for b in range(n_batches):
                    body = orjson.dumps({"events": batch(client, b)})
                    r = http.post("/events", content=body, headers={"content-type": "application/json"})
                    assert r.status_code == 200, r.text
                    ingested += r.json()["ingested"]
                    dups += r.json()["duplicates"]
                    if b % 10 == 0:  # a client retrying a batch it already sent
                        r = http.post("/events", content=body, headers={"content-type": "application/json"})
                        assert r.status_code == 200 and r.json()["duplicates"] == 100
                        dups += 100
            return ingested, dups

        with ThreadPoolExecutor(n_clients) as pool:
            results = list(pool.map(run, range(n_clients)))
        assert sum(r[0] for r in results) == n_clients * n_batches * 100
        assert sum(r[1] for r in results) == n_clients * 5 * 100
        status = httpx.get(srv.url + "/status", timeout=60).json()["data"]
        assert status["events_captured"] == 40_000
        assert status["writer"]["largest_group"] > 1  # concurrent posts shared commits
    ids = stored_ids(db)
    assert len(ids) == len(set(ids)) == 40_000
    # each client's events are stored in the order it sent them
    for c in range(n_clients):
        mine = [i for i in ids if i.startswith(f"ev-c{c}-")]
        assert mine == [e["id"] for b in range(n_batches) for e in batch(c, b)]


def test_analyses_while_events_stream_in(tmp_path):
    """The engine reads the events in many statements while the writer commits:
    every answer is complete and the final one counts every event. (The posts are
    paced: ingest no longer waits on analyses, and every event here races with
    the other client's, so an unpaced stream makes each analysis slower than the last.)"""
    acked: list[str] = []
    with ServerProcess(tmp_path / "live.duckdb") as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        stop = threading.Event()
        threads = [threading.Thread(target=poster, args=(srv.url, c, acked, stop, 20, 0.5)) for c in range(2)]
        for t in threads:
            t.start()
        try:
            while not acked:
                threading.Event().wait(0.01)
            answers = []
            while len(answers) < 3:
                seen = len(acked)
                while len(acked) == seen:  # more events are in: this analysis has something new
                    threading.Event().wait(0.01)
                r = http.get("/api/analyze/global")
                assert r.status_code == 200, r.text
                answers.append(r.json()["data"]["total_events"])
                tid = http.get("/api/traces", params={"page_size": 1}).json()["data"]["traces"][0]["trace_id"]
                for p in ("", "/critical-path", "/anomalies", "/dependencies"):
                    r = http.get(f"/api/traces/{tid}{p}")
                    assert r.status_code == 200, (p, r.text)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert answers == sorted(answers) and answers[-1] > answers[0]  # it kept up with the stream
        final = http.get("/api/analyze/global").json()["data"]
        assert final["total_events"] == len(acked) == len(set(acked))
