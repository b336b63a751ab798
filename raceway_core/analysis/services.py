"""System-wide views over services, as the original Raceway server reports them:
the service catalogue, service health, a service's callers and callees, the
cross-service edges, hotspots and performance metrics.

Field names and types follow the original's JSON (cli/src/server.rs and its
storage backends); the values are ours: a cross-service call is a call edge or
a parent link of our causality engine (causality rules 5 and 2), one per
downstream span, where the original counts rows of its span-link table; and
durations are the session's (``TraceSession.traces``). Fields we add beside
the original's are named in each function.
"""

from __future__ import annotations

import math

from raceway_core.analysis import dependencies as _deps
from raceway_core.session import TraceSession

TOP = 10  # hotspot rows, as the original
SLOW_OPERATION_MS = 100.0  # event_performance.slow_operations: average above this (the original's)
BY_TYPE_LIMIT = 20


def _rows(session: TraceSession, sql: str, params=None) -> list[dict]:
    return session.sql(sql, params).to_pylist()


def _calls(session: TraceSession) -> str:
    """SQL of every cross-service call (see ``dependencies.calls_sql``), with the
    original's link type taken from the downstream span's first event."""
    session.engine  # hb tables
    return f"""
        SELECT c.*, CASE d.kind WHEN 'HttpRequest' THEN 'HttpCall' WHEN 'HttpResponse' THEN 'HttpCall'
                                WHEN 'DatabaseQuery' THEN 'DatabaseQuery' ELSE 'Custom' END AS link_type
        FROM ({_deps.calls_sql()}) c JOIN events d ON d.seq = c.dst_seq"""


# -- services ---------------------------------------------------------------------


def services(session: TraceSession) -> dict:
    """GET /api/services: every service that sent events, with its event and trace counts."""
    rows = _rows(session, """
        SELECT service AS name, count(*) AS event_count, count(DISTINCT trace_id) AS trace_count
        FROM events WHERE service IS NOT NULL GROUP BY service ORDER BY service""")
    return {"total_services": len(rows), "services": rows}


def service_health(session: TraceSession, window_minutes: int, now_ns: int) -> list[dict]:
    """GET /api/services/health: per service, its activity in the last ``window_minutes``.

    Every service is listed (as the original's PostgreSQL backend does): trace_count
    and avg_events_per_trace count its events in the window, status comes from the
    time since its last event (< 5 min healthy, < 30 min warning, else critical).
    """
    from raceway_core.server.queries import rfc3339  # (not at the top: the server package imports this module)

    cutoff = now_ns - window_minutes * 60 * 1_000_000_000
    rows = _rows(session, """
        SELECT service AS name, max(ts_ns) AS last_ns,
               count(DISTINCT trace_id) FILTER (WHERE ts_ns >= $cut) AS traces,
               count(*) FILTER (WHERE ts_ns >= $cut) AS events
        FROM events WHERE service IS NOT NULL GROUP BY service ORDER BY service""", {"cut": cutoff})
    out = []
    for r in rows:
        minutes = max(0.0, (now_ns - r["last_ns"]) / 60e9)
        status = "healthy" if minutes < 5 else "warning" if minutes < 30 else "critical"
        out.append({"name": r["name"], "status": status, "trace_count": r["traces"],
                    "last_activity": rfc3339(r["last_ns"]),
                    "avg_events_per_trace": r["events"] / r["traces"] if r["traces"] else 0.0,
                    "minutes_since_last_activity": round(minutes, 3)})
    return out


def service_dependencies(session: TraceSession, name: str) -> dict:
    """GET /api/services/{name}/dependencies: the services it calls and those calling it.

    As the original, each entry of ``called_by`` names the caller in its ``to``
    field. Ours besides: mean_ms and p95_ms, the callee's latency.
    """
    def side(where: str, other: str) -> list[dict]:
        return _rows(session, f"""
            SELECT {other} AS "to", count(*) AS total_calls, count(DISTINCT trace_id) AS trace_count,
                   {_deps.LATENCY}
            FROM ({_calls(session)}) WHERE {where} = $n
            GROUP BY {other} ORDER BY total_calls DESC, "to" """, {"n": name})

    return {"service_name": name, "calls_to": side("caller", "callee"), "called_by": side("callee", "caller")}


