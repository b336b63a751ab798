"""Replay (raceway_core.analysis.replay): the state at every step against a brute-force walk
over the timeline's rows, and hand-checked values of the banking sample."""

from __future__ import annotations

import pytest
from test_causality_rules import Trace, acq, call, rel, sc
from tui_support import ROOT

from raceway_core import TraceSession
from raceway_core.browse import Timeline

SAMPLES = ["banking-unsafe.jsonl", "distributed-orders.jsonl", "deadlock-transfers.jsonl", "banking-locked.jsonl"]
WRITES = ("Write", "AtomicWrite", "AtomicRMW")


def brute_force(s: TraceSession, trace_id: str):
    """Per step, from the timeline's rows (causal order) walked one by one: each variable's
    last write and last access, the live contexts, and the race partners of the step."""
    tl = Timeline(s, trace_id)
    rows = tl.page(0, tl.count()).to_pylist()
    ctx_of = {r["id"]: (r["service"] + "/" if r["service"] else "") + r["thread_id"] for r in rows}
    first, last, total = {}, {}, {}
    for i, r in enumerate(rows):
        c = ctx_of[r["id"]]
        first.setdefault(c, i)
        last[c] = i
        total[c] = total.get(c, 0) + 1
    step_of = {r["id"]: i for i, r in enumerate(rows)}
    pairs = s.races(trace_id).pairs.to_pylist()
    variables = sorted({r["variable"] for r in rows if r["kind"] == "StateChange" and r["variable"] is not None})
    written, seen, done = {}, {}, {}
    for i, r in enumerate(rows):
        done[ctx_of[r["id"]]] = done.get(ctx_of[r["id"]], 0) + 1
        if r["kind"] == "StateChange" and r["variable"] is not None:
            seen[r["variable"]] = (i, r["access"], r["new_value"])
            if r["access"] in WRITES:
                written[r["variable"]] = (r["new_value"], i, ctx_of[r["id"]])
        vs = [{"variable": v, "value": written.get(v, (None,) * 3)[0], "written_step": written.get(v, (None,) * 3)[1],
               "writer": written.get(v, (None,) * 3)[2], "changed": v in written and written[v][1] == i,
               "last_step": seen.get(v, (None,) * 3)[0], "last_access": seen.get(v, (None,) * 3)[1],
               "seen": seen.get(v, (None,) * 3)[2]} for v in variables]
        live = sorted((c, first[c], last[c], done.get(c, 0), total[c], c == ctx_of[r["id"]])
                      for c in first if first[c] <= i <= last[c])
        races = sorted((step_of[p["second_id"]] if p["first_id"] == r["id"] else step_of[p["first_id"]],
                        p["variable"], p["kind"], p["severity"])
                       for p in pairs if r["id"] in (p["first_id"], p["second_id"]))
        yield i, vs, live, races


def check_every_step(s: TraceSession, trace_id: str) -> int:
    rep = s.replay(trace_id)
    steps = 0
    for i, vs, live, races in brute_force(s, trace_id):
        st = rep.state(i)
        assert st.variables.to_pylist() == vs, i
        got_live = sorted((r["context"], r["first_step"], r["last_step"], r["done"], r["events"], r["current"])
                          for r in st.live.to_pylist())
        assert got_live == live, i
        assert sorted((r["partner_step"], r["variable"], r["kind"], r["severity"])
                      for r in st.races.to_pylist()) == races, i
        steps += 1
    assert steps == rep.steps
    return steps


@pytest.mark.parametrize("name", SAMPLES)
def test_every_step_of_the_samples_matches_a_brute_force_walk(name):
    with TraceSession.open([ROOT / "sample_traces" / name]) as s:
        for trace_id in s.traces()["trace_id"].to_pylist():
            assert check_every_step(s, trace_id) > 0


