"""The engine agrees exactly with the brute-force reference on random traces."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raceway_core import TraceSession
from reference import Reference

SETTINGS = settings(max_examples=int(__import__("os").environ.get("RACEWAY_EXAMPLES", "70")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# `make test` runs a few examples of the long property tests (test_incremental, test_race_counts);
# the same test with SETTINGS is marked slow and runs them all in `make test-slow`
QUICK = settings(SETTINGS, max_examples=12)
VARS = ["x", "y", "acct.balance"]
LOCKS = ["L1", "L2"]
SHARED = "RW"  # a reader lock: several contexts may hold it at once (its releases do not form one chain)
ACCESS = ["Read", "Write", "Read", "Write", "AtomicRead", "AtomicWrite", "AtomicRMW"]


def _ts(us: int) -> str:
    return f"2026-11-01T12:{us // 60_000_000:02d}:{(us // 1_000_000) % 60:02d}.{us % 1_000_000:06d}Z"


@st.composite
def programs(draw):
    """A random concurrent execution: traces, contexts, spawns/awaits, locks, accesses."""
    events: list[dict] = []
    t = 0
    counter = 0
    ctxs: list[dict] = []
    lock_holder: dict[str, dict | None] = {lk: None for lk in LOCKS}
    n_traces = draw(st.integers(1, 3))

    def new_ctx(trace, parent=None):
        c = {"trace": trace, "thread": f"c{len(ctxs)}", "last": None, "parent": parent,
             "held": [], "children": [], "done": False, "span": None, "upstream": None}
        ctxs.append(c)
        return c

    def emit(c, kind, duration=None, skew=0):
        nonlocal t, counter
        t += draw(st.integers(0, 3))
        counter += 1
        ev = {"id": f"e{counter}", "trace_id": c["trace"], "parent_id": c["last"] or c["parent"],
              "timestamp": _ts(t + skew), "kind": kind,
              "metadata": {"thread_id": c["thread"], "service_name": c.get("service", "svc"),
                           "duration_ns": duration, "distributed_span_id": c["span"],
                           "upstream_span_id": c["upstream"]},
              "causality_vector": [], "lock_set": []}
        c["last"] = ev["id"]
        c["parent"] = None
        events.append(ev)
        return ev

    for tr in range(n_traces):
        new_ctx(f"T{tr}")
    backlinks = 0
    for _ in range(draw(st.integers(4, 45))):
        live = [c for c in ctxs if not c["done"]]
        if not live:
            break
        c = draw(st.sampled_from(live))
        action = draw(st.sampled_from(["access"] * 4 + ["lock", "unlock", "spawn", "await", "call", "remote",
                                                        "shared", "handover", "stray", "backlink"]))
        if action == "access":
            emit(c, {"StateChange": {"variable": draw(st.sampled_from(VARS)), "old_value": 1, "new_value": 2,
                                     "location": f"f.py:{draw(st.integers(1, 3))}",
                                     "access_type": draw(st.sampled_from(ACCESS))}})
        elif action == "lock":
            free = [lk for lk, h in lock_holder.items() if h is None]
            if free:
                lk = draw(st.sampled_from(free))
                lock_holder[lk] = c
                c["held"].append(lk)
                emit(c, {"LockAcquire": {"lock_id": lk, "lock_type": "Mutex", "location": "l.py:1"}})
        elif action == "shared" and SHARED not in c["held"]:
            c["held"].append(SHARED)
            emit(c, {"LockAcquire": {"lock_id": SHARED, "lock_type": "RWLock-Read", "location": "l.py:3"}})
        elif action == "stray":
            # a release of a lock this context does not hold (buggy code, or a lost acquire)
            lk = draw(st.sampled_from(LOCKS + [SHARED]))
            if lk not in c["held"]:
                emit(c, {"LockRelease": {"lock_id": lk, "lock_type": "Mutex", "location": "l.py:9"}})
        elif action == "handover":
            # a context in another trace whose first event names this one as parent
            other = new_ctx(f"T{draw(st.integers(0, n_traces))}", parent=c["last"])
            emit(other, {"FunctionCall": {"function_name": "from_elsewhere", "module": "m", "args": {}}})
        elif action == "unlock" and c["held"]:
            lk = c["held"].pop()
            if lk != SHARED:
                lock_holder[lk] = None
            emit(c, {"LockRelease": {"lock_id": lk, "lock_type": "Mutex", "location": "l.py:2"}})
        elif action == "spawn":
            # a task id may repeat: an await then joins the latest spawn of it in its trace
            task = draw(st.sampled_from([f"task{len(ctxs)}", "task-again"]))
            sp = emit(c, {"AsyncSpawn": {"task_id": task, "spawned_by": c["thread"]}})
            # the spawned context may live in another trace (rule 3 joins it all the same)
            child = new_ctx(draw(st.sampled_from([c["trace"], f"T{draw(st.integers(0, n_traces))}"])),
                            parent=sp["id"])
            emit(child, {"FunctionCall": {"function_name": "child_start", "module": "m", "args": {}}})
            c["children"].append((task, child))
        elif action == "await":
            ready = [(task, ch) for task, ch in c["children"] if not ch["held"]]
            if ready:
                task, ch = ready[0]
                c["children"].remove((task, ch))
                ch["done"] = True
                emit(c, {"AsyncAwait": {"future_id": task, "awaited_at": "a.py:1"}})
        elif action == "call":
            emit(c, {"FunctionCall": {"function_name": draw(st.sampled_from(["f", "g"])), "module": "m", "args": {}}},
                 duration=draw(st.integers(0, 50)) * 1000)
        elif action == "remote" and not c["held"]:
            # a synchronous call into another service: caller span -> callee span and back
            c["span"] = c["span"] or f"sp-{c['thread']}"
            emit(c, {"HttpRequest": {"method": "POST", "url": "/x", "headers": {}, "body": None}})
            callee = new_ctx(c["trace"])
            callee.update(service="remote", span=f"sp-{callee['thread']}", upstream=c["span"])
            skew = draw(st.sampled_from([0, 0, 500]))  # the callee's clock may run ahead of the caller's
            for _ in range(draw(st.integers(1, 3))):
                emit(callee, {"FunctionCall": {"function_name": "handle", "module": "r", "args": {}}},
                     duration=draw(st.integers(0, 30)) * 1000, skew=skew)
            callee["done"] = True
            # recorded when the response is done: its duration covers the call before it
            ms = draw(st.sampled_from([None, 1, 40]))
            emit(c, {"HttpResponse": {"status": 200, "headers": {}, "body": None, "duration_ms": ms}})
        elif action == "backlink" and backlinks < 3 and events:
            # an earlier event names this new one as its parent (skew, or a broken link): often a cycle
            backlinks += 1
            j = draw(st.integers(0, len(events) - 1))
            ev = emit(c, {"FunctionCall": {"function_name": "late", "module": "m", "args": {}}})
            events[j]["parent_id"] = ev["id"]
    return events


def _session(tmp_path, events):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    s = TraceSession.open([path])
    assert s.summaries[0].loaded == len(events)
    return s


@pytest.mark.slow
@SETTINGS
@given(events=programs())
def test_happens_before_races_and_critical_path_match_reference(tmp_path_factory, events):
    ref = Reference(events, trust_clocks=False)
    with _session(tmp_path_factory.mktemp("p"), events) as s:
        eng = s.engine
        rows = eng.row_of(s.sql("SELECT seq FROM events ORDER BY seq")["seq"].to_numpy())
        # seq order is input order for one file
        for a in range(len(events)):
            for b in range(len(events)):
                assert eng.before(int(rows[a]), int(rows[b])) == ref.before(a, b), (events[a]["id"], events[b]["id"])
        got = {(p["first_id"], p["second_id"]) for p in s.races().pairs.to_pylist()}
        assert got == ref.races()
        for tr in {e["trace_id"] for e in events}:
            cp = s.critical_path(tr)
            assert round(cp.duration_ms * 1e6) == ref.critical_total(tr)
            assert ref.is_cp_path(cp.events["id"].to_pylist())
            assert round(cp.trace_span_ms * 1e6) == ref.span(tr)
        assert {r["trace_id"]: round(r["duration_ms"] * 1e6) for r in s.traces().to_pylist()} == {
            tr: ref.span(tr) for tr in {e["trace_id"] for e in events}}


@st.composite
def message_passing(draw):
    """Hosts exchanging messages with valid (ShiViz-style) vector clocks, one trace."""
    hosts = [f"h{i}" for i in range(draw(st.integers(2, 4)))]
    vc = {h: {} for h in hosts}
    inflight: list[dict] = []
    events = []
    for n in range(draw(st.integers(3, 30))):
        h = draw(st.sampled_from(hosts))
        if inflight and draw(st.booleans()):
            msg = inflight.pop(draw(st.integers(0, len(inflight) - 1)))
            for k, v in msg.items():
                vc[h][k] = max(vc[h].get(k, 0), v)
        vc[h][h] = vc[h].get(h, 0) + 1
        if draw(st.booleans()):
            inflight.append(dict(vc[h]))
        kind = ({"StateChange": {"variable": "v", "old_value": 0, "new_value": 1, "location": f"{h}:1",
                                 "access_type": draw(st.sampled_from(["Read", "Write"]))}}
                if draw(st.booleans()) else {"Custom": {"name": "step", "data": {}}})
        events.append({"id": f"m{n}", "trace_id": "run", "parent_id": None,
                       "timestamp": _ts(n), "kind": kind,
                       "metadata": {"thread_id": h, "service_name": None, "duration_ns": None},
                       "causality_vector": sorted(vc[h].items()), "lock_set": []})
    return events


@pytest.mark.slow
@SETTINGS
@given(events=message_passing())
def test_trusted_clocks_decide_order(tmp_path_factory, events):
    ref = Reference(events, trust_clocks=True)
    with _session(tmp_path_factory.mktemp("m"), events) as s:
        assert s.clock_trust()["trusted"].to_pylist() == [True]
        eng = s.engine
        rows = eng.row_of(s.sql("SELECT seq FROM events ORDER BY seq")["seq"].to_numpy())
        for a in range(len(events)):
            for b in range(len(events)):
                # plain vector clock comparison, straight from the data
                va, vb = dict(events[a]["causality_vector"]), dict(events[b]["causality_vector"])
                plain = a != b and va != vb and all(vb.get(k, 0) >= v for k, v in va.items())
                assert eng.before(int(rows[a]), int(rows[b])) == plain == ref.before(a, b)
        assert {(p["first_id"], p["second_id"]) for p in s.races().pairs.to_pylist()} == ref.races()
