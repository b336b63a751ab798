"""The happens-before graph as tables: contexts, program order and cross edges.

Everything here is SQL over ``events``. Results live in the ``hb`` schema so
every cursor (the TUI's workers included) can page through them:

- ``hb.ctx``   one row per context (trace_id, thread_id): dense id, label, size;
- ``hb.ev``    one row per event: seq, idx (position in (timestamp, seq) order),
               ctx and pos (1-based index in the context's program order);
- ``hb.edges`` the edges that are not program order (rules 2-6), src -> dst by seq,
               with their kind and a detail (lock id, task id, span, ...).

Program order itself is implicit: (ctx, pos) -> (ctx, pos + 1).
"""

from __future__ import annotations

import duckdb

EDGE_KINDS = ("parent", "join", "lock", "call", "return", "clock")

# Context ids follow first appearance in time, so contexts alive together have
# nearby ids: vector clock changes then cluster in a few trie leaves (pclock).
CONTEXTS_AND_ORDER = """
CREATE OR REPLACE TEMP TABLE _ranked AS
SELECT seq, trace_id,
       -- the original Rust SDK's thread_id is its OS thread ("ThreadId(2)"): unique in a process
       -- only, so other services of the trace name the same one; qualify it by the instance
       CASE WHEN regexp_full_match(thread_id, 'ThreadId[(][0-9]+[)]')
            THEN thread_id || ' ' || coalesce(service, '') || '#' || coalesce(instance_id, '')
            ELSE coalesce(thread_id, '') END AS thread_id, ts_ns,
       CAST(row_number() OVER (ORDER BY ts_ns, seq) - 1 AS BIGINT) AS idx
FROM events;

CREATE OR REPLACE TEMP TABLE _ctx_ids AS
SELECT trace_id, thread_id, CAST(row_number() OVER (ORDER BY min(idx)) - 1 AS INTEGER) AS ctx
FROM _ranked GROUP BY trace_id, thread_id;

-- ord (position in the causal order) and tord (the same inside the trace, for paging a
-- trace) as the time order: the usual causal order; the engine rewrites them when not.
CREATE OR REPLACE TABLE hb.ev AS
SELECT r.seq, r.trace_id, r.thread_id, r.ts_ns, r.idx, c.ctx,
       CAST(row_number() OVER (PARTITION BY c.ctx ORDER BY r.idx) AS INTEGER) AS pos,
       r.idx AS ord, CAST(row_number() OVER (PARTITION BY r.trace_id ORDER BY r.idx) - 1 AS BIGINT) AS tord
FROM _ranked r JOIN _ctx_ids c USING (trace_id, thread_id) ORDER BY r.idx;

-- lane: the context's column in its trace's timeline, by first event
CREATE OR REPLACE TABLE hb.ctx AS
SELECT c.*, CAST(row_number() OVER (PARTITION BY c.trace_id ORDER BY c.first_idx) - 1 AS INTEGER) AS lane,
       coalesce(c.service || '/', '') || c.thread_id AS label
FROM (SELECT e.ctx, any_value(e.trace_id) AS trace_id, any_value(e.thread_id) AS thread_id,
             count(*) AS events, min(e.idx) AS first_idx, max(e.idx) AS last_idx,
             mode(v.service) AS service
      FROM hb.ev e JOIN events v USING (seq)
      GROUP BY e.ctx) c;

DROP TABLE _ranked;
DROP TABLE _ctx_ids;
"""

# Rule 2: parent -> event, when the parent is known and in another context (inside a
# context program order already orders it; a parent *after* its child there would
# contradict program order and is reported by the topological sort).
PARENT_EDGES = """
SELECT p.seq AS src, e.seq AS dst, 'parent' AS kind, NULL::VARCHAR AS detail
FROM events e JOIN events p ON p.id = e.parent_id
JOIN hb.ev pe ON pe.seq = p.seq JOIN hb.ev ee ON ee.seq = e.seq
WHERE e.parent_id IS NOT NULL AND (pe.ctx <> ee.ctx OR pe.pos > ee.pos)
"""

# Rule 3: an AsyncAwait waits for the latest AsyncSpawn of its task in its trace at or
# before it ((timestamp, appearance) order): the last event of every context (any
# trace) whose first event has that spawn as parent -> the await.
JOIN_EDGES = """
WITH spawns AS (
    SELECT e.id, e.trace_id, e.task_id, o.idx FROM events e JOIN hb.ev o USING (seq)
    WHERE e.kind = 'AsyncSpawn' AND e.task_id IS NOT NULL
), awaits AS (
    SELECT e.seq, e.trace_id, e.future_id, o.idx, o.ctx FROM events e JOIN hb.ev o USING (seq)
    WHERE e.kind = 'AsyncAwait' AND e.future_id IS NOT NULL
), matched AS (
    SELECT a.seq AS await_seq, a.ctx AS await_ctx, a.future_id, s.id AS spawn_id
    FROM awaits a ASOF JOIN spawns s ON s.trace_id = a.trace_id AND s.task_id = a.future_id AND a.idx > s.idx
)
SELECT last.seq AS src, m.await_seq AS dst, 'join' AS kind, m.future_id AS detail
FROM matched m
JOIN events c ON c.parent_id = m.spawn_id
JOIN hb.ev first ON first.seq = c.seq AND first.pos = 1
JOIN hb.ctx x ON x.ctx = first.ctx
JOIN hb.ev last ON last.ctx = first.ctx AND last.pos = x.events
WHERE first.ctx <> m.await_ctx
"""

