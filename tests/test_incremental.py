"""Incremental analysis (causality/incremental.py) gives exactly what a full run gives.

One session takes a random program in several appends, analysing after each (the
incremental path, or its fallback to a full run); a fresh session loads the same files
at once and runs the whole engine. Every result a user can see is compared: the hb
tables, the session's reports, happens-before between every two events and every
event's vector clock. The appends touch existing traces, contexts, locks and variables
(a random program cut at random points), and open new traces; some go back in time
or link back to analysed events (skew, late parents), which must fall back.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raceway_core import TraceSession
from raceway_core.causality import incremental
from raceway_core.causality.engine import EngineOptions
from test_causality_props import QUICK, SETTINGS, _ts, programs
from test_race_counts import requests
from test_race_local import wide_requests

@pytest.fixture(autouse=True)
def _any_share(monkeypatch):
    """Small programs: every append is a large share of the store; take them incrementally."""
    monkeypatch.setattr(incremental, "MAX_SHARE", 1e9)


CAP = 4  # stored racing pairs: the listing's prefix is rebuilt from old and new blocks

TABLES = {  # table -> columns holding event seq numbers (compared as event ids)
    "hb.ev": ("seq",), "hb.ctx": (), "hb.edges": ("src", "dst"), "hb.trust": (), "hb.locksets": ("seq",),
    "hb.race_groups": ("example_first", "example_second"),
    "hb.race_trace_groups": ("example_first", "example_second"),
    "hb.critical": ("seq",), "hb.critical_summary": (),
}


def _write(path, events: list[dict]):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def dump(s: TraceSession) -> dict:
    """Everything the analysis shows, with event seq numbers replaced by ids."""
    eng = s.engine
    id_of = dict(zip(*(s.sql("SELECT seq, id FROM events")[c].to_pylist() for c in ("seq", "id"))))
    out = {}
    for name, seq_cols in TABLES.items():
        rows = s.sql(f"SELECT * FROM {name}").to_pylist()
        for r in rows:
            for c in seq_cols:
                r[c] = id_of.get(r[c])
        out[name] = sorted(rows, key=repr)
    pairs = s.sql("SELECT * FROM hb.race_pairs ORDER BY o").to_pylist()
    out["hb.race_pairs"] = [{**p, "first_seq": id_of[p["first_seq"]], "second_seq": id_of[p["second_seq"]]}
                            for p in pairs]
    out["counts"] = s.counts()
    out["traces"] = s.traces().to_pylist()
    out["variables"] = s.variables().to_pylist()
    out["anomalies"] = sorted(s.anomalies(min_samples=2).to_pylist(), key=repr)
    out["dependencies"] = sorted(s.dependencies().to_pylist(), key=repr)
    rep = s.races()
    out["race_pairs"] = [(p["first_id"], p["second_id"], p["kind"]) for p in rep.pairs.to_pylist()]
    out["race_groups"] = sorted(rep.groups.to_pylist(), key=repr)
    out["critical"] = [(c.trace_id, c.events["id"].to_pylist(), c.duration_ms) for c in s.critical_paths()]
    dl = s.deadlocks()
    out["deadlocks"] = (repr(dl.groups), dl.lock_edges.to_pylist())
    rows = [int(eng.row_of(seq)) for seq in sorted(id_of, key=id_of.get)]
    out["before"] = [[eng.before(a, b) for b in rows] for a in rows]
    out["clocks"] = [s._labelled_clock(r) for r in rows]  # s.vector_clock without a query per event
    return out


def _chunks(draw, events: list[dict]) -> list[list[dict]]:
    """The events cut into a first load and 1-3 appends, in input order; sometimes an
    append's events are shuffled (so some land before analysed ones)."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(events) - 1)), min_size=1, max_size=3))))
    parts, last = [], 0
    for c in cuts + [len(events)]:
        if c > last:
            parts.append(events[last:c])
            last = c
    if len(parts) > 1 and draw(st.booleans()):
        k = draw(st.integers(1, len(parts) - 1))
        parts[k] = draw(st.permutations(parts[k]))
    return parts


