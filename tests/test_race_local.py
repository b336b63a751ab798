"""Races inside one trace counted from the clocks (causality/racelocal.py), never listed:
against the pairs the sweep lists and against the brute-force reference, on requests of
many workers sharing variables, with locks handed inside a request and between requests
(a path that leaves a trace through a lock and comes back orders two of its accesses)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raceway_core import TraceSession
from raceway_core.causality.engine import EngineOptions
from raceway_core.causality.raceinput import SCOPES
from reference import WRITES, Reference, field
from test_causality_props import QUICK, SETTINGS, _ts


def _event(n, trace, thread, parent, kind, service="bank", instance=None):
    return {"id": f"e{n}", "trace_id": trace, "parent_id": parent, "timestamp": _ts(n * 10), "kind": kind,
            "metadata": {"thread_id": thread, "service_name": service, "instance_id": instance, "duration_ns": None},
            "causality_vector": [], "lock_set": []}


@st.composite
def wide_requests(draw):
    """A few requests of 2-6 workers each; workers access two variables, some under a lock of
    their request (hand-offs inside the trace) or a shared one (hand-offs between traces);
    one context of the last request may hand the shared lock back and forth."""
    events, n = [], 0
    live = []
    for r in range(draw(st.integers(1, 3))):
        inst = draw(st.sampled_from([None, "1", "2"]))
        for w in range(draw(st.integers(2, 6))):
            live.append({"trace": f"req-{r}", "thread": f"w{r}.{w}", "last": None, "held": None,
                         "instance": f"bank-{inst}" if inst else None})
    locks = ["shared", "L-req-0", "L-req-1", "L-req-2"]
    holder = dict.fromkeys(locks)
    for _ in range(draw(st.integers(8, 70))):
        c = draw(st.sampled_from(live))
        act = draw(st.sampled_from(["access", "access", "access", "lock", "unlock"]))
        if act == "lock" and c["held"] is None:
            mine = [lk for lk in ("shared", "L-" + c["trace"]) if holder[lk] is None]
            if not mine:
                continue
            lk = draw(st.sampled_from(mine))
            holder[lk], c["held"] = c, lk
            kind = {"LockAcquire": {"lock_id": lk, "lock_type": "Mutex", "location": "l.py:1"}}
        elif act == "unlock" and c["held"] is not None:
            kind = {"LockRelease": {"lock_id": c["held"], "lock_type": "Mutex", "location": "l.py:2"}}
            holder[c["held"]], c["held"] = None, None
        else:
            kind = {"StateChange": {"variable": draw(st.sampled_from(["x", "y"])), "old_value": 1, "new_value": 2,
                                    "location": f"a.py:{draw(st.integers(1, 3))}",
                                    "access_type": draw(st.sampled_from(["Read", "Write", "Write", "AtomicRMW"]))}}
        n += 1
        events.append(_event(n, c["trace"], c["thread"], c["last"], kind, instance=c["instance"]))
        c["last"] = f"e{n}"
    return events


def _check(tmp_path, events, scope="global"):
    """Per (trace, variable, kind, locations): the counted pairs == the listed pairs == the
    reference's; and the example of each group is the same pair either way."""
    ref = Reference(events, trust_clocks=False)
    by_id = {e["id"]: e for e in events}
    want = Counter()
    for a, b in ref.races(scope):
        ea, eb = by_id[a], by_id[b]
        if ea["trace_id"] == eb["trace_id"]:
            ww = field(ea, "access_type") in WRITES and field(eb, "access_type") in WRITES
            want[(ea["trace_id"], ref.variable(ref.id_index[a], scope), int(ww),
                  field(ea, "location"), field(eb, "location"))] += 1
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([path], options=EngineOptions(variable_scope=scope)) as s:
        eng = s.engine
        cur = s.store.cursor()
        try:
            ri = eng.race_input(cur)
            counted = ri.same_trace_counts(force=True)
            listed = ri.same_trace_counts(force=False)
        finally:
            cur.close()
        assert counted == listed  # counts and example pairs
        traces, variables, locs = eng.trace_names.to_pylist(), ri.var_names.to_pylist(), ri.loc_names.to_pylist()
        got = Counter({(traces[t], variables[v], ww, locs[lf], locs[ls]): c[0]
                       for (t, v, ww, lf, ls), c in counted.items()})
        assert got == want
        seq_id = dict(zip(s.sql("SELECT seq, id FROM events")["seq"].to_pylist(),
                          s.sql("SELECT seq, id FROM events")["id"].to_pylist()))
        pairs = ref.races(scope)
        for _, f, sec in counted.values():
            assert (seq_id[f], seq_id[sec]) in pairs
    return want


