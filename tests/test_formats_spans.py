"""OTLP, Jaeger and Zipkin spans to events: hand-checked small traces."""

from __future__ import annotations

import json

from conftest import rows

from raceway_core.formats import ImportOptions, by_name, detect

T = "0000000000000abc"
ZIPKIN = [
    {"traceId": "abc", "id": "1", "name": "get /", "kind": "SERVER", "timestamp": 1000, "duration": 500,
     "localEndpoint": {"serviceName": "front"}},
    {"traceId": "abc", "parentId": "1", "id": "2", "name": "call back", "kind": "CLIENT", "timestamp": 1100,
     "duration": 300, "localEndpoint": {"serviceName": "front"}, "remoteEndpoint": {"serviceName": "back"}},
    {"traceId": "abc", "parentId": "1", "id": "2", "name": "handle", "kind": "SERVER", "shared": True,
     "timestamp": 1150, "duration": 200, "localEndpoint": {"serviceName": "back"},
     "annotations": [{"timestamp": 1160, "value": "cache miss"}], "tags": {"error": "boom"}},
    {"traceId": "abc", "parentId": "2", "id": "3", "name": "query", "kind": "CLIENT", "timestamp": 1200,
     "duration": 50, "localEndpoint": {"serviceName": "back"}},
]


def _ids(n):
    return f"{T}:{n:016x}"


def test_zipkin_client_server_halves_exact(store, tmp_path):
    path = tmp_path / "z.json"
    path.write_text(json.dumps(ZIPKIN, indent=1))
    [s] = store.load([path])
    assert (s.mode, s.loaded, s.rejected, s.notes) == ("zipkin", 6, 0, ())
    got = rows(store, """SELECT id, parent_id, thread_id, service, span_id, upstream_span_id, kind,
                                function_name, duration_ns, ts_ns, raw->'$.kind' AS k
                         FROM events ORDER BY seq""")
    one, two, three = "0000000000000001", "0000000000000002", "0000000000000003"
    # (id, parent, context, service, span, upstream, kind, ns since epoch, duration)
    assert [(r["id"], r["parent_id"], r["thread_id"], r["service"], r["span_id"], r["upstream_span_id"],
             r["kind"], r["ts_ns"], r["duration_ns"]) for r in got] == [
        (_ids(1), None, one, "front", one, None, "FunctionCall", 1_000_000, 500_000),
        (_ids(2), _ids(1), two, "front", two, None, "FunctionCall", 1_100_000, 300_000),
        # the server half: its own context, a child of the client half in another service
        (_ids(2) + "/server", _ids(2), two + "/server", "back", two + "/server", two, "FunctionCall",
         1_150_000, 200_000),
        (_ids(2) + "/server:e1", _ids(2) + "/server", two + "/server", "back", two + "/server", two, "Custom",
         1_160_000, None),
        (_ids(2) + "/server:error", _ids(2) + "/server", two + "/server", "back", two + "/server", two, "Error",
         1_350_000, None),
        # a child of id 2 in service back belongs to the server half
        (_ids(3), _ids(2) + "/server", three, "back", three, None, "FunctionCall", 1_200_000, 50_000),
    ]
    assert json.loads(got[2]["k"]) == {"FunctionCall": {"function_name": "handle", "module": "back",
                                                        "args": {"error": "boom"}}}
    assert json.loads(got[3]["k"]) == {"Custom": {"name": "cache miss", "data": {}}}
    assert json.loads(got[4]["k"]) == {"Error": {"error_type": "error", "message": "boom", "stack_trace": None}}


def test_zipkin_pieces_of_one_span_merge_and_skew_is_noted():
    spans = [
        {"traceId": "a", "id": "1", "name": "root", "kind": "CLIENT", "timestamp": 100, "duration": 50,
         "localEndpoint": {"serviceName": "s"}},
        {"traceId": "a", "id": "1", "kind": "SERVER", "timestamp": 90, "duration": 20, "shared": True,
         "localEndpoint": {"serviceName": "t", "ipv4": "10.0.0.1"}},
        {"traceId": "a", "id": "1", "name": "late piece", "localEndpoint": {"serviceName": "t"},
         "tags": {"k": "v"}},  # no kind, no timestamp: a piece of the server half
    ]
    conv = by_name("zipkin").convert(json.dumps(spans), ImportOptions())
    assert [(e["id"], e["kind"]["FunctionCall"]["function_name"], e["kind"]["FunctionCall"]["args"])
            for e in conv.events] == [("000000000000000a:0000000000000001", "root", {}),
                                      ("000000000000000a:0000000000000001/server", "late piece", {"k": "v"})]
    assert conv.notes == ["clock skew: 1 span starting before the parent (timestamps kept as recorded): "
                          "0000000000000001/server (t) starts 10 µs before its parent 0000000000000001 (s)"]