def distributed_edges(session: TraceSession) -> dict:
    """GET /api/distributed/edges: cross-service calls by (caller, callee, link type).
    Ours besides: mean_ms and p95_ms, the callee's latency."""
    edges = _rows(session, f"""
        SELECT caller AS from_service, callee AS to_service, link_type, count(*) AS call_count,
               {_deps.LATENCY}
        FROM ({_calls(session)}) GROUP BY ALL ORDER BY call_count DESC, from_service, to_service, link_type""")
    return {"total_edges": len(edges), "edges": edges}


def hotspots(session: TraceSession) -> dict:
    """GET /api/distributed/hotspots: the most accessed variables and the busiest calls.
    Ours besides, per variable: race_pairs, the racing pairs the engine found on it."""
    session.engine
    variables = _rows(session, f"""
        WITH r AS (SELECT variable, CAST(sum(count) AS BIGINT) AS race_pairs FROM hb.race_groups GROUP BY variable)
        SELECT e.variable, count(*) AS access_count, count(DISTINCT e.trace_id) AS trace_count,
               list(DISTINCT e.service ORDER BY e.service) FILTER (WHERE e.service IS NOT NULL) AS services,
               coalesce(any_value(r.race_pairs), 0) AS race_pairs
        FROM events e LEFT JOIN r USING (variable)
        WHERE e.kind = 'StateChange' AND e.variable IS NOT NULL
        GROUP BY e.variable ORDER BY access_count DESC, e.variable LIMIT {TOP}""")
    for v in variables:
        v["services"] = v["services"] or []
    calls = _rows(session, f"""
        SELECT caller AS from_service, callee AS to_service, count(*) AS call_count
        FROM ({_calls(session)}) GROUP BY ALL ORDER BY call_count DESC, from_service, to_service LIMIT {TOP}""")
    return {"top_variables": variables, "top_service_calls": calls}


# -- performance ------------------------------------------------------------------


def _percentile(sorted_values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont, as the original)."""
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def performance_metrics(session: TraceSession, limit: int) -> dict:
    """GET /api/performance/metrics?limit=N: trace latency (over every trace; the
    ``limit`` slowest listed), event durations by kind and by service, throughput.

    A trace's duration is its wall-clock span as the session computes it; events
    count when they carry a positive duration.
    """
    traces = session.traces().select(["trace_id", "duration_ms", "services", "events"]).to_pylist()
    durations = sorted(t["duration_ms"] or 0.0 for t in traces)
    slowest = sorted(traces, key=lambda t: (-(t["duration_ms"] or 0.0), t["trace_id"]))[:max(limit, 0)]
    by_type = _rows(session, f"""
        SELECT kind AS "type", count(*) AS count, avg(duration_ns) / 1e6 AS avg_duration_ms
        FROM events WHERE duration_ns > 0 GROUP BY kind ORDER BY avg_duration_ms DESC, "type" LIMIT {BY_TYPE_LIMIT}""")
    by_service = _rows(session, """
        SELECT service, count(*) AS event_count, avg(duration_ns) / 1e6 AS avg_duration_ms
        FROM events WHERE duration_ns > 0 AND service IS NOT NULL
        GROUP BY service ORDER BY avg_duration_ms DESC, service""")
    [totals] = _rows(session, """
        SELECT count(*) AS events, count(DISTINCT trace_id) AS traces, (max(ts_ns) - min(ts_ns)) / 1e9 AS seconds,
               avg(duration_ns) FILTER (WHERE duration_ns > 0) / 1e6 AS avg_ms
        FROM events""")
    seconds = totals["seconds"] or 0.0
    return {
        "trace_latency": {
            "avg_ms": sum(durations) / len(durations) if durations else 0.0,
            "p50_ms": _percentile(durations, 0.5), "p95_ms": _percentile(durations, 0.95),
            "p99_ms": _percentile(durations, 0.99),
            "slowest_traces": [{"trace_id": t["trace_id"], "duration_ms": t["duration_ms"] or 0.0,
                                "services": list(t["services"] or []), "event_count": t["events"]} for t in slowest],
        },
        "event_performance": {
            "avg_duration_ms": totals["avg_ms"] or 0.0,
            "by_type": by_type,
            "slow_operations": [t for t in by_type if t["avg_duration_ms"] > SLOW_OPERATION_MS],
        },
        "service_latency": by_service,
        "throughput": {
            "events_per_second": totals["events"] / seconds if seconds > 0 else 0.0,
            "traces_per_second": totals["traces"] / seconds if seconds > 0 else 0.0,
            "time_range_seconds": seconds,
        },
    }
