"""The original Raceway server's system-wide routes against a real `raceway-tui serve`:
/api/services, /api/services/health, /api/services/{name}/traces and /dependencies,
/api/performance/metrics, /api/distributed/edges and /hotspots, /api/traces?min_events.

Each answer is checked against the shape written down from the original's structs
(cli/src/server.rs, core/src/storage/{memory,postgres}.rs: field names and JSON
types), and its values against a reference computed here from the posted file
with plain Python (no engine, no SQL).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from helpers import event
from server_proc import ServerProcess

from raceway_core.server import queries
from raceway_core.store import Store

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"

# -- the original's shapes ---------------------------------------------------------
S, I, N = str, int, (int, float)  # JSON string, integer, number
TRACE_SUMMARY = {"trace_id": S, "event_count": I, "first_timestamp": S, "last_timestamp": S,
                 "services": [S], "service_count": I}
SHAPES = {
    "services": {"total_services": I, "services": [{"name": S, "event_count": I, "trace_count": I}]},
    "health": [{"name": S, "status": S, "trace_count": I, "last_activity": S, "avg_events_per_trace": N,
                "minutes_since_last_activity": N}],
    "service_traces": {"service_name": S, "total_traces": I, "page": I, "page_size": I, "total_pages": I,
                       "traces": [TRACE_SUMMARY]},
    "service_deps": {"service_name": S, "calls_to": [{"to": S, "total_calls": I, "trace_count": I}],
                     "called_by": [{"to": S, "total_calls": I, "trace_count": I}]},
    "performance": {
        "trace_latency": {"avg_ms": N, "p50_ms": N, "p95_ms": N, "p99_ms": N,
                          "slowest_traces": [{"trace_id": S, "duration_ms": N, "services": [S]}]},
        "event_performance": {"avg_duration_ms": N, "by_type": [{"type": S, "count": I, "avg_duration_ms": N}],
                              "slow_operations": [{"type": S, "count": I, "avg_duration_ms": N}]},
        "service_latency": [{"service": S, "event_count": I, "avg_duration_ms": N}],
        "throughput": {"events_per_second": N, "traces_per_second": N, "time_range_seconds": N}},
    "edges": {"total_edges": I, "edges": [{"from_service": S, "to_service": S, "link_type": S, "call_count": I}]},
    "hotspots": {"top_variables": [{"variable": S, "access_count": I, "trace_count": I, "services": [S]}],
                 "top_service_calls": [{"from_service": S, "to_service": S, "call_count": I}]},
    "traces": {"total_traces": I, "page": I, "page_size": I, "total_pages": I,
               "traces": [{"trace_id": S, "event_count": I, "first_timestamp": S, "last_timestamp": S,
                           "service_count": I, "services": [S]}]},
}


def mismatches(value, shape, where="data") -> list[str]:
    """Where ``value`` does not have ``shape`` (extra fields are allowed: ours)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {value!r:.60}"]
        out = []
        for k, sub in shape.items():
            if k not in value:
                out.append(f"{where}.{k}: missing")
            else:
                out += mismatches(value[k], sub, f"{where}.{k}")
        return out
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {value!r:.60}"]
        return [m for i, v in enumerate(value) for m in mismatches(v, shape[0], f"{where}[{i}]")]
    ok = isinstance(value, shape) and (shape is bool or not isinstance(value, bool))
    return [] if ok else [f"{where}: expected {shape}, got {value!r:.60}"]


def test_the_shape_checker_can_fail():
    assert mismatches({"a": 1}, {"a": S}) == ["data.a: expected <class 'str'>, got 1"]
    assert mismatches({"a": [1, "x"]}, {"a": [I]}) and mismatches({}, {"a": I}) == ["data.a: missing"]
    assert mismatches({"a": True}, {"a": I})  # a boolean is not a JSON number
    assert not mismatches({"a": [1], "extra": None}, {"a": [I]})


# -- an independent reference from the file ------------------------------------------
def orders_events() -> list[dict]:
    return [json.loads(line) for line in ORDERS.read_text().splitlines() if line.strip()]


