"""The dashboard: what a person wants to see first, for all traces or one.

Totals, the worst race groups, the slowest traces (for one trace: its slowest
operations), the top anomalies, a latency histogram of requests and a count of
events over time. Every figure is a DuckDB aggregate (nothing loops over events
in Python), so the dashboard costs a few scans of the store at any size.

A request is an HTTP span: the events of one (trace, span id, service) of which at
least one is an HttpRequest (events without a span id: their context instead). Its
latency is the span's wall-clock time (``raceway_core.intervals``), as the
dependencies analysis measures a callee.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from raceway_core import intervals as _intervals

TOP = 5  # rows per list
SERIES = [0] + [m * 10 ** k for k in range(3, 18) for m in (1, 2, 5)]  # latency buckets: 0, 1 µs ... 5e17 ns
INT64_MAX = 2 ** 63 - 1
ACTIVITY_BUCKETS = 120  # events over time: the Sparkline widget fits them to its width
FAILED = "(http_status >= 400 OR kind = 'Error')"  # as the trace list's failures


@dataclass(frozen=True)
class Totals:
    traces: int
    events: int
    services: int
    threads: int  # distinct thread ids
    races: int | None  # racing pairs (exact); None: not analysed yet
    critical_races: int | None  # of which write-write
    race_groups: int | None  # race groups (variable, kind, locations)
    errors: int  # HTTP 4xx / 5xx responses and Error events
    anomalies: int | None


@dataclass(frozen=True)
class Histogram:
    """Request latencies in buckets of a 1-2-5 series of nanoseconds: ``counts[i]`` requests
    took ``edges[i]`` ns or more and less than ``edges[i + 1]``. Only the buckets from the
    fastest request's to the slowest's are kept."""
    edges: tuple[int, ...]  # len(counts) + 1
    counts: tuple[int, ...]
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class Activity:
    """Events per time bucket: ``counts[i]`` events have ts in [start + i w, start + (i + 1) w)
    with w = (end_ns - start_ns + 1) / len(counts)."""
    start_ns: int | None
    end_ns: int | None
    counts: tuple[int, ...]


@dataclass(frozen=True)
class CriticalSummary:
    path_ms: float
    span_ms: float
    percentage: float | None
    steps: int


@dataclass(frozen=True)
class Dashboard:
    trace_id: str | None  # None: all traces
    totals: Totals
    races: pa.Table | None  # (None: not analysed yet) the worst race groups: variable, severity, kind, locations, count, example ids
    slowest: pa.Table  # all traces: trace_id, duration_ms, events, services, first_id; one trace: its slowest events
    anomalies: pa.Table | None  # (None: not analysed yet) the largest anomalies (the anomalies analysis's columns)
    latency: Histogram
    activity: Activity
    critical: CriticalSummary | None  # one trace: its critical path


def edges_125(lo_ns: int, hi_ns: int) -> list[int]:
    """Bucket edges of SERIES (0, 1 µs, 2, 5, 10, 20, 50 ... ns) covering [lo_ns, hi_ns]: the
    first edge is <= lo_ns, the last > hi_ns (INT64_MAX past SERIES: a garbage duration)."""
    edges = SERIES + [INT64_MAX]
    first = max(i for i, e in enumerate(edges) if e <= max(lo_ns, 0))
    last = next((i for i, e in enumerate(edges) if e > hi_ns), len(edges) - 1)
    return edges[first:last + 1]


def dashboard(session, trace_id: str | None = None, top: int = TOP, analysed: bool = True) -> Dashboard:
    """The dashboard of all traces (``trace_id`` None) or of one trace. ``analysed`` False: only
    what the stored events say (the analysis is neither used nor started): races, anomalies
    and the critical path are None."""
    q = session._q
    t = {"t": trace_id} if trace_id else None
    where = "WHERE trace_id = $t" if trace_id else ""
    c = q(f"""SELECT count(DISTINCT trace_id) AS traces, count(*) AS events, count(DISTINCT service) AS services,
                     count(DISTINCT thread_id) AS threads, count(*) FILTER (WHERE {FAILED}) AS errors
              FROM events {where}""", t).to_pylist()[0]
    races = top_anomalies = crit_summary = None
    n_races = n_critical = n_groups = n_anomalies = None
    if analysed:
        session.engine  # the hb tables
        rep = session.races(trace_id=trace_id, max_pairs=0)
        groups = rep.groups
        n_races, n_groups, races = rep.pair_count, groups.num_rows, groups.slice(0, top)
        n_critical = int(sum(n for n, s in zip(groups["count"].to_pylist(), groups["severity"].to_pylist())
                             if s == "critical"))
        anomalies = session.anomalies(trace_id=trace_id)
        n_anomalies = anomalies.num_rows
        top_anomalies = anomalies.take(_worst_first(anomalies)[:top]) if anomalies.num_rows else anomalies
        if trace_id:
            crit = q("SELECT path_ns, span_ns, percentage, steps FROM hb.critical_summary WHERE trace_id = $t",
                     t).to_pylist()
            crit_summary = (CriticalSummary(float(crit[0]["path_ns"]) / 1e6, float(crit[0]["span_ns"]) / 1e6,
                                            crit[0]["percentage"], crit[0]["steps"]) if crit else None)
    totals = Totals(c["traces"], c["events"], c["services"], c["threads"], n_races, n_critical, n_groups,
                    c["errors"], n_anomalies)
    if trace_id:
        slowest = q(f"""
            SELECT id, kind, service, thread_id, function_name, variable, location, http_method, http_status,
                   duration_ns / 1e6 AS duration_ms
            FROM events WHERE trace_id = $t AND coalesce(duration_ns, 0) > 0
            ORDER BY duration_ns DESC, seq LIMIT {int(top)}""", t)
    else:
        slowest = q(f"""
            SELECT trace_id, {_intervals.span_ns()} / 1e6 AS duration_ms, count(*) AS events,
                   list(DISTINCT service ORDER BY service) FILTER (WHERE service IS NOT NULL) AS services,
                   arg_min(id, seq) AS first_id
            FROM events GROUP BY trace_id ORDER BY duration_ms DESC, trace_id LIMIT {int(top)}""")
    return Dashboard(trace_id, totals, races, slowest, top_anomalies,
                     latency(session, trace_id), activity(session, trace_id), crit_summary)


def _worst_first(anomalies: pa.Table) -> list[int]:
    """Row indices by severity (critical first), then z (undefined last), then duration."""
    import pyarrow.compute as pc

    rank = pc.index_in(anomalies["severity"], value_set=pa.array(["critical", "warning", "minor"]))
    z = pc.fill_null(pc.cast(anomalies["z"], pa.float64()), float("-inf"))
    t = pa.table({"rank": rank, "z": z, "ms": anomalies["actual_ms"]})
    idx = pc.sort_indices(t, [("rank", "ascending"), ("z", "descending"), ("ms", "descending")])
    return idx.to_pylist()


def requests_sql(trace_filter: str = "") -> str:
    """One row per request (HTTP span): trace_id, service, span, ns."""
    span = "coalesce(span_id, 'context:' || coalesce(thread_id, ''))"
    return f"""
        SELECT trace_id, service, {span} AS span, {_intervals.span_ns()} AS ns
        FROM events WHERE true {trace_filter}
        GROUP BY trace_id, service, {span} HAVING bool_or(kind = 'HttpRequest')"""




def latency(session, trace_id: str | None = None) -> Histogram:
    """One pass over the requests: their figures and their count per bucket of SERIES,
    then only the buckets from the fastest request's to the slowest's are kept."""
    flt = "AND trace_id = $t" if trace_id else ""
    t = {"t": trace_id} if trace_id else None
    case = " ".join(f"WHEN ns < {e} THEN {i}" for i, e in enumerate(SERIES[1:]))
    rows = session._q(f"""
        WITH r AS ({requests_sql(flt)}),
        s AS (SELECT count(*) AS total, min(ns) AS lo, max(ns) AS hi, quantile_cont(ns, 0.5) / 1e6 AS p50,
                     quantile_cont(ns, 0.95) / 1e6 AS p95 FROM r),
        h AS (SELECT CASE {case} ELSE {len(SERIES) - 1} END AS b, count(*) AS n FROM r GROUP BY b)
        SELECT s.*, h.b, h.n FROM s LEFT JOIN h ON true ORDER BY h.b""", t).to_pylist()
    s = rows[0]
    if not s["total"]:
        return Histogram((), (), 0, None, None, None)
    edges = edges_125(int(s["lo"]), int(s["hi"]))
    first = SERIES.index(edges[0])
    counts = [0] * (len(edges) - 1)
    for r in rows:
        counts[r["b"] - first] = r["n"]
    return Histogram(tuple(edges), tuple(counts), s["total"], s["p50"], s["p95"], s["hi"] / 1e6)


def activity(session, trace_id: str | None = None, buckets: int = ACTIVITY_BUCKETS) -> Activity:
    where = "WHERE trace_id = $t" if trace_id else ""
    t = {"t": trace_id} if trace_id else None
    # the bucket width is a double: a span of years times the buckets overflows BIGINT
    rows = session._q(f"""
        WITH m AS (SELECT min(ts_ns) AS lo, max(ts_ns) AS hi FROM events {where})
        SELECT m.lo, m.hi,
               least({buckets - 1}, CAST(floor((e.ts_ns - m.lo) / (CAST(m.hi - m.lo + 1 AS DOUBLE) / {buckets}))
                                         AS BIGINT)) AS b, count(*) AS n
        FROM (SELECT ts_ns FROM events {where}) e, m GROUP BY ALL""", t).to_pylist()
    if not rows:
        return Activity(None, None, ())
    counts = [0] * buckets
    for row in rows:
        counts[row["b"]] = row["n"]
    return Activity(rows[0]["lo"], rows[0]["hi"], tuple(counts))
