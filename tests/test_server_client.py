"""raceway_core.client: pulling into a local store from our server (incremental feed)
and from an original Raceway server (paged /api/traces), over real sockets."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

import httpx
import orjson
import pytest
import uvicorn
from helpers import event
from server_proc import ServerProcess
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from raceway_core.client import FEED, TRACES, RacewayClient
from raceway_core.errors import RemoteError
from raceway_core.store import Store

JSON_CT = {"content-type": "application/json"}


def ev(i: int, trace: str, second: int) -> dict:
    e = event(i, trace=trace, ts=f"2026-11-10T00:00:{second:02d}+00:00")
    e["id"] = f"{trace}-{i}"
    return e


def local_ids(store: Store) -> list[str]:
    return store.sql("SELECT id FROM events ORDER BY seq").column("id").to_pylist()


# -- a stand-in for the original Raceway server ---------------------------------------


class FakeRaceway:
    """Answers like the original server: /status without a feed, /api/traces paged
    newest first, /api/traces/{id} with the events inside data.events."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.traces: dict[str, list[dict]] = {}
        self.fetched: list[str] = []  # trace ids asked for, in order
        self.fail_next: int | None = None

    def add(self, events: list[dict]) -> None:
        for e in events:
            self.traces.setdefault(e["trace_id"], []).append(e)

    def _guard(self, request: Request):
        if self.fail_next:
            status, self.fail_next = self.fail_next, None
            return JSONResponse({"success": False, "data": None, "error": "storage backend exploded"}, status)
        if self.key and request.headers.get("authorization") != f"Bearer {self.key}":
            return JSONResponse({"success": False, "data": None, "error": "Unauthorized"}, 401)
        return None

    async def status(self, request: Request):
        return self._guard(request) or JSONResponse({"success": True, "error": None, "data": {
            "version": "0.1.0", "uptime_seconds": 0, "events_captured": sum(map(len, self.traces.values())),
            "traces_active": len(self.traces), "warmup": {"phase": "completed", "ready": True}}})

    async def list_traces(self, request: Request):
        if (bad := self._guard(request)) is not None:
            return bad
        page = int(request.query_params.get("page", 1))
        size = int(request.query_params.get("page_size", 20))
        summaries = sorted(({"trace_id": t, "event_count": len(es),
                             "first_timestamp": min(e["timestamp"] for e in es),
                             "last_timestamp": max(e["timestamp"] for e in es),
                             "service_count": 1, "services": ["svc"]} for t, es in self.traces.items()),
                           key=lambda s: s["last_timestamp"], reverse=True)
        return JSONResponse({"success": True, "error": None, "data": {
            "total_traces": len(summaries), "page": page, "page_size": size,
            "total_pages": -(-len(summaries) // size), "traces": summaries[(page - 1) * size: page * size]}})

    async def get_trace(self, request: Request):
        if (bad := self._guard(request)) is not None:
            return bad
        tid = request.path_params["trace_id"]
        self.fetched.append(tid)
        return JSONResponse({"success": True, "error": None, "data": {
            "trace_id": tid, "events": self.traces[tid], "audit_trails": {},
            "analysis": {"concurrent_events": 0, "potential_races": 0, "anomalies": [], "race_details": []},
            "critical_path": None, "anomalies": [], "dependencies": None}})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/status", self.status), Route("/api/traces", self.list_traces),
                                 Route("/api/traces/{trace_id}", self.get_trace),
                                 Route("/broken", lambda r: PlainTextResponse("<html>oops</html>"))])


@contextmanager
def serve_in_thread(app):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: asyncio sets NODELAY
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    while not server.started:
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        t.join(10)
        sock.close()


# -- our server: the incremental feed ---------------------------------------------------


@pytest.fixture(scope="module")
def ours():
    with ServerProcess() as s:
        yield s


def test_feed_sync_is_incremental_and_complete(ours, tmp_path):
    sent = []
    with httpx.Client(base_url=ours.url, timeout=60) as http, Store(tmp_path / "local.duckdb") as store:
        def send(events):
            assert http.post("/events", headers=JSON_CT, content=orjson.dumps({"events": events})).status_code == 200
            sent.extend(e["id"] for e in events)

        send([ev(i, "f1", 59 - i) for i in range(25)])
        client = RacewayClient(ours.url, store, page_size=10)
        r = client.sync()
        assert client.mode == FEED
        assert (r.received, r.loaded, r.duplicates) == (25, 25, 0)
        assert r.requests == 1 + 3  # /status, then 3 pages of at most 10
        assert local_ids(store) == sent  # the server's arrival order

        assert client.sync().received == 0  # nothing new: nothing downloaded again
        send([ev(100 + i, "f2", i) for i in range(7)])
        r = client.sync()
        assert (r.received, r.loaded) == (7, 7)
        assert local_ids(store) == sent
        client.close()

    # a new client on the same local store resumes from the saved cursor
    send_more = [ev(200 + i, "f3", i) for i in range(3)]
    with httpx.Client(base_url=ours.url, timeout=60) as http:
        http.post("/events", content=orjson.dumps({"events": send_more}), headers={"content-type": "application/json"})
    sent += [e["id"] for e in send_more]
    with Store(tmp_path / "local.duckdb") as store, RacewayClient(ours.url, store, page_size=10) as client:
        r = client.sync()
        assert (r.received, r.loaded) == (3, 3)
        assert local_ids(store) == sent
        assert store.counts()["events"] == len(set(sent))


def test_rows_feed_stores_exactly_what_the_json_feed_stores(ours, tmp_path):
    # every kind the synthetic programs emit, plus events only SQL decides: an
    # unknown variant and a number past 64 bits (stored with every digit)
    import itertools
    import json

    from raceway_core.synth import config_for_events, generate

    evs = list(itertools.islice(generate(config_for_events(300, seed=5)), 300))
    odd = event(9001, trace="odd", kind={"Teleport": {"to": "mars"}})
    big = event(9002, trace="odd")
    big["kind"]["StateChange"]["new_value"] = 123456789012345678901234567890
    body = json.dumps({"events": evs[:150] + [odd, big] + evs[150:]})
    with httpx.Client(base_url=ours.url, timeout=60) as http:
        assert http.post("/events", headers=JSON_CT, content=body).json()["ingested"] == 302
        http.post("/events", headers=JSON_CT, content=orjson.dumps({"events": evs[:10]}))  # repeats: acknowledged, stored once
    got = {}
    for rows_feed in (True, False):
        with Store(tmp_path / f"local-{rows_feed}.duckdb") as store, \
                RacewayClient(ours.url, store, page_size=64) as client:
            client.detect()
            assert client.rows_feed  # our server offers it
            client.rows_feed = rows_feed
            r = client.sync()
            assert r.loaded == store.counts()["events"]
            assert client.sync().received == 0
            got[rows_feed] = store.sql(
                "SELECT id, trace_id, parent_id, timestamp, ts_ns, thread_id, service, kind, variable, access, "
                "CAST(old_value AS VARCHAR) AS old_value, CAST(new_value AS VARCHAR) AS new_value, location, "
                "lock_id, function_name, duration_ns, http_method, http_status, clock, lock_set, "
                "CAST(raw AS VARCHAR) AS raw, json_type(raw) AS raw_type FROM events ORDER BY seq").to_pylist()
    assert got[True] == got[False]
    ids = [r["id"] for r in got[True]]
    assert ids.count(evs[0]["id"]) == 1 and {"ev-9001", "ev-9002"} <= set(ids)
    assert "123456789012345678901234567890" in next(r["new_value"] for r in got[True] if r["id"] == "ev-9002")


def test_feed_sync_starts_over_when_the_server_database_changes(tmp_path):
    with Store(tmp_path / "local.duckdb") as store:
        with ServerProcess() as s1:
            httpx.post(s1.url + "/events", headers=JSON_CT, content=orjson.dumps({"events": [ev(i, "g", i) for i in range(5)]}), timeout=60)
            with RacewayClient(s1.url, store) as c:
                assert c.sync().loaded == 5
            port = int(s1.url.rsplit(":", 1)[1])
        # the same URL now serves another (fresh) database whose cursors start over:
        # the old cursor would skip its first events
        with ServerProcess(port=port) as s2:
            assert s2.url == s1.url
            events = [ev(i, "g", i) for i in range(3, 9)]  # g-3 and g-4 already pulled
            httpx.post(s2.url + "/events", headers=JSON_CT, content=orjson.dumps({"events": events}), timeout=60)
            with RacewayClient(s2.url, store) as c:
                r = c.sync()
        assert (r.received, r.loaded, r.duplicates) == (6, 4, 2)
        assert sorted(local_ids(store)) == sorted(f"g-{i}" for i in range(9))


# -- an original Raceway server: paged traces ---------------------------------------------


def test_pull_from_an_original_raceway_server(tmp_path, monkeypatch):
    monkeypatch.setenv("RACEWAY_API_KEY", "sekret")
    fake = FakeRaceway(key="sekret")
    fake.add([ev(i, f"o{t}", t + i) for t in range(12) for i in range(4)])
    with serve_in_thread(fake.app()) as url, Store(tmp_path / "local.duckdb") as store:
        with RacewayClient(url, store) as client:
            r = client.sync()
            assert client.mode == TRACES
            assert (r.received, r.loaded, r.duplicates) == (48, 48, 0)
            assert sorted(fake.fetched) == sorted(f"o{t}" for t in range(12))
            assert sorted(local_ids(store)) == sorted(f"o{t}-{i}" for t in range(12) for i in range(4))

            # one trace grows, one is new: only those two are fetched again
            fake.fetched.clear()
            fake.add([ev(9, "o3", 40), ev(0, "new", 41), ev(1, "new", 42)])
            r = client.sync()
            assert sorted(fake.fetched) == ["new", "o3"]
            assert (r.received, r.loaded, r.duplicates) == (7, 3, 4)  # o3's 4 old events again, stored once
            assert store.counts()["events"] == 51

            fake.fetched.clear()
            assert client.sync().received == 0 and fake.fetched == []


def test_remote_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("RACEWAY_API_KEY", raising=False)
    fake = FakeRaceway(key="sekret")
    fake.add([ev(1, "x", 1)])
    with Store() as store:
        with serve_in_thread(fake.app()) as url:
            with pytest.raises(RemoteError, match="401.*set RACEWAY_API_KEY"):
                RacewayClient(url, store).sync()
            with pytest.raises(RemoteError, match="401.*not accepted"):
                RacewayClient(url, store, api_key="wrong").sync()
            fake.fail_next = 500
            with pytest.raises(RemoteError, match="HTTP 500: storage backend exploded"):
                RacewayClient(url, store, api_key="sekret").sync()
            c = RacewayClient(url, store, api_key="sekret")
            with pytest.raises(RemoteError, match="did not answer with a Raceway JSON envelope"):
                c._get("/broken")
        # the server is gone now
        with pytest.raises(RemoteError, match="cannot connect to .*connection refused"):
            RacewayClient(url, store).sync()
        with pytest.raises(RemoteError, match="invalid server URL"):
            RacewayClient("localhost:8080", store)
        assert store.counts()["events"] == 0


def test_client_sends_the_key_to_our_server(monkeypatch, tmp_path):
    with ServerProcess(api_keys=("k1",)) as s, Store() as store:
        httpx.post(s.url + "/events", content=orjson.dumps({"events": [ev(1, "k", 1)]}),
                   headers={**JSON_CT, "X-Raceway-Key": "k1"}, timeout=60)
        monkeypatch.delenv("RACEWAY_API_KEY", raising=False)
        with pytest.raises(RemoteError, match="401"):
            RacewayClient(s.url, store).sync()
        monkeypatch.setenv("RACEWAY_API_KEY", "k1")
        with RacewayClient(s.url, store) as c:
            assert c.sync().loaded == 1