def reference(events: list[dict]) -> dict:
    svc_events, svc_traces = Counter(), defaultdict(set)
    owner = {}  # span -> service of its first event
    callee_spans = {}  # (trace, span) -> (upstream span, kind of its first event)
    variables = defaultdict(lambda: {"n": 0, "traces": set(), "services": set()})
    for e in events:
        m = e["metadata"]
        svc_events[m["service_name"]] += 1
        svc_traces[m["service_name"]].add(e["trace_id"])
        owner.setdefault(m["distributed_span_id"], m["service_name"])
        if m["upstream_span_id"]:
            callee_spans.setdefault((e["trace_id"], m["distributed_span_id"]),
                                    (m["upstream_span_id"], next(iter(e["kind"]))))
        if "StateChange" in e["kind"]:
            v = variables[e["kind"]["StateChange"]["variable"]]
            v["n"] += 1
            v["traces"].add(e["trace_id"])
            v["services"].add(m["service_name"])
    calls = Counter()
    call_traces = defaultdict(set)
    for (trace, span), (up, kind) in callee_spans.items():
        key = (owner[up], owner[span], "HttpCall" if kind in ("HttpRequest", "HttpResponse") else "Custom")
        calls[key] += 1
        call_traces[key[:2]].add(trace)
    return {"svc_events": svc_events, "svc_traces": svc_traces, "calls": calls, "call_traces": call_traces,
            "variables": variables}


@pytest.fixture(scope="module")
def server():
    with ServerProcess(mode="one-process") as s:
        yield s


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/events", json={"events": orders_events()})
        assert r.status_code == 200, r.text
        yield c


def data(http, path, shape, **params):
    r = http.get(path, params=params)
    assert r.status_code == 200, (path, r.text)
    body = r.json()
    assert body["success"] is True and body["error"] is None
    assert mismatches(body["data"], SHAPES[shape]) == []
    return body["data"]


def test_services_list_every_service_with_its_event_and_trace_counts(http):
    ref = reference(orders_events())
    d = data(http, "/api/services", "services")
    assert d["total_services"] == 5
    assert d["services"] == [{"name": n, "event_count": ref["svc_events"][n], "trace_count": len(ref["svc_traces"][n])}
                             for n in sorted(ref["svc_events"])]
    # hand-checked: frontend sent 10 + 6 events in the two checkouts' traces
    assert d["services"][0] == {"name": "frontend", "event_count": 16, "trace_count": 2}


def test_edges_are_the_cross_service_calls_one_per_downstream_span(http):
    ref = reference(orders_events())
    d = data(http, "/api/distributed/edges", "edges")
    got = {(e["from_service"], e["to_service"], e["link_type"]): e["call_count"] for e in d["edges"]}
    assert got == dict(ref["calls"]) and d["total_edges"] == len(got)
    # hand-checked: three checkouts, each frontend -> gateway -> orders -> payments -> inventory
    assert set(got.values()) == {3} and ("frontend", "gateway", "HttpCall") in got
    assert [e["call_count"] for e in d["edges"]] == sorted((e["call_count"] for e in d["edges"]), reverse=True)
    assert all(e["mean_ms"] > 0 and e["p95_ms"] >= e["mean_ms"] * 0.5 for e in d["edges"])  # ours: callee latency


def test_service_dependencies_name_callers_and_callees(http):
    ref = reference(orders_events())
    d = data(http, "/api/services/orders/dependencies", "service_deps")
    assert d["service_name"] == "orders"
    assert [(x["to"], x["total_calls"], x["trace_count"]) for x in d["calls_to"]] == [
        ("payments", ref["calls"][("orders", "payments", "HttpCall")], len(ref["call_traces"][("orders", "payments")]))]
    # as the original, called_by names the caller in its `to` field
    assert [(x["to"], x["total_calls"], x["trace_count"]) for x in d["called_by"]] == [("gateway", 3, 2)]
    none = data(http, "/api/services/no-such-service/dependencies", "service_deps")
    assert none == {"service_name": "no-such-service", "calls_to": [], "called_by": []}


