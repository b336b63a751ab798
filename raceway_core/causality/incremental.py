"""Incremental analysis: bring an analysed store up to date after an append, touching
only what the new events can change, with the results of a full run.

Works on top of the engine's outputs (its arrays, its ``HappensBefore`` and the hb
tables). Handled here: the appends of a live feed - every new event comes after the
analysed events of its own context (events of other contexts may be later: the late
arrivals of a busy server; those move one place up per new event before them), new
contexts start after the analysed ones, every new edge points forward into a new event,
and the previous causal order was the time order (no cycle dropped). Then nothing about
the old events' causal order changes:

- hb.ev / hb.ctx: rows added, the touched contexts' counts and service updated;
- trust, edges (rules 2, 3, 5), lock sets and critical paths: recomputed with the
  engine's own SQL for the touched traces only (each is per trace);
- lock hand-offs (rule 4, global): the new acquires against their locks' releases;
- clocks: L (inside a trace) and F (what a row reaches inside its trace) again for the
  touched traces; G (lock chains) continued for the new rows only, in causal order;
- races: exact groups again for the variables the new events access (an old pair
  of other variables cannot change: no old order, lock set or lifetime moved);
  the stored listing (first pairs) rebuilt from the old one and the touched ones;
- anomalies, dependencies, deadlocks: computed on demand from the tables (the
  anomaly baselines are SQL over all events, so an append that moves a baseline
  is seen at once).

Anything else returns ``None`` and the caller runs the whole engine (``last_reason``
says why): a new event before an analysed one of its context, a new context starting
before an analysed one, a new release before an analysed acquire or release of its
lock, more than ``MAX_SHARE`` of the events moved, an edge into an old event
(a late parent, a join whose spawned context grew, a return whose span grew), any
cross-trace parent or join link touching the appended traces, a trusted vector clock
in them, a lock chain that starts crossing traces, a chain count that changes the
clock tries' depth, two process instances whose lifetimes come to overlap (scope
``auto``), an old causal order that was not the time order, or an append larger than
a quarter of the store (a full run is then as cheap).
"""

from __future__ import annotations

import bisect
import logging
import re
import time

import numpy as np
import pyarrow as pa

from raceway_core.causality import graph, trust
from raceway_core.causality.clocks import _flatten, lock_label
from raceway_core.causality.critical_path import longest_paths, path_rows
from raceway_core.causality.engine import CP_KINDS, Engine
from raceway_core.causality.pclock import Clocks
from raceway_core.causality.raceinput import RaceInput
from raceway_core.dbutil import query_arrow
from raceway_core.intervals import path_ns, span_ns

log = logging.getLogger("raceway.incremental")

MAX_SHARE = 0.25  # appends above this share of the store run the whole engine
RANGE_GAP = 4096  # touched rows further apart (in seq order) are read as separate seq ranges
MAX_RANGES = 64

THREAD = graph.THREAD  # the context name build_order gives (one definition: the property test compares)

last_reason: str | None = None  # why the last update fell back to a full run (None: it did not)


class Fallback(Exception):
    """This append needs the whole engine."""


def update(old: Engine, store) -> Engine | None:
    """The engine for the store's events now, from ``old`` (analysed on a prefix of them),
    or None when only a full run gives the right answer (``last_reason`` says why)."""
    global last_reason
    last_reason = None
    started = time.perf_counter()
    version = store.version
    cur = store.cursor()
    try:
        inc = _Update(old, cur)
        try:
            inc.check()
        except Fallback as exc:
            last_reason = str(exc)
            log.info("incremental analysis falls back to a full run: %s", exc)
            return None
        if inc.new is None:
            eng = _copy(old)
        else:
            cur.execute("BEGIN TRANSACTION").fetchall()
            try:
                inc.prepare_tables()
                eng = inc.apply()
                cur.execute("COMMIT").fetchall()
            except Fallback as exc:
                cur.execute("ROLLBACK").fetchall()
                last_reason = str(exc)
                log.info("incremental analysis falls back to a full run: %s", exc)
                return None
            except BaseException:
                cur.execute("ROLLBACK").fetchall()
                raise
        eng.version = version
        eng.wall = time.perf_counter() - started
        eng.timings = {"incremental": eng.wall}
        return eng
    finally:
        cur.close()


def _copy(old: Engine) -> Engine:
    eng = object.__new__(Engine)
    eng.__dict__.update(old.__dict__)
    return eng


def _restrict(sql: str) -> str:
    """The engine's SQL over the touched traces only: events, hb.ev, hb.ctx and hb.trust
    read from (and written to) temporary tables holding those traces' rows."""
    sql = re.sub(r"\b(FROM|JOIN)\s+events\b", r"\1 _ie", sql)
    sql = sql.replace("hb.ev", "_iev").replace("hb.ctx", "_ictx").replace("hb.trust", "_itrust")
    return sql.replace("CREATE OR REPLACE TABLE", "CREATE OR REPLACE TEMP TABLE")


