"""Hotspots: where a system's activity and contention concentrate, as small ranked tables.

- variables by accesses, writes and races (racing pairs, exact: the race groups'
  counts; a variable as the race analysis names it under the variable scope);
- functions (FunctionCall events) by calls and total time;
- services by events;
- locks by hand-offs (a release followed by another context's acquire: the lock
  edges of causality rule 4 between two contexts) and longest hold (an acquire to
  the next release of that lock in the same context).

Each table keeps the first ``top`` rows by each of its measures (their union), so
sorting it by any measure shows the true leaders. All aggregation is SQL.
"""

from __future__ import annotations

import pyarrow as pa

from raceway_core.causality.raceinput import _KEY as _VAR_KEY
from raceway_core.dbutil import query_arrow

TOP = 50
LISTED = 10_000  # a lock's events or a function's calls listed at most


def _flt(trace_id: str | None, alias: str = "e") -> str:
    return f"AND {alias}.trace_id = $t" if trace_id is not None else ""


def _params(trace_id: str | None, **kw) -> dict | None:
    p = kw | ({"t": trace_id} if trace_id is not None else {})
    return p or None


def _leaders(measures: list[str], top: int) -> str:
    """WHERE clause: a row ranks within ``top`` by one of the measures (descending)."""
    return " OR ".join(f"rank_{i} <= {int(top)}" for i in range(len(measures)))


def _ranked(select: str, measures: list[str], tie: str, order: str, top: int) -> str:
    ranks = ", ".join(f"row_number() OVER (ORDER BY {m} DESC, {tie}) AS rank_{i}" for i, m in enumerate(measures))
    return f"""SELECT * EXCLUDE ({', '.join(f'rank_{i}' for i in range(len(measures)))})
               FROM (SELECT *, {ranks} FROM ({select})) WHERE {_leaders(measures, top)} ORDER BY {order}"""


def variable_stats(eng, trace_id: str | None = None, detail: bool = False) -> str:
    """SQL (parameter $t: the trace, when given): per variable as the race analysis names it
    under the variable scope, its name (the events' variable), accesses, writes, races
    (racing pairs; of a trace, those with both events in it); with ``detail`` also
    contexts, traces and critical_races (TraceSession.variables)."""
    key = _VAR_KEY[eng.options.variable_scope]
    groups = "hb.race_trace_groups WHERE trace_id = $t" if trace_id is not None else "hb.race_groups"
    more = ", count(DISTINCT o.ctx) AS contexts, count(DISTINCT e.trace_id) AS traces" if detail else ""
    join = "JOIN hb.ev o USING (seq)" if detail else ""
    critical = (", CAST(coalesce(sum(count) FILTER (WHERE severity = 'critical'), 0) AS BIGINT) AS critical"
                if detail else "")
    return f"""
        WITH acc AS (
            SELECT {key} AS variable, any_value(e.variable) AS name, count(*) AS accesses,
                   count(*) FILTER (WHERE e.access IN ('Write', 'AtomicWrite', 'AtomicRMW')) AS writes{more}
            FROM events e {join} WHERE e.kind = 'StateChange' AND e.variable IS NOT NULL {_flt(trace_id)} GROUP BY 1
        ), r AS (SELECT variable, CAST(sum(count) AS BIGINT) AS races{critical} FROM {groups} GROUP BY variable)
        SELECT acc.*, coalesce(r.races, 0) AS races{", coalesce(r.critical, 0) AS critical_races" if detail else ""}
        FROM acc LEFT JOIN r USING (variable)"""


def variables(cur, eng, trace_id: str | None = None, top: int = TOP) -> pa.Table:
    """variable (as the race analysis names it), name (the events' variable), accesses,
    writes, races; busiest first."""
    return query_arrow(cur, _ranked(variable_stats(eng, trace_id), ["accesses", "writes", "races"], "variable",
                                    "accesses DESC, variable", top), _params(trace_id))


def functions(cur, trace_id: str | None = None, top: int = TOP) -> pa.Table:
    """function, calls, total_ms, mean_ms, max_ms (durations of the calls that carry one);
    most time first."""
    select = f"""
        SELECT e.function_name AS function, count(*) AS calls, coalesce(sum(e.duration_ns), 0) / 1e6 AS total_ms,
               avg(e.duration_ns) / 1e6 AS mean_ms, max(e.duration_ns) / 1e6 AS max_ms
        FROM events e WHERE e.kind = 'FunctionCall' AND e.function_name IS NOT NULL {_flt(trace_id)} GROUP BY 1"""
    return query_arrow(cur, _ranked(select, ["calls", "total_ms"], "function", "total_ms DESC, function", top),
                       _params(trace_id))


def services(cur, trace_id: str | None = None, top: int = TOP) -> pa.Table:
    """service, events, traces, contexts; most events first."""
    select = f"""
        SELECT e.service, count(*) AS events, count(DISTINCT e.trace_id) AS traces,
               count(DISTINCT (e.trace_id, e.thread_id)) AS contexts
        FROM events e WHERE e.service IS NOT NULL {_flt(trace_id)} GROUP BY 1"""
    return query_arrow(cur, _ranked(select, ["events"], "service", "events DESC, service", top), _params(trace_id))


