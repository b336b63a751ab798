"""Potential deadlocks (lock-order inversions) on small hand-checked traces."""

from __future__ import annotations

import json

from test_causality_rules import Trace, call, rel


def acq(lock, loc="l.py:1"):
    return {"LockAcquire": {"lock_id": lock, "lock_type": "Mutex", "location": loc}}


def nested(t: Trace, thread: str, outer: str, inner: str, at: int, line: int, **kw) -> None:
    """thread takes outer, then inner (sites l.py:<line> and l.py:<line+1>), releases both."""
    t.ev(f"{thread}-{outer}", thread, acq(outer, f"l.py:{line}"), at=at, **kw)
    t.ev(f"{thread}-{inner}", thread, acq(inner, f"l.py:{line + 1}"), at=at + 1)
    t.ev(f"{thread}-rel-{inner}", thread, rel(inner), at=at + 2)
    t.ev(f"{thread}-rel-{outer}", thread, rel(outer), at=at + 3)


def test_classic_ab_ba_inversion_is_reported(tmp_path):
    # T1 takes A then B, later T2 takes B then A: this run passed (B was handed from T1 to
    # T2), but with T2 starting earlier each holds one lock and waits for the other.
    t = Trace()
    nested(t, "T1", "A", "B", 10, 10)
    nested(t, "T2", "B", "A", 20, 20)
    with t.session(tmp_path) as s:
        # the lock hand-offs order the two runs (the engine's happens-before)...
        assert s.happens_before("T1-B", "T2-B")
        r = s.deadlocks()
        assert [g["locks"] for g in r.groups] == [["A", "B"]]
        g = r.groups[0]
        assert g["severity"] == "critical" and g["instances"] == [1, 1]
        site = g["example"]
        assert g["edges"] == [
            {"holding": "A", "acquiring": "B", "sites": [{"holding_location": "l.py:10", "acquiring_location": "l.py:11",
                                                         "count": 1}]},
            {"holding": "B", "acquiring": "A", "sites": [{"holding_location": "l.py:20", "acquiring_location": "l.py:21",
                                                         "count": 1}]}]
        got = [(e["thread_id"], e["holding"], e["holding_event"], e["holding_location"],
                e["acquiring"], e["acquiring_event"], e["acquiring_location"]) for e in site]
        assert got == [("T1", "A", "T1-A", "l.py:10", "B", "T1-B", "l.py:11"),
                       ("T2", "B", "T2-B", "l.py:20", "A", "T2-A", "l.py:21")]
        edges = {(a, b): n for a, b, n in zip(r.lock_edges["from_lock"].to_pylist(),
                                                r.lock_edges["to_lock"].to_pylist(), r.lock_edges["count"].to_pylist())}
        assert edges == {("A", "B"): 1, ("B", "A"): 1}
        assert r.suppressed == []


def test_common_gate_lock_suppresses_the_report(tmp_path):
    t = Trace()
    for thread, (x, y), at in (("T1", ("A", "B"), 10), ("T2", ("B", "A"), 30)):
        t.ev(f"{thread}-G", thread, acq("G"), at=at)
        nested(t, thread, x, y, at + 1, at)
        t.ev(f"{thread}-rel-G", thread, rel("G"), at=at + 10)
    with t.session(tmp_path) as s:
        r = s.deadlocks()
        assert r.groups == []
        assert [(x["locks"], x["reasons"]) for x in r.suppressed] == [
            (["A", "B"], ["lock 'G' held across the acquisitions (a gate)"])]


