"""PostgreSQL as the shared store: `raceway-tui serve --store postgresql://...`
processes on one throwaway database (see pgserver.py), against real servers."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
import subprocess
import sys

import httpx
import psycopg
from helpers import event
from server_proc import ServerProcess


def svc_event(i, trace, ts, service="svc"):
    e = event(i, trace=trace, ts=ts)
    e["id"] = f"{trace}-{i}"
    e["metadata"]["service_name"] = service
    return e


def post(url, events):
    return httpx.post(url + "/events", json={"events": events}, timeout=30)


def pg_serve(url, mode="one-process", **kw):
    return ServerProcess(extra=("--store", url), mode=mode, **kw)


def whole_feed(url, limit=1000) -> list[str]:
    ids, cursor = [], ""
    while True:
        d = httpx.get(url + "/api/events", params={"after": cursor, "limit": limit}, timeout=30).json()["data"]
        ids += [e["id"] for e in d["events"]]
        cursor = d["next_cursor"]
        if not d["has_more"]:
            return ids


def test_events_posted_to_either_server_are_stored_once_and_fed_by_both(pg_url):
    evs = [svc_event(i, "t-a" if i % 2 else "t-b", f"2026-11-01T12:00:0{i}+00:00") for i in range(8)]
    with pg_serve(pg_url, mode="front") as s1, pg_serve(pg_url) as s2:
        r = post(s1.url, evs[:5])
        assert r.status_code == 200 and r.json()["ingested"] == 5 and r.json()["duplicates"] == 0
        # a retry of 3 of them through the other server, with 3 new ones and a repeat inside the batch
        r = post(s2.url, evs[2:] + [evs[7]])
        assert r.status_code == 200
        assert (r.json()["ingested"], r.json()["duplicates"]) == (3, 4)
        with psycopg.connect(pg_url) as conn:
            stored = [r[0] for r in conn.execute("SELECT id FROM raceway_events ORDER BY id")]
        assert stored == sorted(e["id"] for e in evs)
        for s in (s1, s2):
            assert sorted(whole_feed(s.url, limit=3)) == sorted(e["id"] for e in evs)
            got = httpx.get(s.url + "/api/traces/t-a", timeout=60).json()["data"]["events"]
            assert [e["id"] for e in got] == [e["id"] for e in evs if e["trace_id"] == "t-a"]
        # the cursors of one server are valid on the other (one store id)
        d1 = httpx.get(s1.url + "/api/events", params={"limit": 4}, timeout=60).json()["data"]
        d2 = httpx.get(s2.url + "/api/events", params={"after": d1["next_cursor"]}, timeout=60).json()["data"]
        assert d1["store_id"] == d2["store_id"]
        assert sorted([e["id"] for e in d1["events"]] + [e["id"] for e in d2["events"]]) == sorted(
            e["id"] for e in evs)


def test_rejected_events_are_answered_as_by_the_duckdb_server_and_counted(pg_url):
    good = [svc_event(i, "t-p", f"2026-11-03T00:00:0{i}+00:00") for i in range(3)]
    bad_ts = svc_event(8, "t-p", "yesterday")
    batch = [good[0], 42, good[1], bad_ts, good[2]]
    with pg_serve(pg_url) as pg, ServerProcess(mode="one-process") as duck:
        a, b = post(pg.url, batch), post(duck.url, batch)
        assert a.status_code == b.status_code == 206
        assert a.json() == b.json()
        assert httpx.get(pg.url + "/status", timeout=60).json()["data"]["events_rejected"] == 2


def test_schema_is_versioned_and_a_newer_one_is_refused(pg_url):
    with pg_serve(pg_url) as s:
        assert post(s.url, [svc_event(1, "t", "2026-11-01T12:00:00+00:00")]).status_code == 200
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM raceway_schema")] == [1]
        conn.execute("INSERT INTO raceway_schema (version) VALUES (99)")
    r = serve_exits(pg_url)
    assert r.returncode != 0
    assert "schema version 99" in r.stderr and "newer" in r.stderr, r.stderr


def test_a_bad_store_url_is_refused_with_a_clear_message():
    r = serve_exits("mysql://x")
    assert r.returncode == 2 and "expected a PostgreSQL URL" in r.stderr, r.stderr


def serve_exits(store: str) -> subprocess.CompletedProcess:
    """`serve` that is expected to stop at once: its exit code and messages."""
    env = {k: v for k, v in os.environ.items() if k != "RACEWAY_DATABASE_URL"} | {"COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "raceway_tui.cli", "serve", "--port", "0", "--store", store,
                           "--ingest-workers", "0"], capture_output=True, text=True, timeout=60, env=env)


def sample_events() -> list[dict]:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "sample_traces"
    return [json.loads(line) for p in ("banking-unsafe.jsonl", "distributed-orders.jsonl")
            for line in (root / p).read_text().splitlines() if line.strip()]


def test_analyses_agree_with_the_duckdb_server_from_every_server(pg_url):
    evs = sample_events()
    traces = sorted({e["trace_id"] for e in evs})
    with pg_serve(pg_url) as s1, pg_serve(pg_url, mode="front") as s2, ServerProcess(mode="one-process") as duck:
        half = len(evs) // 2  # half through each shared server; all to the DuckDB one
        assert post(s1.url, evs[:half]).status_code == 200
        assert post(s2.url, evs[half:]).status_code == 200
        assert post(duck.url, evs).status_code == 200
        paths = ["/api/traces?page_size=100", "/api/analyze/global", "/api/distributed/global-races"]
        for t in traces:
            paths += [f"/api/traces/{t}", f"/api/traces/{t}/critical-path", f"/api/traces/{t}/anomalies",
                      f"/api/traces/{t}/dependencies"]
        for path in paths:
            want = httpx.get(duck.url + path, timeout=60).json()
            assert want["success"] is True, path
            for s in (s1, s2):
                assert httpx.get(s.url + path, timeout=60).json() == want, path


def test_a_restarted_database_is_reconnected_to_without_failing_a_post(pg_server):
    url = pg_server.new_database()
    with pg_serve(url) as s:
        assert post(s.url, [svc_event(1, "t-r", "2026-11-01T12:00:01+00:00")]).status_code == 200
        # concurrent reads, so the server holds several idle connections, all cut by the restart
        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(lambda _: httpx.get(s.url + "/api/events", timeout=30).status_code,
                                range(48))) == {200}
        pg_server.restart()
        r = post(s.url, [svc_event(2, "t-r", "2026-11-01T12:00:02+00:00")])
        assert r.status_code == 200 and r.json()["ingested"] == 1, r.text
        got = httpx.get(s.url + "/api/traces/t-r", timeout=30).json()["data"]["events"]
        assert [e["id"] for e in got] == ["t-r-1", "t-r-2"]
