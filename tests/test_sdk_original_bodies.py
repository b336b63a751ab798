"""What the original Raceway SDKs send (tests/sdk_bodies.py: TypeScript, Go, Rust, built
from their source; Python: sample_traces/original-sdk-distributed.jsonl, recorded from
the original Python SDK), posted to a real `raceway-tui serve`: every event is stored,
and the races, calls and critical path the program implies are found, although each
SDK names spans, threads and clocks its own way:

- TypeScript and Go: the callee's upstream_span_id is the child span id its caller
  generated, which no event carries (TS clocks are not even service clocks), so the
  caller is found by clock (Go) or time (TS) among the trace's other services;
- Rust: thread ids are OS threads ("ThreadId(2)") that both services of a trace share,
  and the caller moves its own later events to the callee's span id.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import sdk_bodies
from server_proc import ServerProcess

from raceway_core.session import TraceSession
from raceway_core.store import Store

ROOT = Path(__file__).resolve().parent.parent
PY_BODIES = ROOT / "sample_traces" / "original-sdk-distributed.jsonl"
PREFIX = {"typescript": "ts", "go": "go", "rust": "rs"}
KEY = "rust-sdk-key"


def trace_id(sdk: str, r: int) -> str:
    return sdk_bodies._uuid(f"{PREFIX[sdk]}-trace", r)


def bodies(sdk: str):
    return sdk_bodies.rust(api_key=KEY) if sdk == "rust" else sdk_bodies.SDKS[sdk]()


@pytest.fixture(scope="module", params=list(sdk_bodies.SDKS))
def posted(request):
    sdk = request.param
    keys = (KEY,) if sdk == "rust" else ()
    with ServerProcess(mode="one-process", api_keys=keys) as srv, \
            httpx.Client(base_url=srv.url, timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as http:
        for headers, body in bodies(sdk):
            # the SDK's own request: its headers (the Rust SDK's key headers) and body
            r = httpx.post(srv.url + "/events", content=json.dumps(body), headers=headers, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["ingested"] == len(body["events"])
        yield sdk, http


def get(http, path):
    r = http.get(path)
    assert r.status_code == 200, (path, r.text)
    return r.json()["data"]


def test_every_event_is_stored_as_sent(posted):
    sdk, http = posted
    sent = {e["id"]: e for _, b in bodies(sdk) for e in b["events"]}
    got = {}
    for r in (1, 2):
        for e in get(http, f"/api/traces/{trace_id(sdk, r)}?analysis=false")["events"]:
            got[e["id"]] = e
    assert got == sent  # raw, byte for byte as JSON (Go's FunctionReturn, omitted fields included)


def test_the_lost_updates_race_across_the_two_requests(posted):
    sdk, http = posted
    g = get(http, "/api/analyze/global")
    # per variable: read1/write2, write1/read2, write1/write2 (two reads never race)
    assert g["potential_races"] == 6
    assert sorted(d["variable"] for d in g["race_details"]) == ["account.balance"] * 3 + ["ledger.total"] * 3
    assert {(d["variable"], d["severity"]) for d in g["race_details"]} == {
        ("account.balance", "CRITICAL"), ("account.balance", "WARNING"),
        ("ledger.total", "CRITICAL"), ("ledger.total", "WARNING")}
    # each pair joins the two requests' traces: one event from each
    assert all(d["trace1_id"] != d["trace2_id"] for d in g["race_details"])


def test_each_request_calls_the_ledger_once(posted):
    sdk, http = posted
    edges = get(http, "/api/distributed/edges")["edges"]
    assert [(e["from_service"], e["to_service"], e["link_type"], e["call_count"]) for e in edges] == [
        ("api", "ledger", "HttpCall", 2)]
    deps = get(http, "/api/services/ledger/dependencies")
    assert [(d["to"], d["total_calls"], d["trace_count"]) for d in deps["called_by"]] == [("api", 2, 2)]
    per_trace = get(http, f"/api/traces/{trace_id(sdk, 2)}/dependencies")["dependencies"]
    assert [(d["from"], d["to"], d["call_count"]) for d in per_trace] == [("api", "ledger", 1)]


def test_the_critical_path_goes_through_the_ledger_and_back(posted):
    sdk, http = posted
    if sdk == "go":
        pytest.skip("the Go SDK records no durations (duration_ns is always null): no path is longer")
    path = get(http, f"/api/traces/{trace_id(sdk, 1)}/critical-path")["path"]
    # debit's 20 ms is the only duration on a path: api -> ledger (debit) -> back to api
    assert [p["service"] for p in path] == ["api", "api", "ledger", "ledger", "ledger", "ledger", "api", "api"]
    assert path[5]["kind"] == "FunctionCall(debit)" and path[-1]["kind"] == "StateChange(account.balance)"


@pytest.mark.parametrize("sdk", list(sdk_bodies.SDKS))
def test_call_and_return_edges_order_the_services(sdk):
    """The happens-before order the program implies, asked of the engine directly."""
    with Store() as store:
        load = store.open_live("sdk", "test")
        for _, body in bodies(sdk):
            store.append(load, "sdk", [json.dumps(body)])
        s = TraceSession(store)
        t1 = trace_id(sdk, 1)

        def ids(trace, service):  # in the order the SDK recorded them
            return [e["id"] for _, b in bodies(sdk) for e in b["events"]
                    if e["trace_id"] == trace and e["metadata"]["service_name"] == service]

        api, ledger = ids(t1, "api"), ids(t1, "ledger")
        read, response = api[1], api[2]
        assert s.happens_before(read, ledger[0])  # the call
        assert s.happens_before(ledger[-1], response)  # the return
        assert not s.happens_before(api[0], api[0])
        assert s.concurrent(ledger[-1], ids(trace_id(sdk, 2), "ledger")[-1])  # the two requests stay unordered
        contexts = s.sql("SELECT count(*) AS n FROM hb.ctx WHERE trace_id = $t", {"t": t1})["n"][0].as_py()
        assert contexts == 2  # api's and ledger's, even where both say ThreadId(2)


def test_the_original_python_sdk_bodies():
    lines = [line for line in PY_BODIES.read_text().splitlines() if line.strip()]
    with ServerProcess(mode="one-process") as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        for line in lines:
            r = http.post("/events", content=line, headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
        edges = get(http, "/api/distributed/edges")["edges"]
        assert {(e["from_service"], e["to_service"]): e["call_count"] for e in edges} == {
            ("python-service-a", "python-service-b"): 2, ("python-service-b", "python-service-c"): 2}
        services = get(http, "/api/services")
        assert [s["name"] for s in services["services"]] == ["python-service-a", "python-service-b", "python-service-c"]
        assert sum(s["event_count"] for s in services["services"]) == sum(
            len(json.loads(line)["events"]) for line in lines)


def test_an_unnamed_callers_clock_beats_a_later_event_of_another_service():
    """Go-style callee (its upstream span is the child id nobody's events carry): its
    clock names the caller's component, so a third service's event that happens to be
    later, but unrelated, is not taken for the call."""
    def ev(i, service, span, upstream, ms, clock):
        e = {"id": f"u{i}", "trace_id": "T", "parent_id": None, "timestamp": f"2026-11-20T10:00:00.{ms:03d}Z",
             "kind": {"FunctionCall": {"function_name": f"f{i}", "module": "m", "args": None, "file": "f.go",
                                       "line": i}},
             "metadata": {"thread_id": f"{service}-ctx", "process_id": 1, "service_name": service,
                          "environment": "t", "tags": {"sdk_language": "go"}, "duration_ns": None,
                          "instance_id": f"{service}-1", "distributed_span_id": span},
             "causality_vector": clock, "lock_set": []}
        if upstream:
            e["metadata"]["upstream_span_id"] = upstream
        return e
    events = [ev(1, "a", "sa", None, 0, [["a#a-1", 1]]), ev(2, "a", "sa", None, 1, [["a#a-1", 2]]),
              ev(3, "c", "sc", None, 2, [["c#c-1", 1]]),  # unrelated, and later than a's call
              ev(4, "b", "sb", "child-of-sa", 3, [["a#a-1", 3], ["b#b-1", 1]])]
    with Store() as store:
        store.append(store.open_live("t", "t"), "t", [json.dumps({"events": events})])
        s = TraceSession(store)
        assert s.happens_before("u2", "u4") and not s.happens_before("u3", "u4")
