"""Per-service statistics for the explorer's Services view: traces, events, errors,
the latency of the service's spans, the races touching it, its callers and callees.

A span of a service is its events of one trace with one span id (``distributed_span_id``;
events without one: their context), as ``dependencies`` takes a callee's span. Its
latency is its wall-clock time (``raceway_core.intervals``: earliest start to latest
end); its self time is that less the latency of the spans it called (the spans of other
services naming it as their upstream span), at least 0: where a service spends its own
time rather than waiting for others. Percentiles interpolate (``quantile_cont``).

A failure is an HTTP response of status 400 or more, or an Error event (as
``TraceSession.traces`` counts them).

Races touching a service: the racing pairs with at least one access in it, counted
exactly. A race group (variable, both locations) holds exact counts; when each of its
two locations is accessed by a single service, its count belongs to those services.
Otherwise (one location in several services) the engine's race counting runs again with
each access's service where its location was, which counts by service directly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from raceway_core.analysis import dependencies as _deps
from raceway_core.causality.raceinput import _KEY as _VAR_KEY
from raceway_core.causality.raceinput import codes as _codes
from raceway_core.dbutil import query_arrow
from raceway_core.intervals import span_ns, start_ns

FAILURE = "(e.http_status >= 400 OR e.kind = 'Error')"


def _flt(trace_id: str | None, alias: str = "e") -> str:
    return f"AND {alias}.trace_id = $t" if trace_id is not None else ""


def spans_sql(trace_id: str | None = None) -> str:
    """One row per span: trace_id, service, span (its id, or 'ctx:<n>'), span_id,
    upstream (its upstream span id), first_seq, start_ns, ns (latency), self_ns."""
    return f"""
    WITH by_span AS (
        SELECT e.trace_id, e.service, e.span_id AS span, e.span_id, min(e.upstream_span_id) AS upstream,
               min(e.seq) AS first_seq, min({start_ns('e')}) AS start_ns, {span_ns('e')} AS ns
        FROM events e WHERE e.service IS NOT NULL AND e.span_id IS NOT NULL {_flt(trace_id)}
        GROUP BY e.trace_id, e.service, e.span_id
    ), by_ctx AS (  -- events without a span id: their context's
        SELECT e.trace_id, e.service, 'ctx:' || CAST(o.ctx AS VARCHAR) AS span, NULL::VARCHAR AS span_id,
               min(e.upstream_span_id) AS upstream, min(e.seq) AS first_seq, min({start_ns('e')}) AS start_ns,
               {span_ns('e')} AS ns
        FROM events e JOIN hb.ev o USING (seq)
        WHERE e.service IS NOT NULL AND e.span_id IS NULL {_flt(trace_id)}
        GROUP BY e.trace_id, e.service, o.ctx
    ), s AS (SELECT * FROM by_span UNION ALL SELECT * FROM by_ctx
    ), kids AS (  -- the spans each span called: other services' spans naming it upstream
        SELECT p.trace_id, p.service, p.span, sum(c.ns) AS ns
        FROM s p JOIN s c ON c.trace_id = p.trace_id AND c.upstream = p.span_id AND c.service <> p.service
        GROUP BY p.trace_id, p.service, p.span
    )
    SELECT s.*, greatest(s.ns - coalesce(k.ns, 0), 0) AS self_ns
    FROM s LEFT JOIN kids k USING (trace_id, service, span)
    """


def summary(cur, trace_id: str | None = None, races: dict[str, int] | None = None) -> pa.Table:
    """One row per service (in scope), slowest median self time first: service, traces,
    events, failures, spans, p50_ms, p95_ms, max_ms (span latency), self_p50_ms,
    callers and callees (service names, busiest call first), races (from ``races``, as
    ``races_by_service`` counts them; null without)."""
    params = {"t": trace_id} if trace_id is not None else None
    deps = _deps.sql("AND trace_id = $t" if trace_id is not None else "")
    t = query_arrow(cur, f"""
        WITH ev AS (
            SELECT e.service, count(DISTINCT e.trace_id) AS traces, count(*) AS events,
                   count(*) FILTER (WHERE {FAILURE}) AS failures
            FROM events e WHERE e.service IS NOT NULL {_flt(trace_id)} GROUP BY e.service
        ), sp AS (
            SELECT service, count(*) AS spans, quantile_cont(ns, 0.5) / 1e6 AS p50_ms,
                   quantile_cont(ns, 0.95) / 1e6 AS p95_ms, max(ns) / 1e6 AS max_ms,
                   quantile_cont(self_ns, 0.5) / 1e6 AS self_p50_ms
            FROM ({spans_sql(trace_id)}) GROUP BY service
        ), d AS ({deps}
        ), callers AS (SELECT "to" AS service, list("from" ORDER BY calls DESC, "from") AS callers FROM d GROUP BY 1
        ), callees AS (SELECT "from" AS service, list("to" ORDER BY calls DESC, "to") AS callees FROM d GROUP BY 1)
        SELECT ev.service, ev.traces, ev.events, ev.failures, sp.spans, sp.p50_ms, sp.p95_ms, sp.max_ms,
               sp.self_p50_ms, coalesce(callers.callers, []) AS callers, coalesce(callees.callees, []) AS callees
        FROM ev LEFT JOIN sp USING (service) LEFT JOIN callers USING (service) LEFT JOIN callees USING (service)
        ORDER BY sp.self_p50_ms DESC NULLS LAST, ev.service""", params)
    return with_races(t, races)


def with_races(t: pa.Table, races: dict[str, int] | None) -> pa.Table:
    """The summary with its races column from ``races`` (null where unknown)."""
    col = [None if races is None else races.get(s, 0) for s in t["service"].to_pylist()]
    if "races" in t.column_names:
        t = t.drop_columns(["races"])
    return t.append_column("races", pa.array(col, pa.int64()))


def traces_of(cur, service: str, trace_id: str | None = None) -> pa.Table:
    """The traces a service took part in, slowest span first: trace_id, start (the
    trace's first event), events and failures (the service's), spans, max_ms (its
    slowest span there), self_ms (that span's self time)."""
    params = {"s": service} | ({"t": trace_id} if trace_id is not None else {})
    return query_arrow(cur, f"""
        WITH ev AS (
            SELECT e.trace_id, count(*) AS events, count(*) FILTER (WHERE {FAILURE}) AS failures
            FROM events e WHERE e.service = $s {_flt(trace_id)} GROUP BY e.trace_id
        ), sp AS (
            SELECT trace_id, count(*) AS spans, max(ns) / 1e6 AS max_ms, arg_max(self_ns, ns) / 1e6 AS self_ms
            FROM ({spans_sql(trace_id)}) WHERE service = $s GROUP BY trace_id
        ), st AS (
            SELECT trace_id, min(timestamp) AS start FROM events WHERE trace_id IN (SELECT trace_id FROM ev)
            GROUP BY trace_id
        )
        SELECT ev.trace_id, st.start, ev.events, ev.failures, sp.spans, sp.max_ms, sp.self_ms
        FROM ev JOIN st USING (trace_id) LEFT JOIN sp USING (trace_id)
        ORDER BY sp.max_ms DESC NULLS LAST, st.start, ev.trace_id""", params)


def races_by_service(cur, eng, trace_id: str | None = None) -> dict[str, int]:
    """Service -> racing pairs with at least one access in it (exact; see the module doc).
    With trace_id: the pairs inside that trace (as ``TraceSession.races``)."""
    by_groups = _by_groups(cur, eng, trace_id)
    return by_groups if by_groups is not None else _by_counting(cur, eng, trace_id)


def _by_groups(cur, eng, trace_id: str | None) -> dict[str, int] | None:
    """From the race groups, when each group's two locations are each in one service
    (else None)."""
    key = _VAR_KEY[eng.options.variable_scope]
    groups = "hb.race_trace_groups WHERE trace_id = $t" if trace_id is not None else "hb.race_groups"
    rows = query_arrow(cur, f"""
        WITH g AS (SELECT variable, first_location, second_location, count FROM {groups}),
        loc AS (
            SELECT var, location, max(service) AS service,
                   count(DISTINCT service) + CAST(bool_or(service IS NULL) AS INTEGER) AS n
            FROM (SELECT {key} AS var, e.location, e.service FROM events e
                  WHERE e.kind = 'StateChange' AND e.variable IS NOT NULL {_flt(trace_id)}
                    AND {key} IN (SELECT variable FROM g))
            GROUP BY var, location
        )
        SELECT g.count, f.service AS first_service, f.n AS first_n, s.service AS second_service, s.n AS second_n
        FROM g LEFT JOIN loc f ON f.var = g.variable AND f.location IS NOT DISTINCT FROM g.first_location
               LEFT JOIN loc s ON s.var = g.variable AND s.location IS NOT DISTINCT FROM g.second_location""",
                       {"t": trace_id} if trace_id is not None else None).to_pylist()
    if any(r["first_n"] != 1 or r["second_n"] != 1 for r in rows):
        return None
    out: dict[str, int] = {}
    for r in rows:
        for s in {r["first_service"], r["second_service"]} - {None}:
            out[s] = out.get(s, 0) + int(r["count"])
    return out


def _by_counting(cur, eng, trace_id: str | None) -> dict[str, int]:
    """The engine's own race counting (never listing a pair) over its accesses with each
    access's service in place of its location: the counts come keyed by the services of
    both accesses."""
    ri = eng.race_input(cur, trace_id)
    if not ri.m:
        return {}
    cur.register("_acc", pa.table({"seq": pa.array(ri.seq)}))
    try:
        svc = query_arrow(cur, "SELECT a.seq, e.service FROM _acc a JOIN events e USING (seq) ORDER BY a.seq")
    finally:
        cur.unregister("_acc")
    codes, names = _codes(svc["service"])
    at = np.searchsorted(svc["seq"].to_numpy(), ri.seq)
    ri.loc, ri.loc_names = codes[at], names  # the counts' "location" columns now hold services
    counts = ri.same_trace_counts()
    if trace_id is None:  # pairs joining two traces, as the engine counts them (Engine._races)
        cross = ri.cross_counts() if np.array_equal(eng.rank, eng.idx) else ri.listed_counts(cross_only=True)
        counts = list(counts.items()) + list(cross.items())
    else:
        counts = list(counts.items())
    out: dict[str, int] = {}
    service_names = names.to_pylist()
    for (_, _, _, first, second), (n, _, _) in counts:
        for c in {first, second} - {-1}:
            s = service_names[c]
            out[s] = out.get(s, 0) + int(n)
    return out
