"""Every file of ../shared/corpus loads as expected (regex and delimiter from the SOURCE.md files)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from raceway_core.formats import ImportOptions
from raceway_core.store import Store

CORPUS = Path("/work/shared/corpus")
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")

FB = (r"(?<ip>(\d{1,3}\.){3}\d{1,3}) (?<date>(\d{1,2}/){2}\d{4} (\d{2}:){2}\d{2} (AM|PM)) "
      r"(?<action>(INFO|GET|POST)) (?<event>.*)\n(?<host>\w*) (?<clock>.*)")
RB = r"\[\w+\] \[(?<date>([^ ]+ [^ ]+))\] [^ ]+ \[akka://Broadcast/user/(?<host>\w+)\] (?<clock>.*\}) (?<event>.*)"
TS = r"(?<timestamp>(\d*)) (?<event>.*)\n(?<host>\w*) (?<clock>.*)"
VO = (r"\[(?<date>\d{4}-\d{2}-\d{2} (\d{2}:){2}\d{2},\d{3}) (?<path>\S*)\] (?<priority>(INFO|WARN)) (?<event>.*)\n"
      r"(?<host>\S*) (?<clock>{.*})")
EWD = (r'^State [0-9]+: <(?<event>\w*) .*>\n\/\\ Host = (?<host>.*)\n\/\\ Clock = "(?<clock>.*)"\n'
       r"\/\\ active = (?<active>.*)\n\/\\ color = (?<color>.*)\n\/\\ counter = (?<counter>.*)")
CHORD = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)"
DELIM = r"^=== (?<trace>.*) ===$"
SYNTH = "timestamps are synthesised in log order (the log has no clock time)"

# file: (regex, delimiter, events, traces, contexts, notes that must be there)
SHIVIZ = {
    "simple-reliable-broadcast.log": (RB, None, 39, 1, 3, []),
    # line 8 is an Akka dead-letter message, not an event
    "reliable-broadcast.log": (RB, None, 116, 1, 4,
                               ["1 non-blank line outside any event (not matched by the parser regex; first: line 8)"]),
    "chord.log": (CHORD, None, 1235, 1, 8,
                  ["events of host kv-node-60 appear out of clock order in the log; "
                   "their timestamps follow their own clock"]),
    "tsviz_fslock_24t_4sp.log": (TS, None, 2001, 1, 30, []),
    "tsviz_shared_var_4_threads.log": (TS, None, 5000, 1, 4, []),
    # line 1001 has its host line glued to the event text ("...port 64177main-thread5 {...}"):
    # ShiViz's regex cannot match it either, so main-thread5's only event is lost
    "voldemort-simple-threadnames.log": (VO, None, 863, 1, 19, [
        "1 non-blank line outside any event (not matched by the parser regex; first: line 1001)"]),
    "voldemort.log": (VO, None, 864, 1, 20, []),
    "simpledb.log": (None, None, 509, 1, 5, []),
    "facebook.log": (FB, None, 47, 1, 4, []),
    "facebook-study.log": (FB, None, 47, 1, 4, []),
    "facebook-multiple.log": (FB, DELIM, 88, 2, 8,
                              ["2 executions: facebook-multiple/Execution #1, facebook-multiple/Execution #2"]),
    "facebook-multiple-study.log": (FB, DELIM, 88, 2, 8, []),
    "multiple-comparison.log": (FB, DELIM, 40, 5, 10, []),
    # 78 + 249 + 666 states, less each run's initial state (no Host/Clock); TLC's preamble and the
    # states' other variables are text outside the events
    "ewd998.log": (EWD, DELIM, 990, 3, 19,
                   ["1,149 non-blank lines outside any event (not matched by the parser regex; first: line 3)"]),
    "RpcClientServer.log": (None, None, 10, 1, 2,
                            ["regex and delimiter read from the first two lines (ShiViz upload form)"]),
}

# file: (mode, events, traces, contexts, duplicates, notes)
SPANS = {
    "otel/otlp/trace.json": ("otlp", 1, 1, 1, 0, [
        "1 span whose parent is not in the input (roots unless a link orders them): "
        "eee19b7ec3c1b174 (parent eee19b7ec3c1b173)"]),
    # the same span twice: the copy is skipped as a duplicate event id
    "otel/otlp/otlp2jaeger-in.json": ("otlp", 1, 1, 1, 1, [
        "duplicate span, identical copies skipped (1): e127af99e3b3e074 in trace 83a9efd15c1c98a977e0711cc93ee28b",
        "1 span whose parent is not in the input (roots unless a link orders them): "
        "e127af99e3b3e074 (parent 909541b92cf05311)"]),
    "otel/otlp/otlp2jaeger-multi-in-combined.json": ("otlp", 4, 1, 4, 0, []),
    # 4 spans + 8 span events + 4 error events; 2 trace ids
    "otel/otlp/otel_traces_01.json": ("otlp", 16, 2, 4, 0, [
        "4 spans whose parent is not in the input (roots unless a link orders them): 0000000000000002 "
        "(parent 0000000000000003); 0000000000000003 (parent 0000000000000010); 0000000000000004 "
        "(parent 0000000000000011); ..."]),
    "otel/otlp/link_attributes_trace.json": ("otlp", 1, 1, 1, 0, []),
    "otel/otlp/example_trace.json": ("otlp", 15, 1, 5, 0, []),  # 5 spans + 10 events
    "otel/jaeger/testTrace.json": ("jaeger", 12, 1, 11, 0, []),  # 11 spans + 1 error
    "otel/jaeger/flamegraph-testTrace.json": ("jaeger", 4, 1, 4, 0, []),
    "otel/jaeger/genaiTestTrace.json": ("jaeger", 58, 1, 57, 0, []),
    "otel/jaeger/traceWithOverlappingChildren.json": ("jaeger", 3, 1, 3, 0, []),
    "otel/jaeger/traceWithOverlappingChildrenLongerThanParent.json": ("jaeger", 4, 1, 4, 0, []),
    "otel/jaeger/traceWithSingleChildLongerThanParentAndStartsAfterParent.json": ("jaeger", 2, 1, 2, 0, []),
    "otel/jaeger/traceWithThreeShortOverlappingChildren.json": ("jaeger", 4, 1, 4, 0, []),
    "otel/jaeger/traceWithTwoNonOverlappingChildren.json": ("jaeger", 3, 1, 3, 0, []),
    # 5 spans (two different ones share id ...0002) + 2 logs + 1 error
    "otel/jaeger/ui_01.json": ("jaeger", 8, 1, 5, 0, [
        "trace 0000000000000001: Jaeger warning: some trace warning",
        "span id reused by different spans (1): 0000000000000002 in trace 0000000000000001: "
        "kept as 0000000000000002#2"]),
    "otel/zipkin/yelp.json": ("zipkin", 17, 1, 16, 0, []),  # 16 spans + 1 annotation
    "otel/zipkin/skew.json": ("zipkin", 4, 1, 4, 0, [
        "clock skew: 1 span starting before the parent (timestamps kept as recorded): 74280ae0c10d8062/server "
        "(serviceb) starts 65,441 µs before its parent 74280ae0c10d8062 (servicea)"]),
    "otel/zipkin/messaging.json": ("zipkin", 4, 1, 4, 0, []),
    "otel/zipkin/messaging-kafka.json": ("zipkin", 31, 1, 28, 0, [  # 28 spans + 3 errors
        "clock skew: 3 spans starting before the parent (timestamps kept as recorded): 09fdf808ef0d60c0 "
        "(servicea) starts 21 µs before its parent 0562809467078eab (servicea); 4a64a63e4b58e665 (serviceb) "
        "starts 8 µs before its parent a5524eec8147b1da (serviceb); 568b33e6af8a225a (serviceb) starts 4 µs "
        "before its parent 519d27c657334615 (serviceb)"]),
    "otel/zipkin/ascend.json": ("zipkin", 8, 1, 8, 0, []),
    # 175 spans + 9 annotations + 2 errors; one id has a client and 5 server halves
    "otel/zipkin/smartthings-oauth-authorization.json": ("zipkin", 186, 1, 175, 0, [
        "span id shared by one client and several servers (1): 9d2d35b746db84f3: 5 server halves kept as "
        "9d2d35b746db84f3/server, 9d2d35b746db84f3/server#2, ...",
        "clock skew: 1 span starting before the parent (timestamps kept as recorded): 975e74022b72e1cd "
        "(pusher) starts 2,829 µs before its parent 9d2d35b746db84f3/server#4 (pusher)"]),
    # 1041 spans of which 84 are pieces (no kind, no timestamp) merged into their span: 957,
    # + 92 annotations + 2 errors
    "otel/zipkin/smartthings-mobile-web-install.json": ("zipkin", 1051, 1, 957, 0, [
        "span id shared by one client and several servers (1): cbab506b53f336fc: 5 server halves kept as "
        "cbab506b53f336fc/server, cbab506b53f336fc/server#2, ...",
        "clock skew: 2 spans starting before the parent (timestamps kept as recorded): c1c06fd706fca9cb "
        "(pusher) starts 633 µs before its parent cbab506b53f336fc/server#3 (pusher); b6fdd2a6b74e32e5 "
        "(pusher) starts 221 µs before its parent cbab506b53f336fc/server#5 (pusher)"]),
    "raceway-sdk/distributed-example.raceway.jsonl": ("ndjson", 192, 2, 6, 0, []),
}


def _load(path, options=None):
    store = Store()
    [summary] = store.load([path], options=options)
    counts = store.sql("SELECT count(*) AS n, count(DISTINCT trace_id) AS t, "
                       "count(DISTINCT (trace_id, thread_id)) AS c FROM events").to_pylist()[0]
    return store, summary, counts


def test_every_corpus_file_is_covered():
    listed = {f"shiviz/{f}" for f in SHIVIZ} | set(SPANS) | {"shiviz/motifs.json", "shiviz/RpcClientServer.json"}
    present = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCE.md"}
    assert present == listed


@pytest.mark.parametrize("name", list(SHIVIZ))
def test_shiviz_logs(name):
    regex, delim, events, traces, contexts, notes = SHIVIZ[name]
    store, s, c = _load(CORPUS / "shiviz" / name, ImportOptions(regex=regex, delimiter=delim))
    try:
        assert (s.mode, s.rejected, s.duplicates, s.fatal) == ("shiviz", 0, 0, None), s.line()
        assert (c["n"], c["t"], c["c"]) == (events, traces, contexts)
        assert SYNTH in s.notes and all(n in s.notes for n in notes), s.notes
        assert Counter(_loaded_clocks(store)) == Counter(_log_clocks(name))
    finally:
        store.close()


def _loaded_clocks(store):
    return [(r["thread_id"], frozenset((x["c"], x["n"]) for x in r["clock"]))
            for r in store.sql("SELECT thread_id, clock FROM events").to_pylist()]


def _log_clocks(name):
    """(host, clock without zero entries) of every event, read from the log by plain line patterns."""
    text = (CORPUS / "shiviz" / name).read_text()
    if name.endswith("reliable-broadcast.log"):
        pairs = re.findall(r"\[akka://Broadcast/user/(\w+)\] (\{.*?\}) ", text)
    elif name == "ewd998.log":
        # the third run prints its initial state (Host "--", all-zero clock, no action) too: not an event
        pairs = [(h, c.replace('\\"', '"')) for h, c in
                 re.findall(r'^/\\ Host = (.*)\n/\\ Clock = "(.*)"$', text, re.M) if h != '"--"']
    else:
        pairs = re.findall(r"^(\S+) (\{.*\})\s*$", text, re.M)
    return [(h, frozenset((k, v) for k, v in json.loads(c).items() if v)) for h, c in pairs]


def test_tsviz_accesses_are_state_changes():
    store, s, _ = _load(CORPUS / "shiviz/tsviz_shared_var_4_threads.log", ImportOptions(regex=TS))
    text = (CORPUS / "shiviz/tsviz_shared_var_4_threads.log").read_text()
    reads = len(re.findall(r"^\d+ Read .* from ", text, re.M))
    writes = len(re.findall(r"^\d+ Write .* to ", text, re.M))
    got = {r["access"]: r["n"] for r in store.sql("SELECT access, count(*) AS n FROM events GROUP BY 1").to_pylist()}
    assert (got["Read"], got["Write"]) == (reads, writes) == (3830, 588)
    [r] = store.sql("SELECT variable, new_value FROM events WHERE line = 5").to_pylist()
    assert r == {"variable": "__wt_stats.v@7fef50840c98", "new_value": '"15514"'}  # 256824341944908 Write 15514 ...
    store.close()


def test_fslock_lock_hand_offs_add_nothing_the_clocks_do_not_say():
    """The lock mapping is sound here: each release -> next acquire edge is already in the vector clocks."""
    store, s, _ = _load(CORPUS / "shiviz/tsviz_fslock_24t_4sp.log", ImportOptions(regex=TS))
    evs = store.sql("SELECT thread_id, kind, lock_id, clock FROM events "
                    "WHERE kind IN ('LockAcquire', 'LockRelease') ORDER BY ts_ns, seq").to_pylist()
    assert Counter(e["kind"] for e in evs) == {"LockAcquire": 119, "LockRelease": 142}
    last, edges = {}, 0
    for e in evs:
        vc = {x["c"]: x["n"] for x in e["clock"]}
        if e["kind"] == "LockRelease":
            last[e["lock_id"]] = vc
        elif e["lock_id"] in last:
            edges += 1
            assert all(vc.get(k, 0) >= n for k, n in last[e["lock_id"]].items())
    assert edges == 109
    store.close()


def test_shiviz_graph_json_matches_its_log():
    a, s1, _ = _load(CORPUS / "shiviz/RpcClientServer.log")
    b, s2, _ = _load(CORPUS / "shiviz/RpcClientServer.json")
    q = ("SELECT id, trace_id, thread_id, list_sort(clock) AS clock, raw->>'$.kind.Custom.name' AS text "
         "FROM events ORDER BY id")
    assert (s2.mode, s2.rejected) == ("shiviz-graph", 0)
    assert a.sql(q).to_pylist() == b.sql(q).to_pylist()
    assert len(a.sql(q)) == 10
    a.close()
    b.close()


def test_motifs_json_is_refused_with_a_clear_message():
    store, s, c = _load(CORPUS / "shiviz/motifs.json")
    assert s.fatal == ("shiviz: this is ShiViz's motif library (motifs.json: the event patterns ShiViz searches "
                       "for, one JSON list per line), not the log of a run; nothing to load")
    assert c["n"] == 0
    store.close()


@pytest.mark.parametrize("name", list(SPANS))
def test_span_files(name):
    mode, events, traces, contexts, dups, notes = SPANS[name]
    store, s, c = _load(CORPUS / name)
    try:
        assert (s.mode, s.rejected, s.duplicates, s.fatal) == (mode, 0, dups, None), s.line()
        assert (c["n"], c["t"], c["c"]) == (events, traces, contexts)
        assert list(s.notes) == notes
    finally:
        store.close()


def test_span_links_order_spans_without_a_parent():
    # otel_traces_01.json: spans 2 (trace ...01...), 3 and 5 (trace ...02...) name parents absent from the
    # input and link to span 4 (trace ...01...), which started no later: span 4's start becomes their
    # parent. Span 4 links only to itself and to a span not in the input: a root.
    store, s, _ = _load(CORPUS / "otel/otlp/otel_traces_01.json")
    got = {r["span_id"]: (r["parent_id"], r["ref"]) for r in store.sql(
        "SELECT span_id, parent_id, raw->>'$.metadata.tags.\"span.ref\"' AS ref FROM events "
        "WHERE kind = 'FunctionCall'").to_pylist()}
    four = "00000000000000010000000000000000:0000000000000004"
    assert got == {"0000000000000002": (four, "link"), "0000000000000003": (four, "link"),
                   "0000000000000004": (None, None), "0000000000000005": (four, "link")}
    store.close()


@pytest.mark.parametrize("name", list(SHIVIZ))
def test_shiviz_logs_open_without_options(name):
    """Issue 16.7: detection alone finds the format and the layout, with the counts
    the log's own regex gives."""
    _, _, events, traces, contexts, _ = SHIVIZ[name]
    store, s, c = _load(CORPUS / "shiviz" / name)
    try:
        assert (s.mode, s.rejected, s.duplicates, s.fatal) == ("shiviz", 0, 0, None), s.line()
        assert (c["n"], c["t"], c["c"]) == (events, traces, contexts)
        if name.startswith(("voldemort", "reliable", "simple-reliable")):  # lines start with '['
            assert any(n.startswith("read as shiviz: it reads") for n in s.notes), s.notes
    finally:
        store.close()
