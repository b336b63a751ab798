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