def test_service_traces_are_paged_newest_first_in_the_storage_summary_shape(http):
    d = data(http, "/api/services/inventory/traces", "service_traces", page_size=1)
    assert (d["service_name"], d["total_traces"], d["page"], d["page_size"], d["total_pages"]) == ("inventory", 2, 1, 1, 2)
    [t] = d["traces"]
    assert list(t) == list(TRACE_SUMMARY)  # the struct's field order
    assert t["trace_id"] == "82ce583a-f867-4a0a-b372-150871aa1642" and t["event_count"] == 32
    assert t["last_timestamp"] == "2026-11-27T04:22:57.336867738Z"  # chrono's serde form: Z, not +00:00
    second = data(http, "/api/services/inventory/traces", "service_traces", page=2, page_size=1)["traces"]
    assert [x["trace_id"] for x in second] == ["3fd52b05-19b7-48c6-a63c-6b785db7f0c9"]
    assert data(http, "/api/services/nobody/traces", "service_traces")["total_traces"] == 0
    assert data(http, "/api/services/inventory/traces", "service_traces", page_size="x")["page_size"] == 100  # the default


def test_hotspots_rank_variables_by_accesses(http):
    ref = reference(orders_events())
    d = data(http, "/api/distributed/hotspots", "hotspots")
    top = sorted(ref["variables"].items(), key=lambda kv: (-kv[1]["n"], kv[0]))[:10]
    assert [(v["variable"], v["access_count"], v["trace_count"], v["services"]) for v in d["top_variables"]] == [
        (k, x["n"], len(x["traces"]), sorted(x["services"])) for k, x in top]
    widget = next(v for v in d["top_variables"] if v["variable"] == "stock.widget")
    assert widget["race_pairs"] > 0  # ours: the two orders' stock updates race
    assert {(c["from_service"], c["to_service"]): c["call_count"] for c in d["top_service_calls"]} == {
        k[:2]: n for k, n in reference(orders_events())["calls"].items()}


def test_performance_metrics(http):
    events = orders_events()
    d = data(http, "/api/performance/metrics", "performance", limit=1)
    lat = d["trace_latency"]
    assert len(lat["slowest_traces"]) == 1 and lat["slowest_traces"][0]["trace_id"] == "3fd52b05-19b7-48c6-a63c-6b785db7f0c9"
    assert lat["p50_ms"] == pytest.approx(lat["avg_ms"])  # two traces: the median is their mean
    durations = Counter()
    for e in events:
        ns = e["metadata"]["duration_ns"]
        if ns is None:
            ns = next(iter(e["kind"].values())).get("duration_ms", 0) * 1e6
        if ns > 0:
            durations[next(iter(e["kind"]))] += 1
    assert {t["type"]: t["count"] for t in d["event_performance"]["by_type"]} == dict(durations)
    ts = [datetime.fromisoformat(e["timestamp"][:26] + "+00:00") for e in events]
    span = (max(ts) - min(ts)).total_seconds()
    assert d["throughput"]["time_range_seconds"] == pytest.approx(span, abs=1e-5)
    assert d["throughput"]["events_per_second"] == pytest.approx(len(events) / span, rel=1e-4)
    assert all(o["avg_duration_ms"] > 100 for o in d["event_performance"]["slow_operations"])


def test_service_health_over_a_time_window(http):
    now = datetime.now(timezone.utc)
    fresh = event(1, trace="fresh-trace", ts=now.isoformat())
    fresh["metadata"]["service_name"] = "fresh-svc"
    assert http.post("/events", json={"events": [fresh]}).status_code == 200
    rows = {r["name"]: r for r in data(http, "/api/services/health", "health")}
    assert rows["fresh-svc"]["status"] == "healthy" and rows["fresh-svc"]["trace_count"] == 1
    assert rows["fresh-svc"]["avg_events_per_trace"] == 1.0
    old = rows["frontend"]  # last seen 2026-11-27, outside the default 60 minutes
    assert (old["status"], old["trace_count"], old["avg_events_per_trace"]) == ("critical", 0, 0.0)
    assert old["last_activity"] == "2026-11-27T04:22:57.336867738+00:00"
    minutes = (time.time() - datetime.fromisoformat("2026-11-27T04:22:57+00:00").timestamp()) / 60
    assert old["minutes_since_last_activity"] == pytest.approx(minutes, abs=1)
    wide = {r["name"]: r for r in data(http, "/api/services/health", "health", time_window_minutes=10**8)}
    assert (wide["frontend"]["trace_count"], wide["frontend"]["avg_events_per_trace"]) == (2, 8.0)