def test_ab_ba_ordered_by_a_join_is_not_reported(tmp_path):
    t = Trace()
    t.ev("m1", "main", call())
    sp1 = t.ev("spawn1", "main", {"AsyncSpawn": {"task_id": "t1", "spawned_by": "main"}})
    nested(t, "T1", "A", "B", 30, 10, parent=sp1)
    t.ev("await1", "main", {"AsyncAwait": {"future_id": "t1", "awaited_at": "m.py:3"}}, at=40)
    sp2 = t.ev("spawn2", "main", {"AsyncSpawn": {"task_id": "t2", "spawned_by": "main"}}, at=50)
    nested(t, "T2", "B", "A", 60, 20, parent=sp2)
    with t.session(tmp_path) as s:
        r = s.deadlocks()
        assert r.groups == []
        assert [x["locks"] for x in r.suppressed] == [["A", "B"]]
        assert "ordered by happens-before" in r.suppressed[0]["reasons"][0]


def test_same_threads_without_the_join_are_reported(tmp_path):
    # the control for the join test: the same two spawns awaited only at the end
    t = Trace()
    sp1 = t.ev("spawn1", "main", {"AsyncSpawn": {"task_id": "t1", "spawned_by": "main"}}, at=10)
    sp2 = t.ev("spawn2", "main", {"AsyncSpawn": {"task_id": "t2", "spawned_by": "main"}}, at=20)
    nested(t, "T1", "A", "B", 30, 10, parent=sp1)
    nested(t, "T2", "B", "A", 60, 20, parent=sp2)
    t.ev("await1", "main", {"AsyncAwait": {"future_id": "t1", "awaited_at": "m.py:3"}}, at=80)
    t.ev("await2", "main", {"AsyncAwait": {"future_id": "t2", "awaited_at": "m.py:4"}}, at=90)
    with t.session(tmp_path) as s:
        assert [g["locks"] for g in s.deadlocks().groups] == [["A", "B"]]


def test_three_lock_cycle_is_reported(tmp_path):
    t = Trace()
    nested(t, "T1", "A", "B", 10, 10)
    nested(t, "T2", "B", "C", 20, 20)
    nested(t, "T3", "C", "A", 30, 30)
    with t.session(tmp_path) as s:
        r = s.deadlocks()
        assert [(g["locks"], g["severity"]) for g in r.groups] == [(["A", "B", "C"], "warning")]
        site = r.groups[0]["example"]
        assert [(e["thread_id"], e["holding"], e["acquiring"]) for e in site] == [
            ("T1", "A", "B"), ("T2", "B", "C"), ("T3", "C", "A")]


def test_reentrant_acquire_adds_no_edge_and_counts_releases(tmp_path):
    # T1: A, A (re-entrant), B -> edge A->B once; A again while holding B cannot block (no
    # B->A); two releases of A leave it held, so taking C adds A->C. T2: C then A closes A->C->A.
    t = Trace()
    t.ev("a1", "T1", acq("A"), at=10)
    t.ev("a2", "T1", acq("A"), at=11)
    t.ev("b", "T1", acq("B"), at=12)
    t.ev("a4", "T1", acq("A"), at=13)
    t.ev("r4", "T1", rel("A"), at=13)
    t.ev("rb", "T1", rel("B"), at=13)
    t.ev("ra", "T1", rel("A"), at=14)
    t.ev("c", "T1", acq("C"), at=15)
    t.ev("rc", "T1", rel("C"), at=16)
    t.ev("ra2", "T1", rel("A"), at=17)
    t.ev("x", "T1", rel("Z"), at=18)  # a release never acquired: ignored
    t.ev("c2", "T2", acq("C"), at=30)
    t.ev("a3", "T2", acq("A"), at=31)
    with t.session(tmp_path) as s:
        r = s.deadlocks()
        edges = set(zip(r.lock_edges["from_lock"].to_pylist(), r.lock_edges["to_lock"].to_pylist()))
        assert edges == {("A", "B"), ("A", "C"), ("C", "A")}
        (g,) = r.groups
        assert g["locks"] == ["A", "C"]
        first = g["example"][0]
        assert (first["holding_event"], first["acquiring_event"]) == ("a1", "c")  # the outermost hold of A


