"""Issue 17's "done when": one real server receives the bodies of all four original SDKs
(TypeScript, Go, Rust built from their source; Python recorded), then every route of the
original server is called with its parameters and answers in the original's shape
(written down from cli/src/server.rs and the storage and graph structs it serialises)."""

from __future__ import annotations

import json

import httpx
import pytest
import sdk_bodies
from server_proc import ServerProcess
from test_sdk_original_bodies import PY_BODIES, trace_id
from test_server_parity import SHAPES, I, N, S, mismatches

S0 = (str, type(None))  # Option<String>
WARMUP = {"phase": S, "ready": bool, "total_traces": I, "processed_traces": I, "last_trace": S0,
          "started_at": S0, "completed_at": S0, "last_error": S0}
CRITICAL_PATH = {"trace_id": S, "path_events": I, "total_duration_ms": N, "trace_total_duration_ms": N,
                 "percentage_of_total": N, "path": [{"id": S, "kind": S, "location": S, "timestamp": S,
                                                    "duration_ms": N}]}
ANOMALY = {"event_id": S, "event_kind": S, "severity": S, "actual_duration_ms": N, "expected_duration_ms": N,
           "description": S, "location": S, "timestamp": S}
DEPENDENCIES = {"trace_id": S, "services": [{"name": S, "event_count": I}],
                "dependencies": [{"from": S, "to": S, "call_count": I}]}
ACCESS = {"event_id": S, "timestamp": S, "thread_id": S, "service_name": S, "access_type": S, "location": S,
          "has_causal_link_to_previous": bool, "is_race": bool}
ROUTES = {
    "/health": WARMUP,
    "/status": {"version": S, "uptime_seconds": I, "events_captured": I, "traces_active": I, "warmup": WARMUP},
    "/api/traces/{t}": {"trace_id": S, "events": [{"id": S, "trace_id": S, "timestamp": S, "kind": dict,
                                                   "metadata": dict}],
                        "audit_trails": dict, "critical_path": CRITICAL_PATH, "anomalies": [ANOMALY],
                        "dependencies": DEPENDENCIES,
                        "analysis": {"concurrent_events": I, "potential_races": I, "anomalies": [S], "race_details": [
                            {"severity": S, "variable": S, "event1_thread": S, "event2_thread": S,
                             "event1_location": S, "event2_location": S, "description": S}]}},
    "/api/traces/{t}/critical-path": CRITICAL_PATH,
    "/api/traces/{t}/anomalies": {"trace_id": S, "anomaly_count": I, "anomalies": [ANOMALY]},
    "/api/traces/{t}/dependencies": DEPENDENCIES,
    "/api/traces/{t}/audit-trail/account.balance": {"trace_id": S, "variable": S, "accesses": [ACCESS]},
    "/api/analyze/global": {"total_traces": I, "total_events": I, "concurrent_events": I, "potential_races": I,
                            "anomalies": [S], "race_details": [
                                {"severity": S, "variable": S, "trace1_id": S, "trace2_id": S, "event1_thread": S,
                                 "event2_thread": S, "event1_location": S, "event2_location": S,
                                 "event1_timestamp": S, "event2_timestamp": S, "description": S}]},
    "/api/distributed/global-races": {"total_races": I, "races": [
        {"variable": S, "trace_count": I, "access_count": I, "access_types": [S], "thread_count": I,
         "severity": S, "trace_ids": [S]}]},
    "/api/traces?page=1&page_size=5&min_events=2": SHAPES["traces"],
    "/api/services": SHAPES["services"],
    "/api/services/health?time_window_minutes=60": SHAPES["health"],
    "/api/services/api/traces?page=1&page_size=2": SHAPES["service_traces"],
    "/api/services/api/dependencies": SHAPES["service_deps"],
    "/api/performance/metrics?limit=10": SHAPES["performance"],
    "/api/distributed/edges": SHAPES["edges"],
    "/api/distributed/hotspots": SHAPES["hotspots"],
}


@pytest.fixture(scope="module")
def http():
    with ServerProcess() as srv, httpx.Client(base_url=srv.url, timeout=120) as c:
        for sdk, build in sdk_bodies.SDKS.items():
            for headers, body in build():
                r = c.post("/events", content=json.dumps(body), headers=headers)
                assert r.status_code == 200, (sdk, r.text)
        for line in PY_BODIES.read_text().splitlines():
            if line.strip():
                assert c.post("/events", content=line, headers={"Content-Type": "application/json"}).status_code == 200
        yield c


# the per-trace routes with a trace of each SDK; the others once
CASES = [(r, sdk) for r in ROUTES for sdk in (sdk_bodies.SDKS if "{t}" in r else ["typescript"])]


@pytest.mark.parametrize("route, sdk", CASES)
def test_every_route_answers_in_the_originals_shape(http, route, sdk):
    r = http.get(route.replace("{t}", trace_id(sdk, 1)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["error"] is None
    assert mismatches(body["data"], ROUTES[route]) == []
    if route == "/api/traces/{t}":
        assert body["data"]["dependencies"]["dependencies"][0]["from"] == "api"  # the call is seen in every SDK


def test_the_four_sdks_services_side_by_side(http):
    services = {s["name"]: s for s in http.get("/api/services").json()["data"]["services"]}
    assert {"api", "ledger", "python-service-a", "python-service-b", "python-service-c"} <= set(services)
    assert services["api"]["trace_count"] == 6  # two requests in each of three SDKs
    edges = {(e["from_service"], e["to_service"]): e["call_count"]
             for e in http.get("/api/distributed/edges").json()["data"]["edges"]}
    assert edges == {("api", "ledger"): 6, ("python-service-a", "python-service-b"): 2,
                     ("python-service-b", "python-service-c"): 2}
