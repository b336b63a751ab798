"""TraceSession over a --db store: the analysis is reused when it still fits the events."""

from __future__ import annotations

from raceway_core import TraceSession
from raceway_core.causality.engine import EngineOptions

SAMPLE = "sample_traces/distributed-orders.jsonl"


def _ids(s):
    return s.sql("SELECT id FROM events ORDER BY seq")["id"].to_pylist()


def test_reopened_store_reuses_its_analysis(tmp_path):
    db = tmp_path / "s.duckdb"
    with TraceSession.open([SAMPLE], db=db) as s:
        assert "races" in s.engine.timings  # computed
        report = s.report()
        ids = _ids(s)
        verdicts = [s.happens_before(ids[0], x) for x in ids[:40]]
        why = s.explain(ids[0], ids[30]).text
    with TraceSession.open([], db=db) as s:
        assert set(s.engine.timings) == {"load", "clocks"}  # nothing recomputed but the clocks
        assert s.report() == report
        assert [s.happens_before(ids[0], x) for x in ids[:40]] == verdicts
        assert s.explain(ids[0], ids[30]).text == why


def test_stale_analysis_is_recomputed(tmp_path):
    db = tmp_path / "s.duckdb"
    with TraceSession.open([SAMPLE], db=db) as s:
        s.engine
    with TraceSession.open([], db=db, options=EngineOptions(variable_scope="service")) as s:
        assert "races" in s.engine.timings  # other options: computed again
    with TraceSession.open([], db=db) as s:
        s.load(["sample_traces/banking-unsafe.jsonl"])  # other events: computed again
        assert "races" in s.engine.timings
        assert s.races().groups["variable"].to_pylist().count("alice.balance") >= 1
