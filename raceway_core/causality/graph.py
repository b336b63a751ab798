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

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.dbutil import query_arrow

EDGE_KINDS = ("parent", "join", "lock", "call", "return", "clock")

# the original Rust SDK's thread_id is its OS thread ("ThreadId(2)"): unique in a process
# only, so other services of the trace name the same one; qualify it by the instance
THREAD = """CASE WHEN regexp_full_match(thread_id, 'ThreadId[(][0-9]+[)]')
            THEN thread_id || ' ' || coalesce(service, '') || '#' || coalesce(instance_id, '')
            ELSE coalesce(thread_id, '') END"""


EV_BATCH = 1 << 18  # hb.ev rows built in Arrow at once


@dataclass
class Order:
    """What build_order computed, per event in seq order (the engine's rows) and per context."""

    seq: np.ndarray
    ts: np.ndarray
    idx: np.ndarray  # position in (timestamp, seq) order
    ctx: np.ndarray
    pos: np.ndarray  # 1-based position in the context's program order
    ctx_trace: list  # per context: trace_id, thread_id, service (the most frequent), events
    ctx_thread: list
    ctx_service: list
    ctx_events: np.ndarray
    trace_of_ctx: np.ndarray  # a trace code per context (codes in first-appearance order)
    ctx_rows: np.ndarray | None = None  # rows by (ctx, pos) (None: the engine sorts them)