class _Update:
    def __init__(self, old: Engine, cur) -> None:
        self.old, self.cur = old, cur
        self.new = None
        self.reordered: set = set()  # variables with an analysed access now after a new one (_cross)

    def q(self, sql: str, params=None) -> pa.Table:
        return query_arrow(self.cur, sql, params)

    def x(self, sql: str, params=None) -> None:
        self.cur.execute(sql, params).fetchall() if params is not None else self.cur.execute(sql).fetchall()

    # -- what was appended, and whether this module can take it ---------------------------
    def check(self) -> None:
        old = self.old
        if old.dropped or not np.array_equal(old.rank, old.idx):
            raise Fallback("the analysed causal order is not the time order (an edge pointed back)")
        self.top = top = int(old.seq[-1]) if old.n else -1
        n, s = self.q("SELECT count(*) AS n, coalesce(sum(seq), 0) AS s FROM events WHERE seq <= $t",
                      {"t": top}).to_pylist()[0].values()
        if n != old.n or int(s) != int(old.seq.sum()):
            raise Fallback("analysed events were removed or replaced")
        new = self.q(f"""SELECT seq, id, trace_id, {THREAD} AS thread_id, ts_ns, kind, lock_id, parent_id
                         FROM events WHERE seq > $t ORDER BY ts_ns, seq""", {"t": top})
        if not new.num_rows:
            return
        if old.n == 0 or new.num_rows > MAX_SHARE * old.n:
            raise Fallback(f"{new.num_rows} new events against {old.n} analysed")
        self.hi = int(pa.compute.max(new["seq"]).as_py())
        # (timestamp, seq) numbering of old and new together: a new event has a larger seq
        # than every old one, so it goes after the old events of its timestamp
        ts = new["ts_ns"].to_numpy()
        old_ts = old.ts[old.topo_rows]  # old rows in idx order (rank == idx)
        self.new_idx = np.searchsorted(old_ts, ts, side="right") + np.arange(len(ts))
        k0 = int(np.searchsorted(old_ts, ts.min(), side="right"))
        moved = old.topo_rows[k0:]  # old rows after the first new event: their idx grows
        self.moved = moved
        self.moved_idx = old.idx[moved] + np.searchsorted(ts, old.ts[moved], side="left")
        if len(moved) > max(10_000, MAX_SHARE * old.n):
            raise Fallback(f"new events before {len(moved)} analysed ones")
        self.new = new

    # -- hb.ev / hb.ctx rows of the new events, and the touched traces' rows --------------
    def prepare_tables(self) -> None:
        old, new = self.old, self.new
        m = new.num_rows
        self.m = m
        traces, threads = new["trace_id"].to_pylist(), new["thread_id"].to_pylist()
        # the analysed contexts of the appended traces only (a dict of every context cost
        # ~0.2 s at 1M events)
        codes = pa.compute.index_in(pa.array(sorted(set(traces)), pa.string()), old.trace_names)
        codes = codes.fill_null(-1).to_numpy(zero_copy_only=False)
        known = np.flatnonzero(np.isin(old.trace_of_ctx, codes[codes >= 0])).tolist()
        key_of = {(old.ctx_trace[c], old.ctx_thread[c]): c for c in known}
        counts = np.diff(old.ctx_start).astype(np.int64).tolist()
        ctx, pos = [], []
        self.new_ctx_keys = []
        for t, th in zip(traces, threads):
            c = key_of.get((t, th))
            if c is None:
                c = key_of[(t, th)] = old.n_ctx + len(self.new_ctx_keys)
                self.new_ctx_keys.append((t, th))
                counts.append(0)
            counts[c] += 1
            ctx.append(c)
            pos.append(counts[c])
        self.n_ctx = old.n_ctx + len(self.new_ctx_keys)
        ts = new["ts_ns"].to_numpy()
        olds = np.flatnonzero(np.array(ctx) < old.n_ctx)
        if len(olds):
            c = np.array(ctx)[olds]
            last = old.ctx_rows[old.ctx_start[c + 1] - 1]
            if bool(np.any(ts[olds] < old.ts[last])):
                raise Fallback("a new event before an analysed one of its own context")
        if self.new_ctx_keys and old.n_ctx:
            first_new = int(np.flatnonzero(np.array(ctx) >= old.n_ctx)[0])
            started = old.ctx_rows[old.ctx_start[old.n_ctx - 1]]  # the last old context's first event
            if ts[first_new] < old.ts[started]:
                raise Fallback("a new context starts before an analysed one")
        self.new_ctx = np.array(ctx, dtype=np.int64)
        self.new_pos = np.array(pos, dtype=np.int64)
        self.ctx_counts = np.array(counts, dtype=np.int64)
        self.touched_traces = sorted(set(traces))
        tbl = pa.table({"seq": new["seq"], "trace_id": new["trace_id"], "thread_id": new["thread_id"],
                        "ts_ns": new["ts_ns"], "idx": pa.array(self.new_idx), "ctx": pa.array(self.new_ctx, pa.int32()),
                        "pos": pa.array(self.new_pos, pa.int32())})
        cur = self.cur
        cur.register("_inew", tbl)
        cur.register("_it", pa.table({"trace_id": pa.array(self.touched_traces, pa.string())}))
        # the touched traces' rows, read by seq ranges around them (a live feed's touched
        # traces are mostly recent, a few long ones are not): DuckDB skips the rest of the
        # store by its zone maps instead of reading every trace_id (~0.2 s CPU at 1M events)
        self.x("CREATE OR REPLACE TEMP TABLE _ie AS " + self._ranges_sql(known), {"hi": self.hi})
        if len(self.moved):  # old events after the first new one: one place later per new event before them
            cur.register("_ishift", pa.table({"seq": pa.array(old.seq[self.moved]), "idx": pa.array(self.moved_idx)}))
            self.x("UPDATE hb.ev SET idx = s.idx, ord = s.idx FROM _ishift s WHERE hb.ev.seq = s.seq")
            self.x("UPDATE hb.edges SET src_idx = s.idx FROM _ishift s WHERE hb.edges.src = s.seq")
            self.x("UPDATE hb.edges SET dst_idx = s.idx FROM _ishift s WHERE hb.edges.dst = s.seq")
            self.x("""UPDATE hb.ctx SET first_idx = m.f, last_idx = m.l FROM (
                          SELECT ctx, min(idx) AS f, max(idx) AS l FROM hb.ev
                          WHERE ctx IN (SELECT DISTINCT e.ctx FROM hb.ev e JOIN _ishift USING (seq)) GROUP BY ctx) m
                      WHERE hb.ctx.ctx = m.ctx""")
            cur.unregister("_ishift")
        self.x("""CREATE OR REPLACE TEMP TABLE _iev AS
                  SELECT *, CAST(row_number() OVER (PARTITION BY trace_id ORDER BY ord) - 1 AS BIGINT) AS tord FROM (
                      SELECT seq, trace_id, thread_id, ts_ns, idx, ctx, pos, ord FROM hb.ev
                      WHERE trace_id IN (SELECT trace_id FROM _it)
                      UNION ALL
                      SELECT seq, trace_id, thread_id, ts_ns, idx, ctx, pos, idx AS ord FROM _inew)""")
        self.x("DELETE FROM hb.ev WHERE trace_id IN (SELECT trace_id FROM _it)")
        self.x("INSERT INTO hb.ev SELECT * FROM _iev ORDER BY idx")
        self.x("""CREATE OR REPLACE TEMP TABLE _ictx AS
                  SELECT c.*, CAST(row_number() OVER (PARTITION BY c.trace_id ORDER BY c.first_idx) - 1 AS INTEGER) AS lane,
                         coalesce(c.service || '/', '') || c.thread_id AS label
                  FROM (SELECT e.ctx, any_value(e.trace_id) AS trace_id, any_value(e.thread_id) AS thread_id,
                               count(*) AS events, min(e.idx) AS first_idx, max(e.idx) AS last_idx,
                               mode(v.service) AS service
                        FROM _iev e JOIN _ie v USING (seq) GROUP BY e.ctx) c""")
        self.x("DELETE FROM hb.ctx WHERE ctx IN (SELECT ctx FROM _ictx)")
        self.x("INSERT INTO hb.ctx SELECT * FROM _ictx")
        cur.unregister("_inew")
        self._trust()
        self._edges()

    def _ranges_sql(self, known: list) -> str:
        """SELECT of the events of the touched traces (analysed contexts ``known``) and the
        new ones: a UNION ALL over the seq ranges their analysed rows cluster in."""
        old = self.old
        segs = [old.ctx_rows[old.ctx_start[c]:old.ctx_start[c + 1]] for c in known]
        rows = np.sort(np.concatenate(segs)) if segs else np.zeros(0, dtype=np.int64)
        rows = np.r_[rows, old.n]  # the new events: from the top on
        cut = np.flatnonzero(np.diff(rows) > RANGE_GAP)
        while len(cut) >= MAX_RANGES:  # too many ranges: close the smallest gaps
            gaps = np.diff(rows)[cut]
            cut = np.sort(cut[np.argsort(gaps)[len(cut) // 2:]])
        starts, ends = rows[np.r_[0, cut + 1]], rows[np.r_[cut, len(rows) - 1]]
        parts = []
        for a, b in zip(starts.tolist(), ends.tolist()):
            lo = int(old.seq[a]) if a < old.n else self.top + 1
            hi = "$hi" if b >= old.n else str(int(old.seq[b]))
            parts.append(f"SELECT * FROM events WHERE seq BETWEEN {lo} AND {hi} "
                         "AND trace_id IN (SELECT trace_id FROM _it)")
        return "\nUNION ALL\n".join(parts)

    def _trust(self) -> None:
        for sql in (trust.ENTRIES, trust.OWNERS, trust.CANDIDATES, trust.REFS, trust.VERDICTS, trust.FINAL):
            self.x(_restrict(sql))
        if self.q("SELECT count(*) AS n FROM _itrust WHERE trusted")["n"][0].as_py():
            raise Fallback("a touched trace's vector clocks are trusted")
        self.x("DELETE FROM hb.trust WHERE trace_id IN (SELECT trace_id FROM _it)")
        self.x("INSERT INTO hb.trust SELECT * FROM _itrust")

    def _edges(self) -> None:
        top = self.top
        # rules 2, 3, 5 inside the touched traces, as the engine computes them
        for stmt in graph.CALL_EDGES.split(";\n"):
            if stmt.strip():
                self.x(_restrict(stmt))
        union = "\nUNION ALL\n".join(f"({_restrict(p)})" for p in
                                     (graph.PARENT_EDGES, graph.JOIN_EDGES, graph.CALL_EDGE_ROWS))
        got = self.q(f"""
            SELECT DISTINCT ON (src, dst, kind) u.src, u.dst, u.kind, u.detail,
                   s.idx AS src_idx, d.idx AS dst_idx, s.ctx AS src_ctx, d.ctx AS dst_ctx,
                   s.trace_id <> d.trace_id AS cross_trace, false AS dropped
            FROM ({union}) u JOIN _iev s ON s.seq = u.src JOIN _iev d ON d.seq = u.dst
            WHERE u.src <> u.dst""")
        was = self.q("""SELECT src, dst, kind, detail, cross_trace FROM hb.edges WHERE kind <> 'lock'
                        AND (src_ctx IN (SELECT ctx FROM _ictx) OR dst_ctx IN (SELECT ctx FROM _ictx))""")
        if pa.compute.any(was["cross_trace"]).as_py():
            raise Fallback("a parent or join link between traces touches the appended traces")
        dst = got["dst"].to_numpy()
        fresh = dst > top
        old_part = got.filter(pa.array(~fresh))
        now_set = set(zip(*(old_part[c].to_pylist() for c in ("src", "dst", "kind", "detail"))))
        was_set = set(zip(*(was[c].to_pylist() for c in ("src", "dst", "kind", "detail"))))
        if now_set != was_set:
            kinds = sorted({e[2] for e in now_set ^ was_set})
            raise Fallback(f"an edge into an analysed event changed ({', '.join(kinds)}: "
                           "a late parent, a grown join or span)")
        add = got.filter(pa.array(fresh))
        if pa.compute.any(add["cross_trace"]).as_py():
            raise Fallback("a new parent or join link between traces")
        # links into or out of the touched traces that their rows alone cannot show
        new_ids = self.new["id"]
        self.cur.register("_iids", pa.table({"id": new_ids, "parent_id": self.new["parent_id"]}))
        try:
            out = self.q("""SELECT count(*) AS n FROM events WHERE seq <= $hi AND parent_id IN (SELECT id FROM _iids)
                            AND trace_id NOT IN (SELECT trace_id FROM _it)""", {"hi": self.hi})["n"][0].as_py()
            lost = self.q("""SELECT parent_id FROM _iids WHERE parent_id IS NOT NULL
                             AND parent_id NOT IN (SELECT id FROM _ie)""")["parent_id"]
            if not out and len(lost):
                self.cur.register("_ilost", pa.table({"p": lost}))
                out = self.q("SELECT count(*) AS n FROM events WHERE id IN (SELECT p FROM _ilost)")["n"][0].as_py()
                self.cur.unregister("_ilost")
        finally:
            self.cur.unregister("_iids")
        if out:
            raise Fallback("a parent link between an appended trace and another")
        # rule 4 for the new acquires: the latest release of the lock at or before each. Of the
        # analysed releases only the last one before the first new event (per lock) and those
        # after it (moved) can be: they come from the engine's arrays, not a join of every
        # release with hb.ev (~0.08 s CPU at 1M events)
        self.cur.register("_irel", self._release_candidates())
        try:
            lock = self.q("""
            WITH acq AS (SELECT n.seq, e.lock_id, n.idx, n.ctx, n.trace_id FROM _iev n JOIN _ie e USING (seq)
                         WHERE n.seq > $t AND e.kind = 'LockAcquire' AND e.lock_id IS NOT NULL),
                 rel AS (SELECT seq, lock_id, idx, ctx, trace_id FROM _irel WHERE lock_id IN (SELECT lock_id FROM acq)
                         UNION ALL
                         SELECT n.seq, e.lock_id, n.idx, n.ctx, n.trace_id FROM _iev n JOIN _ie e USING (seq)
                         WHERE n.seq > $t AND e.kind = 'LockRelease' AND e.lock_id IN (SELECT lock_id FROM acq))
            SELECT DISTINCT ON (r.seq, a.seq) r.seq AS src, a.seq AS dst, 'lock' AS kind, a.lock_id AS detail,
                   r.idx AS src_idx, a.idx AS dst_idx, r.ctx AS src_ctx, a.ctx AS dst_ctx,
                   r.trace_id <> a.trace_id AS cross_trace, false AS dropped
            FROM acq a ASOF JOIN rel r ON a.lock_id = r.lock_id AND a.idx >= r.idx
            WHERE r.ctx <> a.ctx""", {"t": top})
        finally:
            self.cur.unregister("_irel")
        add = pa.concat_tables([add, lock.cast(add.schema)])
        # an analysed acquire after a new release of its lock would take its hand-off from it,
        # and an analysed release after it would take its place in the lock's chain: only the
        # analysed events after the first new one (self.moved, with their new idx) can be such
        if len(self.moved):
            self.cur.register("_imoved", pa.table({"seq": pa.array(self.old.seq[self.moved]),
                                                   "idx": pa.array(self.moved_idx)}))
            try:
                handed = self.q("""
                    SELECT count(*) AS n FROM (SELECT e.lock_id, n.idx FROM _iev n JOIN _ie e USING (seq)
                                               WHERE n.seq > $t AND e.kind = 'LockRelease' AND e.lock_id IS NOT NULL) r
                    JOIN (SELECT e.lock_id, m.idx FROM _imoved m JOIN events e USING (seq)
                          WHERE e.kind IN ('LockAcquire', 'LockRelease') AND e.lock_id IS NOT NULL) a
                    ON a.lock_id = r.lock_id AND a.idx > r.idx""",
                                {"t": top})
            finally:
                self.cur.unregister("_imoved")
            if handed["n"][0].as_py():
                raise Fallback("a new release comes before an analysed acquire or release of its lock")
        if add.num_rows and not bool(np.all(add["src_idx"].to_numpy() < add["dst_idx"].to_numpy())):
            raise Fallback("a new edge points back in time")
        self.added = add
        self.cur.register("_iadd", add)
        self.x("INSERT INTO hb.edges SELECT * FROM _iadd")
        self.cur.unregister("_iadd")

    def _release_candidates(self) -> pa.Table:
        """The analysed releases a new acquire can take its hand-off from (seq, lock_id and
        their idx, ctx, trace_id now): per lock its last one before the first new event
        (every new event comes after it) and those after (self.moved)."""
        old = self.old
        rows, locks = old._releases  # by (lock, idx)
        rows = np.asarray(rows, dtype=np.int64)
        k0 = len(old.topo_rows) - len(self.moved)  # idx of the first moved row
        idx = old.idx[rows].copy()
        moved = idx >= k0
        if len(self.moved):
            at = np.argsort(self.moved)
            idx[moved] = self.moved_idx[at[np.searchsorted(self.moved[at], rows[moved])]]
        names = pa.array(locks, pa.string())
        last_of_lock = np.asarray(pa.compute.not_equal(names[1:], names[:-1]).to_numpy(zero_copy_only=False)
                                  if len(names) > 1 else np.zeros(0, bool), dtype=bool)
        # the last unmoved release of each lock: unmoved, and the next one is of another lock or moved
        nxt_moved = np.r_[moved[1:], True]
        nxt_other = np.r_[last_of_lock, True]
        keep = moved | (~moved & (nxt_moved | nxt_other))
        sel = np.flatnonzero(keep)
        r = rows[sel]
        return pa.table({"seq": pa.array(old.seq[r]), "lock_id": names.take(pa.array(sel)),
                         "idx": pa.array(idx[sel]), "ctx": pa.array(old.ctx[r].astype(np.int32)),
                         "trace_id": old.trace_names.take(pa.array(old.trace_of_ctx[old.ctx[r]]))})

    # -- the engine ---------------------------------------------------------------------------
    def apply(self) -> Engine:
        old, m = self.old, self.m
        eng = _copy(old)
        n0, n = old.n, old.n + m
        order = np.argsort(self.new["seq"].to_numpy(), kind="stable")  # rows are in seq order
        nseq = self.new["seq"].to_numpy()
        eng.seq = np.concatenate([old.seq, nseq[order]])
        eng.ts = np.concatenate([old.ts, self.new["ts_ns"].to_numpy()[order]])
        eng.idx = np.concatenate([old.idx, self.new_idx[order]])
        eng.idx[self.moved] = self.moved_idx
        eng.ctx = np.concatenate([old.ctx, self.new_ctx[order]])
        eng.pos = np.concatenate([old.pos, self.new_pos[order]])
        eng.n = n
        new_row = np.empty(m, dtype=np.int64)  # new rows in idx order
        new_row[order] = np.arange(n0, n)
        self.new_rows = new_row
        # contexts
        ictx = self.q("SELECT ctx, trace_id, thread_id, service FROM _ictx ORDER BY ctx")
        eng.n_ctx = self.n_ctx
        eng.ctx_trace = old.ctx_trace + [t for t, _ in self.new_ctx_keys]
        eng.ctx_thread = old.ctx_thread + [th for _, th in self.new_ctx_keys]
        eng.ctx_service = list(old.ctx_service) + [None] * len(self.new_ctx_keys)
        for c, svc in zip(ictx["ctx"].to_pylist(), ictx["service"].to_pylist()):
            eng.ctx_service[c] = svc
        # ctx_rows: each context's new rows go at the end of its segment (np.insert keeps the
        # given order at one position: idx order, which is pos order inside a context); what
        # went in at the very end (the last old context's and the new contexts') is sorted
        ins_at = np.where(self.new_ctx >= old.n_ctx, n0, old.ctx_start[np.minimum(self.new_ctx + 1, old.n_ctx)])
        eng.ctx_rows = np.insert(old.ctx_rows, ins_at, new_row)
        at_end = int((ins_at == n0).sum())
        if at_end:
            tail = eng.ctx_rows[n - at_end:]
            eng.ctx_rows[n - at_end:] = tail[np.lexsort((eng.pos[tail], eng.ctx[tail]))]
        eng.ctx_start = np.r_[0, np.cumsum(self.ctx_counts)].astype(np.int64)
        # traces
        names = old.trace_names.to_pylist()
        code = {t: i for i, t in enumerate(names)}
        for t, _ in self.new_ctx_keys:
            if t not in code:
                code[t] = len(names)
                names.append(t)
        eng.trace_names = pa.array(names, pa.string())
        eng.trace_of_ctx = np.concatenate([old.trace_of_ctx, np.array([code[t] for t, _ in self.new_ctx_keys],
                                                                       dtype=old.trace_of_ctx.dtype)])
        self.t_codes = np.array(sorted(code[t] for t in self.touched_traces), dtype=np.int64)
        eng.rank = eng.idx.copy()
        eng.topo_rows = np.empty(n, dtype=np.int64)
        eng.topo_rows[eng.rank] = np.arange(n)
        # edges
        add = self.added
        k0 = len(old.e_src)
        eng.e_src = np.concatenate([old.e_src, eng.row_of(add["src"].to_numpy())])
        eng.e_dst = np.concatenate([old.e_dst, eng.row_of(add["dst"].to_numpy())])
        kinds = list(old._e_kind_names)
        kcode = {k: i for i, k in enumerate(kinds)}
        for k in add["kind"].to_pylist():
            if k not in kcode:
                kcode[k] = len(kinds)
                kinds.append(k)
        eng._e_kind_names = kinds
        eng._e_kind_codes = np.concatenate([old._e_kind_codes, np.array([kcode[k] for k in add["kind"].to_pylist()],
                                                                        dtype=old._e_kind_codes.dtype)])
        eng._e_detail = pa.concat_arrays([old._e_detail, add["detail"].combine_chunks().cast(old._e_detail.type)])
        eng._stored_dropped = np.concatenate([old._stored_dropped, np.zeros(add.num_rows, dtype=bool)])
        eng.e_alive = np.concatenate([old.e_alive, np.ones(add.num_rows, dtype=bool)])
        new_e = np.arange(k0, k0 + add.num_rows)
        # releases by (lock, idx): the new ones after their lock's old ones
        rel = self.q("""SELECT n.seq, e.lock_id FROM _iev n JOIN _ie e USING (seq)
                        WHERE n.seq > $t AND e.kind = 'LockRelease' AND e.lock_id IS NOT NULL ORDER BY n.idx""",
                     {"t": self.top})
        self.new_rel_rows = eng.row_of(rel["seq"].to_numpy())
        self.new_rel_locks = rel["lock_id"].to_pylist()
        old_rows, old_locks = old._releases
        if len(self.new_rel_rows):
            # by (lock, idx), as the engine reads them; a new release before an analysed one of
            # its lock would change how the analysed ones chain: checked in _edges
            locks = list(old_locks) + self.new_rel_locks
            rows = np.concatenate([old_rows, self.new_rel_rows])
            names = pa.array(locks, pa.string())
            code = pa.compute.index_in(names, pa.compute.unique(names).sort()).to_numpy()  # by name, as SQL sorts
            o = np.lexsort((eng.idx[rows], code))
            eng._releases = (rows[o], [locks[i] for i in o.tolist()])
        self._clocks(eng, new_e)
        self._explain_index(eng, new_e)
        self._locksets()
        self._races(eng)
        self._critical(eng)
        self.x("INSERT OR REPLACE INTO meta VALUES ('hb_fingerprint', ?), ('hb_races', ?)",
               [eng._fingerprint(self.cur), str(eng.race_count)])
        return eng

    # -- clocks ---------------------------------------------------------------------------------
    def _clocks(self, eng: Engine, new_e: np.ndarray) -> None:
        old = self.old
        hb = old.hb
        chains = hb.chains
        trace_row = eng.trace_of_ctx[eng.ctx]
        touched_rows = np.concatenate([eng.ctx_rows[eng.ctx_start[c]:eng.ctx_start[c + 1]]
                                       for c in np.flatnonzero(np.isin(eng.trace_of_ctx, self.t_codes)).tolist()])
        touched_rows = np.sort(touched_rows)  # rank == idx: sort by rank below
        touched_rows = touched_rows[np.argsort(eng.rank[touched_rows], kind="stable")]
        alive = eng.e_alive
        src, dst = eng.e_src[alive], eng.e_dst[alive]
        local_edge = trace_row[src] == trace_row[dst]
        in_t = np.isin(trace_row[dst], self.t_codes) & local_edge
        t_src, t_dst = src[in_t], dst[in_t]
        # lock chains of the locks the new releases are on
        new_own = self._chains(eng, chains)
        if hb.g_ops.depth != Clocks(chains.n + len(new_own[1])).depth:
            raise Fallback("the lock chains outgrow the clock tries' depth")
        # -- from here on the old engine's HappensBefore is changed in place --
        self._extend_chains(chains, new_own)
        if hb.g_ops.depth == 1 and len(hb.g_ops.zero_leaf) < max(chains.n, 1):
            self._pad_g(hb, chains.n)
        hb.ctx, hb.pos, hb.n = eng.ctx, eng.pos, eng.n
        hb.trace_of_ctx = eng.trace_of_ctx
        for _ in self.new_ctx_keys:
            hb.l_pos.append([]); hb.l_clock.append([]); hb.g_pos.append([]); hb.g_clock.append([])
            hb.f_pos.append([]); hb.f_val.append([])
        sizes = np.bincount(eng.trace_of_ctx, minlength=len(eng.trace_names))
        local = np.concatenate([hb.local, np.zeros(len(self.new_ctx_keys), dtype=hb.local.dtype)])
        seen = {}
        for c in range(old.n_ctx, eng.n_ctx):
            t = int(eng.trace_of_ctx[c])
            if t not in seen:
                seen[t] = int(np.count_nonzero(eng.trace_of_ctx[:old.n_ctx] == t))
            local[c] = seen[t]
            seen[t] += 1
        hb.local = local
        t_ctx = np.flatnonzero(np.isin(eng.trace_of_ctx, self.t_codes)).tolist()
        for t in self.t_codes.tolist():
            hb.local_ops[t] = Clocks(int(sizes[t]))
        for c in t_ctx:
            hb.l_pos[c], hb.l_clock[c], hb.f_pos[c], hb.f_val[c] = [], [], [], []
        self._forward_local(hb, touched_rows, t_src, t_dst)
        self._forward_global(hb, eng, new_e)
        self._backward(hb, touched_rows, t_src, t_dst, t_ctx)
        cache = hb.__dict__.get("entries_by_row")  # raceinput's M(a) per row: F changed in the touched traces
        if cache is not None:
            cache = np.concatenate([cache, np.full(eng.n - old.n, None, dtype=object)])
            cache[touched_rows] = None
            hb.entries_by_row = cache
        hb.n_edges = len(src)
        eng.hb = hb
        # incoming edges for explanations: the new ones all end at new rows, after the old
        nd = eng.e_dst[new_e]
        o = np.argsort(nd, kind="stable")
        counts = np.bincount(nd - old.n, minlength=eng.n - old.n) if len(nd) else np.zeros(eng.n - old.n, np.int64)
        eng.in_start = np.concatenate([old.in_start[:-1], old.in_start[-1] + np.r_[0, np.cumsum(counts)]])
        eng.in_src = np.concatenate([old.in_src, eng.e_src[new_e][o]])
        self.new_in_edge = new_e[o]

    def _chains(self, eng: Engine, chains):
        """Chains of the locks with new releases, continued from each lock's last analysed
        release (clocks.lock_chains' rule: a release continues the previous one of its lock
        in the same context later on, or when that one was handed to an acquire before it
        in its context; only chains handing off into another trace are kept):
        {row: [(chain, index)]} for the new releases and the labels of new chains. Work per
        new release, not per release of its lock (a hot lock's ~0.15 s at 1M events)."""
        added = self.added
        kinds, details = added["kind"].to_pylist(), added["detail"].to_pylist()
        locks = set(self.new_rel_locks) | {d for k, d in zip(kinds, details) if k == "lock"}
        if not locks:
            return {}, []
        n0 = self.old.n
        is_lock = np.array([k == "lock" for k in kinds], dtype=bool)
        crossing_src = set(eng.row_of(added["src"].to_numpy()[is_lock & added["cross_trace"].to_numpy(
            zero_copy_only=False)]).tolist()) if added.num_rows else set()

        def kept(r: int):
            for c, k in chains.own.get(r, ()):
                if chains.label[c].startswith("lock "):
                    return c, k
            return None

        for r in crossing_src:  # an analysed release handing off into another trace now
            if r < n0 and kept(r) is None:
                raise Fallback("an analysed lock chain starts crossing traces")
        old_rows, old_locks = self.old._releases
        by_lock: dict = {}
        for r, lk in zip(self.new_rel_rows.tolist(), self.new_rel_locks):
            by_lock.setdefault(lk, []).append(r)
        prev_of = {}
        for lk in by_lock:
            i = bisect.bisect_right(old_locks, lk) - 1
            prev_of[lk] = int(old_rows[i]) if i >= 0 and old_locks[i] == lk else None
        # hand-offs from the releases a new release may continue
        srcs = np.array([r for r in prev_of.values() if r is not None] + self.new_rel_rows.tolist(), dtype=np.int64)
        hand = eng.e_alive & eng._edges_of_kind("lock")
        h_src, h_dst = eng.e_src[hand], eng.e_dst[hand]
        at = np.isin(h_src, srcs)
        handed: dict = {}
        for u, a in zip(h_src[at].tolist(), h_dst[at].tolist()):
            handed.setdefault(u, []).append(a)
        ctx, pos = eng.ctx, eng.pos
        label_set = set(chains.label)
        own: dict = {}
        labels: list = []
        next_id = chains.n
        for lk in sorted(by_lock):
            prev = prev_of[lk]
            # the chain being continued: (id or None when not kept, index, rows when new)
            cur = None
            if prev is not None:
                got = kept(prev)
                cur = [got[0], got[1], None] if got is not None else [None, 0, "old"]
            count = 0  # the lock's kept chains so far: labelled 1, 2, ... in order
            while lock_label(lk, count + 1) in label_set:
                count += 1

            def close() -> None:
                nonlocal next_id, count
                if cur is not None and isinstance(cur[2], list) and any(r in crossing_src for r, _ in cur[2]):
                    count += 1
                    labels.append(lock_label(lk, count))
                    for r, k in cur[2]:
                        own[r] = [(next_id, k)]
                    next_id += 1

            for r in by_lock[lk]:
                follows = prev is not None and (
                    (ctx[r] == ctx[prev] and pos[prev] < pos[r])
                    or any(ctx[a] == ctx[r] and pos[a] < pos[r] for a in handed.get(prev, ())))
                if follows:
                    cur[1] += 1
                    if cur[0] is not None:
                        own[r] = [(cur[0], cur[1])]
                    elif cur[2] == "old":
                        if r in crossing_src:
                            raise Fallback("an analysed lock chain starts crossing traces")
                    else:
                        cur[2].append((r, cur[1]))
                else:
                    close()
                    cur = [None, 1, [(r, 1)]]
                prev = r
            close()
        return own, labels

    @staticmethod
    def _chain_starts(chains) -> dict:
        """row of each lock chain's first release -> chain (kept on the chains between updates)."""
        starts = getattr(chains, "_starts", None)
        if starts is None:
            starts = {}
            for r, lst in chains.own.items():
                for c, k in lst:
                    if k == 1 and chains.label[c].startswith("lock "):
                        starts[r] = c
            chains._starts = starts
        return starts

    def _extend_chains(self, chains, new_own) -> None:
        own, labels = new_own
        starts = self._chain_starts(chains)
        for r, lst in own.items():
            chains.own.setdefault(r, []).extend(lst)
            for c, k in lst:
                if k == 1:
                    starts[r] = c
        chains.label.extend(labels)
        chains.n += len(labels)
        self.new_own_rows = own

    @staticmethod
    def _pad_g(hb, n: int) -> None:
        """One-leaf chain clocks are tuples as long as the chains: lengthen them all."""
        extra = n - len(hb.g_ops.zero_leaf)
        pad = (0,) * extra
        memo = {}
        for lst in hb.g_clock:
            for i, g in enumerate(lst):
                if g is not None:
                    p = memo.get(id(g))
                    if p is None:
                        p = memo[id(g)] = (g, g + pad)
                    lst[i] = p[1]
        hb.g_ops = Clocks(n)

    @staticmethod
    def _incoming(src: np.ndarray, dst: np.ndarray) -> dict:
        out: dict[int, list[int]] = {}
        for s, d in zip(src.tolist(), dst.tolist()):
            out.setdefault(d, []).append(s)
        return out

    def _forward_local(self, hb, rows: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        """HappensBefore._forward_local over the touched traces' rows."""
        inc = self._incoming(src, dst)
        recv_rows = [r for r, p in zip(rows.tolist(), hb.pos[rows].tolist()) if p == 1 or r in inc]
        ctx, pos, local, trace_ctx = hb.ctx, hb.pos, hb.local, hb.trace_of_ctx
        l_pos, l_clock = hb.l_pos, hb.l_clock
        for r in recv_rows:
            x, p = int(ctx[r]), int(pos[r])
            ops = hb.local_ops[int(trace_ctx[x])]
            clock = l_clock[x][-1] if l_clock[x] else None
            for u in inc.get(r, ()):
                y, q = int(ctx[u]), int(pos[u])
                ly = int(local[y])
                if ops.get(clock, ly) >= q:
                    continue
                i = bisect.bisect_right(l_pos[y], q) - 1
                clock = ops.join(clock, ops.set(l_clock[y][i], ly, q))
            l_pos[x].append(p)
            l_clock[x].append(ops.set(clock, int(local[x]), p))

    def _forward_global(self, hb, eng, new_e: np.ndarray) -> None:
        """HappensBefore._forward_global continued over the new rows (all after the old ones)."""
        inc = self._incoming(eng.e_src[new_e], eng.e_dst[new_e])
        own = hb.chains.own
        ops = hb.g_ops
        ctx, pos = hb.ctx, hb.pos
        g_pos, g_clock = hb.g_pos, hb.g_clock
        for r in self.new_rows.tolist():
            if r not in inc and r not in own:
                continue
            x, p = int(ctx[r]), int(pos[r])
            clock = g_clock[x][-1] if g_clock[x] else None
            for u in inc.get(r, ()):
                y, q = int(ctx[u]), int(pos[u])
                i = bisect.bisect_right(g_pos[y], q) - 1
                if i >= 0:
                    clock = ops.join(clock, g_clock[y][i])
            for c, idx in own.get(r, ()):
                if ops.get(clock, c) < idx:
                    clock = ops.set(clock, c, idx)
            if g_clock[x] and clock is g_clock[x][-1]:
                continue
            g_pos[x].append(p)
            g_clock[x].append(clock)

    def _backward(self, hb, rows: np.ndarray, src: np.ndarray, dst: np.ndarray, t_ctx: list[int]) -> None:
        """HappensBefore._backward over the touched traces' rows."""
        from raceway_core.causality.clocks import _first_at_or_after_desc, _min_merge

        out: dict[int, list[int]] = {}
        for s, d in zip(src.tolist(), dst.tolist()):
            out.setdefault(s, []).append(d)
        own = hb.chains.own
        ctx, pos = hb.ctx, hb.pos
        f_pos, f_val = hb.f_pos, hb.f_val
        for r in reversed(rows.tolist()):
            if r not in out and r not in own:
                continue
            x, p = int(ctx[r]), int(pos[r])
            val = f_val[x][-1] if f_val[x] else None
            merged = None
            for d in out.get(r, ()):
                y, q = int(ctx[d]), int(pos[d])
                i = _first_at_or_after_desc(f_pos[y], q)
                if i is None:
                    continue
                other = f_val[y][i]
                if other:
                    merged = _min_merge(merged if merged is not None else dict(val or {}), other)
            for c, idx in own.get(r, ()):
                if merged is None:
                    merged = dict(val or {})
                if merged.get(c, idx + 1) > idx:
                    merged[c] = idx
            f_pos[x].append(p)
            f_val[x].append(merged if merged is not None else (val or {}))
        for x in t_ctx:
            f_pos[x].reverse()
            f_val[x].reverse()

    def _explain_index(self, eng: Engine, new_e: np.ndarray) -> None:
        """explain.recv_index / edge_index for the new rows (the old ones keep theirs)."""
        old = self.old
        if not hasattr(old, "recv_by_ctx"):
            return
        # the old engine's lists stay as they were: only those that grow are copied
        eng.recv_by_ctx = list(old.recv_by_ctx) + [[] for _ in self.new_ctx_keys]
        eng.recv_pos_by_ctx = list(old.recv_pos_by_ctx) + [[] for _ in self.new_ctx_keys]
        counts = np.diff(eng.in_start)
        copied = set(range(old.n_ctx, eng.n_ctx))
        for r in self.new_rows.tolist():  # idx order = pos order in each context
            if counts[r] > 0:
                c = int(eng.ctx[r])
                if c not in copied:
                    eng.recv_by_ctx[c] = list(eng.recv_by_ctx[c])
                    eng.recv_pos_by_ctx[c] = list(eng.recv_pos_by_ctx[c])
                    copied.add(c)
                eng.recv_by_ctx[c].append(r)
                eng.recv_pos_by_ctx[c].append(int(eng.pos[r]))
        eng.in_edge = np.concatenate([old.in_edge, self.new_in_edge])

    # -- lock sets --------------------------------------------------------------------------
    def _locksets(self) -> None:
        sql = re.search(r"CREATE OR REPLACE TABLE hb\.locksets AS(.*?)\"\"\"", _engine_source(), re.S).group(1)
        self.x(f"INSERT INTO hb.locksets SELECT * FROM ({_restrict(sql)}) WHERE seq > {int(self.top)}")

    # -- races ------------------------------------------------------------------------------------
    def _races(self, eng: Engine) -> None:
        from raceway_core.causality.raceinput import _KEY

        scope = eng.options.variable_scope
        keys = self.q(f"""SELECT DISTINCT {_KEY[scope]} AS v FROM _ie e WHERE e.seq > $t
                          AND e.kind = 'StateChange' AND e.variable IS NOT NULL""", {"t": self.top})["v"].to_pylist()
        if scope == "auto":
            eng.instances = self._check_lifetimes()
        if not keys:
            return
        ri = RaceInput.fetch(_EngView(eng), self.cur, None, None, variables=keys,
                             instances=eng.instances if scope == "auto" else None)
        self.cur.register("_ikeys", pa.table({"v": pa.array(keys, pa.string())}))
        same = self._same_trace(eng, ri, keys)
        cross = self._cross(ri)
        groups, trace_groups = ri.group_tables(same, cross)
        was = self.q("SELECT coalesce(sum(count), 0) AS n FROM hb.race_groups WHERE variable IN (SELECT v FROM _ikeys)")
        now = int(sum(groups["count"].to_pylist())) if groups.num_rows else 0
        eng.race_count = int(self.old.race_count) - int(was["n"][0].as_py()) + now
        eng.race_visited = self.old.race_visited + ri.checks
        self.x("DELETE FROM hb.race_groups WHERE variable IN (SELECT v FROM _ikeys)")
        self.x("DELETE FROM hb.race_trace_groups WHERE variable IN (SELECT v FROM _ikeys)")
        for name, t in (("hb.race_groups", groups), ("hb.race_trace_groups", trace_groups)):
            if t.num_rows:
                self.cur.register("_ig", t)
                self.x(f"INSERT INTO {name} SELECT * FROM _ig")
                self.cur.unregister("_ig")
        self._pairs(eng, ri, set(keys))
        self.cur.unregister("_ikeys")

    def _cross(self, ri: RaceInput) -> dict:
        """ri.cross_counts() from the stored groups and the pairs the append adds. No pair of
        analysed accesses changed (no analysed order, lock set or lifetime moved), so only
        pairs with a new access are counted: the new access later (any earlier one), or
        earlier than an analysed access it came before. A group's example is its first pair
        in time order: the stored one (the first of the old pairs) or a new pair's."""
        new = ri.seq > self.top
        if not new.any():
            return {}
        # analysed accesses after a new one of their variable (the events this append moved)
        first_new = np.full(len(ri.var_names), ri.m, dtype=np.int64)
        np.minimum.at(first_new, ri.var[new], np.flatnonzero(new))
        after = ~new & (np.arange(ri.m) > first_new[ri.var])
        # variables whose listing order changed (an analysed access now after a new one)
        self.reordered = set(ri.var_names.take(pa.array(np.unique(ri.var[after]))).to_pylist())
        parts = [ri.cross_counts(later=new)]
        if after.any():
            parts.append(ri.cross_counts(later=after, earlier=new))
        v_code = {v: i for i, v in enumerate(ri.var_names.to_pylist())}
        l_code = {loc: i for i, loc in enumerate(ri.loc_names.to_pylist())}
        l_code[None] = -1
        stored = self.q("""SELECT variable, kind, first_location, second_location, cross_count,
                                  example_first, example_second FROM hb.race_groups
                           WHERE variable IN (SELECT v FROM _ikeys)""").to_pylist()
        out: dict = {}
        for r in stored:
            k = (-1, v_code[r["variable"]], int(r["kind"] == "write-write"), l_code[r["first_location"]],
                 l_code[r["second_location"]])
            out[k] = [int(r["cross_count"]), int(r["example_first"]), int(r["example_second"])]
        for part in parts:
            for k, (c, f, sec) in part.items():
                cur = out.get(k)
                if cur is None:
                    out[k] = [c, f, sec]
                    continue
                cur[0] += c
                if ri.example_key([f, sec]) < ri.example_key(cur[1:]):
                    cur[1:] = [f, sec]
        return out

    def _same_trace(self, eng: Engine, ri: RaceInput, keys: list) -> dict:
        """ri.same_trace_counts() with the sweep only over the touched traces: a trace without
        new events keeps its pairs (its accesses, their order, lock sets and clocks inside it
        are as analysed), so its stored per-trace groups are taken back. Ordered as the
        full run's (variable, then trace code): group_tables takes a group's example from
        its first entry."""
        same = ri.same_trace_counts(traces=self.t_codes)
        self.cur.register("_ikv", pa.table({"v": pa.array(keys, pa.string())}))
        try:
            kept = self.q("""SELECT trace_id, variable, kind, first_location, second_location, count,
                                    example_first, example_second FROM hb.race_trace_groups
                             WHERE variable IN (SELECT v FROM _ikv) AND trace_id NOT IN (SELECT trace_id FROM _it)""")
        finally:
            self.cur.unregister("_ikv")
        if not kept.num_rows:
            return same
        t_code = {t: i for i, t in enumerate(eng.trace_names.to_pylist())}
        v_code = {v: i for i, v in enumerate(ri.var_names.to_pylist())}
        l_code = {loc: i for i, loc in enumerate(ri.loc_names.to_pylist())}
        l_code[None] = -1
        for r in kept.to_pylist():
            k = (t_code[r["trace_id"]], v_code[r["variable"]], int(r["kind"] == "write-write"),
                 l_code[r["first_location"]], l_code[r["second_location"]])
            same[k] = [int(r["count"]), int(r["example_first"]), int(r["example_second"])]
        return dict(sorted(same.items(), key=lambda kv: (kv[0][1], kv[0][0])))

    def _check_lifetimes(self) -> pa.Table:
        """Scope auto: an instance's lifetime that grew over another's start changes which
        old pairs race (any variable): the whole engine then. Returns the instances'
        lifetimes now (RaceInput.fetch's ``instances``), from the analysed ones the old
        engine kept (else aggregated over the analysed events) and the new events."""
        was = getattr(self.old, "instances", None)
        if was is None:
            was = self.q("""SELECT service, instance_id, min(ts_ns) AS s, max(ts_ns) AS e FROM events
                             WHERE seq <= $t AND instance_id IS NOT NULL GROUP BY ALL""", {"t": self.top})
        self.cur.register("_iwas", was)
        try:
            bad = self._lifetimes_moved()
            now = self.q("""SELECT service, instance_id, min(s) AS s, max(e) AS e FROM (
                                SELECT service, instance_id, s, e FROM _iwas UNION ALL
                                SELECT service, instance_id, min(ts_ns), max(ts_ns) FROM _ie
                                WHERE seq > $t AND instance_id IS NOT NULL GROUP BY ALL)
                            GROUP BY ALL""", {"t": self.top})
        finally:
            self.cur.unregister("_iwas")
        if bad:
            raise Fallback("a process instance's lifetime now overlaps another's (variable scope auto)")
        return now

    def _lifetimes_moved(self) -> int:
        bad = self.q("""
            WITH was AS (SELECT service, instance_id, s, e FROM _iwas),
                 new AS (SELECT service, instance_id, min(ts_ns) AS s, max(ts_ns) AS e FROM _ie
                         WHERE seq > $t AND instance_id IS NOT NULL GROUP BY ALL),
                 now AS (SELECT w.service, w.instance_id, w.s AS ws, w.e AS we,
                                least(w.s, coalesce(n.s, w.s)) AS s, greatest(w.e, coalesce(n.e, w.e)) AS e
                         FROM was w LEFT JOIN new n
                         ON n.service IS NOT DISTINCT FROM w.service AND n.instance_id = w.instance_id)
            SELECT count(*) AS n FROM now i JOIN now j
            ON NOT (i.service IS NOT DISTINCT FROM j.service AND i.instance_id = j.instance_id)
            WHERE (i.s <> i.ws OR i.e <> i.we)
              AND ((i.we < j.ws OR j.we < i.ws) <> (i.e < j.s OR j.e < i.s))""", {"t": self.top})
        return bad["n"][0].as_py()

    def _pairs(self, eng: Engine, ri: RaceInput, keys: set) -> None:
        """hb.race_pairs, the first ``stored_pairs`` of the listing (write-write pairs, then
        read-write, each by variable name): blocks of untouched variables come from the old
        table (a block only moves later, so its needed part was stored), touched ones are listed."""
        cap = eng.options.stored_pairs
        blocks = self.q("SELECT variable, kind, sum(count) AS n FROM hb.race_groups GROUP BY ALL").to_pylist()
        rank = {"write-write": 0, "read-write": 1}
        blocks.sort(key=lambda b: (rank[b["kind"]], b["variable"]))
        plan, left = [], cap
        for b in blocks:
            if left <= 0:
                break
            take = min(left, int(b["n"]))
            plan.append((b["variable"], b["kind"], take))
            left -= take
        stored = {}
        for v, k, take in plan:
            stored[(v, k)] = self.q("SELECT * FROM hb.race_pairs WHERE variable = $v AND kind = $k ORDER BY o LIMIT $n",
                                    {"v": v, "k": k, "n": take})
        # the sweep lists a variable's pairs by their later access in causal order: unless an
        # analysed access of it now comes after a new one (_cross: self.reordered), a touched
        # variable's new pairs all come after its old ones, so a stored part long enough is
        # still its beginning; else its pairs are listed
        need = {(v, k): take for v, k, take in plan
                if v in keys and (v in self.reordered or stored[(v, k)].num_rows < take)}
        listed = self._listed(ri, need) if need else {}
        parts = []
        for v, k, take in plan:
            t = listed.get((v, k)) if (v, k) in need else stored[(v, k)]
            if t is None or t.num_rows != take:
                raise Fallback("the stored pair listing does not hold what it should")
            parts.append(t.select(["first_seq", "second_seq", "variable", "kind", "severity", "cross_trace"]))
        self.x("DELETE FROM hb.race_pairs")
        if parts:
            t = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
            t = t.add_column(0, "o", pa.array(np.arange(t.num_rows, dtype=np.int64)))
            self.cur.register("_ip", t)
            self.x("INSERT INTO hb.race_pairs SELECT * FROM _ip")
            self.cur.unregister("_ip")

    @staticmethod
    def _listed(ri: RaceInput, need: dict) -> dict:
        """The first pairs of the touched variables per (variable, kind), as many as needed;
        the listing stops once every need is met."""
        got: dict = {key: [] for key in need}
        have = dict.fromkeys(need, 0)
        short = {key for key, n in need.items() if n > 0}
        for t in ri.restricted({v for v, _ in need}).pair_batches(batch=1 << 14):
            if not short:
                break
            for key in list(short):
                v, k = key
                part = t.filter(pa.compute.and_(pa.compute.equal(t["variable"], v), pa.compute.equal(t["kind"], k)))
                if part.num_rows:
                    part = part.slice(0, need[key] - have[key])
                    got[key].append(part)
                    have[key] += part.num_rows
                    if have[key] >= need[key]:
                        short.discard(key)
        return {key: pa.concat_tables(ts) for key, ts in got.items() if ts}

    # -- critical paths of the touched traces ------------------------------------------------
    def _critical(self, eng: Engine) -> None:
        t_ctx = np.flatnonzero(np.isin(eng.trace_of_ctx, self.t_codes))
        seg = [eng.ctx_rows[eng.ctx_start[c]:eng.ctx_start[c + 1]] for c in t_ctx.tolist()]
        rows_by_ctx = np.concatenate(seg)
        rows = np.sort(rows_by_ctx)
        local = {r: i for i, r in enumerate(rows.tolist())}
        k = len(rows)
        lrows = np.array([local[r] for r in rows_by_ctx.tolist()], dtype=np.int64)  # (ctx, pos) order
        lstart = np.r_[0, np.cumsum([len(s) for s in seg])].astype(np.int64)
        d = self.q(f"SELECT seq, {path_ns()} AS d FROM _ie")
        dur_of = dict(zip(d["seq"].to_pylist(), d["d"].to_pylist()))
        dur = np.array([dur_of[s] for s in eng.seq[rows].tolist()], dtype=np.int64)
        trace_codes = eng.trace_of_ctx[eng.ctx]
        keep = eng.e_alive & eng._edges_of_kind(*CP_KINDS)
        keep &= trace_codes[eng.e_src] == trace_codes[eng.e_dst]
        keep &= np.isin(trace_codes[eng.e_dst], self.t_codes)
        src = np.array([local[r] for r in eng.e_src[keep].tolist()], dtype=np.int64)
        dst = np.array([local[r] for r in eng.e_dst[keep].tolist()], dtype=np.int64)
        rank = eng.rank[rows]
        topo = np.argsort(rank, kind="stable")
        lrank = np.empty(k, dtype=np.int64)
        lrank[topo] = np.arange(k)
        dp, best, recv_of, prev = longest_paths(k, lrows, lstart, eng.pos[rows], dur, lrank, topo, src, dst)
        tc = trace_codes[rows]
        order = np.lexsort((lrank, dp, tc))
        last = order[np.r_[np.flatnonzero(np.diff(tc[order])), len(order) - 1]]
        names = eng.trace_names.to_pylist()
        st_trace, st_idx, st_seq = [], [], []
        for end in last.tolist():
            path = path_rows(end, best, recv_of, prev)
            st_trace.extend([names[int(tc[end])]] * len(path))
            st_idx.extend(range(len(path)))
            st_seq.extend(eng.seq[rows[path]].tolist())
        self.x("DELETE FROM hb.critical WHERE trace_id IN (SELECT trace_id FROM _it)")
        self.x("DELETE FROM hb.critical_summary WHERE trace_id IN (SELECT trace_id FROM _it)")
        tbl = pa.table({"trace_id": pa.array(st_trace, pa.string()), "step": pa.array(st_idx, pa.int32()),
                        "seq": pa.array(st_seq, pa.int64())})
        self.cur.register("_icp", tbl)
        self.x("INSERT INTO hb.critical SELECT * FROM _icp")
        self.cur.unregister("_icp")
        self.x(f"""
            INSERT INTO hb.critical_summary
            WITH p AS (SELECT c.trace_id, sum({path_ns('e')}) AS path_ns, count(*) AS steps
                       FROM hb.critical c JOIN _ie e USING (seq) WHERE c.trace_id IN (SELECT trace_id FROM _it)
                       GROUP BY c.trace_id),
                 t AS (SELECT trace_id, {span_ns()} AS span_ns,
                              sum(coalesce(duration_ns, 0)) AS sum_ns FROM _ie GROUP BY trace_id)
            SELECT p.trace_id, p.path_ns, t.span_ns, t.sum_ns, p.steps,
                   CASE WHEN t.span_ns > 0 THEN 100.0 * p.path_ns / t.span_ns END AS percentage
            FROM p JOIN t USING (trace_id)""")


_SOURCE = None


def _engine_source() -> str:
    """engine.py's text (the lock-set SQL is taken from it, so both stay one query)."""
    global _SOURCE
    if _SOURCE is None:
        import inspect

        from raceway_core.causality import engine

        _SOURCE = inspect.getsource(engine)
    return _SOURCE


class _HBView:
    """The engine's HappensBefore, with ``columns`` read from the snapshots of the rows' own
    contexts only (the engine's flattens every context's: right for all accesses, too much
    for those of a few variables; a Python bisect per row cost 1.5 s for a hot variable's
    ~300k accesses at 1M events)."""

    def __init__(self, hb) -> None:
        self._hb = hb

    def __getattr__(self, name):
        return getattr(self._hb, name)

    def columns(self, rows: np.ndarray) -> dict[str, list]:
        hb = self._hb
        ctx = hb.ctx[rows]
        pos = hb.pos[rows]
        out = {"trace": hb.trace_of_ctx[ctx].tolist(), "ctx": ctx.tolist(), "local": hb.local[ctx].tolist(),
               "pos": pos.tolist()}
        cs = np.unique(ctx)
        key = (np.searchsorted(cs, ctx).astype(np.int64) << 32) | pos
        c_list = cs.tolist()
        for name, positions, values, side, empty in (("L", hb.l_pos, hb.l_clock, "right", None),
                                                      ("G", hb.g_pos, hb.g_clock, "right", None),
                                                      ("F", hb.f_pos, hb.f_val, "left", {})):
            flat_key, flat_val = _flatten([positions[c] for c in c_list], [values[c] for c in c_list])
            n = len(flat_key)
            i = np.searchsorted(flat_key, key, side=side) - (1 if side == "right" else 0)
            ok = (i >= 0) & (i < n)
            ok[ok] &= (flat_key[i[ok]] >> 32) == (key[ok] >> 32)
            vals = np.empty(n + 1, dtype=object)  # the last slot: "none known"
            vals[:n] = flat_val
            vals[n] = empty
            out[name] = vals[np.where(ok, i, n)].tolist()
        return out


class _EngView:
    def __init__(self, eng: Engine) -> None:
        self._eng = eng
        self.hb = _HBView(eng.hb)

    def __getattr__(self, name):
        return getattr(self._eng, name)