def test_sample_program_inversion_reported_and_gated_pair_not(tmp_path):
    # sample_traces/deadlock-transfers.jsonl, recorded by examples/deadlock.py: tellers 1 and 2
    # lock alice/bob in opposite orders (lines 53 then 56 of the example); tellers 3 and 4 do
    # the same with carol/dave under the branch lock.
    from test_cli import cli

    r = cli("analyze", "sample_traces/deadlock-transfers.jsonl", "--json", "--fail-on", "deadlocks")
    assert r.returncode == 1, r.stderr
    d = json.loads(r.stdout)["deadlocks"]
    assert d["count"] == 1
    (g,) = d["groups"]
    assert g["locks"] == ["account:alice", "account:bob"] and g["severity"] == "critical"
    site = g["example"]
    assert {(e["holding"], e["acquiring"]) for e in site} == {("account:alice", "account:bob"),
                                                              ("account:bob", "account:alice")}
    assert {(e["holding_location"], e["acquiring_location"]) for e in site} == {
        ("examples/deadlock.py:53", "examples/deadlock.py:56")}
    assert site[0]["thread_id"] != site[1]["thread_id"]
    assert [[(x["holding_location"], x["acquiring_location"], x["count"]) for x in e["sites"]] for e in g["edges"]] == [
        [("examples/deadlock.py:53", "examples/deadlock.py:56", 6)]] * 2
    assert [(x["locks"], x["reasons"]) for x in d["suppressed"]] == [
        (["account:carol", "account:dave"], ["lock 'branch' held across the acquisitions (a gate)"])]
    assert "Potential deadlocks: 1 lock cycle" in cli("analyze", "sample_traces/deadlock-transfers.jsonl",
                                                      columns=200).stdout


def test_fail_on_deadlocks_passes_without_a_cycle():
    from test_cli import cli

    r = cli("analyze", "sample_traces/banking-locked.jsonl", "--fail-on", "deadlocks")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Potential deadlocks: none" in r.stdout


def test_server_route_and_global_answer():
    import httpx
    from server_proc import ServerProcess
    from test_server_analysis import events_of

    from raceway_core import TraceSession
    from raceway_core.report import deadlock_document

    path = "sample_traces/deadlock-transfers.jsonl"
    with TraceSession.open([path]) as s:
        expected = deadlock_document(s.deadlocks())
    with ServerProcess() as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        assert http.post("/events", json={"events": events_of(path)}).status_code == 200
        r = http.get("/api/analyze/deadlocks")
        assert r.status_code == 200, r.text
        got = r.json()["data"]
        assert got == expected and got["groups"][0]["locks"] == ["account:alice", "account:bob"]
        assert http.get("/api/analyze/global").json()["data"]["deadlocks"] == expected
        assert "/api/analyze/deadlocks" in http.get("/openapi.json").json()["paths"]


def test_simple_cycles_against_brute_force():
    import itertools
    import random

    from raceway_core.analysis.deadlocks import simple_cycles

    rnd = random.Random(7)
    for _ in range(200):
        nodes = [f"L{i}" for i in range(rnd.randint(1, 6))]
        graph = {a: {b for b in nodes if b != a and rnd.random() < 0.35} for a in nodes}
        want = set()
        for n in range(2, 5):
            for perm in itertools.permutations(nodes, n):
                if perm[0] == min(perm) and all(perm[(i + 1) % n] in graph[perm[i]] for i in range(n)):
                    want.add(perm)
        got = simple_cycles(graph, 4, 10_000)
        assert len(got) == len(set(got)) and set(got) == want
        assert [len(c) for c in got] == sorted(len(c) for c in got)  # two-lock cycles first


