"""The analysis endpoints of a real server: the original's JSON shapes, filled by the
causality engine. Expectations: a TraceSession over the same files loaded from disk,
and facts checked by hand in the sample traces."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from server_proc import ServerProcess

from raceway_core import TraceSession

FILES = ["sample_traces/banking-unsafe.jsonl", "sample_traces/distributed-orders.jsonl",
         "sample_traces/slow-api.jsonl"]
BANKING = "18e32acf-48c0-47ba-a190-e3f5f0f0e4a6"  # 3 threads move money without a lock


def events_of(path: str) -> list[dict]:
    out = []
    for line in open(path):
        if line.strip():
            doc = json.loads(line)
            out += doc["events"] if "events" in doc else [doc]
    return out


@pytest.fixture(scope="module")
def reference():
    with TraceSession.open(FILES) as s:
        yield s


@pytest.fixture(scope="module")
def http():
    with ServerProcess() as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        for f in FILES:
            assert c.post("/events", json={"events": events_of(f)}).status_code == 200
        yield c


def get(http, path):
    r = http.get(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "data", "error"} and body["success"] is True
    return body["data"]


def test_critical_path(http, reference):
    d = get(http, f"/api/traces/{BANKING}/critical-path")
    assert {"trace_id", "path_events", "total_duration_ms", "trace_total_duration_ms", "percentage_of_total",
            "path"} <= set(d)
    cp = reference.critical_path(BANKING)
    assert [p["id"] for p in d["path"]] == cp.events["id"].to_pylist()
    assert d["path_events"] == len(d["path"]) and d["trace_total_duration_ms"] == pytest.approx(cp.trace_span_ms)
    first = d["path"][0]
    assert set(first) >= {"id", "kind", "location", "timestamp", "duration_ms"}
    assert first["kind"] == "StateChange(alice.balance)" and first["location"] == "examples/banking.py:34"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3,9})?\+00:00", first["timestamp"])


def test_audit_trail_in_causal_order_with_races_marked(http, reference):
    d = get(http, f"/api/traces/{BANKING}/audit-trail/alice.balance")
    assert d["trace_id"] == BANKING and d["variable"] == "alice.balance"
    want = reference.audit("alice.balance", BANKING).to_pylist()
    assert [a["event_id"] for a in d["accesses"]] == [w["event_id"] for w in want]
    assert [a["is_race"] for a in d["accesses"]] == [w["racing"] for w in want]
    first = d["accesses"][0]  # the opening deposit: a write of 1000, ordered before everything
    assert (first["access_type"], first["old_value"], first["new_value"], first["is_race"]) == \
        ("Write", None, 1000, False)
    assert {"event_id", "timestamp", "thread_id", "service_name", "access_type", "old_value", "new_value",
            "location", "has_causal_link_to_previous", "is_race"} <= set(first)
    assert any(a["is_race"] for a in d["accesses"])


def test_audit_trail_of_a_variable_never_accessed_is_empty(http, reference):
    # a variable name with a slash: the route's last segment takes it whole
    d = get(http, f"/api/traces/{BANKING}/audit-trail/no%2Fsuch.var")
    assert (d["variable"], d["accesses"]) == ("no/such.var", [])
    assert reference.audit("no/such.var").num_rows == 0


def test_full_trace_carries_races_audit_trails_and_the_rest(http, reference):
    d = get(http, f"/api/traces/{BANKING}")
    a = d["analysis"]
    races = reference.races(BANKING)
    assert a["potential_races"] == a["concurrent_events"] == races.pair_count == 3
    crit = [r for r in a["race_details"] if r["severity"] == "CRITICAL"]
    assert [r["variable"] for r in crit] == ["alice.balance"]  # the write-write race
    assert crit[0]["event1_location"] == crit[0]["event2_location"] == "examples/banking.py:43"
    assert sorted(d["audit_trails"]) == ["alice.balance", "bob.balance", "charlie.balance"]
    assert d["critical_path"]["path_events"] == len(reference.critical_path(BANKING).events)
    assert d["anomalies"] == []
    assert d["dependencies"] == {"trace_id": BANKING, "services": [{"name": "banking", "event_count": 21}],
                                 "dependencies": []}


def test_anomalies_are_the_trace_s_own(http, reference):
    every = reference.anomalies().to_pylist()
    slow = {a["trace_id"] for a in every}
    assert slow
    for t in slow:
        d = get(http, f"/api/traces/{t}/anomalies")
        mine = [a for a in every if a["trace_id"] == t]
        assert d["anomaly_count"] == len(mine) == len(d["anomalies"])
        assert [x["event_id"] for x in d["anomalies"]] == [m["event_id"] for m in mine]
    worst = max(every, key=lambda a: a["actual_ms"])
    top = get(http, f"/api/traces/{worst['trace_id']}/anomalies")["anomalies"][0]
    # slow-api: one recommendations call takes ~400 ms against a ~22 ms median
    assert top["event_kind"] == "FunctionCall(recommendations.fetch)" and top["severity"] == "Critical"
    assert top["actual_duration_ms"] > 15 * top["expected_duration_ms"]
    assert get(http, f"/api/traces/{BANKING}/anomalies")["anomaly_count"] == 0


def test_dependencies_across_services(http, reference):
    traces = get(http, "/api/traces?page_size=100")["traces"]
    t = max(traces, key=lambda x: x["service_count"])
    d = get(http, f"/api/traces/{t['trace_id']}/dependencies")
    assert [s["name"] for s in d["services"]] == t["services"]
    assert sum(s["event_count"] for s in d["services"]) == t["event_count"]
    want = reference.dependencies(t["trace_id"]).to_pylist()
    assert [(x["from"], x["to"], x["call_count"]) for x in d["dependencies"]] == \
        [(w["from"], w["to"], w["calls"]) for w in want]
    assert ("frontend", "gateway") in {(x["from"], x["to"]) for x in d["dependencies"]}


def test_global_analysis_and_global_races(http, reference):
    g = get(http, "/api/analyze/global")
    assert (g["total_traces"], g["total_events"]) == (15, 319)
    assert g["potential_races"] == reference.races().pair_count == len(g["race_details"])
    r = g["race_details"][0]
    assert {"severity", "variable", "trace1_id", "trace2_id", "event1_thread", "event2_thread",
            "event1_location", "event2_location", "event1_timestamp", "event2_timestamp", "description"} <= set(r)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3,9})? UTC", r["event1_timestamp"])

    gr = get(http, "/api/distributed/global-races")
    racing = {v["variable"] for v in reference.variables().to_pylist() if v["races"]}
    assert {x["variable"] for x in gr["races"]} == racing == {"alice.balance", "stock.widget"}
    alice = next(x for x in gr["races"] if x["variable"] == "alice.balance")
    assert (alice["severity"], alice["thread_count"], alice["trace_ids"]) == ("CRITICAL", 3, [BANKING])
    assert gr["total_races"] == 2


def test_unknown_trace_is_404_everywhere_and_a_malformed_id_400(http):
    for p in ("critical-path", "anomalies", "dependencies", "audit-trail/x"):
        r = http.get(f"/api/traces/00000000-0000-4000-8000-000000000000/{p}")
        assert r.status_code == 404 and r.json()["success"] is False, p
        # the original parses the id as a UUID first: 400 for one that is not
        r = http.get(f"/api/traces/no-such/{p}")
        assert (r.status_code, r.json()["error"]) == (400, "Invalid trace ID format"), p


def test_analyses_follow_new_events(http):
    before = get(http, "/api/analyze/global")
    locked = events_of("sample_traces/banking-locked.jsonl")
    assert http.post("/events", json={"events": locked}).status_code == 200
    after = get(http, "/api/analyze/global")
    assert after["total_events"] == before["total_events"] + len(locked)
    # variables are global: the locked transfers race with the unlocked ones of the other trace
    with TraceSession.open(FILES + ["sample_traces/banking-locked.jsonl"]) as s:
        assert after["potential_races"] == s.races().pair_count > before["potential_races"]
