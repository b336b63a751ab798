"""The dashboard's figures (raceway_core/analysis/dashboard.py) against a hand-checked small
case and a brute-force reference that reads the sample files in plain Python."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from raceway_core.analysis.dashboard import ACTIVITY_BUCKETS, edges_125
from raceway_core.session import TraceSession

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ["distributed-orders.jsonl", "slow-api.jsonl", "original-sdk-distributed.jsonl", "banking-unsafe.jsonl"]
MS = 1_000_000


# -- a hand-checked case --------------------------------------------------------------------
def ev(i, trace, ms, kind, fields=None, service="api", thread="t1", span=None, dur_ns=None):
    base = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    ts = base + dt.timedelta(microseconds=ms * 1000)
    return {"id": i, "trace_id": trace, "parent_id": None, "timestamp": ts.isoformat(),
            "kind": {kind: fields or {}},
            "metadata": {"thread_id": thread, "process_id": 1, "service_name": service, "environment": "test",
                         "tags": {}, "duration_ns": dur_ns, "distributed_span_id": span, "upstream_span_id": None},
            "causality_vector": [], "lock_set": []}


def req(method="GET"):
    return {"method": method, "url": "/x", "headers": {}, "body": None}


def resp(status, ms):
    return {"status": status, "headers": {}, "body": None, "duration_ms": ms}


@pytest.fixture
def small(tmp_path):
    """Trace A: a request (span s1) whose work runs 1-31 ms and whose 500 response comes at 35 ms:
    35 ms. Trace B: a 3 ms request (span s2, 100-103 ms), then an Error at 104 ms (other thread)."""
    events = [
        ev("a1", "A", 0, "HttpRequest", req(), span="s1"),
        ev("a2", "A", 1, "FunctionCall", {"function_name": "work", "module": "m", "args": [], "file": "w.py",
                                          "line": 1}, span="s1", dur_ns=30 * MS),
        ev("a3", "A", 35, "HttpResponse", resp(500, 35), span="s1", dur_ns=35 * MS),
        ev("b1", "B", 100, "HttpRequest", req(), service="web", span="s2"),
        ev("b2", "B", 103, "HttpResponse", resp(200, 3), service="web", span="s2", dur_ns=3 * MS),
        ev("b3", "B", 104, "Error", {"error_type": "E", "message": "boom", "stack_trace": []}, service="web",
           thread="t2"),
    ]
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([path]) as s:
        yield s


def test_small_case_by_hand(small):
    d = small.dashboard()
    t = d.totals
    assert (t.traces, t.events, t.services, t.threads, t.errors) == (2, 6, 2, 2, 2)  # a 500 and an Error
    assert (t.races, t.critical_races, t.anomalies) == (0, 0, 0)
    h = d.latency
    assert h.requests == 2 and h.max_ms == 35.0 and h.p50_ms == 19.0  # the mean of 3 and 35: two samples
    assert h.edges == (2 * MS, 5 * MS, 10 * MS, 20 * MS, 50 * MS) and h.counts == (1, 0, 0, 1)
    # the slowest trace first: A spans 0-35 ms, B 100-104 ms (the Error has no duration)
    assert [(r["trace_id"], r["duration_ms"], r["events"], r["first_id"]) for r in d.slowest.to_pylist()] == \
        [("A", 35.0, 3, "a1"), ("B", 4.0, 3, "b1")]
    a = d.activity
    assert a.end_ns - a.start_ns == 104 * MS and sum(a.counts) == 6 and len(a.counts) == ACTIVITY_BUCKETS
    # 120 buckets of (104 ms + 1 ns) / 120 = 0.8667 ms: 0 and 1 ms in buckets 0 and 1, 35 ms in 40, 100-104 ms in 115-119
    assert {i: n for i, n in enumerate(a.counts) if n} == {0: 1, 1: 1, 40: 1, 115: 1, 118: 1, 119: 1}


def test_small_case_one_trace(small):
    d = small.dashboard("B")
    assert (d.totals.traces, d.totals.events, d.totals.errors, d.totals.threads) == (1, 3, 1, 2)
    assert d.latency.requests == 1 and d.latency.counts == (1,) and d.latency.edges == (2 * MS, 5 * MS)
    assert d.slowest.to_pylist()[0]["id"] == "b2"  # its operations by duration: the response's 3 ms
    assert d.critical is not None and d.critical.span_ms == 4.0


def test_edges_cover_the_range():
    assert edges_125(12 * MS, 419 * MS) == [10 * MS, 20 * MS, 50 * MS, 100 * MS, 200 * MS, 500 * MS]
    assert edges_125(0, 0) == [0, 1_000]  # under 1 µs: the bucket from 0
    assert edges_125(5 * MS, 5 * MS) == [5 * MS, 10 * MS]  # an edge belongs to the bucket it starts
    assert edges_125(10, 2 ** 62)[:2] == [0, 1_000] and edges_125(10, 2 ** 62)[-2:] == [5 * 10 ** 17, 2 ** 63 - 1]


def test_a_garbage_duration_lands_in_an_open_bucket(tmp_path):
    """A request with a call claiming 50 years (the loader takes up to 100): counted in the last,
    open-ended bucket, past 5e17 ns."""
    events = [ev("a1", "A", 0, "HttpRequest", req(), span="s1"),
              ev("a2", "A", 5, "HttpResponse", resp(200, 5), span="s1", dur_ns=5 * MS),
              ev("b1", "B", 0, "HttpRequest", req(), span="s2"),
              ev("b2", "B", 9, "FunctionCall", {"function_name": "f"}, span="s2", dur_ns=50 * 365 * 86_400 * 10 ** 9)]
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with TraceSession.open([path]) as s:
        h = s.dashboard(analysed=False).latency
    assert h.requests == 2 and sum(h.counts) == 2 and h.counts[0] == 1 and h.counts[-1] == 1
    assert h.edges[0] == 5 * MS and h.edges[-1] == 2 ** 63 - 1


def test_without_the_analysis_nothing_is_analysed(small):
    d = small.dashboard(analysed=False)
    assert not small.analysed  # neither used nor started
    assert d.totals.events == 6 and d.totals.races is None and d.races is None and d.anomalies is None
    assert d.latency.requests == 2


# -- a brute-force reference over the samples -------------------------------------------------
def ts_ns(s: str) -> int:
    """RFC 3339 with up to 9 fraction digits, to ns since the epoch (no float in between)."""
    date, _, rest = s.partition("T")
    for sign in ("+", "-", "Z"):
        if sign in rest:
            clock, _, off = rest.partition(sign)
            break
    whole, _, frac = clock.partition(".")
    base = dt.datetime.fromisoformat(f"{date}T{whole}+00:00")
    offset = 0
    if off:
        h, m = off.split(":")
        offset = (int(h) * 60 + int(m)) * 60 * (1 if sign == "+" else -1)
    return (int(base.timestamp()) - offset) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def duration_ns(e) -> int | None:
    kind = next(iter(e["kind"]))
    d = e["metadata"].get("duration_ns")
    if d is None and isinstance(e["kind"][kind], dict) and e["kind"][kind].get("duration_ms") is not None:
        d = round(e["kind"][kind]["duration_ms"] * MS)
    return d


def interval(e) -> tuple[int, int]:
    t, d = ts_ns(e["timestamp"]), duration_ns(e) or 0
    return (t - d, t) if next(iter(e["kind"])) == "HttpResponse" else (t, t + d)


def reference(events: list[dict], trace: str | None) -> dict:
    evs = [e for e in events if trace is None or e["trace_id"] == trace]
    kind = lambda e: next(iter(e["kind"]))  # noqa: E731
    spans = defaultdict(list)
    for e in evs:
        key = e["metadata"].get("distributed_span_id") or "context:" + (e["metadata"].get("thread_id") or "")
        spans[(e["trace_id"], e["metadata"].get("service_name"), key)].append(e)
    lat = sorted(max(interval(e)[1] for e in g) - min(interval(e)[0] for e in g)
                 for g in spans.values() if any(kind(e) == "HttpRequest" for e in g))
    traces = defaultdict(list)
    for e in evs:
        traces[e["trace_id"]].append(e)
    span = {t: max(interval(e)[1] for e in g) - min(interval(e)[0] for e in g) for t, g in traces.items()}
    ts = [ts_ns(e["timestamp"]) for e in evs]
    lo, hi = min(ts), max(ts)
    activity = [0] * ACTIVITY_BUCKETS
    for t in ts:
        activity[min(ACTIVITY_BUCKETS - 1, (t - lo) * ACTIVITY_BUCKETS // (hi - lo + 1))] += 1
    series = [0] + [m * 10 ** k for k in range(3, 13) for m in (1, 2, 5)]
    hist = defaultdict(int)
    for x in lat:
        hist[max(e for e in series if e <= x)] += 1
    return {
        "totals": (len(traces), len(evs), len({e["metadata"].get("service_name") for e in evs}),
                   len({e["metadata"].get("thread_id") for e in evs}),
                   sum(1 for e in evs if kind(e) == "Error"
                       or (kind(e) == "HttpResponse" and (e["kind"]["HttpResponse"].get("status") or 0) >= 400))),
        "latencies": lat, "hist": dict(hist),
        "slowest": sorted(span.items(), key=lambda kv: (-kv[1], kv[0]))[:5],
        "activity": activity,
    }


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_against_a_brute_force_reference(name):
    path = ROOT / "sample_traces" / name
    events = []
    for line in path.read_text().splitlines():
        if line.strip():
            obj = json.loads(line)
            events += obj["events"] if "events" in obj else [obj]  # a POST body per line, or one event
    with TraceSession.open([path]) as s:
        scopes = [None] + sorted({e["trace_id"] for e in events})[:2]
        for trace in scopes:
            ref = reference(events, trace)
            d = s.dashboard(trace)
            t = d.totals
            assert (t.traces, t.events, t.services, t.threads, t.errors) == ref["totals"], (name, trace)
            h = d.latency
            assert h.requests == len(ref["latencies"])
            if ref["latencies"]:
                assert h.max_ms == pytest.approx(ref["latencies"][-1] / MS)
                lats = ref["latencies"]
                mid = (len(lats) - 1) / 2  # quantile_cont: linear between the two middle ones
                assert h.p50_ms == pytest.approx((lats[math.floor(mid)] + lats[math.ceil(mid)]) / 2 / MS)
                got = {lo: n for lo, n in zip(h.edges, h.counts) if n}
                assert got == ref["hist"]
                assert sum(h.counts) == h.requests
            if trace is None:
                assert [(r["trace_id"], round(r["duration_ms"] * MS)) for r in d.slowest.to_pylist()] == \
                    ref["slowest"]
            assert list(d.activity.counts) == ref["activity"]
            # races and anomalies are the analyses' own: the dashboard shows their counts and worst rows
            rep = s.races(trace, max_pairs=0)
            assert t.races == rep.pair_count and t.race_groups == rep.groups.num_rows
            assert t.critical_races == sum(g["count"] for g in rep.groups.to_pylist() if g["severity"] == "critical")
            assert d.races.to_pylist() == rep.groups.slice(0, 5).to_pylist()
            assert t.anomalies == s.anomalies(trace).num_rows


def test_distributed_orders_by_hand():
    """Read from the file: 2 traces, 94 events, 5 services, 17 thread ids; the payments spans
    take 320-327 ms, so 11 of the 14 requests fall in 200-500 ms (gateway, orders, frontend
    and payments), the three inventory ones in 10-20 (two) and 20-50 ms (one)."""
    with TraceSession.open([ROOT / "sample_traces" / "distributed-orders.jsonl"]) as s:
        d = s.dashboard()
        t = d.totals
        assert (t.traces, t.events, t.services, t.threads, t.errors) == (2, 94, 5, 17, 0)
        assert (t.races, t.critical_races) == (5, 1)
        assert d.races.to_pylist()[0]["variable"] == "stock.widget" and d.races.to_pylist()[0]["severity"] == "critical"
        labels = dict(zip(d.latency.edges, d.latency.counts))
        assert labels == {10 * MS: 2, 20 * MS: 1, 50 * MS: 0, 100 * MS: 0, 200 * MS: 11}
        assert d.slowest.to_pylist()[0]["trace_id"].startswith("3fd52b05")