# Rule 4: the latest release of the lock at or before the acquire (any context, any
# trace) -> the acquire. Ties in time go by order of appearance (idx).
LOCK_EDGES = """
WITH acq AS (
    SELECT e.seq, e.lock_id, o.idx, o.ctx FROM events e JOIN hb.ev o USING (seq)
    WHERE e.kind = 'LockAcquire' AND e.lock_id IS NOT NULL
), rel AS (
    SELECT e.seq, e.lock_id, o.idx, o.ctx FROM events e JOIN hb.ev o USING (seq)
    WHERE e.kind = 'LockRelease' AND e.lock_id IS NOT NULL
)
SELECT r.seq AS src, a.seq AS dst, 'lock' AS kind, a.lock_id AS detail
FROM acq a ASOF JOIN rel r ON a.lock_id = r.lock_id AND a.idx >= r.idx
WHERE r.ctx <> a.ctx
"""

# Rule 5: cross-service calls. For each downstream span D (events with span_id D and
# upstream_span_id U) in a trace: the calling event in U -> D's first event, and D's
# last event -> the next event of the caller's context at or after D's end (with none,
# as when the callee's clock runs ahead, the calling event's successor).
# The calling event: the latest event of U whose given clock is dominated by the
# clock of D's first event (the callee carries the caller's value at the call);
# without such evidence, the latest event of U before D's first event.
CALL_EDGES = """
CREATE OR REPLACE TEMP TABLE _spans AS
SELECT e.trace_id, e.span_id, e.service,
       arg_min(e.seq, o.idx) AS first_seq, min(o.idx) AS first_idx,
       arg_max(e.seq, o.idx) AS last_seq, max(o.idx) AS last_idx,
       max(e.ts_ns) AS last_ts,
       any_value(e.upstream_span_id) FILTER (WHERE e.upstream_span_id IS NOT NULL) AS upstream
FROM events e JOIN hb.ev o USING (seq)
WHERE e.span_id IS NOT NULL
GROUP BY e.trace_id, e.span_id, e.service
-- a span is its first service's (the original Rust SDK's caller moves its own later
-- events to the child span id it sends: they are not the callee)
QUALIFY min(o.idx) = min(min(o.idx)) OVER (PARTITION BY e.trace_id, e.span_id);

CREATE OR REPLACE TEMP TABLE _calls AS
WITH down AS (
    SELECT s.*, f.clock AS first_clock FROM _spans s JOIN events f ON f.seq = s.first_seq
    WHERE s.upstream IS NOT NULL AND s.upstream <> s.span_id
), up AS (
    SELECT e.trace_id, e.span_id, e.seq, e.clock, o.idx, o.ctx, o.pos
    FROM events e JOIN hb.ev o USING (seq) WHERE e.span_id IS NOT NULL
), by_clock AS (  -- caller events whose every clock component the callee's first clock covers
    SELECT d.trace_id, d.span_id, u.seq, u.idx
    FROM down d JOIN up u ON u.trace_id = d.trace_id AND u.span_id = d.upstream
    WHERE len(u.clock) > 0 AND len(d.first_clock) > 0
      AND len(list_filter(u.clock, lambda x: coalesce(list_max(list_transform(
              list_filter(d.first_clock, lambda y: y.c = x.c), lambda y: y.n)), -1) < x.n)) = 0
), by_time AS (
    SELECT d.trace_id, d.span_id, u.seq, u.idx
    FROM down d JOIN up u ON u.trace_id = d.trace_id AND u.span_id = d.upstream
    WHERE u.idx < d.first_idx
), caller AS (
    SELECT d.trace_id, d.span_id, d.first_seq, d.last_seq, d.last_idx, d.last_ts,
           coalesce((SELECT arg_max(b.seq, b.idx) FROM by_clock b
                     WHERE b.trace_id = d.trace_id AND b.span_id = d.span_id),
                    (SELECT arg_max(t.seq, t.idx) FROM by_time t
                     WHERE t.trace_id = d.trace_id AND t.span_id = d.span_id)) AS call_seq,
           d.upstream
    FROM down d
), lost AS (  -- no caller in span U: the original Go and TypeScript SDKs' callee names as U
              -- the child span id its caller sent, which no event carries. Then the caller
              -- is an event of the trace in another service: by clock, else by time.
    SELECT d.* FROM caller c JOIN down d USING (trace_id, span_id) WHERE c.call_seq IS NULL
), near AS (  -- events of those traces (only), with their order
    SELECT e.trace_id, e.service, e.seq, e.clock, o.idx FROM events e JOIN hb.ev o USING (seq)
    WHERE e.trace_id IN (SELECT trace_id FROM lost)
), by_clock_any AS (  -- the callee's clock holds the caller's component at the call (+1 when
                      -- sending counted as a tick, as in these SDKs): match on it, then check all
    SELECT l.trace_id, l.span_id, u.seq, u.idx
    FROM (SELECT *, unnest(first_clock) AS x FROM lost) l
    JOIN (SELECT *, unnest(clock) AS y FROM near WHERE len(clock) > 0) u
      ON u.trace_id = l.trace_id AND u.y.c = l.x.c AND (u.y.n = l.x.n OR u.y.n = l.x.n - 1)
    WHERE u.service IS DISTINCT FROM l.service AND u.idx < l.first_idx
      AND len(list_filter(u.clock, lambda x: coalesce(list_max(list_transform(
              list_filter(l.first_clock, lambda y: y.c = x.c), lambda y: y.n)), -1) < x.n)) = 0
), by_time_any AS (  -- per other service of the trace, its latest event before the callee's first
    SELECT s.trace_id, s.span_id, t.seq, t.idx
    FROM (SELECT l.trace_id, l.span_id, l.first_idx, n.service
          FROM lost l JOIN (SELECT DISTINCT trace_id, service FROM near) n
          ON n.trace_id = l.trace_id AND n.service IS DISTINCT FROM l.service) s
    ASOF JOIN near t ON t.trace_id = s.trace_id AND t.service = s.service AND s.first_idx > t.idx
), found AS (
    SELECT l.trace_id, l.span_id,
           coalesce((SELECT arg_max(b.seq, b.idx) FROM by_clock_any b WHERE b.trace_id = l.trace_id AND b.span_id = l.span_id),
                    (SELECT arg_max(t.seq, t.idx) FROM by_time_any t WHERE t.trace_id = l.trace_id AND t.span_id = l.span_id))
               AS call_seq
    FROM lost l
)
SELECT c.* REPLACE (coalesce(c.call_seq, f.call_seq) AS call_seq), o.ctx AS call_ctx, o.pos AS call_pos
FROM caller c LEFT JOIN found f USING (trace_id, span_id) JOIN hb.ev o ON o.seq = coalesce(c.call_seq, f.call_seq);
"""