def test_traces_min_events_filters_before_paging(http):
    d = data(http, "/api/traces", "traces", min_events=40)
    assert (d["total_traces"], [t["event_count"] for t in d["traces"]]) == (1, [62])
    assert data(http, "/api/traces", "traces", min_events=1000)["total_traces"] == 0
    assert data(http, "/api/traces", "traces", min_events="many")["total_traces"] == 3  # unparsable: no filter


# -- merging linked traces (distributed tracing on) -----------------------------------
def span_event(i, trace, service, span, upstream=None, ts_ms=0):
    e = event(f"{trace}-{i}", trace=trace, thread=f"{service}-t", ts=f"2026-11-01T12:00:00.{ts_ms:03d}+00:00")
    e["metadata"].update(service_name=service, distributed_span_id=span, upstream_span_id=upstream)
    return e


def linked_events():
    """A calls B calls C, each service under its own trace id (an SDK that does not
    propagate the trace id); B also has a span nobody called, D is unrelated."""
    return [
        span_event(1, "t-a", "a", "sa", ts_ms=1), span_event(2, "t-a", "a", "sa", ts_ms=9),
        span_event(1, "t-b", "b", "sb", "sa", ts_ms=2), span_event(2, "t-b", "b", "sb", "sa", ts_ms=8),
        span_event(3, "t-b", "b", "sb-other", ts_ms=5),
        span_event(1, "t-c", "c", "sc", "sb", ts_ms=3),
        span_event(1, "t-d", "d", "sd", ts_ms=4),
    ]


def test_linked_trace_events_follow_span_links_across_traces():
    with Store() as store:
        store.append(store.open_live("t", "test"), "t", [json.dumps(e) for e in linked_events()])
        cur = store.cursor()
        ids = lambda t: [json.loads(x)["id"][3:] for x in queries.linked_trace_events(cur, t)]  # noqa: E731
        assert ids("t-a") == ["t-a-1", "t-b-1", "t-c-1", "t-b-2", "t-a-2"]  # time order; not sb-other, not t-d
        assert ids("t-c") == ["t-a-1", "t-b-1", "t-c-1", "t-b-2", "t-a-2"]  # links are followed both ways
        assert ids("t-d") == ["t-d-1"]
        assert ids("nothing") == []
        assert [json.loads(x)["id"] for x in queries.trace_events(cur, "t-a")] == ["ev-t-a-1", "ev-t-a-2"]


ORIGINAL_ROUTES = ["/api/services", "/api/services/health", "/api/services/{service_name}/traces",
                   "/api/services/{service_name}/dependencies", "/api/performance/metrics",
                   "/api/distributed/edges", "/api/distributed/hotspots"]


def test_openapi_describes_every_original_route(http):
    doc = http.get("/openapi.json").json()
    for path in ORIGINAL_ROUTES:
        assert "200" in doc["paths"][path]["get"]["responses"], path
        assert http.get(path.replace("{service_name}", "orders")).status_code == 200, path
    params = {p["name"] for p in doc["paths"]["/api/traces"]["get"]["parameters"]}
    assert {"page", "page_size", "min_events"} <= params
    assert "400" in doc["paths"]["/api/traces/{trace_id}/critical-path"]["get"]["responses"]


def test_huge_numbers_are_clamped_not_errors(http):
    huge = "9" * 30
    for path, params in (("/api/services/orders/traces", {"page": huge, "page_size": huge}),
                         ("/api/services/health", {"time_window_minutes": huge}),
                         ("/api/performance/metrics", {"limit": huge}), ("/api/traces", {"min_events": huge})):
        r = http.get(path, params=params)
        assert r.status_code == 200, (path, r.text)
