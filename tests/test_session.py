"""TraceSession over a --db store: the analysis is reused when it still fits the events."""

from __future__ import annotations

from helpers import event, ndjson
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


def test_audit_under_the_service_scope_prefers_the_scoped_name(tmp_path):
    """Under the service scope "svc::x" names variable x of service svc; a variable whose
    plain name is "svc::x" (in another service) is not mixed into its trail, and is still
    found by its own scoped name; a plain name lists that variable in every service."""
    def sc(i, var, svc):
        ev = event(i, thread=f"t{i}", kind={"StateChange": {"variable": var, "old_value": 0, "new_value": i,
                                                            "location": "app.py:1", "access_type": "Write"}})
        ev["metadata"]["service_name"] = svc
        return ev
    evs = [sc(1, "x", "svc"), sc(2, "svc::x", "other"), sc(3, "x", "svc"), sc(4, "x", "pay"), sc(5, "svc::x", "other")]
    path = ndjson(tmp_path / "t.jsonl", evs)
    with TraceSession.open([path], options=EngineOptions(variable_scope="service")) as s:
        assert s.audit("svc::x")["event_id"].to_pylist() == ["ev-1", "ev-3"]
        assert s.audit("other::svc::x")["event_id"].to_pylist() == ["ev-2", "ev-5"]
        assert s.audit("x")["event_id"].to_pylist() == ["ev-1", "ev-3", "ev-4"]
        assert s.audit("nope")["event_id"].to_pylist() == []
