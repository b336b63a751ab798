"""Variable scope (spec, "Races"): global, service, instance and the default auto, in which
process instances whose lifetimes do not overlap never race."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from raceway_core import TraceSession
from raceway_core.causality.engine import EngineOptions
from server_proc import ROOT, ServerProcess


def _run_banking(url: str, *extra: str) -> None:
    r = subprocess.run([sys.executable, "examples/banking.py", "--endpoint", url, *extra], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_two_banking_runs_against_one_server_do_not_race_with_each_other(tmp_path):
    """Hand-checked: the unsafe run alone has its own races (the lost update); a locked run
    after it, in another process, touches the same account names. Under auto the runs
    never race with each other; under global every unlocked access of one run races
    with the other run's."""
    db = tmp_path / "bank.duckdb"
    with ServerProcess(db=db, mode="one-process") as srv:
        _run_banking(srv.url)
        _run_banking(srv.url, "--locked")
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            traces = http.get("/api/traces").json()["data"]["traces"]
            assert len(traces) == 2
            per_trace = {t["trace_id"]: http.get(f"/api/traces/{t['trace_id']}").json()["data"]["analysis"]
                         ["potential_races"] for t in traces}
            whole = http.get("/api/analyze/global").json()["data"]
        assert sorted(per_trace.values())[0] == 0 and sorted(per_trace.values())[1] > 0  # locked: 0, unsafe: > 0
        assert whole["potential_races"] == sum(per_trace.values())  # nothing between the runs
    with TraceSession.open([], db=db, options=EngineOptions(variable_scope="global")) as s:
        glob = s.races(max_pairs=0)
        assert glob.pair_count > sum(per_trace.values())
        assert sum(glob.groups["cross_count"].to_pylist()) == glob.pair_count - sum(per_trace.values())
    for scope in ("auto", "instance"):
        with TraceSession.open([], db=db, options=EngineOptions(variable_scope=scope)) as s:
            rep = s.races(max_pairs=0)
            assert rep.pair_count == sum(per_trace.values()) and sum(rep.groups["cross_count"].to_pylist()) == 0
            assert s.report(max_pairs=0)["races"]["variable_scope"] == scope


def _ev(n, trace, thread, instance, access, t_s, loc="a.py:1", service="svc"):
    return {"id": f"e{n}", "trace_id": trace, "parent_id": None, "timestamp": f"2026-11-01T12:{t_s // 60:02d}:{t_s % 60:02d}Z",
            "kind": {"StateChange": {"variable": "x", "old_value": 0, "new_value": 1, "location": loc,
                                     "access_type": access}},
            "metadata": {"thread_id": thread, "service_name": service, "instance_id": instance, "duration_ns": None},
            "causality_vector": [], "lock_set": []}


def test_scopes_hand_checked(tmp_path):
    """Five writes of x in four contexts: a (svc, instance i1) at 0 s and 10 s, b (svc, i2)
    at 5 s, c (svc, i3) at 100 s, d (service "other", no instance) at 101 s. Pairs in
    different contexts: e1-e2, e2-e3, e1-e4, e3-e4, e2-e4, e1-e5, e2-e5, e3-e5, e4-e5."""
    events = [_ev(1, "t1", "a", "i1", "Write", 0), _ev(2, "t2", "b", "i2", "Write", 5),
              _ev(3, "t1", "a", "i1", "Write", 10), _ev(4, "t3", "c", "i3", "Write", 100),
              _ev(5, "t4", "d", None, "Write", 101, service="other")]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    want = {
        "global": 9,
        "auto": 6,  # i3 [100, 100] overlaps neither i1 [0, 10] nor i2 [5, 5]: e1-e4, e3-e4, e2-e4 go; d has no instance
        "service": 5,  # svc's x: e1-e2, e2-e3, e1-e4, e3-e4, e2-e4; other's x: one access
        "instance": 0,  # each instance's x is its own, and i1's has one context
    }
    for scope, n in want.items():
        with TraceSession.open([path], options=EngineOptions(variable_scope=scope)) as s:
            assert s.races(max_pairs=0).pair_count == n, scope


@pytest.mark.asyncio
async def test_races_pane_key_switches_the_variable_scope_and_shows_it(tmp_path):
    from test_tui_app import text_of
    from tui_support import SIZE, settle

    from tui_support import create_app  # opens on the timeline, as these tests expect

    events = [_ev(1, "t1", "a", "i1", "Write", 0), _ev(2, "t2", "b", "i2", "Write", 5),
              _ev(3, "t1", "a", "i1", "Write", 10), _ev(4, "t3", "c", "i3", "Write", 100),
              _ev(5, "t4", "d", None, "Write", 101, service="other")]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        summary = text_of(app, "#races-summary")
        assert "6 racing pairs" in summary and "variables: auto" in summary
        await pilot.press("v")  # auto -> global: the run at 100 s races again
        await settle(pilot)
        await settle(pilot)
        summary = text_of(app, "#races-summary")
        assert "9 racing pairs" in summary and "variables: global" in summary
        assert app.session.options.variable_scope == "global"



def test_variables_per_scope_and_per_trace_hand_checked(tmp_path):
    """x: t1 writes it in two contexts a, b (svc, i1) at 0 s and 1 s; t2 reads it in c (svc, i1)
    at 2 s; t3 writes it in d (service "other", instance i9) at 3 s. Nothing is ordered.
    Pairs: e1-e2 (in t1, write-write), e1-e3, e2-e3 (read-write), e1-e4, e2-e4 (write-write),
    e3-e4 (read-write). A trace's races are the pairs with both events in it: t1 has 1."""
    events = [_ev(1, "t1", "a", "i1", "Write", 0), _ev(2, "t1", "b", "i1", "Write", 1),
              _ev(3, "t2", "c", "i1", "Read", 2), _ev(4, "t3", "d", "i9", "Write", 3, service="other")]
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    # scope -> {variable: (accesses, races, critical races)}, the same of trace t1, audit rows per variable
    want = {
        "global": ({"x": (4, 6, 3)}, {"x": (2, 1, 1)}),
        "auto": ({"x": (4, 3, 1)}, {"x": (2, 1, 1)}),  # i9 [3 s] overlaps no part of i1's life [0, 2 s]
        "service": ({"svc::x": (3, 3, 1), "other::x": (1, 0, 0)}, {"svc::x": (2, 1, 1)}),
        "instance": ({"svc#i1::x": (3, 3, 1), "other#i9::x": (1, 0, 0)}, {"svc#i1::x": (2, 1, 1)}),
    }
    for scope, (whole, t1) in want.items():
        with TraceSession.open([path], options=EngineOptions(variable_scope=scope)) as s:
            got = {r["variable"]: (r["accesses"], r["races"], r["critical_races"]) for r in s.variables().to_pylist()}
            assert got == whole, scope
            got = {r["variable"]: (r["accesses"], r["races"], r["critical_races"]) for r in s.variables("t1").to_pylist()}
            assert got == t1, scope
            assert {r["variable"]: r["races"] for r in s.variables("t2").to_pylist()} == {
                v: 0 for v in t1}, scope  # t2's one access: no pair inside t2
            for v, (accesses, _, _) in whole.items():  # the audit trail of each variable the list names
                assert s.audit(v).num_rows == accesses, (scope, v)
            assert s.audit("x").num_rows == 4  # the plain name: every access (the original API's route)
            assert sum(r["races"] for r in s.variables().to_pylist()) == s.races(max_pairs=0).pair_count
            assert {r["name"] for r in s.variables().to_pylist()} == {"x"}
