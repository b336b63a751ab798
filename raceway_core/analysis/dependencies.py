"""Service dependencies: who calls whom, how often, and how long the callee takes.

A call from service A to B is a cross-service edge: a call edge (rule 5) or a
parent link whose parent is in another service. Latency is the downstream
span's wall-clock time: from the earliest start to the latest end of its events
(``raceway_core.intervals``; the downstream context's, when the callee carries no
span id).
"""

from __future__ import annotations

from raceway_core.intervals import span_ns


def calls_sql(trace_filter: str = "") -> str:
    """One row per cross-service call: caller, callee, trace_id (the callee's),
    span_id (the callee's span, may be null), dst_seq (the callee's first event
    reached by the call), ns and ms (the callee's latency)."""
    return f"""
    WITH edges AS (
        SELECT s.service AS caller, d.service AS callee, d.trace_id, d.span_id, d.seq AS dst_seq, o.ctx AS dst_ctx
        FROM hb.edges g JOIN events s ON s.seq = g.src JOIN events d ON d.seq = g.dst
        JOIN hb.ev o ON o.seq = d.seq
        WHERE NOT g.dropped AND s.service IS NOT NULL AND d.service IS NOT NULL AND s.service <> d.service
          AND (g.kind = 'call' OR g.kind = 'parent')
          {trace_filter.replace('trace_id', 'd.trace_id')}
    ), calls AS (  -- one call per downstream span (a call edge and a parent link may both name it)
        SELECT DISTINCT ON (caller, callee, trace_id, coalesce(span_id, CAST(dst_ctx AS VARCHAR)))
               caller, callee, trace_id, span_id, dst_seq
        FROM edges ORDER BY caller, callee, trace_id, coalesce(span_id, CAST(dst_ctx AS VARCHAR)), dst_seq
    ), spans AS (  -- the callee's events of the span (a Rust SDK caller also uses the child's span id)
        SELECT trace_id, span_id, service, {span_ns()} AS ns
        FROM events WHERE span_id IS NOT NULL GROUP BY trace_id, span_id, service
    ), ctx_ms AS (
        SELECT o.ctx, {span_ns('e')} AS ns
        FROM events e JOIN hb.ev o USING (seq) GROUP BY o.ctx
    )
    SELECT c.caller, c.callee, c.trace_id, c.span_id, c.dst_seq, coalesce(sp.ns, cm.ns) AS ns,
           coalesce(sp.ns, cm.ns) / 1e6 AS ms
    FROM calls c
    LEFT JOIN spans sp ON sp.trace_id = c.trace_id AND sp.span_id = c.span_id AND sp.service = c.callee
    LEFT JOIN hb.ev o ON o.seq = c.dst_seq LEFT JOIN ctx_ms cm ON cm.ctx = o.ctx
    """


# Over whole nanoseconds: a sum of integers is exact, so the mean does not depend on how
# DuckDB's threads split the rows (a float sum did: a reopened store's report differed).
LATENCY = "avg(ns) / 1e6 AS mean_ms, quantile_cont(ns, 0.95) / 1e6 AS p95_ms"


def sql(trace_filter: str = "") -> str:
    return f"""
    SELECT caller AS "from", callee AS "to", count(*) AS calls, {LATENCY}
    FROM ({calls_sql(trace_filter)}) GROUP BY caller, callee ORDER BY calls DESC, "from", "to"
    """
