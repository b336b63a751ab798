"""The shared database's feed never skips an event although writers commit out
of order: the race forced with transactions held open (two raw writers on the
events table, beside a real server's commit), read through a real server."""

from __future__ import annotations

import json

import httpx
import psycopg
from server_proc import ServerProcess
from test_pg_store import post, svc_event

INSERT = "INSERT INTO raceway_events (id, trace_id, ts_ns, raw) VALUES (%s, %s, %s, %s) RETURNING seq"


def insert(conn, e) -> int:
    return conn.execute(INSERT, [e["id"], e["trace_id"], 0, json.dumps(e)]).fetchone()[0]


def page(url, cursor):
    d = httpx.get(url + "/api/events", params={"after": cursor}, timeout=30).json()["data"]
    return [e["id"] for e in d["events"]], d["next_cursor"]


def test_an_event_committed_after_a_later_one_was_read_is_not_skipped(pg_url):
    a, b, c = (svc_event(i, "t-race", f"2026-11-01T12:00:0{i}+00:00") for i in range(3))
    with ServerProcess(extra=("--store", pg_url), mode="one-process") as s, \
            psycopg.connect(pg_url) as wa, psycopg.connect(pg_url) as wb:
        # writer B takes its transaction id first, writer A inserts next (smaller seq,
        # larger xid), then B inserts (larger seq) and commits while A stays open
        xb = int(wb.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        sa = insert(wa, a)
        xa = int(wa.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        sb = insert(wb, b)
        wb.commit()
        assert sa < sb and xb < xa  # the order that makes a seq cursor skip
        # and a server commits a later transaction meanwhile
        assert post(s.url, [c]).json()["ingested"] == 1

        first, cursor = page(s.url, "")
        assert first == [b["id"]]  # c waits: its transaction began after A's, still open
        assert page(s.url, cursor) == ([], cursor)  # nothing more while A is open

        wa.commit()  # A's row (seq below the one already handed out) commits now
        rest, cursor2 = page(s.url, cursor)
        assert rest == [a["id"], c["id"]]
        assert page(s.url, cursor2) == ([], cursor2)
        # and the server's analysis cache got all three
        got = httpx.get(s.url + "/api/traces/t-race", timeout=30).json()["data"]["events"]
        assert sorted(e["id"] for e in got) == sorted(e["id"] for e in (a, b, c))


def test_an_aborted_transaction_leaves_no_gap_and_no_row(pg_url):
    a, b = (svc_event(i, "t-abort", f"2026-11-01T12:00:0{i}+00:00") for i in range(2))
    with ServerProcess(extra=("--store", pg_url), mode="one-process") as s, psycopg.connect(pg_url) as w:
        insert(w, a)
        assert post(s.url, [b]).json()["ingested"] == 1
        assert page(s.url, "")[0] == []  # held back behind the open transaction
        w.rollback()
        assert page(s.url, "")[0] == [b["id"]]