OTLP = {"resourceSpans": [
    {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
     "scopeSpans": [{"scope": {"name": "lib"}, "spans": [
         {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174", "name": "root",
          "kind": 2, "startTimeUnixNano": "1544712660000000001", "endTimeUnixNano": "1544712661000000001",
          "attributes": [{"key": "n", "value": {"intValue": "3"}}],
          "events": [{"timeUnixNano": "1544712660500000000", "name": "exception",
                      "attributes": [{"key": "exception.type", "value": {"stringValue": "KeyError"}}]}],
          "status": {"code": 2, "message": "failed"}}]}]},
    {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "db"}}]},
     "scopeSpans": [{"spans": [
         {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "1111111111111111",
          "parentSpanId": "EEE19B7EC3C1B174", "name": "select", "kind": "SPAN_KIND_CLIENT",
          "startTimeUnixNano": 1544712660100000000, "endTimeUnixNano": 1544712660200000000,
          "links": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}]},
         {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "2222222222222222", "name": "batch",
          "startTimeUnixNano": "1544712660300000000", "endTimeUnixNano": "1544712660400000000",
          "links": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "1111111111111111"}]}]}]}]}


def test_otlp_exact():
    conv = by_name("otlp").convert(json.dumps(OTLP, indent=2), ImportOptions())
    t = "5b8efff798038103d269b633813fc60c"
    got = [(e["id"], e["parent_id"], e["timestamp"], next(iter(e["kind"])), e["metadata"]["service_name"],
            e["metadata"]["duration_ns"], e["metadata"]["upstream_span_id"], e["metadata"]["tags"].get("span.ref"))
           for e in conv.events]
    assert got == [
        (f"{t}:eee19b7ec3c1b174", None, "2018-12-13T14:51:00.000000001Z", "FunctionCall", "api", 1_000_000_000,
         None, None),
        (f"{t}:eee19b7ec3c1b174:e1", f"{t}:eee19b7ec3c1b174", "2018-12-13T14:51:00.500000000Z", "Custom", "api",
         None, None, None),
        (f"{t}:eee19b7ec3c1b174:error", f"{t}:eee19b7ec3c1b174", "2018-12-13T14:51:01.000000001Z", "Error", "api",
         None, None, None),
        # a child in another service: a cross-service call; its link to the parent is only kept as a tag
        (f"{t}:1111111111111111", f"{t}:eee19b7ec3c1b174", "2018-12-13T14:51:00.100000000Z", "FunctionCall",
         "db", 100_000_000, "eee19b7ec3c1b174", "child_of"),
        # no parent: the link that started earlier orders it (no upstream: a link is not a call)
        (f"{t}:2222222222222222", f"{t}:1111111111111111", "2018-12-13T14:51:00.300000000Z", "FunctionCall",
         "db", 100_000_000, None, "link"),
    ]
    assert conv.events[0]["kind"]["FunctionCall"]["args"] == {"n": 3}
    assert conv.events[2]["kind"]["Error"] == {"error_type": "KeyError", "message": "failed", "stack_trace": None}
    assert conv.events[3]["metadata"]["tags"]["span.links"] == [
        {"trace_id": t, "span_id": "eee19b7ec3c1b174", "attributes": {}}]
    assert conv.lines == [22, 22, 22, 74, 89]  # the lines of the spans' "spanId" keys


