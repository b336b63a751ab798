"""The Hotspots view's tables (TraceSession.hotspots, lock_events, function_calls) against
a brute-force reference over the raw events, and hand-checked on the bundled samples."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from raceway_core import TraceSession, synth
from raceway_core.causality.engine import EngineOptions
from reference import WRITES, Reference, field, kind_of

ROOT = Path(__file__).resolve().parent.parent


def _events(seed: int) -> list[dict]:
    cfg = synth.SynthConfig(traces=5, contexts=(2, 4), events_per_context=(5, 10), shared_skus=2,
                            unlocked_ratio=0.4, clock_style="none", seed=seed)
    return list(synth.generate(cfg))


def _expected(events: list[dict], trace: str | None) -> dict:
    ref = Reference(events, trust_clocks=False)
    rows = [i for i, e in enumerate(events) if trace is None or e["trace_id"] == trace]
    by_id = {e["id"]: e for e in events}
    variables = defaultdict(Counter)
    for a, b in ref.races():
        ea, eb = by_id[a], by_id[b]
        if trace is None or ea["trace_id"] == eb["trace_id"] == trace:
            variables[field(ea, "variable")]["races"] += 1
    functions = defaultdict(lambda: {"calls": 0, "total": 0, "max": None})
    services = defaultdict(lambda: {"events": 0, "traces": set(), "contexts": set()})
    locks = defaultdict(lambda: {"acquisitions": 0, "contexts": set(), "handoffs": 0, "holds": []})
    order = lambda i: (ref.t[i], i)  # noqa: E731
    for i in rows:
        e = events[i]
        k = kind_of(e)
        if k == "StateChange":
            v = variables[field(e, "variable")]
            v["accesses"] += 1
            v["writes"] += field(e, "access_type") in WRITES
        elif k == "FunctionCall":
            f = functions[field(e, "function_name")]
            d = e["metadata"].get("duration_ns")
            f["calls"] += 1
            f["total"] += d or 0
            if d is not None:
                f["max"] = d if f["max"] is None else max(f["max"], d)
        elif k == "LockAcquire":
            lk = locks[field(e, "lock_id")]
            lk["acquisitions"] += 1
            lk["contexts"].add(ref.ctx[i])
            rels = [j for j, x in enumerate(events) if kind_of(x) == "LockRelease"
                    and field(x, "lock_id") == field(e, "lock_id") and order(j) < order(i)]
            if rels and ref.ctx[max(rels, key=order)] != ref.ctx[i]:  # rule 4's edge joins two contexts
                lk["handoffs"] += 1
        s = e["metadata"].get("service_name")
        services[s]["events"] += 1
        services[s]["traces"].add(e["trace_id"])
        services[s]["contexts"].add(ref.ctx[i])
    for ctx, lst in ref.by_ctx.items():  # holds: an acquire, then that lock's next event in the context a release
        if trace is not None and ctx[0] != trace:
            continue
        last = {}
        for i in lst:
            k = kind_of(events[i])
            if k in ("LockAcquire", "LockRelease"):
                lid = field(events[i], "lock_id")
                if k == "LockRelease" and lid in last and kind_of(events[last[lid]]) == "LockAcquire":
                    locks[lid]["holds"].append(ref.t[i] - ref.t[last[lid]])
                last[lid] = i
    return {"variables": variables, "functions": functions, "services": services, "locks": locks}


def _check(s: TraceSession, events: list[dict], trace: str | None) -> None:
    want = _expected(events, trace)
    h = s.hotspots(trace, top=1000)
    got = {r["variable"]: r for r in h.variables.to_pylist()}
    assert {v: (r["accesses"], r["writes"], r["races"]) for v, r in got.items()} == \
        {v: (c["accesses"], c["writes"], c["races"]) for v, c in want["variables"].items()}
    got = {r["function"]: r for r in h.functions.to_pylist()}
    assert set(got) == set(want["functions"])
    for name, f in want["functions"].items():
        assert got[name]["calls"] == f["calls"]
        assert got[name]["total_ms"] == pytest.approx(f["total"] / 1e6)
        assert got[name]["max_ms"] == (None if f["max"] is None else pytest.approx(f["max"] / 1e6))
    assert {r["service"]: (r["events"], r["traces"], r["contexts"]) for r in h.services.to_pylist()} == \
        {sv: (c["events"], len(c["traces"]), len(c["contexts"])) for sv, c in want["services"].items()}
    got = {r["lock_id"]: r for r in h.locks.to_pylist()}
    assert set(got) == set(want["locks"])
    for lid, lk in want["locks"].items():
        g = got[lid]
        assert (g["acquisitions"], g["contexts"], g["handoffs"]) == (lk["acquisitions"], len(lk["contexts"]),
                                                                     lk["handoffs"]), lid
        assert g["max_hold_ms"] == (pytest.approx(max(lk["holds"]) / 1e6) if lk["holds"] else None)
        assert g["total_hold_ms"] == pytest.approx(sum(lk["holds"]) / 1e6)
        ev = s.lock_events(lid, trace).to_pylist()
        assert sum(1 for r in ev if r["kind"] == "LockAcquire") == lk["acquisitions"]
        assert sum(r["handoff"] for r in ev) == lk["handoffs"]
        assert sorted(r["hold_ms"] for r in ev if r["hold_ms"] is not None) == \
            pytest.approx(sorted(x / 1e6 for x in lk["holds"]))


@pytest.mark.parametrize("seed", range(1, 6))
def test_hotspots_match_the_reference_on_synthetic_traces(tmp_path, seed):
    events = _events(seed)
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([p], options=EngineOptions(variable_scope="global", stored_pairs=2)) as s:
        _check(s, events, None)
        for t in sorted({e["trace_id"] for e in events})[:3]:
            _check(s, events, t)


@pytest.mark.parametrize("top", [1, 2])
def test_each_table_keeps_the_leaders_of_every_measure(tmp_path, top):
    """With a small ``top``: exactly the union of the first ``top`` rows by each measure
    (ties by name), so a sort by any measure in the view shows the true leaders."""
    events = _events(3)
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([p], options=EngineOptions(variable_scope="global")) as s:
        full, small = s.hotspots(top=1000), s.hotspots(top=top)
        for table, name, measures in [("variables", "variable", ["accesses", "writes", "races"]),
                                      ("functions", "function", ["calls", "total_ms"]),
                                      ("services", "service", ["events"]),
                                      ("locks", "lock_id", ["handoffs", "max_hold_ms", "acquisitions"])]:
            rows = getattr(full, table).to_pylist()
            want = set()
            for m in measures:
                ranked = sorted(rows, key=lambda r: (r[m] is None, -(r[m] or 0), r[name]))
                want |= {r[name] for r in ranked[:top]}
            assert {r[name] for r in getattr(small, table).to_pylist()} == want, table


def test_samples_hand_checked():
    """deadlock-transfers (read by hand): account:bob is taken 17 times by two contexts and
    changes hands 10 times; the longest hold, 37.65 ms, is account:alice's.
    distributed-orders: bank.authorize runs 3 times for 903.0 ms in all (300.14 + 300.69
    + 302.17), stock.widget is accessed 6 times (2 writes) with 5 races."""
    with TraceSession.open([ROOT / "sample_traces" / "deadlock-transfers.jsonl"]) as s:
        locks = {r["lock_id"]: r for r in s.hotspots().locks.to_pylist()}
        assert (locks["account:bob"]["acquisitions"], locks["account:bob"]["contexts"],
                locks["account:bob"]["handoffs"]) == (17, 2, 10)
        assert max(locks.values(), key=lambda r: r["max_hold_ms"])["lock_id"] == "account:alice"
        assert locks["account:alice"]["max_hold_ms"] == pytest.approx(37.653725)
    with TraceSession.open([ROOT / "sample_traces" / "distributed-orders.jsonl"]) as s:
        h = s.hotspots()
        f = h.functions.to_pylist()[0]
        assert (f["function"], f["calls"]) == ("bank.authorize", 3)
        assert f["total_ms"] == pytest.approx((300143782 + 300688185 + 302170147) / 1e6)
        v = {r["variable"]: r for r in h.variables.to_pylist()}["stock.widget"]
        assert (v["accesses"], v["writes"], v["races"]) == (6, 2, 5)
        calls = s.function_calls("bank.authorize").to_pylist()
        assert [c["duration_ms"] for c in calls] == pytest.approx([302.170147, 300.688185, 300.143782])


@pytest.mark.parametrize("scope", ["service", "instance", "auto"])
def test_other_variable_scopes(tmp_path, scope):
    """Under every variable scope the tables name variables as the race analysis does, so
    the races per variable add up to the total; under the service scope a pair never joins
    two services, so the races per service add up to it too."""
    events = _events(6)
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([p], options=EngineOptions(variable_scope=scope)) as s:
        total = s.counts()["races"]
        assert total > 0
        h = s.hotspots(top=1000)
        assert sum(h.variables["races"].to_pylist()) == total
        names = {e["kind"]["StateChange"]["variable"] for e in events if "StateChange" in e["kind"]}
        assert set(h.variables["name"].to_pylist()) == names
        if scope == "service":
            assert all("::" in v for v in h.variables["variable"].to_pylist())
            assert sum(s.service_races().values()) == total