def _random_program(rnd) -> list[dict]:
    """main spawns 2-4 threads (some awaited before the next spawn: ordered by a join);
    each takes locks of A, B, C, G nested at random (re-entrant acquires and stray
    releases included). Timestamps follow emission, so every edge points forward."""
    t = Trace()
    pending = []
    for k in range(rnd.randint(2, 4)):
        sp = t.ev(f"sp{k}", "main", {"AsyncSpawn": {"task_id": f"task{k}", "spawned_by": "main"}})
        th, held, first = f"T{k}", [], True
        for j in range(rnd.randint(2, 7)):
            lock = rnd.choice("ABCG")
            if held and rnd.random() < 0.4:
                lk = held.pop(rnd.randrange(len(held)))
                t.ev(f"{th}-r{j}", th, rel(lk), parent=sp if first else "auto")
            elif rnd.random() < 0.05:
                t.ev(f"{th}-r{j}", th, rel(lock), parent=sp if first else "auto")  # never acquired: ignored
            else:
                held.append(lock)
                t.ev(f"{th}-a{j}", th, acq(lock, f"l.py:{rnd.randint(1, 3)}"), parent=sp if first else "auto")
            first = False
        if rnd.random() < 0.5:
            t.ev(f"aw{k}", "main", {"AsyncAwait": {"future_id": f"task{k}", "awaited_at": "m.py:1"}})
        else:
            pending.append(k)
    for k in pending:
        t.ev(f"aw{k}", "main", {"AsyncAwait": {"future_id": f"task{k}", "awaited_at": "m.py:1"}})
    return t


def _brute_force_two_lock_cycles(events: list[dict]) -> set[tuple[str, str]]:
    """Every pair of instances of A->B and B->A, against happens-before built from program
    order, parents and joins only (transitive closure by search)."""
    byid = {e["id"]: e for e in events}
    ctx = {e["id"]: e["metadata"]["thread_id"] for e in events}
    order: dict[str, list[str]] = {}
    for e in events:  # emitted in time order
        order.setdefault(ctx[e["id"]], []).append(e["id"])
    succ: dict[str, set[str]] = {e["id"]: set() for e in events}
    for ids in order.values():
        for x, y in zip(ids, ids[1:]):
            succ[x].add(y)
    for e in events:
        if e["parent_id"] and ctx[e["parent_id"]] != ctx[e["id"]]:
            succ[e["parent_id"]].add(e["id"])
    spawned = {next(iter(e["kind"].values()))["task_id"]: order[ctx[x]][-1]
               for e in events if "AsyncSpawn" in e["kind"] for x in [y["id"] for y in events
               if y["parent_id"] == e["id"] and ctx[y["id"]] != ctx[e["id"]]]}
    for e in events:
        if "AsyncAwait" in e["kind"]:
            last = spawned.get(e["kind"]["AsyncAwait"]["future_id"])
            if last:
                succ[last].add(e["id"])

    def before(x, y):
        seen, stack = set(), [x]
        while stack:
            for z in succ[stack.pop()]:
                if z == y:
                    return True
                if z not in seen:
                    seen.add(z)
                    stack.append(z)
        return False

    inst = []  # (from, to, acquire id, context, held)
    for c, ids in order.items():
        count: dict[str, int] = {}
        for i in ids:
            k = next(iter(byid[i]["kind"]))
            if k not in ("LockAcquire", "LockRelease"):
                continue
            lock = byid[i]["kind"][k]["lock_id"]
            if k == "LockRelease":
                count[lock] = max(0, count.get(lock, 0) - 1)
                continue
            held = frozenset(x for x, n in count.items() if n > 0)
            if lock not in held:
                inst += [(h, lock, i, c, held) for h in held]
            count[lock] = count.get(lock, 0) + 1
    found = set()
    for a, b, x, cx, hx in inst:
        for a2, b2, y, cy, hy in inst:
            if (a2, b2) == (b, a) and a < b and cx != cy and not (hx & hy) \
                    and not before(x, y) and not before(y, x):
                found.add((a, b))
    return found