@pytest.mark.slow
@pytest.mark.parametrize("scope", SCOPES)
@SETTINGS
@given(events=wide_requests())
def test_counts_inside_traces_match_the_listing_and_the_reference(tmp_path_factory, scope, events):
    _check(tmp_path_factory.mktemp("w"), events, scope)


@pytest.mark.parametrize("scope", ["global", "auto"])
@QUICK
@given(events=wide_requests())
def test_some_counts_inside_traces_match_the_listing_and_the_reference(tmp_path_factory, scope, events):
    _check(tmp_path_factory.mktemp("w"), events, scope)


def test_a_lock_round_trip_through_another_trace_orders_two_accesses(tmp_path):
    """Hand-checked. Request r has workers a and b; request q has worker c. a writes x and
    releases S; c acquires S, releases it; b acquires S and writes x: a's write happens before
    b's only through q (no edge inside r joins a and b). b then writes x again unlocked while
    a writes x unlocked: a's second write races with b's two writes (2 pairs); a's first write
    races with neither of b's (both follow the round trip). Nothing else races in r."""
    ev = []

    def add(trace, thread, kind, parent):
        ev.append(_event(len(ev) + 1, trace, thread, parent, kind))
        return ev[-1]["id"]

    def w(loc):
        return {"StateChange": {"variable": "x", "old_value": 0, "new_value": 1, "location": loc, "access_type": "Write"}}

    def lk(kind):
        return {kind: {"lock_id": "S", "lock_type": "Mutex", "location": "l.py:1"}}

    a = add("r", "a", lk("LockAcquire"), None)
    a = add("r", "a", w("a.py:1"), a)
    a = add("r", "a", lk("LockRelease"), a)
    c = add("q", "c", lk("LockAcquire"), None)
    c = add("q", "c", lk("LockRelease"), c)
    b = add("r", "b", lk("LockAcquire"), None)
    b = add("r", "b", w("b.py:1"), b)
    b = add("r", "b", lk("LockRelease"), b)
    a = add("r", "a", w("a.py:2"), a)
    b = add("r", "b", w("b.py:2"), b)
    want = _check(tmp_path, ev)
    assert want == Counter({("r", "x", 1, "b.py:1", "a.py:2"): 1, ("r", "x", 1, "a.py:2", "b.py:2"): 1})


def test_many_workers_of_one_request_hand_checked(tmp_path):
    """Hand-checked. One request of 30 workers; each writes x once unlocked, then once under
    lock M (in turn, worker by worker). The unlocked writes race pairwise: C(30, 2) = 435.
    Worker k's unlocked write precedes its own locked write and, through M's hand-offs, every
    later worker's locked write; the locked writes of the k earlier workers are concurrent
    with it: 0 + 1 + ... + 29 = 435 (first: the locked write, second: the unlocked one, for
    those that come later in time: the unlocked writes all come first, so first = unlocked).
    Locked writes share M."""
    ev, last = [], {}

    def add(k, kind):
        ev.append(_event(len(ev) + 1, "r", f"w{k}", last.get(k), kind))
        last[k] = ev[-1]["id"]

    def w(loc):
        return {"StateChange": {"variable": "x", "old_value": 0, "new_value": 1, "location": loc, "access_type": "Write"}}

    for k in range(30):
        add(k, w("u.py:1"))
    for k in range(30):
        add(k, {"LockAcquire": {"lock_id": "M", "lock_type": "Mutex", "location": "l.py:1"}})
        add(k, w("m.py:1"))
        add(k, {"LockRelease": {"lock_id": "M", "lock_type": "Mutex", "location": "l.py:2"}})
    want = _check(tmp_path, ev)
    assert want == Counter({("r", "x", 1, "u.py:1", "u.py:1"): 435, ("r", "x", 1, "u.py:1", "m.py:1"): 435})


def test_traces_too_wide_to_unpack_are_listed_instead(tmp_path, monkeypatch):
    """When the trace-local clocks would take too much memory unpacked, the run is listed:
    the same counts and examples (the 30-worker case above, with the limit at one value)."""
    from raceway_core.causality import racelocal

    ev, last = [], {}
    for k in range(30):
        ev.append(_event(len(ev) + 1, "r", f"w{k}", last.get(k), {"StateChange": {
            "variable": "x", "old_value": 0, "new_value": 1, "location": "u.py:1", "access_type": "Write"}}))
        last[k] = ev[-1]["id"]
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in ev) + "\n")
    with TraceSession.open([path]) as s:
        eng = s.engine
        cur = s.store.cursor()
        try:
            counted = eng.race_input(cur).same_trace_counts(force=True)
            monkeypatch.setattr(racelocal, "MAX_DENSE", 1)
            fallen = eng.race_input(cur).same_trace_counts(force=True)
        finally:
            cur.close()
    assert [v[0] for v in counted.values()] == [435]
    assert fallen == counted
