"""raceway-tui diff: two runs matched by operation and location, with hand-checked cases."""

from __future__ import annotations

import json

import pytest
from test_causality_rules import Trace, call
from test_cli import cli
from tui_support import SIZE, write

from raceway_core import TraceSession
from raceway_core.analysis.diff import Side, compare


def changes(doc: dict, cat: str) -> list[tuple]:
    return [(r["status"], {k: v for k, v in r.items() if k not in ("status", "a", "b")}, r["a"], r["b"])
            for r in doc[cat] if r["status"] != "same"]


def test_banking_unsafe_vs_locked_race_gone_and_lock_hand_off_added():
    # banking-unsafe: both transfers read alice (banking.py:38) then write it (banking.py:43):
    # one write-write pair and two read-write pairs (each read against the other's write).
    # banking-locked: the withdrawal runs under account:alice (taken and released at line 57):
    # no race, and one hand-off of that lock from the first transfer to the second.
    r = cli("diff", "sample_traces/banking-unsafe.jsonl", "sample_traces/banking-locked.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert changes(doc, "races") == [
        ("disappeared", {"variable": "alice.balance", "kind": "read-write", "location_1": "examples/banking.py:38",
                         "location_2": "examples/banking.py:43"}, {"count": 2, "severity": "warning"}, None),
        ("disappeared", {"variable": "alice.balance", "kind": "write-write", "location_1": "examples/banking.py:43",
                         "location_2": "examples/banking.py:43"}, {"count": 1, "severity": "critical"}, None)]
    assert changes(doc, "orderings") == [
        ("appeared", {"kind": "lock", "what": "account:alice",
                      "from_operation": "LockRelease(account:alice)", "from_location": "examples/banking.py:57",
                      "to_operation": "LockAcquire(account:alice)", "to_location": "examples/banking.py:57"},
         None, {"count": 1})]
    # the spawns and joins are the same in both runs (matched although ids and threads differ)
    assert doc["summary"]["orderings"]["same"] > 0
    for cat in ("critical_path", "anomalies", "durations", "deadlocks"):
        assert changes(doc, cat) == [], cat
    assert (doc["a"]["events"], doc["b"]["events"]) == (21, 25)
    text = cli("diff", "sample_traces/banking-unsafe.jsonl", "sample_traces/banking-locked.jsonl").stdout
    assert "Races: 0 appeared, 2 disappeared" in text and "lock account:alice" in text


def two_runs() -> Trace:
    """Run 'before': five 1 ms work() calls. Run 'after': each takes 3 ms and a retry() follows."""
    t = Trace()
    for trace, ms, extra in (("before", 1, False), ("after", 3, True)):
        for i in range(5):
            t.ev(f"{trace}-w{i}", "main", call("work"), trace=trace, dur=ms * 1_000_000)
        if extra:
            t.ev(f"{trace}-retry", "main", call("retry"), trace=trace, dur=2_000_000)
    return t


def test_two_traces_of_one_store_by_id(tmp_path):
    path = write(tmp_path / "runs.jsonl", two_runs())
    r = cli("diff", "before", "after", "--load", path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["a"]["trace_id"], doc["b"]["trace_id"], doc["a"]["events"], doc["b"]["events"]) == \
        ("before", "after", 5, 6)
    assert changes(doc, "durations") == [
        ("appeared", {"operation": "FunctionCall(retry)", "location": None}, None,
         {"count": 1, "median_ms": 2.0, "total_ms": 2.0}),
        ("changed", {"operation": "FunctionCall(work)", "location": None},
         {"count": 5, "median_ms": 1.0, "total_ms": 5.0}, {"count": 5, "median_ms": 3.0, "total_ms": 15.0})]
    # one context: the whole run is its critical path
    assert changes(doc, "critical_path") == [
        ("appeared", {"operation": "FunctionCall(retry)", "location": None}, None, {"count": 1, "ms": 2.0}),
        ("changed", {"operation": "FunctionCall(work)", "location": None}, {"count": 5, "ms": 5.0},
         {"count": 5, "ms": 15.0})]
    assert (doc["a"]["critical_path_ms"], doc["b"]["critical_path_ms"]) == (5.0, 17.0)


def test_threshold_and_same(tmp_path):
    path = write(tmp_path / "runs.jsonl", two_runs())
    with TraceSession.open([path]) as s:
        # work() tripled: a change at 20%, not when only changes of more than 70% count
        doc = compare(Side(s, "before"), Side(s, "after"), threshold=0.7)
        assert [r["status"] for r in doc["durations"]] == ["appeared", "same"]
        same = compare(Side(s, "before"), Side(s, "before"))
        assert all(r["status"] == "same" for c in ("durations", "critical_path") for r in same[c])


def test_diff_errors_name_the_problem(tmp_path):
    r = cli("diff", tmp_path / "nope.jsonl", "sample_traces/banking-locked.jsonl")
    assert r.returncode == 2 and "nope.jsonl: file not found" in r.stderr
    path = write(tmp_path / "runs.jsonl", two_runs())
    r = cli("diff", "before", "missing", "--load", path)
    assert r.returncode == 2 and "no trace with id 'missing'" in r.stderr


@pytest.mark.asyncio
async def test_diff_view_lists_changes_and_shows_unchanged_on_a(tmp_path):
    from raceway_tui.diff_view import DiffApp
    from raceway_tui.widgets.table import VirtualTable

    with TraceSession.open(["sample_traces/banking-unsafe.jsonl"]) as a, \
            TraceSession.open(["sample_traces/banking-locked.jsonl"]) as b:
        doc = compare(Side(a, label="unsafe"), Side(b, label="locked"))
    app = DiffApp(doc)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(VirtualTable)
        rows = [table.row(i) for i in range(table.row_count)]
        assert [(r["category"], r["status"]) for r in rows] == [
            ("races", "disappeared"), ("races", "disappeared"), ("orderings", "appeared")]
        assert "alice.balance write-write" in rows[1]["what"]
        await pilot.press("a")
        n = sum(len(doc[c]) for c in ("races", "anomalies", "critical_path", "durations", "orderings", "deadlocks"))
        assert table.row_count == n > 3


def test_a_run_against_itself_changes_nothing():
    # two loads of one recording: different seqs and stores, every entry matched as "same"
    r = cli("diff", "sample_traces/slow-api.jsonl", "sample_traces/slow-api.jsonl", "--json")
    doc = json.loads(r.stdout)
    for cat, sm in doc["summary"].items():
        assert sm["appeared"] == sm["disappeared"] == sm["changed"] == 0, cat
    assert doc["summary"]["durations"]["same"] > 0 and doc["summary"]["orderings"]["same"] > 0
    # recommendations.fetch, slow for users 4 and 9 (README: sample traces)
    assert [(r["operation"], r["a"]["count"], r["b"]["count"]) for r in doc["anomalies"]] == [
        ("FunctionCall(recommendations.fetch)", 2, 2)]
