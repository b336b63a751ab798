"""Jaeger's critical path on imported span trees, checked by hand."""

from __future__ import annotations

import json

import pytest

from raceway_core.analysis.span_critical_path import span_critical_path

JAEGER = "/work/shared/corpus/otel/jaeger/"


def _path(store, name, trace_id):
    [s] = store.load([JAEGER + name])
    assert s.loaded and not s.rejected
    return span_critical_path(store, trace_id)


def _rel(cp, unit=1000):
    """Sections as (span, start, end) relative to the first section's start, in `unit` ns."""
    base = cp.sections[0].start_ns
    return [(s.span_id, (s.start_ns - base) // unit, (s.end_ns - base) // unit) for s in cp.sections]


def test_test_trace_by_hand(store):
    # testTrace.json, times in ms after span-1's start (1542666452979000 µs):
    #   span-1  op1 server   [0, 390]   root
    #   span-2  child of 1   [125, 158]
    #   span-2_1 child of 1  [250, 287]
    #   span-3  child of 1   [180, 246]   span-4 child of 3 [200, 220], span-5 child of 4 [201, 219]
    #   span-6  child of 1   [300, 320]   producer; span-7 FOLLOWS_FROM span-6 [800, 1000] (a consumer):
    #                                     non-blocking, left out with its subtree
    #   span-12 child of 1   [330, 340]   span-13 [331, 340] and span-14 [332, 340], children of 12
    # Walk: span-1's last-finishing child is span-12 (ends 340): span-1 [340, 390].
    #   span-12's children both end at 340 (tie: the earlier start, span-13, first): span-12 [340, 340]
    #   is empty; span-13 has no children: span-13 [331, 340]; back in span-12 no child ends
    #   before 331: span-12 [330, 331]; back in span-1, the last child ending before 330 is span-6:
    #   span-1 [320, 330], span-6 [300, 320]; then span-2_1 (ends 287 < 300): span-1 [287, 300],
    #   span-2_1 [250, 287]; then span-3 (246 < 250): span-1 [246, 250]; span-3's LFC span-4:
    #   span-3 [220, 246]; span-4's LFC span-5: span-4 [219, 220], span-5 [201, 219]; back in
    #   span-4 nothing ends before 201: span-4 [200, 201]; back in span-3 nothing before 200:
    #   span-3 [180, 200]; back in span-1, span-2 ends 158 < 180: span-1 [158, 180],
    #   span-2 [125, 158]; back in span-1 nothing ends before 125: span-1 [0, 125].
    cp = _path(store, "testTrace.json", "trace-123")
    assert _rel(cp, 1_000_000) == [
        ("span-1", 0, 125), ("span-2", 125, 158), ("span-1", 158, 180), ("span-3", 180, 200),
        ("span-4", 200, 201), ("span-5", 201, 219), ("span-4", 219, 220), ("span-3", 220, 246),
        ("span-1", 246, 250), ("span-2_1", 250, 287), ("span-1", 287, 300), ("span-6", 300, 320),
        ("span-1", 320, 330), ("span-12", 330, 331), ("span-13", 331, 340), ("span-1", 340, 390)]
    assert cp.duration_ns == 390_000_000  # the sections partition the root's 390 ms
    assert (cp.roots, cp.non_blocking, cp.dropped, cp.clipped) == (("span-1",), ("span-7",), (), ())
    assert {s.span_id: (s.service, s.operation) for s in cp.sections}["span-5"] == ("service2", "op2")


# jaeger-ui's tableValuesTestTrace fixtures: how the sanitiser treats children overflowing their parent.
# Times in µs after the root's start.
SANITISER = [
    # "send" [0, 36]; "async task 1" [3, 43] overflows the end: clipped to [3, 36]; "shorter than
    # parent" [5, 13]. Walk: LFC async task 1 (ends 36): send [36, 36] empty; async task 1 [3, 36];
    # back in send nothing ends before 3: send [0, 3].
    ("traceWithOverlappingChildren.json", [("006c3cf93508f205", 0, 3), ("5d423585b4c63d48", 3, 36)],
     (), ("5d423585b4c63d48",)),
    # "send" [100, 140]; "short child span" [115, 125]; "async task 1" [200, 500] and "async task 2"
    # [300, 400] start after send ends: dropped. Walk: send [125, 140], short [115, 125], send [100, 115].
    ("traceWithOverlappingChildrenLongerThanParent.json",
     [("006c3cf93508f205", 0, 15), ("4570ab68826f43f9", 15, 25), ("006c3cf93508f205", 25, 40)],
     ("2dc4b796e2127e32", "5d423585b4c63d48"), ()),
    # the only child starts after its parent ends: dropped, the parent is the whole path
    ("traceWithSingleChildLongerThanParentAndStartsAfterParent.json", [("006c3cf93508f205", 0, 40)],
     ("2dc4b796e2127e32",), ()),
    # "send" [0, 36]; children [3, 15], [9, 17], [13, 19]. LFC child 3: send [19, 36], child 3 [13, 19];
    # back in send no child ends before 13 (15 and 17 do not): send [0, 13].
    ("traceWithThreeShortOverlappingChildren.json",
     [("006c3cf93508f205", 0, 13), ("4570ab68826f43f9", 13, 19), ("006c3cf93508f205", 19, 36)], (), ()),
    # "send" [100, 140]; child [110, 120]; "async task 2" [500, 600] after the end: dropped.
    ("traceWithTwoNonOverlappingChildren.json",
     [("006c3cf93508f205", 0, 10), ("2dc4b796e2127e32", 10, 20), ("006c3cf93508f205", 20, 40)],
     ("5d423585b4c63d48",), ()),
]


@pytest.mark.parametrize("name, sections, dropped, clipped", SANITISER, ids=[c[0] for c in SANITISER])
def test_sanitiser_cases(store, name, sections, dropped, clipped):
    cp = _path(store, name, "006c3cf93508f205")
    assert _rel(cp) == sections
    assert (cp.dropped, cp.clipped) == (dropped, clipped)
    root = store.sql("SELECT duration_ns FROM events WHERE thread_id = '006c3cf93508f205'").to_pylist()[0]
    assert cp.duration_ns == root["duration_ns"]  # no gaps: the path covers the root exactly


def test_child_starting_before_its_parent_is_clipped_at_both_ends(store, tmp_path):
    trace = {"traceID": "t", "processes": {"p": {"serviceName": "s"}}, "spans": [
        {"spanID": "r", "operationName": "root", "references": [], "startTime": 100, "duration": 40,
         "processID": "p"},
        {"spanID": "c", "operationName": "wide", "startTime": 90, "duration": 100, "processID": "p",
         "references": [{"refType": "CHILD_OF", "spanID": "r"}]},
        {"spanID": "g", "operationName": "grandchild", "startTime": 95, "duration": 10, "processID": "p",
         "references": [{"refType": "CHILD_OF", "spanID": "c"}]}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(trace))
    store.load([path])
    cp = span_critical_path(store, "t")
    # c is clipped to r [100, 140]; g [95, 105] then starts before the clipped c: clipped to [100, 105].
    # Walk: r's LFC c: r [140, 140] empty; c's LFC g: c [105, 140]; g [100, 105]; back in c nothing ends
    # before 100: c [100, 100] empty; back in r nothing ends before 100: r [100, 100] empty.
    assert [(s.span_id, s.start_ns // 1000, s.end_ns // 1000) for s in cp.sections] == [
        ("g", 100, 105), ("c", 105, 140)]
    assert cp.clipped == ("c", "g")


def test_zipkin_server_half_is_a_child_of_its_client_half(store):
    store.load(["/work/shared/corpus/otel/zipkin/skew.json"])
    cp = span_critical_path(store, "1e223ff1f80f1c69")
    # µs after the root bf39's start (servicea) [0, 99411]: its client half 7428 [3134, 97673]; the
    # server half 7428/server (serviceb, clock skewed) was recorded at [-62307, 31270]: clipped to
    # [3134, 31270] against its client half; its child 4321 [-62306, 2694] then ends before the
    # clipped server half starts: dropped. Walk: bf39 [97673, 99411], 7428 [31270, 97673],
    # 7428/server [3134, 31270] (no children left), bf39 [0, 3134].
    assert _rel(cp) == [("bf396325699c84bf", 0, 3134), ("74280ae0c10d8062/server", 3134, 31270),
                        ("74280ae0c10d8062", 31270, 97673), ("bf396325699c84bf", 97673, 99411)]
    assert [s.service for s in cp.sections] == ["servicea", "serviceb", "servicea", "servicea"]
    assert (cp.clipped, cp.dropped) == (("74280ae0c10d8062/server",), ("43210ae0c10d1234",))


def test_has_spans_only_for_traces_imported_from_spans(store, tmp_path):
    from helpers import event, ndjson

    from raceway_core.analysis.span_critical_path import has_spans

    store.load(["/work/shared/corpus/otel/zipkin/skew.json", ndjson(tmp_path / "sdk.jsonl", [event(1)])])
    sdk_trace = "trace-1"  # helpers.event's trace
    assert has_spans(store, "1e223ff1f80f1c69") and span_critical_path(store, "1e223ff1f80f1c69").sections
    assert not has_spans(store, sdk_trace) and not span_critical_path(store, sdk_trace).sections