@pytest.mark.parametrize("stored_pairs", [10_000, 1])  # 1: the pairs come from the engine, not the stored ones
def test_every_step_of_a_hand_made_trace_with_locks_atomics_and_two_races(tmp_path, stored_pairs):
    t = Trace()
    t.ev("m1", "main", sc("x", "Write", "a.py:1", None, 1))
    sp = t.ev("sp", "main", {"AsyncSpawn": {"task_id": "k", "spawned_by": "main"}})
    t.ev("c1", "child", sc("x", "Read", "a.py:2", None, 1), parent=sp)
    t.ev("m2", "main", sc("x", "Write", "a.py:3", 1, 2))   # races c1 (read-write)
    t.ev("c2", "child", sc("x", "Write", "a.py:4", 1, 5))  # races m2 (write-write)
    t.ev("c3", "child", acq("L"))
    t.ev("c4", "child", sc("y", "AtomicRMW", "a.py:5", 0, 7))
    t.ev("c5", "child", rel("L"))
    t.ev("m3", "main", acq("L"))
    t.ev("m4", "main", sc("y", "AtomicRead", "a.py:6", None, 7))
    t.ev("m5", "main", rel("L"))
    t.ev("m6", "main", call("end"))
    with t.session(tmp_path, stored_pairs=stored_pairs) as s:
        assert check_every_step(s, "T") == 12
        rep = s.replay("T")
        order = rep.page(0, rep.steps)["id"].to_pylist()
        at = order.index("c2")
        x = {v["variable"]: v for v in rep.state(at).variables.to_pylist()}["x"]
        assert (x["value"], x["changed"], x["writer"]) == ("5", True, "svc/child")
        y = {v["variable"]: v for v in rep.state(order.index("m4")).variables.to_pylist()}["y"]
        assert (y["value"], y["last_access"], y["seen"]) == ("7", "AtomicRead", "7")
        assert rep.page(0, rep.steps)["racing"].to_pylist() == [i in ("c1", "m2", "c2") for i in order]
        assert s.replay("nothing").steps == 0


BANKING = ROOT / "sample_traces" / "banking-unsafe.jsonl"


def test_banking_sample_hand_checked():
    """Read in the file (21 events, one trace, causal order = time order): the two transfers
    read alice.balance = 1000 (steps 5 and 8), write 900 (step 9) and 800 (step 13)."""
    with TraceSession.open([BANKING]) as s:
        rep = s.replay(s.traces()["trace_id"][0].as_py())
        assert rep.steps == 21

        def alice(step):
            return {v["variable"]: v for v in rep.state(step).variables.to_pylist()}["alice.balance"]

        assert [alice(i)["value"] for i in (0, 8, 9, 12, 13, 20)] == ["1000", "1000", "900", "900", "800", "800"]
        assert alice(13)["changed"] and not alice(12)["changed"]
        st = rep.state(13)  # the second write: it races the first write and the first read
        assert {(r["partner_id"][:8], r["kind"], r["partner_first"]) for r in st.races.to_pylist()} == \
            {("1907e678", "write-write", True), ("f88d6069", "read-write", True)}
        # the main context, both transfers live at step 9; the first transfer ends at step 11
        assert len(rep.state(9).live) == 3 and len(rep.state(12).live) == 2
        assert rep.racing_steps.tolist() == [5, 8, 9, 13]
        with pytest.raises(IndexError):
            rep.state(21)


def test_a_capped_listing_marks_the_first_pairs_and_says_how_many_there_are(tmp_path):
    t = Trace()
    for i in range(4):  # four writers of x in four contexts, nothing ordering them: 6 write-write pairs
        t.ev(f"w{i}", f"c{i}", sc("x", "Write", "a.py:1", None, i))
    with t.session(tmp_path) as s:
        full, capped = s.replay("T"), s.replay("T", max_pairs=2)
        assert (full.pairs_marked, full.pairs_total) == (6, 6)
        assert (capped.pairs_marked, capped.pairs_total) == (2, 6)
        assert sum(len(capped.state(i).races) for i in range(4)) == 2 * 2
        assert sum(len(full.state(i).races) for i in range(4)) == 6 * 2