def _mode(group: np.ndarray, value: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, its most frequent non-negative value (-1 when none); ties go to the value
    seen first (rows are in appearance order). The (group, value) pairs are numbered by a
    hash in first-appearance order (np.unique's sort of every row cost ~0.13 s at 1M events)."""
    keep = value >= 0
    g, v = group[keep], value[keep]
    out = np.full(n_groups, -1, dtype=np.int64)
    if not len(g):
        return out
    span = int(v.max()) + 1
    enc = pa.array(g * span + v).dictionary_encode()
    uk = enc.dictionary.to_numpy()
    cnt = np.bincount(enc.indices.to_numpy(), minlength=len(uk))
    ug, uv = uk // span, uk % span
    best = np.lexsort((np.arange(len(uk)), -cnt, ug))  # per group: most frequent, then first seen
    lead = np.r_[True, ug[best][1:] != ug[best][:-1]]
    out[ug[best][lead]] = uv[best][lead]
    return out


def _codes(arr) -> tuple[np.ndarray, pa.Array]:
    """Dense codes of a string column (nulls: -1), and the names by code."""
    enc = (arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr).dictionary_encode()
    return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def _decode(c: np.ndarray, names: pa.Array) -> pa.Array:
    valid = c >= 0
    if not len(names):
        return pa.nulls(len(c), pa.string())
    taken = names.take(pa.array(np.where(valid, c, 0)))
    return taken if valid.all() else pc.if_else(pa.array(valid), taken, pa.scalar(None, pa.string()))


def build_order(cur: duckdb.DuckDBPyConnection) -> Order:
    """(Re)build hb.ev and hb.ctx from the events table.

    The numbering is done in numpy (sorts of integer arrays) rather than by SQL window
    functions: at 1M events this took 1.9 s of CPU in DuckDB (four sorts, a join back to
    events for the service), and the engine read the same columns back just after.

    - idx: position in (timestamp, seq) order; ord = idx and tord its rank inside the
      trace (the usual causal order: the engine rewrites them when not);
    - contexts (trace_id, thread_id) numbered by first appearance, so contexts alive
      together have nearby ids: vector clock changes then cluster in a few trie leaves
      (pclock); pos: 1-based in the context's program order;
    - hb.ctx: per context its trace, thread, events, first and last idx, service (the
      most frequent, ties to the one seen first), lane (its column in its trace's
      timeline, by first event) and label.
    """
    cur.execute("CREATE SCHEMA IF NOT EXISTS hb").fetchall()
    t = query_arrow(cur, f"SELECT seq, trace_id, {THREAD} AS thread_id, ts_ns, service FROM events")
    n = t.num_rows
    seq = t["seq"].to_numpy().astype(np.int64)
    ts = t["ts_ns"].to_numpy().astype(np.int64)
    by_idx = np.lexsort((seq, ts))  # input rows in (timestamp, seq) order
    tr, tr_names = _codes(t["trace_id"])
    th, th_names = _codes(t["thread_id"])
    sv, sv_names = _codes(t["service"])
    tr_o, th_o = tr[by_idx], th[by_idx]
    key = tr_o * max(len(th_names), 1) + th_o
    # numbered by first appearance in idx order: a hash, not a sort of every row
    enc = pa.array(key).dictionary_encode()
    n_ctx = len(enc.dictionary)
    ctx_o = enc.indices.to_numpy().astype(np.int64)  # per idx position
    events = np.bincount(ctx_o, minlength=n_ctx)
    start = np.r_[0, np.cumsum(events)]
    grouped = np.argsort(ctx_o, kind="stable")  # idx positions by (ctx, idx)
    pos_o = np.empty(n, dtype=np.int64)
    pos_o[grouped] = np.arange(n) - np.repeat(start[:-1], events) + 1
    t_count = np.bincount(tr_o, minlength=len(tr_names))
    t_start = np.r_[0, np.cumsum(t_count)]
    tord_o = np.empty(n, dtype=np.int64)
    tord_o[np.argsort(tr_o, kind="stable")] = np.arange(n) - np.repeat(t_start[:-1], t_count)
    first_idx = grouped[start[:-1]] if n_ctx else np.zeros(0, np.int64)
    last_idx = grouped[start[1:] - 1] if n_ctx else np.zeros(0, np.int64)
    c_tr, c_th = tr_o[first_idx], th_o[first_idx]
    c_sv = _mode(ctx_o, sv[by_idx], n_ctx)
    lane = np.empty(n_ctx, dtype=np.int64)
    by_trace = np.lexsort((first_idx, c_tr))
    tc = np.bincount(c_tr, minlength=len(tr_names))
    lane[by_trace] = np.arange(n_ctx) - np.repeat(np.r_[0, np.cumsum(tc)][:-1], tc)
    del t  # the strings are the names by code from here on
    c_trace, c_thread = tr_names.take(pa.array(c_tr)), th_names.take(pa.array(c_th))
    c_service = _decode(c_sv, sv_names)
    label = pc.binary_join_element_wise(pc.coalesce(pc.binary_join_element_wise(c_service, "/", ""), ""),
                                        c_thread, "")
    cx = pa.table({
        "ctx": pa.array(np.arange(n_ctx, dtype=np.int32)), "trace_id": c_trace, "thread_id": c_thread,
        "events": pa.array(events.astype(np.int64)), "first_idx": pa.array(first_idx.astype(np.int64)),
        "last_idx": pa.array(last_idx.astype(np.int64)), "service": c_service,
        "lane": pa.array(lane.astype(np.int32)), "label": label})
    cur.execute("""CREATE OR REPLACE TABLE hb.ev (seq BIGINT, trace_id VARCHAR, thread_id VARCHAR, ts_ns BIGINT,
                   idx BIGINT, ctx INTEGER, pos INTEGER, ord BIGINT, tord BIGINT)""").fetchall()
    # in slices: the Arrow copy of a slice, not of every row, is held beside DuckDB's
    for a in range(0, n, EV_BATCH):
        b = min(n, a + EV_BATCH)
        at = by_idx[a:b]
        ev = pa.table({
            "seq": pa.array(seq[at]), "trace_id": tr_names.take(pa.array(tr_o[a:b])),
            "thread_id": th_names.take(pa.array(th_o[a:b])), "ts_ns": pa.array(ts[at]),
            "idx": pa.array(np.arange(a, b, dtype=np.int64)), "ctx": pa.array(ctx_o[a:b].astype(np.int32)),
            "pos": pa.array(pos_o[a:b].astype(np.int32)), "ord": pa.array(np.arange(a, b, dtype=np.int64)),
            "tord": pa.array(tord_o[a:b])})
        cur.register("_t", ev)
        try:
            cur.execute("INSERT INTO hb.ev SELECT * FROM _t").fetchall()
        finally:
            cur.unregister("_t")
    cur.register("_t", cx)
    try:
        cur.execute("CREATE OR REPLACE TABLE hb.ctx AS SELECT * FROM _t").fetchall()
    finally:
        cur.unregister("_t")
    rows = np.argsort(seq, kind="stable")  # the engine's rows: seq order
    rank = np.empty(n, dtype=np.int64)
    rank[by_idx] = np.arange(n)
    ctx_row = np.empty(n, dtype=np.int64)
    ctx_row[by_idx] = ctx_o
    pos_row = np.empty(n, dtype=np.int64)
    pos_row[by_idx] = pos_o
    row_of_input = np.empty(n, dtype=np.int64)
    row_of_input[rows] = np.arange(n)
    return Order(seq=seq[rows], ts=ts[rows], idx=rank[rows], ctx=ctx_row[rows], pos=pos_row[rows],
                 ctx_trace=c_trace.to_pylist(), ctx_thread=c_thread.to_pylist(),
                 ctx_service=c_service.to_pylist(), ctx_events=events.astype(np.int64), trace_of_ctx=c_tr,
                 ctx_rows=row_of_input[by_idx[grouped]])  # (ctx, idx) order is (ctx, pos) order


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
  -- only traces with a downstream span can have a call (whole traces: the QUALIFY is per span)
  AND e.trace_id IN (SELECT trace_id FROM events WHERE upstream_span_id IS NOT NULL)
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
      -- only traces with a downstream span (joined on trace below): without this, every
      -- event's clock was read into the CTE (~0.22 s CPU at 1M events without a call)
      AND e.trace_id IN (SELECT trace_id FROM _spans WHERE upstream IS NOT NULL)
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


# Rule 2 as (parent, child) links only: the engine keeps those between contexts or
# against program order in numpy (the join back to hb.ev twice cost more than the links)
PARENT_LINKS = """
SELECT p.seq AS src, e.seq AS dst FROM events e JOIN events p ON p.id = e.parent_id
WHERE e.parent_id IS NOT NULL
"""


@dataclass
class Edges:
    """hb.edges as the engine reads it: ends as engine rows, kinds, details."""

    src: np.ndarray
    dst: np.ndarray
    kind: pa.Array
    detail: pa.Array


def build_edges(cur: duckdb.DuckDBPyConnection, clock_edges_sql: str | None = None,
                order: Order | None = None) -> Edges | None:
    """(Re)build hb.edges (rules 2-6) once hb.ev exists. With ``order`` (what build_order
    returned) the rows are put together in numpy, from the edge queries' ends, and returned."""
    if order is None:
        _build_edges_sql(cur, clock_edges_sql)
        return None
    for stmt in CALL_EDGES.split(";\n"):
        if stmt.strip():
            cur.execute(stmt).fetchall()
    # rows in the order call/return, join, lock, parent, clock: an explanation takes the first
    # edge between two events; a callee naming its caller as parent is still a call, and a
    # spawn says more than the clock edge beside it
    union = "\nUNION ALL\n".join(f"({p})" for p in [CALL_EDGE_ROWS, JOIN_EDGES])
    links = query_arrow(cur, PARENT_LINKS)
    ls, ld, l_detail = _lock_edges(cur, order)
    rest = query_arrow(cur, f"SELECT src, dst, kind, detail FROM ({union}) WHERE src IS NOT NULL AND dst IS NOT NULL")
    clock = (query_arrow(cur, f"SELECT src, dst, kind, detail FROM ({clock_edges_sql}) "
                              "WHERE src IS NOT NULL AND dst IS NOT NULL") if clock_edges_sql else None)
    _drop_temp(cur)
    seq = order.seq

    def rows(col) -> np.ndarray:
        return np.searchsorted(seq, col.to_numpy().astype(np.int64))

    ps, pd = rows(links["src"]), rows(links["dst"])
    keep = (order.ctx[ps] != order.ctx[pd]) | (order.pos[ps] > order.pos[pd])
    ps, pd = ps[keep], pd[keep]
    tables = [rest] + ([clock] if clock is not None else [])
    rs, rd = rows(rest["src"]), rows(rest["dst"])
    cs, cd = (rows(clock["src"]), rows(clock["dst"])) if clock is not None else (rs[:0], rd[:0])
    src, dst = np.r_[rs, ls, ps, cs].astype(np.int64), np.r_[rd, ld, pd, cd].astype(np.int64)

    def col(t, name):
        return t[name].combine_chunks().cast(pa.string())

    kind = pa.concat_arrays([col(rest, "kind"), pa.array(["lock"] * len(ls), pa.string()),
                             pa.array(["parent"] * len(ps), pa.string())]
                            + [col(t, "kind") for t in tables[1:]])
    detail = pa.concat_arrays([col(rest, "detail"), l_detail, pa.nulls(len(ps), pa.string())]
                              + [col(t, "detail") for t in tables[1:]])
    # DISTINCT ON (src, dst, kind), without self-loops: the first of each
    k_codes, _ = _codes(kind)
    by = np.lexsort((np.arange(len(src)), k_codes, dst, src))
    new = np.ones(len(by), dtype=bool)
    new[1:] = (src[by][1:] != src[by][:-1]) | (dst[by][1:] != dst[by][:-1]) | (k_codes[by][1:] != k_codes[by][:-1])
    first = np.sort(by[new])
    first = first[src[first] != dst[first]]
    src, dst = src[first], dst[first]
    take = pa.array(first)
    kind, detail = kind.take(take), detail.take(take)
    trace = order.trace_of_ctx[order.ctx]
    tbl = pa.table({
        "src": pa.array(seq[src]), "dst": pa.array(seq[dst]), "kind": kind, "detail": detail,
        "src_idx": pa.array(order.idx[src]), "dst_idx": pa.array(order.idx[dst]),
        "src_ctx": pa.array(order.ctx[src].astype(np.int32)), "dst_ctx": pa.array(order.ctx[dst].astype(np.int32)),
        "cross_trace": pa.array(trace[src] != trace[dst]), "dropped": pa.array(np.zeros(len(src), dtype=bool))})
    cur.register("_e", tbl)
    try:
        cur.execute("CREATE OR REPLACE TABLE hb.edges AS SELECT * FROM _e").fetchall()
    finally:
        cur.unregister("_e")
    return Edges(src=src, dst=dst, kind=kind, detail=detail)


def _lock_edges(cur, order: Order) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """LOCK_EDGES over the engine's arrays (rows, the lock ids): per acquire, the latest
    release of its lock at or before it in idx order, from another context. A binary
    search over the releases sorted by (lock, idx) in place of the SQL ASOF join and its
    two joins to hb.ev (~0.1 s CPU at 1M events)."""
    lk = query_arrow(cur, """SELECT seq, lock_id, kind = 'LockAcquire' AS acq FROM events
                             WHERE kind IN ('LockAcquire', 'LockRelease') AND lock_id IS NOT NULL""")
    empty = np.zeros(0, dtype=np.int64)
    if not lk.num_rows:
        return empty, empty, pa.array([], pa.string())
    r = np.searchsorted(order.seq, lk["seq"].to_numpy().astype(np.int64))
    acq = lk["acq"].to_numpy(zero_copy_only=False)
    code, names = _codes(lk["lock_id"])
    span = len(order.seq) + 1
    key = code * span + order.idx[r]
    rel = np.flatnonzero(~acq)
    rel = rel[np.argsort(key[rel], kind="stable")]
    rkey = key[rel]
    a = np.flatnonzero(acq)
    at = np.searchsorted(rkey, key[a], "right") - 1
    ok = at >= 0
    ok[ok] &= rkey[at[ok]] // span == code[a[ok]]
    src, dst, a = r[rel[at[ok]]], r[a[ok]], a[ok]
    other = order.ctx[src] != order.ctx[dst]
    src, dst, a = src[other], dst[other], a[other]
    return src, dst, names.take(pa.array(code[a])).cast(pa.string())


def _drop_temp(cur) -> None:
    for t in ("_spans", "_calls", "_cv", "_own", "_cand", "_refs"):  # the trust stage's too: memory
        cur.execute(f"DROP TABLE IF EXISTS {t}").fetchall()


def _build_edges_sql(cur: duckdb.DuckDBPyConnection, clock_edges_sql: str | None = None) -> None:
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
    _drop_temp(cur)
