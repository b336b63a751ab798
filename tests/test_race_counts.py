"""Race counts are exact whatever is stored: totals, per trace, per group, per variable,
against the brute-force reference, with a pair cap far below the number of pairs."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raceway_core import TraceSession
from raceway_core.browse import group_pairs
from raceway_core.causality.engine import EngineOptions
from reference import WRITES, Reference, field
from test_causality_props import QUICK, SETTINGS, _ts, programs

CAP = 3  # pairs stored by the engine in these tests (the default is 100,000)


def _expected(events: list[dict]) -> dict:
    ref = Reference(events, trust_clocks=False)
    by_id = {e["id"]: e for e in events}
    pairs = ref.races()
    groups, traces, variables = Counter(), Counter(), Counter()
    cross = 0
    for a, b in pairs:
        ea, eb = by_id[a], by_id[b]
        v = field(ea, "variable")
        ww = field(ea, "access_type") in WRITES and field(eb, "access_type") in WRITES
        groups[(v, "write-write" if ww else "read-write", field(ea, "location"), field(eb, "location"))] += 1
        variables[v] += 1
        if ea["trace_id"] == eb["trace_id"]:
            traces[ea["trace_id"]] += 1
        else:
            cross += 1
    return {"pairs": pairs, "groups": groups, "traces": traces, "variables": variables, "cross": cross}


def _check(tmp_path, events: list[dict]) -> dict:
    want = _expected(events)
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([path], options=EngineOptions(variable_scope="global", stored_pairs=CAP)) as s:
        rep = s.races(max_pairs=0)
        assert rep.pair_count == len(want["pairs"]) == s.counts()["races"]
        got = Counter()
        for g in rep.groups.to_pylist():
            got[(g["variable"], g["kind"], g["first_location"], g["second_location"])] += g["count"]
        assert got == want["groups"]
        assert sum(rep.groups["cross_count"].to_pylist()) == want["cross"]
        assert {r["trace_id"]: r["races"] for r in s.traces().to_pylist() if r["races"]} == dict(want["traces"])
        for t in {e["trace_id"] for e in events}:
            mine = s.races(t, max_pairs=1)
            assert mine.pair_count == sum(mine.groups["count"].to_pylist()) == want["traces"][t]
            assert mine.pairs.num_rows == min(1, want["traces"][t])
        assert {r["variable"]: r["races"] for r in s.variables().to_pylist() if r["races"]} == dict(want["variables"])
        # listing: capped by the caller, beyond what is stored, every pair exactly once
        assert s.sql("SELECT count(*) AS n FROM hb.race_pairs")["n"][0].as_py() == min(CAP, len(want["pairs"]))
        listed = s.races().pairs.to_pylist()
        assert [(p["first_id"], p["second_id"]) for p in listed].__len__() == len(want["pairs"])
        assert {(p["first_id"], p["second_id"]) for p in listed} == want["pairs"]
        assert s.races(max_pairs=CAP + 2).pairs.num_rows == min(CAP + 2, len(want["pairs"]))
        # every group's example is one of its pairs, and every group lists its pairs (not only stored ones)
        for g in rep.groups.to_pylist():
            assert (g["example_first"], g["example_second"]) in want["pairs"]
            mine = group_pairs(s, g, limit=1000).to_pylist()
            assert len(mine) == g["count"]
            assert all((p["first_id"], p["second_id"]) in want["pairs"] and p["first_location"] == g["first_location"]
                       for p in mine)
    return want


@st.composite
def requests(draw):
    """Many requests (traces) of one or two workers on a few shared variables; some updates
    under one of two locks, some not; timestamps strictly increasing."""
    events = []
    n = 0
    live = []
    for r in range(draw(st.integers(2, 7))):
        for w in range(draw(st.integers(1, 2))):
            live.append({"trace": f"req-{r}", "thread": f"w{r}.{w}", "last": None, "held": None})
    holder = {"L1": None, "L2": None}
    for _ in range(draw(st.integers(6, 60))):
        c = draw(st.sampled_from(live))
        act = draw(st.sampled_from(["access", "access", "access", "lock", "unlock"]))
        if act == "lock" and c["held"] is None:
            free = [lk for lk, h in holder.items() if h is None]
            if not free:
                continue
            lk = draw(st.sampled_from(free))
            holder[lk], c["held"] = c, lk
            kind = {"LockAcquire": {"lock_id": lk, "lock_type": "Mutex", "location": "l.py:1"}}
        elif act == "unlock" and c["held"] is not None:
            kind = {"LockRelease": {"lock_id": c["held"], "lock_type": "Mutex", "location": "l.py:2"}}
            holder[c["held"]], c["held"] = None, None
        else:
            kind = {"StateChange": {"variable": draw(st.sampled_from(["acct.a", "acct.b"])), "old_value": 1,
                                    "new_value": 2, "location": f"bank.py:{draw(st.integers(1, 3))}",
                                    "access_type": draw(st.sampled_from(["Read", "Write", "Write", "AtomicRMW"]))}}
        n += 1
        events.append({"id": f"e{n}", "trace_id": c["trace"], "parent_id": c["last"], "timestamp": _ts(n * 10),
                       "kind": kind, "metadata": {"thread_id": c["thread"], "service_name": "bank", "duration_ns": None},
                       "causality_vector": [], "lock_set": []})
        c["last"] = f"e{n}"
    return events


@pytest.mark.slow  # ~60 s; test_counts_above_the_cap_hand_checked and a few random programs cover it quickly
@SETTINGS
@given(events=requests())
def test_counts_of_many_requests_match_the_reference(tmp_path_factory, events):
    _check(tmp_path_factory.mktemp("r"), events)


@pytest.mark.slow  # 70 programs, ~1 min; the test below runs QUICK's few in `make test`
@SETTINGS
@given(events=programs())
def test_counts_of_random_programs_match_the_reference(tmp_path_factory, events):
    _check(tmp_path_factory.mktemp("p"), events)


@QUICK
@given(events=programs())
def test_counts_of_a_few_random_programs_match_the_reference(tmp_path_factory, events):
    _check(tmp_path_factory.mktemp("p"), events)


def test_counts_above_the_cap_hand_checked(tmp_path):
    """12 requests each write x once unlocked, then (later, in turn) once under L. The
    unlocked writes race pairwise: C(12, 2) = 66. Request r's unlocked write precedes its
    release, handed to every later request: it happens before their locked writes; the
    locked writes of the r earlier requests are concurrent with it: 0 + 1 + ... + 11 = 66.
    Locked writes share L. Inside a request nothing races. Every pair joins two traces."""
    events = []
    n = 0
    last: dict[int, str] = {}

    def ev(req, kind):
        nonlocal n
        n += 1
        parent, last[req] = last.get(req), f"e{n}"
        events.append({"id": f"e{n}", "trace_id": f"r{req}", "parent_id": parent,
                       "timestamp": _ts(n * 10), "kind": kind if kind != "first" else {"Custom": {"name": "start", "data": {}}},
                       "metadata": {"thread_id": f"t{req}", "service_name": "s", "duration_ns": None},
                       "causality_vector": [], "lock_set": []})

    def write(loc):
        return {"StateChange": {"variable": "x", "old_value": 0, "new_value": 1, "location": loc, "access_type": "Write"}}

    for r in range(12):  # all unlocked writes first, then the locked section of each request in turn
        ev(r, "first")
        ev(r, write("a.py:1"))
    for r in range(12):
        ev(r, {"LockAcquire": {"lock_id": "L", "lock_type": "Mutex", "location": "a.py:2"}})
        ev(r, write("a.py:3"))
        ev(r, {"LockRelease": {"lock_id": "L", "lock_type": "Mutex", "location": "a.py:4"}})
    want = _check(tmp_path, events)
    assert want["groups"] == Counter({("x", "write-write", "a.py:1", "a.py:1"): 66,
                                      ("x", "write-write", "a.py:1", "a.py:3"): 66})
    assert want["cross"] == 132 and not want["traces"]


def test_counts_when_the_causal_order_is_not_the_time_order(tmp_path):
    """A skewed parent link: p's event at 100 s is the parent of c's first event at 50 s,
    so the causal order differs from the time order (the counts then come from listing).
    p writes x at 90 s (before the link: ordered before c's write at 60 s); q writes x at
    70 s, concurrent with both: 2 pairs, both joining two traces, first = earlier in time."""
    def ev(n, trace, thread, t_s, kind, parent=None):
        return {"id": n, "trace_id": trace, "parent_id": parent, "timestamp": _ts(t_s * 1_000_000), "kind": kind,
                "metadata": {"thread_id": thread, "service_name": "s", "duration_ns": None},
                "causality_vector": [], "lock_set": []}

    def write(loc):
        return {"StateChange": {"variable": "x", "old_value": 0, "new_value": 1, "location": loc, "access_type": "Write"}}

    events = [ev("p90", "T1", "p", 90, write("p.py:1")),
              ev("P", "T1", "p", 100, {"Custom": {"name": "send", "data": {}}}, "p90"),
              ev("C", "T2", "c", 50, {"Custom": {"name": "recv", "data": {}}}, "P"),
              ev("c60", "T2", "c", 60, write("c.py:1"), "C"),
              ev("q70", "T3", "q", 70, write("q.py:1"))]
    want = _check(tmp_path, events)
    assert want["pairs"] == {("c60", "q70"), ("q70", "p90")} and want["cross"] == 2


@pytest.mark.slow  # ~70 s
@SETTINGS
@given(events=requests())
def test_counts_in_small_blocks_match_the_reference(tmp_path_factory, events):
    """The later accesses are counted in blocks (bounded memory with many lock chains):
    blocks of one or two accesses give the same exact counts."""
    from raceway_core.causality import racecount

    saved = racecount.BLOCK_CELLS, racecount.MIN_BLOCK
    racecount.BLOCK_CELLS, racecount.MIN_BLOCK = 2, 1
    try:
        _check(tmp_path_factory.mktemp("b"), events)
    finally:
        racecount.BLOCK_CELLS, racecount.MIN_BLOCK = saved
