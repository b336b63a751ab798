"""The server's HTTP API against real `raceway-tui serve` processes: response shapes,
partial batches, 400/413 paths, API keys, the incremental feed."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from helpers import event
from server_proc import ServerProcess

ENVELOPE = {"success", "data", "error"}


def svc_event(i, trace, service, ts, thread="main", clock=None):
    e = event(i, trace=trace, thread=thread, ts=ts)
    e["id"] = f"{trace}-{i}"
    e["metadata"]["service_name"] = service
    e["causality_vector"] = clock or []
    return e


@pytest.fixture(scope="module", params=["front", "one-process"])
def server(request):
    with ServerProcess(mode=request.param) as s:
        yield s


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def post(http, events, **kw):
    kw["headers"] = {"content-type": "application/json", **kw.get("headers", {})}
    return http.post("/events", content=json.dumps({"events": events}), **kw)


def test_post_list_and_fetch_traces_have_the_original_shapes(server_mode):
    # hand-checked expectations: timestamps printed like chrono's to_rfc3339
    # (fraction digits only as needed, in groups of 3), traces newest first
    events = [
        svc_event(1, "t-a", "orders", "2026-11-01T12:00:00+00:00"),
        svc_event(2, "t-a", "payments", "2026-11-01T12:00:00.120Z"),
        svc_event(3, "t-a", "orders", "2026-11-01T12:00:01.000500+00:00"),
        svc_event(4, "t-b", "api", "2026-11-01T13:00:00.000000001+00:00"),
        svc_event(5, "t-c", "api", "2026-11-01T11:00:00+00:00"),
    ]
    with ServerProcess(mode=server_mode) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        r = post(http, events)
        assert r.status_code == 200
        assert r.json() == {"success": True, "data": "Ingested 5 events", "error": None,
                            "ingested": 5, "duplicates": 0, "rejected": []}

        r = http.get("/api/traces")
        assert r.status_code == 200
        body = r.json()
        assert set(body) == ENVELOPE and body["success"] is True and body["error"] is None
        assert body["data"] == {
            "total_traces": 3, "page": 1, "page_size": 20, "total_pages": 1,
            "traces": [
                {"trace_id": "t-b", "event_count": 1, "first_timestamp": "2026-11-01T13:00:00.000000001+00:00",
                 "last_timestamp": "2026-11-01T13:00:00.000000001+00:00", "service_count": 1, "services": ["api"]},
                {"trace_id": "t-a", "event_count": 3, "first_timestamp": "2026-11-01T12:00:00+00:00",
                 "last_timestamp": "2026-11-01T12:00:01.000500+00:00", "service_count": 2,
                 "services": ["orders", "payments"]},
                {"trace_id": "t-c", "event_count": 1, "first_timestamp": "2026-11-01T11:00:00+00:00",
                 "last_timestamp": "2026-11-01T11:00:00+00:00", "service_count": 1, "services": ["api"]},
            ]}

        r = http.get("/api/traces", params={"page": 2, "page_size": 2})
        assert r.json()["data"] == {"total_traces": 3, "page": 2, "page_size": 2, "total_pages": 2,
                                    "traces": [{"trace_id": "t-c", "event_count": 1,
                                                "first_timestamp": "2026-11-01T11:00:00+00:00",
                                                "last_timestamp": "2026-11-01T11:00:00+00:00",
                                                "service_count": 1, "services": ["api"]}]}
        assert http.get("/api/traces", params={"page": 9}).json()["data"]["traces"] == []

        r = http.get("/api/traces/t-a")
        assert r.status_code == 200
        data = r.json()["data"]
        assert data["trace_id"] == "t-a"
        assert data["events"] == events[:3]  # as posted, in time order
        assert {"audit_trails", "analysis", "critical_path", "anomalies", "dependencies"} <= set(data)
        lean = http.get("/api/traces/t-a", params={"analysis": "false"}).json()["data"]
        assert lean == {"trace_id": "t-a", "events": events[:3]}

        missing = "00000000-0000-4000-8000-000000000000"
        r = http.get(f"/api/traces/{missing}")
        assert r.status_code == 404
        assert r.json()["success"] is False and missing in r.json()["error"]
        # as the original: an id that is not a UUID (and names no stored trace) is malformed
        r = http.get("/api/traces/no-such-trace")
        assert r.status_code == 400 and r.json()["error"] == "Invalid trace ID format"


def test_trace_events_ordered_by_time_then_clock_size_then_id(server, http):
    ts = "2026-11-02T00:00:00+00:00"
    evs = [svc_event(3, "t-order", "s", ts, clock=[["a", 1], ["b", 1]]),
           svc_event(2, "t-order", "s", ts, clock=[["a", 1]]),
           svc_event(1, "t-order", "s", ts, clock=[["a", 1]]),
           svc_event(0, "t-order", "s", "2026-11-02T00:00:01+00:00")]
    assert post(http, evs).status_code == 200
    got = [e["id"] for e in http.get("/api/traces/t-order").json()["data"]["events"]]
    assert got == ["t-order-1", "t-order-2", "t-order-3", "t-order-0"]


def test_partial_batch_stores_the_valid_events_and_lists_the_rejected(server, http):
    good = [svc_event(i, "t-partial", "s", f"2026-11-03T00:00:0{i}+00:00") for i in range(3)]
    no_trace = svc_event(7, "t-partial", "s", "2026-11-03T00:00:07+00:00")
    del no_trace["trace_id"]
    bad_ts = svc_event(8, "t-partial", "s", "yesterday")
    batch = [good[0], no_trace, good[1], 42, bad_ts, good[2]]
    r = post(http, batch)
    assert r.status_code == 206  # like the original when some events failed
    body = r.json()
    assert body["success"] is True and body["data"] == "Ingested 3 events, 3 errors"
    assert body["ingested"] == 3 and body["duplicates"] == 0
    assert [x["index"] for x in body["rejected"]] == [1, 3, 4]
    reasons = [x["reason"] for x in body["rejected"]]
    assert "trace_id" in reasons[0] and "object" in reasons[1] and "timestamp" in reasons[2]
    stored = http.get("/api/traces/t-partial").json()["data"]["events"]
    assert [e["id"] for e in stored] == [e["id"] for e in good]

    r = post(http, [no_trace, bad_ts])  # nothing valid at all
    assert r.status_code == 422
    assert r.json()["success"] is False and [x["index"] for x in r.json()["rejected"]] == [0, 1]


def test_duplicates_are_acknowledged_and_stored_once(server, http):
    evs = [svc_event(i, "t-dup", "s", f"2026-11-04T00:00:0{i}+00:00") for i in range(4)]
    assert post(http, evs[:2]).json()["ingested"] == 2
    r = post(http, evs + [evs[3]])  # a retried batch plus one repeated inside it
    assert r.status_code == 200
    assert r.json()["data"] == "Ingested 2 events"
    assert r.json()["ingested"] == 2 and r.json()["duplicates"] == 3
    stored = http.get("/api/traces/t-dup").json()["data"]["events"]
    assert sorted(e["id"] for e in stored) == sorted(e["id"] for e in evs)


@pytest.mark.parametrize("body, words", [
    (b'{"events": [{"id": "x",', "malformed JSON"),
    (b'{"events": [1 2]}', "malformed JSON"),
    (b'"hello"', "got a string"),
    (b'{"event": []}', "no 'events' field"),
    (b'{"events": {"id": 1}}', "'events' must be an array"),
    (b"", "empty request body"),
])
def test_bad_bodies_get_400_naming_the_problem(server, http, body, words):
    before = http.get("/status").json()["data"]["events_captured"]
    r = http.post("/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert set(r.json()) == ENVELOPE and r.json()["success"] is False and r.json()["data"] is None
    assert words in r.json()["error"]
    assert http.get("/status").json()["data"]["events_captured"] == before


def test_malformed_json_message_says_where(server, http):
    r = http.post("/events", content=b'{"events": [\n  {"id": tru}]}', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "line 2" in r.json()["error"]


def test_gzip_bodies_are_accepted(server, http):
    evs = [svc_event(i, "t-gzip", "s", "2026-11-05T00:00:00+00:00") for i in range(5)]
    r = http.post("/events", content=gzip.compress(json.dumps({"events": evs}).encode()),
                  headers={"content-encoding": "gzip", "content-type": "application/json"})
    assert r.status_code == 200 and r.json()["ingested"] == 5


def test_body_limit_gives_413_with_or_without_content_length(server_mode):
    with ServerProcess(extra=("--max-body-mb", "0.01"), mode=server_mode) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        big = json.dumps({"events": [svc_event(i, "t-big", "s", "2026-11-06T00:00:00+00:00")
                                     for i in range(100)]}).encode()
        assert len(big) > 10_000
        r = http.post("/events", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["error"]

        def chunks():  # chunked transfer: no Content-Length to check up front
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000]
        r = http.post("/events", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413

        bomb = gzip.compress(b'{"events": [' + b" " * 200_000 + b"]}")
        assert len(bomb) < 10_000
        r = http.post("/events", content=bomb, headers={"content-encoding": "gzip", "content-type": "application/json"})
        assert r.status_code == 413 and "decompressed" in r.json()["error"]

        small = json.dumps({"events": [svc_event(1, "t-small", "s", "2026-11-06T00:00:00+00:00")]})
        assert http.post("/events", content=small, headers={"content-type": "application/json"}).status_code == 200
        assert http.get("/status").json()["data"]["events_captured"] == 1


def test_api_keys(server_mode):
    with ServerProcess(api_keys=("k-one", "k-two"), mode=server_mode) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        batch = {"events": [svc_event(1, "t-auth", "s", "2026-11-07T00:00:00+00:00")]}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Raceway-Key": "k-on"},
                        {"Authorization": "Basic k-one"}, {"Authorization": "Bearer"}):
            r = http.post("/events", json=batch, headers=headers)
            assert r.status_code == 401, headers
            assert r.json() == {"success": False, "data": None, "error": "Unauthorized"}
            assert http.get("/api/traces", headers=headers).status_code == 401
            assert http.get("/api/events", headers=headers).status_code == 401
        assert http.post("/events", json=batch, headers={"Authorization": "Bearer k-one"}).status_code == 200
        assert http.post("/events", json=batch, headers={"authorization": "bearer k-two"}).status_code == 200
        r = http.get("/api/traces", headers={"X-Raceway-Key": "k-two"})
        assert r.status_code == 200 and r.json()["data"]["total_traces"] == 1
        # liveness and the API description stay open
        assert http.get("/health").status_code == 200
        assert http.get("/openapi.json").status_code == 200
        status = http.get("/status", headers={"X-Raceway-Key": "k-one"}).json()["data"]
        assert status["auth_required"] is True and status["events_captured"] == 1


def test_without_keys_no_key_is_needed(server, http):
    assert http.get("/api/traces").status_code == 200
    assert http.get("/status").json()["data"]["auth_required"] is False


def test_health_and_status_shapes(server, http):
    h = http.get("/health").json()
    assert set(h) == ENVELOPE and h["success"] is True
    assert {"phase", "ready", "total_traces", "processed_traces", "last_trace", "started_at", "completed_at",
            "last_error"} <= set(h["data"])
    s = http.get("/status").json()["data"]
    assert {"version", "uptime_seconds", "events_captured", "traces_active", "warmup"} <= set(s)
    assert s["implementation"] == "raceway-tui" and s["feed"] == "/api/events"


def test_openapi_document_describes_the_routes(server, http):
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/events", "/health", "/status", "/api/events", "/api/traces", "/api/traces/{trace_id}",
            "/api/analyze/global", "/api/distributed/global-races"} <= set(doc["paths"])
    assert {"200", "206", "400", "413", "401"} <= set(doc["paths"]["/events"]["post"]["responses"])


def test_unknown_route_and_method_use_the_envelope(server, http):
    r = http.get("/api/nothing-here")
    assert r.status_code == 404 and set(r.json()) == ENVELOPE
    r = http.get("/events")
    assert r.status_code == 405 and r.json()["success"] is False


def test_feed_pages_in_arrival_order_without_gaps_or_repeats(server_mode):
    with ServerProcess(mode=server_mode) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        sent = []
        for b in range(6):  # arrival order differs from timestamp order
            batch = [svc_event(b * 10 + i, f"t-feed-{i % 3}", "s", f"2026-11-09T00:00:{59 - b * 5 - i:02d}+00:00")
                     for i in range(5)]
            assert post(http, batch).status_code == 200
            sent += [e["id"] for e in batch]
        got, cursor, pages = [], None, 0
        while True:
            params = {"limit": 7} | ({"after": cursor} if cursor is not None else {})
            data = http.get("/api/events", params=params).json()["data"]
            got += [e["id"] for e in data["events"]]
            pages += 1
            assert len(data["events"]) <= 7
            cursor = data["next_cursor"]
            if not data["has_more"]:
                break
        assert got == sent and pages == 5  # 30 events, 7 a page
        # nothing new: the same cursor back, no events
        data = http.get("/api/events", params={"after": cursor}).json()["data"]
        assert data["events"] == [] and data["next_cursor"] == cursor and data["has_more"] is False
        # new events continue after the cursor
        post(http, [svc_event(99, "t-feed-0", "s", "2026-11-09T00:00:00+00:00")])
        data = http.get("/api/events", params={"after": cursor}).json()["data"]
        assert [e["id"] for e in data["events"]] == ["t-feed-0-99"]
        assert int(data["next_cursor"]) > int(cursor)
        r = http.get("/api/events", params={"after": "abc"})
        assert r.status_code == 400 and "cursor" in r.json()["error"]


def test_numbers_past_64_bits_are_stored_with_every_digit(server, http):
    big = "123456789012345678901234567890"
    e = svc_event(1, "t-bignum", "s", "2026-11-11T00:00:00+00:00")
    body = json.dumps({"events": [e]}).replace('"old_value": 1', f'"old_value": {big}')
    assert big in body
    r = http.post("/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["ingested"] == 1
    assert big in http.get("/api/traces/t-bignum").text


def test_posts_from_sdks_and_from_browsers_get_the_same_answer(server, http):
    # SDK posts take a short path around the middleware; a browser's (Origin) takes the full one
    evs = [svc_event(i, "t-cors", "s", f"2026-11-08T00:00:0{i}+00:00") for i in range(3)]
    plain = post(http, evs[:2] + [{"id": "broken"}])
    browser = post(http, evs[1:] + [{"id": "broken"}], headers={"Origin": "http://localhost:3000"})
    assert plain.status_code == browser.status_code == 206
    assert "access-control-allow-origin" not in plain.headers
    assert "access-control-allow-origin" not in browser.headers  # no CORS unless --cors-origin
    p, b = plain.json(), browser.json()
    assert (p["ingested"], p["duplicates"], b["ingested"], b["duplicates"]) == (2, 0, 1, 1)
    assert p["rejected"][0]["index"] == b["rejected"][0]["index"] == 2
    assert p["rejected"][0]["reason"] == b["rejected"][0]["reason"]
    pre = http.options("/events", headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-methods" not in pre.headers
    wrong = http.get("/events")
    assert wrong.status_code == 405 and wrong.json()["success"] is False
    trace = http.get("/api/traces/t-cors", params={"analysis": 0}).json()["data"]
    assert sorted(e["id"] for e in trace["events"]) == ["t-cors-0", "t-cors-1", "t-cors-2"]