def _check(tmp_path, parts: list[list[dict]], scope: str) -> list[str | None]:
    opts = EngineOptions(variable_scope=scope, stored_pairs=CAP)
    paths = [_write(tmp_path / f"part{i}.jsonl", p) for i, p in enumerate(parts)]
    reasons = []
    with TraceSession.open([paths[0]], options=opts) as s:
        s.analyze()
        for i in range(1, len(paths)):
            s.load([paths[i]])
            s.analyze()
            reasons.append(incremental.last_reason)
            with TraceSession.open(paths[:i + 1], options=opts) as full:
                want = dump(full)
            got = dump(s)
            for k in want:
                assert got[k] == want[k], (k, reasons[-1])
    return reasons


def _tame(events: list[dict]) -> list[dict]:
    """The program without what only a full run takes (so most appends go the incremental
    way): no parent named before it appears or in another trace, no clock running back."""
    seen, trace_of, latest = set(), {}, ""
    for e in events:
        p = e["parent_id"]
        if p is not None and (p not in seen or trace_of[p] != e["trace_id"]):
            e["parent_id"] = None
        seen.add(e["id"])
        trace_of[e["id"]] = e["trace_id"]
        latest = e["timestamp"] = max(latest, e["timestamp"])
    return events


@st.composite
def appended_programs(draw):
    events = draw(programs())
    if draw(st.booleans()):
        events = _tame(events)
    return _chunks(draw, events)


@pytest.mark.slow  # 70 programs, 1-4 min; the test below runs QUICK's few in `make test`
@SETTINGS
@given(parts=appended_programs(), scope=st.sampled_from(["auto", "global", "service"]))
def test_incremental_equals_full_run(tmp_path_factory, parts, scope):
    _check(tmp_path_factory.mktemp("inc"), parts, scope)


@settings(QUICK, max_examples=6)  # the most CPU of any quick test at QUICK's 12 (the slow twin runs 70)
@given(parts=appended_programs(), scope=st.sampled_from(["auto", "global", "service"]))
def test_incremental_equals_full_run_on_a_few_programs(tmp_path_factory, parts, scope):
    _check(tmp_path_factory.mktemp("inc"), parts, scope)


@st.composite
def appended_requests(draw):
    """Requests sharing variables and locks (hand-offs inside and between requests, long
    lock chains), cut into appends: appends touch analysed traces, locks and variables, and
    shuffled ones land before analysed accesses (the pairs a new access forms as the
    earlier one, race_counts.py's and race_local.py's generators)."""
    return _chunks(draw, draw(st.one_of(requests(), wide_requests())))


@pytest.mark.slow
@SETTINGS
@given(parts=appended_requests(), scope=st.sampled_from(["auto", "global", "instance"]))
def test_incremental_equals_full_run_on_requests(tmp_path_factory, parts, scope):
    _check(tmp_path_factory.mktemp("inc"), parts, scope)


@settings(QUICK, max_examples=6)  # 27 s of CPU at QUICK's 12, the most of any quick test (the slow twin runs 70)
@given(parts=appended_requests(), scope=st.sampled_from(["auto", "global", "instance"]))
def test_incremental_equals_full_run_on_a_few_requests(tmp_path_factory, parts, scope):
    _check(tmp_path_factory.mktemp("inc"), parts, scope)


# -- hand-made appends that the incremental path must take (not fall back on) -------------------

def _ev(i, trace, thread, t, kind, parent=None, service="svc", instance="i1", duration=None):
    return {"id": f"e{i}", "trace_id": trace, "parent_id": parent, "timestamp": _ts(t), "kind": kind,
            "metadata": {"thread_id": thread, "service_name": service, "instance_id": instance,
                         "duration_ns": duration, "distributed_span_id": None, "upstream_span_id": None},
            "causality_vector": [], "lock_set": []}


def _access(var, access, loc="a.py:1"):
    return {"StateChange": {"variable": var, "old_value": 1, "new_value": 2, "location": loc, "access_type": access}}


def _lock(kind, lock="L"):
    return {kind: {"lock_id": lock, "lock_type": "Mutex", "location": "l.py:1"}}


def _call(name="f"):
    return {"FunctionCall": {"function_name": name, "module": "m", "args": {}}}


def _base():
    """Two traces sharing lock L and variable x, with a race on y and durations."""
    ev, t = [], 0
    for k, trace in enumerate(("T1", "T2")):
        for th in ("a", "b"):
            t += 10
            ev.append(_ev(len(ev), trace, th, t, _call(), duration=1000 * (k + 1)))
            ev.append(_ev(len(ev), trace, th, t + 1, _lock("LockAcquire")))
            ev.append(_ev(len(ev), trace, th, t + 2, _access("x", "Write")))
            ev.append(_ev(len(ev), trace, th, t + 3, _lock("LockRelease")))
            ev.append(_ev(len(ev), trace, th, t + 4, _access("y", "Write", f"b.py:{k}")))
    return ev, t + 10


