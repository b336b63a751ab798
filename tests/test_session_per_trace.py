"""TraceSession's per-trace filters (used by the server's per-trace endpoints)."""

from __future__ import annotations

from raceway_core import TraceSession

FILES = ["sample_traces/banking-unsafe.jsonl", "sample_traces/slow-api.jsonl"]


def test_races_of_one_trace_are_those_inside_it():
    with TraceSession.open(FILES) as s:
        every = s.races().pairs.to_pylist()
        traces = {p["first_trace"] for p in every} | {p["second_trace"] for p in every}
        assert traces
        for t in traces:
            mine = s.races(t)
            want = [p for p in every if p["first_trace"] == p["second_trace"] == t]
            assert mine.pair_count == len(want)
            assert sorted((p["first_id"], p["second_id"]) for p in mine.pairs.to_pylist()) == \
                sorted((p["first_id"], p["second_id"]) for p in want)
            assert sum(mine.groups["count"].to_pylist()) == len(want)


def test_anomalies_of_one_trace_are_only_its_own():
    with TraceSession.open(FILES) as s:
        every = s.anomalies().to_pylist()
        assert every  # slow-api has slow calls
        for t in {a["trace_id"] for a in every} | {s.traces()["trace_id"][0].as_py()}:
            got = s.anomalies(t).to_pylist()
            assert got == [a for a in every if a["trace_id"] == t]


def test_kept_anomalies_match_the_query_per_trace_and_follow_new_events(tmp_path):
    """anomalies() keeps the store-wide result (per store version) and filters it per trace:
    the same rows, in the same order, as the query with the trace filter, and new events
    (which move the baselines) are seen in anomalies(), counts() and traces()."""
    import json

    from raceway_core.analysis import anomalies as sql_of

    def by_query(s, t=None):
        flt = "AND trace_id = $t" if t else ""
        return s.sql(sql_of.sql(5, 3.5, flt, 1.5), {"t": t} if t else None).to_pylist()

    with TraceSession.open(FILES) as s:
        traces = s.traces()["trace_id"].to_pylist()
        assert s.anomalies().to_pylist() == by_query(s)
        for t in traces:
            assert s.anomalies(t).to_pylist() == by_query(s, t)
        before = s.counts()["anomalies"]
        assert before == len(by_query(s)) and sum(s.traces()["anomalies"].to_pylist()) == before
        # ten quick calls and a slow one of a new function, in a new trace: one more anomaly
        from test_causality_rules import Trace, call

        t = Trace()
        for i in range(11):
            t.ev(f"new{i}", "w", call("fresh"), trace="t-new", dur=1_000_000 * (50 if i == 10 else 1 + i % 2))
        path = tmp_path / "more.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in t.events) + "\n")
        [summary] = s.load([path])
        assert summary.loaded == 11
        after = by_query(s)
        assert "new10" in {a["event_id"] for a in after} and s.anomalies().to_pylist() == after
        assert [a["event_id"] for a in s.anomalies("t-new").to_pylist()] == ["new10"]
        assert s.counts()["anomalies"] == len(after) == before + 1
        assert dict(zip(s.traces()["trace_id"].to_pylist(), s.traces()["anomalies"].to_pylist()))["t-new"] == 1