def test_two_lock_cycles_match_brute_force(tmp_path):
    import random

    rnd = random.Random(12)
    seen_reported = seen_ruled_out = 0
    for case in range(40):
        t = _random_program(rnd)
        want = _brute_force_two_lock_cycles(t.events)
        d = tmp_path / str(case)
        d.mkdir()
        with t.session(d) as s:
            r = s.deadlocks()
            got = {tuple(g["locks"]) for g in r.groups if len(g["locks"]) == 2}
            assert got == want, (case, [json.dumps(e) for e in t.events])
            seen_reported += bool(want)
            seen_ruled_out += any(len(x["locks"]) == 2 for x in r.suppressed)
    assert seen_reported >= 5 and seen_ruled_out >= 5  # the cases exercise both outcomes


def test_trusted_clocks_order_by_messages_but_not_by_lock_merges(tmp_path):
    # ShiViz-style hosts: h1 takes A then B and then sends a message that h2 receives
    # before it takes B then A: ordered by the message, not reported.
    t = Trace()
    for i, (name, kind) in enumerate([("h1-A", acq("A")), ("h1-B", acq("B")), ("h1-rB", rel("B")),
                                      ("h1-rA", rel("A")), ("h1-send", call("send"))]):
        t.ev(name, "h1", kind, clock=[["h1", i + 1]])
    t.ev("h2-recv", "h2", call("recv"), clock=[["h1", 5], ["h2", 1]])
    t.ev("h2-B", "h2", acq("B"), clock=[["h1", 5], ["h2", 2]])
    t.ev("h2-A", "h2", acq("A"), clock=[["h1", 5], ["h2", 3]])
    with t.session(tmp_path) as s:
        assert s.clock_trust()["trusted"].to_pylist() == [True]
        assert s.deadlocks().groups == []
    # the same where h2 learns h1's clock only at its acquire of B (an SDK merging the
    # releaser's clock): that is B's hand-off, which does not rule the deadlock out
    t = Trace()
    for i, (name, kind) in enumerate([("h1-A", acq("A")), ("h1-B", acq("B")), ("h1-rB", rel("B")),
                                      ("h1-rA", rel("A"))]):
        t.ev(name, "h1", kind, clock=[["h1", i + 1]])
    t.ev("h2-B", "h2", acq("B"), clock=[["h1", 3], ["h2", 1]])
    t.ev("h2-A", "h2", acq("A"), clock=[["h1", 4], ["h2", 2]])
    (tmp_path / "2").mkdir()
    with t.session(tmp_path / "2") as s:
        assert s.clock_trust()["trusted"].to_pylist() == [True]
        assert [g["locks"] for g in s.deadlocks().groups] == [["A", "B"]]


def test_many_inversions_all_ordered_by_joins_are_ruled_out_exactly(tmp_path):
    # 1,500 A->B and 1,500 B->A acquisitions, each worker awaited before the next starts:
    # more pairs than the witness search may try, yet every pair is ordered (a chain).
    t = Trace()
    for w in range(3000):
        sp = t.ev(f"sp{w}", "main", {"AsyncSpawn": {"task_id": f"t{w}", "spawned_by": "main"}})
        x, y = ("A", "B") if w % 2 == 0 else ("B", "A")
        t.ev(f"w{w}-1", f"w{w}", acq(x), parent=sp)
        t.ev(f"w{w}-2", f"w{w}", acq(y))
        t.ev(f"w{w}-3", f"w{w}", rel(y))
        t.ev(f"w{w}-4", f"w{w}", rel(x))
        t.ev(f"aw{w}", "main", {"AsyncAwait": {"future_id": f"t{w}", "awaited_at": "m.py:1"}})
    with t.session(tmp_path) as s:
        r = s.deadlocks()
        assert r.groups == []
        assert r.suppressed == [{"locks": ["A", "B"], "instances": [1500, 1500], "reasons": [
            "ordered by happens-before (without locks): each acquisition follows the one before it"]}]
        assert r.checks == 2999