def _holds_sql(trace_id: str | None) -> str:
    """One row per hold: lock_id, trace_id, ctx, acquire and release seq, ns held."""
    return f"""
        WITH l AS (
            SELECT e.lock_id, e.kind, e.ts_ns, e.seq, e.trace_id, o.ctx, o.pos
            FROM events e JOIN hb.ev o USING (seq)
            WHERE e.kind IN ('LockAcquire', 'LockRelease') AND e.lock_id IS NOT NULL {_flt(trace_id)}
        ), w AS (
            SELECT *, lag(kind) OVER win AS prev_kind, lag(ts_ns) OVER win AS prev_ts, lag(seq) OVER win AS prev_seq
            FROM l WINDOW win AS (PARTITION BY ctx, lock_id ORDER BY pos)
        )
        SELECT lock_id, trace_id, ctx, prev_seq AS acquire_seq, seq AS release_seq, ts_ns - prev_ts AS ns
        FROM w WHERE kind = 'LockRelease' AND prev_kind = 'LockAcquire'"""


def locks(cur, trace_id: str | None = None, top: int = TOP) -> pa.Table:
    """lock_id, acquisitions, contexts, handoffs, max_hold_ms, total_hold_ms; most
    hand-offs first."""
    select = f"""
        WITH a AS (
            SELECT e.lock_id, count(*) AS acquisitions, count(DISTINCT o.ctx) AS contexts
            FROM events e JOIN hb.ev o USING (seq)
            WHERE e.kind = 'LockAcquire' AND e.lock_id IS NOT NULL {_flt(trace_id)} GROUP BY 1
        ), h AS (
            SELECT g.detail AS lock_id, count(*) AS handoffs
            FROM hb.edges g {"JOIN hb.ev d ON d.seq = g.dst" if trace_id is not None else ""}
            WHERE g.kind = 'lock' AND NOT g.dropped AND g.src_ctx <> g.dst_ctx {_flt(trace_id, 'd')}
            GROUP BY 1
        ), hold AS (
            SELECT lock_id, max(ns) / 1e6 AS max_hold_ms, sum(ns) / 1e6 AS total_hold_ms
            FROM ({_holds_sql(trace_id)}) GROUP BY 1
        )
        SELECT a.lock_id, a.acquisitions, a.contexts, coalesce(h.handoffs, 0) AS handoffs,
               hold.max_hold_ms, coalesce(hold.total_hold_ms, 0) AS total_hold_ms
        FROM a LEFT JOIN h USING (lock_id) LEFT JOIN hold USING (lock_id)"""
    return query_arrow(cur, _ranked(select, ["handoffs", "max_hold_ms", "acquisitions"], "lock_id",
                                    "handoffs DESC, max_hold_ms DESC NULLS LAST, lock_id", top), _params(trace_id))


def lock_events(cur, lock_id: str, trace_id: str | None = None, limit: int = LISTED) -> pa.Table:
    """A lock's acquisitions and releases in time order (the first ``limit``): event_id,
    trace_id, kind, thread_id, service, timestamp, hold_ms (on a release: since its
    acquire), handoff (an acquire reached by another context's release)."""
    return query_arrow(cur, f"""
        WITH h AS (SELECT release_seq AS seq, ns FROM ({_holds_sql(trace_id)}) WHERE lock_id = $l),
        ho AS (SELECT DISTINCT g.dst AS seq FROM hb.edges g
               WHERE g.kind = 'lock' AND NOT g.dropped AND g.src_ctx <> g.dst_ctx AND g.detail = $l)
        SELECT e.id AS event_id, e.trace_id, e.kind, e.thread_id, e.service, e.location, e.timestamp,
               h.ns / 1e6 AS hold_ms, ho.seq IS NOT NULL AS handoff
        FROM events e LEFT JOIN h USING (seq) LEFT JOIN ho USING (seq)
        WHERE e.kind IN ('LockAcquire', 'LockRelease') AND e.lock_id = $l {_flt(trace_id)}
        ORDER BY e.ts_ns, e.seq LIMIT {int(limit)}""", _params(trace_id, l=lock_id))


def function_calls(cur, function: str, trace_id: str | None = None, limit: int = LISTED) -> pa.Table:
    """A function's calls, slowest first (the first ``limit``): event_id, trace_id,
    thread_id, service, timestamp, duration_ms."""
    return query_arrow(cur, f"""
        SELECT e.id AS event_id, e.trace_id, e.kind, e.thread_id, e.service, e.location, e.timestamp,
               e.duration_ns / 1e6 AS duration_ms
        FROM events e WHERE e.kind = 'FunctionCall' AND e.function_name = $f {_flt(trace_id)}
        ORDER BY e.duration_ns DESC NULLS LAST, e.ts_ns, e.seq LIMIT {int(limit)}""", _params(trace_id, f=function))