SHAPES = {
    # new events in existing contexts: a racing access, a lock round on the shared lock
    "same contexts": lambda i, t: [_ev(i, "T1", "a", t, _access("y", "Read")),
                                   _ev(i + 1, "T2", "b", t + 1, _lock("LockAcquire")),
                                   _ev(i + 2, "T2", "b", t + 2, _access("x", "Write")),
                                   _ev(i + 3, "T2", "b", t + 3, _lock("LockRelease")),
                                   _ev(i + 4, "T2", "b", t + 4, _access("x", "Read", "c.py:1"))],
    # a new context in an existing trace, and a new trace, both on the lock and the variables
    "new contexts": lambda i, t: [_ev(i, "T1", "c", t, _lock("LockAcquire")),
                                  _ev(i + 1, "T1", "c", t + 1, _access("x", "Write")),
                                  _ev(i + 2, "T1", "c", t + 2, _lock("LockRelease")),
                                  _ev(i + 3, "T3", "a", t + 3, _access("y", "Write", "d.py:1")),
                                  _ev(i + 4, "T3", "a", t + 4, _call("g"), duration=50_000)],
    # a new lock, a spawn and its await in the same trace, a new variable
    "spawn and await": lambda i, t: [
        _ev(i, "T2", "a", t, {"AsyncSpawn": {"task_id": "k", "spawned_by": "a"}}),
        _ev(i + 1, "T2", "w", t + 1, _access("z", "Write"), parent=f"e{i}"),
        _ev(i + 2, "T2", "a", t + 2, _access("z", "Read")),
        _ev(i + 3, "T2", "a", t + 3, {"AsyncAwait": {"future_id": "k", "awaited_at": "a.py:1"}}),
        _ev(i + 4, "T2", "a", t + 4, _access("z", "Write")),
        _ev(i + 5, "T1", "b", t + 5, _lock("LockAcquire", "M")),
        _ev(i + 6, "T1", "b", t + 6, _lock("LockRelease", "M"))],
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("scope", ["auto", "global"])
def test_tail_appends_are_incremental(tmp_path, shape, scope):
    base, t = _base()
    add = SHAPES[shape](len(base), t)
    more = SHAPES["same contexts"](len(base) + len(add), t + 100)
    reasons = _check(tmp_path, [base, add, more], scope)
    assert reasons == [None, None]


def test_an_append_among_analysed_events_is_incremental(tmp_path):
    """Events that arrive late, after their own contexts' but before other contexts'
    analysed events: the later events move one place each (idx, ord, tord, edges)."""
    base, t = _base()
    i = len(base)
    late = [_ev(i, "T1", "b", 25, _access("y", "Write", "late.py:1")),  # after T1/b's 24, before T2's 30
            _ev(i + 1, "T1", "b", 26, _access("x", "Read", "late.py:2")),
            _ev(i + 2, "T2", "a", 36, _call("g"), duration=7000)]
    assert _check(tmp_path, [base, late], "auto") == [None]


@pytest.mark.parametrize("late, reason", [
    (_ev(99, "T1", "a", 5, _access("y", "Write")), "a new event before an analysed one of its own context"),
    (_ev(99, "T1", "b", 25, _lock("LockRelease")), "a new release comes before an analysed acquire or release of its lock"),
    (_ev(99, "T1", "z", 25, _call()), "a new context starts before an analysed one"),
])
def test_an_append_that_reorders_analysed_events_falls_back(tmp_path, late, reason):
    assert _check(tmp_path, [_base()[0], [late]], "auto") == [reason]


def test_a_late_parent_falls_back(tmp_path):
    base, t = _base()
    base[0]["parent_id"] = "late"
    late = [_ev(0, "T1", "z", t, _call())]
    late[0]["id"] = "late"
    reasons = _check(tmp_path, [base, late], "auto")
    assert reasons[0] is not None and "edge into an analysed event" in reasons[0]


def test_a_new_hand_off_from_an_analysed_release_into_another_trace_falls_back(tmp_path):
    """A lock used inside one trace is program order there (no chain); when a new trace
    takes it from an analysed release, that release starts a chain every event after it
    knows: the analysed events' clocks change, so the whole engine runs (found by the
    property test: before() disagreed)."""
    base, t = _base()
    i = len(base)
    base += [_ev(i, "T1", "a", t, _lock("LockAcquire", "K")), _ev(i + 1, "T1", "a", t + 1, _lock("LockRelease", "K"))]
    late = [_ev(i + 2, "T9", "a", t + 5, _lock("LockAcquire", "K")), _ev(i + 3, "T9", "a", t + 6, _access("y", "Read"))]
    assert _check(tmp_path, [base, late], "auto") == ["an analysed lock chain starts crossing traces"]


@pytest.mark.parametrize("scope", ["auto", "global"])
def test_untouched_traces_keep_their_races_on_a_touched_variable(tmp_path, scope):
    # y races inside T1 and inside T2; the append reads y in T1 only: T2's own races on y
    # are taken back from the analysed tables, T1's counted again
    base, t = _base()
    extra = [_ev(len(base), "T1", "a", t, _access("y", "Read")),
             _ev(len(base) + 1, "T1", "b", t + 1, _access("y", "Write", "e.py:1"))]
    assert _check(tmp_path, [base, extra], scope) == [None]
    with TraceSession.open([_write(tmp_path / "all.jsonl", base + extra)]) as s:
        per_trace = s.sql("SELECT trace_id, count(*) AS n FROM hb.race_trace_groups GROUP BY ALL ORDER BY ALL")
    assert per_trace.to_pylist() == [{"trace_id": "T1", "n": per_trace["n"][0].as_py()}, {"trace_id": "T2", "n": 1}]


def test_a_new_lock_chain_after_an_analysed_one_is_continued_incrementally(tmp_path):
    """A release in a new trace that follows no release of its lock (no acquire before it)
    starts a second chain of L; a hand-off from it into another trace keeps it, labelled
    after L's analysed chain ("chain 2"), its next release continuing it; the append
    after it continues both chains from their last releases."""
    base, t = _base()
    i = len(base)
    add = [_ev(i, "T3", "a", t, _lock("LockRelease")),
           _ev(i + 1, "T4", "a", t + 1, _lock("LockAcquire")),
           _ev(i + 2, "T4", "a", t + 2, _access("x", "Write", "f.py:1")),
           _ev(i + 3, "T4", "a", t + 3, _lock("LockRelease"))]
    more = SHAPES["same contexts"](i + 4, t + 100)
    assert _check(tmp_path, [base, add, more], "auto") == [None, None]
    with TraceSession.open([_write(tmp_path / "all.jsonl", base + add + more)]) as s:
        labels = s.engine.hb.chains.label
    assert "lock 'L'" in labels and "lock 'L' (chain 2)" in labels


@pytest.mark.parametrize("kept", [True, False])
def test_process_instance_lifetimes_grow_with_appends(tmp_path, monkeypatch, kept):
    """Scope auto: instance i1 (T1) ends before i2 (T2) starts, so their accesses of x do
    not race. Appends lengthen i2 and open i3 (overlapping i2: its write races with i2's);
    the lifetimes come from the engine's kept table, or (kept=False, as Engine.restore
    gives an engine) from the analysed events."""
    if not kept:
        real = incremental.update

        def update(old, store):
            old.__dict__.pop("instances", None)
            return real(old, store)

        monkeypatch.setattr(incremental, "update", update)
    base = [_ev(0, "T1", "a", 10, _access("x", "Write"), instance="i1"),
            _ev(1, "T1", "a", 20, _access("x", "Read"), instance="i1"),
            _ev(2, "T2", "a", 30, _access("x", "Write", "b.py:1"), instance="i2")]
    add = [_ev(3, "T2", "a", 40, _access("x", "Read", "b.py:2"), instance="i2")]
    more = [_ev(4, "T3", "a", 35, _access("x", "Write", "c.py:1"), instance="i3"),
            _ev(5, "T2", "a", 50, _access("x", "Write", "b.py:3"), instance="i2")]
    assert _check(tmp_path, [base, add, more], "auto") == [None, None]
    with TraceSession.open([_write(tmp_path / "all.jsonl", base + add + more)],
                           options=EngineOptions(variable_scope="auto")) as s:
        pairs = {(p["first_id"], p["second_id"]) for p in s.races().pairs.to_pylist()}
    assert not any(a in ("e0", "e1") for a, _ in pairs)  # i1 never overlaps i2 or i3
    assert ("e4", "e3") in pairs and ("e4", "e5") in pairs