CALL_EDGE_ROWS = """
SELECT call_seq AS src, first_seq AS dst, 'call' AS kind, upstream || ' -> ' || span_id AS detail
FROM _calls
UNION ALL
SELECT c.last_seq AS src, coalesce(nxt.seq, succ.seq) AS dst, 'return' AS kind,
       c.span_id || ' -> ' || c.upstream AS detail
FROM _calls c LEFT JOIN LATERAL (
    SELECT o.seq FROM hb.ev o
    WHERE o.ctx = c.call_ctx AND o.pos > c.call_pos AND (o.ts_ns > c.last_ts OR (o.ts_ns = c.last_ts AND o.idx > c.last_idx))
    ORDER BY o.pos LIMIT 1
) nxt ON true
-- skewed clocks can leave no caller event after the downstream's end: the calling event's successor
LEFT JOIN hb.ev succ ON succ.ctx = c.call_ctx AND succ.pos = c.call_pos + 1
WHERE coalesce(nxt.seq, succ.seq) IS NOT NULL
"""


def _run(cur: duckdb.DuckDBPyConnection, script: str) -> None:
    for stmt in script.split(";\n"):
        if stmt.strip():
            cur.execute(stmt).fetchall()


def build_order(cur: duckdb.DuckDBPyConnection) -> None:
    """(Re)build hb.ev and hb.ctx from the events table."""
    cur.execute("CREATE SCHEMA IF NOT EXISTS hb").fetchall()
    _run(cur, CONTEXTS_AND_ORDER)


def build_edges(cur: duckdb.DuckDBPyConnection, clock_edges_sql: str | None = None) -> None:
    """(Re)build hb.edges (rules 2-6) once hb.ev exists."""
    for stmt in CALL_EDGES.split(";\n"):
        if stmt.strip():
            cur.execute(stmt).fetchall()
    parts = [PARENT_EDGES, JOIN_EDGES, LOCK_EDGES, CALL_EDGE_ROWS]
    if clock_edges_sql:
        parts.append(clock_edges_sql)
    union = "\nUNION ALL\n".join(f"({p})" for p in parts)
    cur.execute(f"""
        CREATE OR REPLACE TABLE hb.edges AS
        SELECT DISTINCT ON (src, dst, kind) u.src, u.dst, u.kind, u.detail,
               s.idx AS src_idx, d.idx AS dst_idx, s.ctx AS src_ctx, d.ctx AS dst_ctx,
               s.trace_id <> d.trace_id AS cross_trace, false AS dropped
        FROM ({union}) u JOIN hb.ev s ON s.seq = u.src JOIN hb.ev d ON d.seq = u.dst
        WHERE u.src <> u.dst
    """).fetchall()
    for t in ("_spans", "_calls", "_cv", "_own", "_cand", "_refs"):  # the trust stage's too: memory
        cur.execute(f"DROP TABLE IF EXISTS {t}").fetchall()
