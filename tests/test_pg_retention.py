"""`serve --retain`: traces whose newest event is older than the limit are
removed whole, on the DuckDB store and on the shared database, while posts go on."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from server_proc import ServerProcess
from test_pg_store import post, svc_event

from raceway_core.retention import parse_duration


def at(days_ago: float, i: int) -> str:
    t = datetime.now(timezone.utc) - timedelta(days=days_ago) + timedelta(milliseconds=i)
    return t.isoformat()


def trace_ids(url) -> set[str]:
    d = httpx.get(url + "/api/traces", params={"page_size": 1000}, timeout=30).json()["data"]
    return {t["trace_id"] for t in d["traces"]}


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_old_traces_go_whole_and_only_they_while_posts_go_on(backend, request):
    extra = ("--retain", "1d", "--retain-check", "0.2")
    if backend == "postgresql":
        pg_url = request.getfixturevalue("pg_url")
        extra += ("--store", pg_url)
    old = [svc_event(i, f"old-{i % 3}", at(3, i)) for i in range(30)]
    # a trace with an old event but a recent last one is kept, all of it
    mixed = [svc_event(0, "mixed", at(3, 0)), svc_event(1, "mixed", at(0, 1))]
    with ServerProcess(mode="one-process", extra=extra) as s:
        assert post(s.url, old + mixed).status_code == 200
        stop, answers = threading.Event(), []

        def keep_posting() -> None:  # ingest goes on meanwhile
            n = 0
            while not stop.is_set():
                answers.append(post(s.url, [svc_event(n, f"new-{n % 5}", at(0, n))]).status_code)
                n += 1

        poster = threading.Thread(target=keep_posting)
        poster.start()
        try:
            deadline = time.monotonic() + 20
            while any(t.startswith("old-") for t in trace_ids(s.url)):
                assert time.monotonic() < deadline, "old traces were never removed"
                time.sleep(0.1)
            time.sleep(0.5)  # more passes while posts go on
        finally:
            stop.set()
            poster.join()
        assert answers and set(answers) == {200}
        ids = trace_ids(s.url)
        assert "mixed" in ids and {f"new-{k}" for k in range(min(5, len(answers)))} <= ids
        assert not any(t.startswith("old-") for t in ids)
        got = httpx.get(s.url + "/api/traces/mixed", timeout=30).json()["data"]["events"]
        assert [e["id"] for e in got] == ["mixed-0", "mixed-1"]
        if backend == "postgresql":
            with psycopg.connect(pg_url) as conn:
                left = {r[0] for r in conn.execute("SELECT DISTINCT trace_id FROM raceway_events")}
            assert left == ids


def test_durations():
    assert [parse_duration(x) for x in ("7d", "12h", "30m", "90s", "2w", "45")] == [
        604800, 43200, 1800, 90, 1209600, 45]
    for bad in ("", "7y", "-1d", "0d", "d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