JAEGER = {"data": [{"traceID": "t1", "processes": {"p1": {"serviceName": "a", "tags": []},
                                                   "p2": {"serviceName": "b", "tags": []}},
                    "spans": [
    {"traceID": "t1", "spanID": "s1", "operationName": "root", "references": [], "startTime": 10, "duration": 100,
     "processID": "p1", "tags": [{"key": "error", "type": "bool", "value": True}],
     "logs": [{"timestamp": 5, "fields": [{"key": "event", "value": "early"}]}]},
    {"traceID": "t1", "spanID": "s2", "operationName": "work", "startTime": 20, "duration": 10, "processID": "p2",
     "references": [{"refType": "FOLLOWS_FROM", "traceID": "t1", "spanID": "s1"},
                    {"refType": "CHILD_OF", "traceID": "other", "spanID": "x"}]},
    {"traceID": "t1", "spanID": "s1", "operationName": "again", "references": [], "startTime": 30, "duration": 1,
     "processID": "p1"}]}]}


def test_jaeger_exact():
    conv = by_name("jaeger").convert(json.dumps(JAEGER), ImportOptions())
    got = [(e["id"], e["parent_id"], e["timestamp"], next(iter(e["kind"])), e["metadata"]["thread_id"],
            e["metadata"]["upstream_span_id"], e["metadata"]["tags"].get("span.ref")) for e in conv.events]
    assert got == [
        ("t1:s1", None, "1970-01-01T00:00:00.000010Z", "FunctionCall", "s1", None, None),
        # a log before its span starts is moved to the span's start (a context never runs backwards)
        ("t1:s1:e1", "t1:s1", "1970-01-01T00:00:00.000010Z", "Custom", "s1", None, None),
        ("t1:s1:error", "t1:s1", "1970-01-01T00:00:00.000110Z", "Error", "s1", None, None),
        # the CHILD_OF reference points outside the input: the FOLLOWS_FROM one is the parent
        ("t1:s2", "t1:s1", "1970-01-01T00:00:00.000020Z", "FunctionCall", "s2", "s1", "follows_from"),
        ("t1:s1#2", None, "1970-01-01T00:00:00.000030Z", "FunctionCall", "s1#2", None, None),
    ]
    assert conv.events[3]["metadata"]["tags"]["span.links"] == [
        {"trace_id": "other", "span_id": "x", "attributes": {"ref_type": "child_of"}}]
    assert conv.notes == ["span id reused by different spans (1): s1 in trace t1: kept as s1#2"]


def test_identical_duplicates_are_skipped_by_the_loader(store, tmp_path):
    span = OTLP["resourceSpans"][1]["scopeSpans"][0]["spans"][1]
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span, span]}]}]}
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(doc))
    [s] = store.load([path])
    assert (s.loaded, s.duplicates, s.rejected) == (1, 1, 0)
    assert "duplicate span, identical copies skipped (1): 2222222222222222 in trace " \
           "5b8efff798038103d269b633813fc60c" in s.notes


def test_span_without_start_is_a_reject_and_its_children_become_roots():
    spans = [{"traceId": "a", "id": "1", "name": "no time", "kind": "SERVER", "localEndpoint": {"serviceName": "s"}},
             {"traceId": "a", "id": "2", "parentId": "1", "name": "child", "timestamp": 5, "duration": 1}]
    conv = by_name("zipkin").convert(json.dumps(spans), ImportOptions())
    assert [(e["id"], e["parent_id"]) for e in conv.events] == [("000000000000000a:0000000000000002", None)]
    [p] = conv.problems
    assert (p.line, p.reason) == (1, "span 0000000000000001 ('no time') has no start time")


def test_parent_cycles_are_cut():
    spans = [{"traceId": "a", "id": "1", "parentId": "2", "timestamp": 5, "duration": 1},
             {"traceId": "a", "id": "2", "parentId": "1", "timestamp": 6, "duration": 1}]
    conv = by_name("zipkin").convert(json.dumps(spans), ImportOptions())
    parents = {e["id"][-1]: e["parent_id"] for e in conv.events}
    assert None in parents.values() and len([p for p in parents.values() if p]) == 1
    assert conv.notes[0].startswith("parent cycle cut (1)")


def test_detection():
    assert detect(json.dumps(OTLP)).name == "otlp"
    assert detect(json.dumps(JAEGER)).name == "jaeger"
    assert detect(json.dumps(ZIPKIN)).name == "zipkin"
    assert detect(json.dumps([{"id": "1", "trace_id": "t", "kind": {}}])) is None
