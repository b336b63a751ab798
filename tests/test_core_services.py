"""The Services view's numbers (TraceSession.services / service_traces) against a
brute-force reference over the raw events, and hand-checked on the bundled sample."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from raceway_core import TraceSession, synth
from raceway_core.analysis import service_stats as _service_stats
from raceway_core.causality.engine import EngineOptions
from reference import Reference, field, kind_of
from test_causality_rules import Trace, sc

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, events: list[dict]) -> Path:
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return p


def _failure(e: dict) -> bool:
    k = kind_of(e)
    return k == "Error" or (k == "HttpResponse" and (field(e, "status") or 0) >= 400)


def _expected(events: list[dict], trace: str | None) -> dict[str, dict]:
    """Per service, computed from the events one by one."""
    ref = Reference(events, trust_clocks=False)
    rows = [i for i, e in enumerate(events) if trace is None or e["trace_id"] == trace]
    out: dict[str, dict] = defaultdict(lambda: {"traces": set(), "events": 0, "failures": 0})
    spans: dict[tuple, list[int]] = defaultdict(list)
    for i in rows:
        e = events[i]
        m = e["metadata"]
        s = m.get("service_name")
        if s is None:
            continue
        o = out[s]
        o["traces"].add(e["trace_id"])
        o["events"] += 1
        o["failures"] += _failure(e)
        span = m.get("distributed_span_id") or ("ctx", m.get("thread_id"))
        spans[(e["trace_id"], s, span)].append(i)
    lat = {}
    for key, members in spans.items():
        iv = [ref.interval(i) for i in members]
        up = {events[i]["metadata"].get("upstream_span_id") for i in members} - {None}
        lat[key] = (max(b for _, b in iv) - min(a for a, _ in iv), min(up) if up else None)
    by_service = defaultdict(lambda: {"ns": [], "self": []})
    for (t, s, span), (ns, _) in lat.items():
        kids = sum(kns for (kt, ks, _), (kns, kup) in lat.items()
                   if kt == t and ks != s and kup is not None and kup == span)
        by_service[s]["ns"].append(ns)
        by_service[s]["self"].append(max(ns - kids, 0))
    by_id = {e["id"]: e for e in events}
    races = Counter()
    for a, b in ref.races():
        ea, eb = by_id[a], by_id[b]
        if trace is not None and not (ea["trace_id"] == eb["trace_id"] == trace):
            continue
        for s in {ea["metadata"].get("service_name"), eb["metadata"].get("service_name")} - {None}:
            races[s] += 1
    result = {}
    for s, o in out.items():
        ns = np.array(by_service[s]["ns"], dtype=float)
        result[s] = {"traces": len(o["traces"]), "events": o["events"], "failures": o["failures"],
                     "spans": len(ns), "p50_ms": np.percentile(ns, 50) / 1e6, "p95_ms": np.percentile(ns, 95) / 1e6,
                     "max_ms": ns.max() / 1e6, "self_p50_ms": np.percentile(by_service[s]["self"], 50) / 1e6,
                     "races": races[s]}
    return result


def _check(session: TraceSession, events: list[dict], trace: str | None) -> None:
    want = _expected(events, trace)
    got = {r["service"]: r for r in session.services(trace).to_pylist()}
    assert set(got) == set(want)
    for s, w in want.items():
        g = got[s]
        for k in ("traces", "events", "failures", "spans", "races"):
            assert g[k] == w[k], (s, k)
        for k in ("p50_ms", "p95_ms", "max_ms", "self_p50_ms"):
            assert g[k] == pytest.approx(w[k], abs=1e-6), (s, k)
    # both ways of counting races by service are exact on their own (the pane uses whichever applies)
    cur = session.store.cursor()
    try:
        want_races = {s: w["races"] for s, w in want.items() if w["races"]}
        assert _service_stats._by_counting(cur, session.engine, trace) == want_races
        by_groups = _service_stats._by_groups(cur, session.engine, trace)
        assert by_groups is None or by_groups == want_races
    finally:
        cur.close()
    # callers and callees are the dependency edges of the scope
    deps = session.dependencies(trace).to_pylist()
    for s, g in got.items():
        assert set(g["callers"]) == {d["from"] for d in deps if d["to"] == s}
        assert set(g["callees"]) == {d["to"] for d in deps if d["from"] == s}


@pytest.mark.parametrize("seed", range(1, 7))
def test_services_match_the_reference_on_synthetic_traces(tmp_path, seed):
    cfg = synth.SynthConfig(traces=4, contexts=(2, 3), events_per_context=(4, 8), shared_skus=2,
                            unlocked_ratio=0.5, clock_style="none", seed=seed)
    events = list(synth.generate(cfg))
    with TraceSession.open([_write(tmp_path, events)],
                           options=EngineOptions(variable_scope="global", stored_pairs=2)) as s:
        _check(s, events, None)
        for t in sorted({e["trace_id"] for e in events}):
            _check(s, events, t)
        # each service's traces: its events there and its slowest span
        for svc in s.services().to_pylist():
            rows = s.service_traces(svc["service"]).to_pylist()
            mine = Counter(e["trace_id"] for e in events if e["metadata"]["service_name"] == svc["service"])
            assert {r["trace_id"]: r["events"] for r in rows} == dict(mine)
            assert max(r["max_ms"] for r in rows) == pytest.approx(svc["max_ms"])
            assert [r["max_ms"] for r in rows] == sorted((r["max_ms"] for r in rows), reverse=True)


def test_races_when_one_location_is_in_two_services(tmp_path):
    """Services A and B write x at the same location, C reads it elsewhere; three
    unordered contexts: pairs (a, b), (a, c), (b, c). Each service is in two of them
    (a count by race group would give A and B three: the shared location's groups)."""
    t = Trace()
    t.ev("a", "ta", sc("x", "Write", "shared.py:1"), parent=None, svc="A")
    t.ev("b", "tb", sc("x", "Write", "shared.py:1"), parent=None, svc="B")
    t.ev("c", "tc", sc("x", "Read", "c.py:9"), parent=None, svc="C")
    t.ev("d", "td", sc("y", "Write", "d.py:1"), parent=None, svc="D")
    t.ev("e", "te", sc("y", "Write", "e.py:1"), parent=None, svc="E")
    s = t.session(tmp_path, variable_scope="global")
    assert s.counts()["races"] == 4
    assert s.services(races=False)["races"].null_count == 5  # not counted yet for this analysis
    got = {r["service"]: r["races"] for r in s.services().to_pylist()}
    assert got == {"A": 2, "B": 2, "C": 2, "D": 1, "E": 1}
    assert {r["service"]: r["races"] for r in s.services("T").to_pylist()} == got
    assert {r["service"]: r["races"] for r in s.services(races=False).to_pylist()} == got  # kept


def test_spans_fall_back_to_contexts_and_self_time_subtracts_called_spans(tmp_path):
    """api (no span ids: one span per context) 0-100 ms and 10-30 ms; db's span (upstream
    none) 40-90 ms; svc's span s1 0-80 ms calls s2 (other service, 10-40 ms) and s3
    (20-60 ms): self = max(80 - 30 - 40, 0) = 10 ms."""
    ms = 1_000_000
    t = Trace()
    t.ev("a1", "w1", {"FunctionCall": {"function_name": "f"}}, at=0, dur=100 * ms, svc="api", parent=None)
    t.ev("a2", "w2", {"FunctionCall": {"function_name": "f"}}, at=10_000, dur=20 * ms, svc="api", parent=None)
    t.ev("p1", "p", {"FunctionCall": {"function_name": "g"}}, at=0, dur=80 * ms, svc="svc", span="s1", parent=None)
    t.ev("k1", "k", {"FunctionCall": {"function_name": "h"}}, at=10_000, dur=30 * ms, svc="kid", span="s2",
         upstream="s1", parent=None)
    t.ev("k2", "k2", {"FunctionCall": {"function_name": "h"}}, at=20_000, dur=40 * ms, svc="kid", span="s3",
         upstream="s1", parent=None)
    s = t.session(tmp_path)
    got = {r["service"]: r for r in s.services().to_pylist()}
    assert (got["api"]["spans"], got["api"]["p50_ms"], got["api"]["max_ms"]) == (2, 60.0, 100.0)
    assert (got["svc"]["p50_ms"], got["svc"]["self_p50_ms"]) == (80.0, 10.0)
    assert (got["kid"]["spans"], got["kid"]["p50_ms"], got["kid"]["self_p50_ms"]) == (2, 35.0, 35.0)


def test_distributed_orders_hand_checked():
    """Read from sample_traces/distributed-orders.jsonl by hand (timestamps of each span's
    first request and last response; HttpResponse metadata.duration_ns is 0 there):
    payments' spans take 320.391828, 323.613906 and 327.098126 ms (p50 323.61), less
    inventory's spans they call (12.609116, 12.173726, 21.723336 ms): self times
    307.782712, 311.440180, 305.374790 (p50 307.78), the largest of any service: payments
    spends its time in bank.authorize (~300 ms). By latency frontend is slowest (its
    spans hold the whole requests: 419.157021 and 361.330580 ms, p50 390.24), then gateway
    372.56, orders 330.26, payments 323.61, inventory 12.61. stock.widget races 5 times:
    inventory's two writes race each other and the other request's inventory read (3),
    and each orders read races the write of the other request's inventory call (2)."""
    with TraceSession.open([ROOT / "sample_traces" / "distributed-orders.jsonl"]) as s:
        rows = s.services().to_pylist()
        got = {r["service"]: r for r in rows}
        assert rows[0]["service"] == "payments"  # slowest by self time: listed first
        p = got["payments"]
        assert (p["traces"], p["events"], p["spans"], p["failures"]) == (2, 18, 3, 0)
        assert p["p50_ms"] == pytest.approx(323.613906)
        assert p["max_ms"] == pytest.approx(327.098126)
        assert p["self_p50_ms"] == pytest.approx(307.782712)
        assert (p["callers"], p["callees"]) == (["orders"], ["inventory"])
        assert got["frontend"]["p50_ms"] == pytest.approx((419.157021 + 361.330580) / 2)
        assert sorted(got, key=lambda k: -got[k]["p50_ms"]) == ["frontend", "gateway", "orders", "payments",
                                                                 "inventory"]
        assert {k: r["races"] for k, r in got.items()} == {"frontend": 0, "gateway": 0, "orders": 2, "payments": 0,
                                                           "inventory": 5}
        assert got["frontend"]["callers"] == [] and got["frontend"]["callees"] == ["gateway"]
