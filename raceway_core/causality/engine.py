"""The causality engine: happens-before over the whole store, then the analyses.

Stages (each timed in ``Engine.timings``):

1. order   - contexts, program order, (timestamp, seq) rank          (SQL)
2. trust   - which traces' given vector clocks are valid              (SQL)
3. edges   - rules 2-6 as explicit edges                              (SQL)
4. topo    - a causal order; edges closing a cycle are dropped        (numpy / Kahn)
5. clocks  - a vector clock for every event (persistent tries)        (Python sweep)
6. locks   - lock sets of accesses                  (SQL, in a thread beside the clocks)
7. races   - exact counts (per trace: sweep; across traces: clocks, numpy), first pairs listed
8. critical- longest duration path per trace                          (Python sweep)
9. tables  - results written to the hb schema (SQL, in a thread beside the critical paths)

``Engine.wall`` is the time of the whole run (less than the sum of the stages).

Rows are events in ``seq`` order; ``row_of(seq)`` maps back.
"""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.causality import graph, trust
from raceway_core.causality.clocks import HappensBefore, lock_chains
from raceway_core.causality.critical_path import longest_paths, paths_rows
from raceway_core.causality.order import causal_order
from raceway_core.causality.raceinput import RaceInput, codes as _codes
from raceway_core.dbutil import query_arrow
from raceway_core.intervals import path_ns, span_ns

CP_KINDS = ("parent", "join", "lock", "call", "return")
# in the order they start (locks and tables start in a thread just before clocks and critical)
STAGES = ("order", "trust", "edges", "load", "topo", "locks", "clocks", "races", "tables", "critical")
# DuckDB's memory during a run, per event (at least MEMORY_FLOOR): it otherwise keeps up to
# 80% of RAM in its buffer pool; past the cap it evicts (a --db store) or spills to its temp
# directory. At 1M events 400 MB took the analysis' peak RSS from ~1.4 GB to ~1.0 GB.
MEMORY_PER_EVENT = 400
MEMORY_FLOOR = 256 << 20
ENGINE_VERSION = "4"  # bump when the hb tables change meaning (2: cycles, joins, intervals; 3: exact race counts; 4: a group's example is its first pair in time order)


_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
          "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}


def _bytes(setting: str) -> float:
    """A DuckDB memory setting ('18.8 GiB', '400.0 MiB') in bytes."""
    num, _, unit = setting.strip().partition(" ")
    return float(num) * _UNITS.get(unit.strip().upper(), 1)


_capped: dict[int, list] = {}  # id(store) -> [blocks inside, setting to restore]
_capped_lock = threading.Lock()


@contextmanager
def memory_cap(store):
    """DuckDB's memory_limit lowered to MEMORY_PER_EVENT per event (never raised) while any
    such block runs on the store (a run, the headless document's queries after it); the
    setting is the database's, so nested and concurrent blocks share one cap."""
    cur = store.cursor()
    try:
        with _capped_lock:
            entry = _capped.setdefault(id(store), [0, None])
            if entry[0] == 0:
                before = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
                n = cur.execute("SELECT count(*) FROM events").fetchall()[0][0]
                cap = max(MEMORY_FLOOR, n * MEMORY_PER_EVENT)
                if cap < _bytes(before):
                    cur.execute(f"SET memory_limit = '{cap // 1024}KiB'").fetchall()
                    entry[1] = before
            entry[0] += 1
        yield
    finally:
        with _capped_lock:
            entry[0] -= 1
            if entry[0] == 0:
                if entry[1] is not None:
                    cur.execute(f"SET memory_limit = '{entry[1]}'").fetchall()
                del _capped[id(store)]
        cur.close()


@dataclass(frozen=True)
class EngineOptions:
    # "global": one variable name is one variable; "service": per service; "instance": per
    # service instance; "auto": global, but process instances whose lifetimes do not overlap never race
    variable_scope: str = "auto"
    stored_pairs: int = 10_000  # racing pairs kept as rows (hb.race_pairs); counts are always exact


class Engine:
    def __init__(self, store, options: EngineOptions = EngineOptions()) -> None:
        self.store = store
        self.options = options
        self.timings: dict[str, float] = {}
        self.wall = 0.0
        self.version = store.version
        self._progress = None  # set by run(); restore() reports no stages

    # -- build ------------------------------------------------------------------
    def run(self, progress=None) -> "Engine":
        """Compute everything; ``progress(stage, index, total)`` is called before each stage."""
        self._progress = progress
        started = time.perf_counter()
        cur = self.store.cursor()
        # SQL-only stages run beside the Python ones (DuckDB releases the GIL): lock sets
        # while the clocks are built, the result tables while the critical paths are walked
        pool = ThreadPoolExecutor(1, thread_name_prefix="raceway-engine-sql")
        # The sweeps keep hundreds of thousands of tuples and dicts alive to the end and free
        # none in cycles; the cyclic collector walked them again and again (0.6-0.9 s of the
        # ~9 s CPU at 1M events). Collection resumes after the run.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with memory_cap(self.store):
                order = self._stage("order", lambda: graph.build_order(cur))
                clock_sql = self._stage("trust", lambda: trust.judge(cur))
                edges = self._stage("edges", lambda: graph.build_edges(cur, clock_sql, order))
                self._stage("load", lambda: self._load(cur, order, edges))
                order = edges = None  # the arrays now live in the engine
                self._stage("topo", lambda: self._topo(cur))
                locks = self._start_beside(pool, "locks", self._locksets_arrays)
                self._stage("clocks", self._clocks)
                locks.result()  # usually done: it had the clocks' time
                self._stage("races", lambda: self._races(cur))
                tables = self._start_beside(pool, "tables", self._tables)  # rewrites hb.ev: after races read it
                self._stage("critical", lambda: self._critical(cur))
                tables.result()
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('hb_fingerprint', ?), ('hb_races', ?)",
                            [self._fingerprint(cur), str(self.race_count)]).fetchall()
        finally:
            if collecting:
                gc.enable()
            pool.shutdown(wait=True)
            cur.close()
        self.wall = time.perf_counter() - started
        return self

    def _start_beside(self, pool, name: str, fn):
        if self._progress is not None:
            self._progress(name, STAGES.index(name), len(STAGES))
        return pool.submit(self._beside, name, fn)

    def _beside(self, name: str, fn) -> None:
        """A stage on its own cursor in the engine's SQL thread; its time is its own."""
        cur = self.store.cursor()
        t = time.perf_counter()
        try:
            fn(cur)
        finally:
            cur.close()
            self.timings[name] = time.perf_counter() - t

    # -- reuse ----------------------------------------------------------------------
    def _fingerprint(self, cur) -> str:
        """What the stored hb tables were computed from: the events and the options."""
        n, top, total = cur.execute(
            "SELECT count(*), coalesce(max(seq), -1), coalesce(sum(seq) % 9223372036854775783, 0) FROM events"
        ).fetchall()[0]
        return f"{ENGINE_VERSION}:{self.options.variable_scope}:{self.options.stored_pairs}:{n}:{top}:{total}"

    @classmethod
    def restore(cls, store, options: EngineOptions = EngineOptions()) -> "Engine | None":
        """The engine over hb tables a previous run left in a --db store, when they still
        describe its events: only the in-memory clocks are rebuilt (no SQL, no sweep)."""
        eng = cls(store, options)
        cur = store.cursor()
        try:
            rows = cur.execute("SELECT key, value FROM meta WHERE key IN ('hb_fingerprint', 'hb_races')").fetchall()
            stored = dict(rows)
            if stored.get("hb_fingerprint") != eng._fingerprint(cur):
                return None
            eng._stage("load", lambda: eng._load(cur))
            ords = query_arrow(cur, "SELECT ord FROM hb.ev ORDER BY seq")["ord"].to_numpy()
            eng.rank = ords
            eng.topo_rows = np.argsort(ords, kind="stable")
            eng.e_alive = ~eng._stored_dropped
            eng.dropped = int((~eng.e_alive).sum())
            eng._stage("clocks", eng._clocks)
            eng.race_count = int(stored.get("hb_races", 0))
            eng.race_visited = 0
        except duckdb.Error:
            return None
        finally:
            cur.close()
        return eng

    def _stage(self, name: str, fn):
        if self._progress is not None:
            self._progress(name, STAGES.index(name), len(STAGES))
        t = time.perf_counter()
        out = fn()
        self.timings[name] = time.perf_counter() - t
        return out

    def _load(self, cur, order: "graph.Order | None" = None, edges: "graph.Edges | None" = None) -> None:
        if order is None:  # a stored analysis (restore): read back what build_order wrote
            ev = query_arrow(cur, "SELECT seq, idx, ctx, pos, ts_ns FROM hb.ev ORDER BY seq")
            ctx = query_arrow(cur, "SELECT ctx, trace_id, thread_id, service, events FROM hb.ctx ORDER BY ctx")
            order = graph.Order(
                seq=ev["seq"].to_numpy(), ts=ev["ts_ns"].to_numpy(), idx=ev["idx"].to_numpy(),
                ctx=ev["ctx"].to_numpy().astype(np.int64), pos=ev["pos"].to_numpy().astype(np.int64),
                ctx_trace=ctx["trace_id"].to_pylist(), ctx_thread=ctx["thread_id"].to_pylist(),
                ctx_service=ctx["service"].to_pylist(), ctx_events=ctx["events"].to_numpy(), trace_of_ctx=None)
        self.seq, self.ts, self.idx, self.ctx, self.pos = order.seq, order.ts, order.idx, order.ctx, order.pos
        self.n = len(self.seq)
        self.n_ctx = len(order.ctx_trace)
        self.ctx_trace, self.ctx_thread, self.ctx_service = order.ctx_trace, order.ctx_thread, order.ctx_service
        self.ctx_rows = order.ctx_rows if order.ctx_rows is not None else np.lexsort((self.pos, self.ctx))
        self.ctx_start = np.r_[0, np.cumsum(order.ctx_events)].astype(np.int64)
        # releases by (lock id, idx), sorted here: the engine has idx (a join to hb.ev cost more)
        r = query_arrow(cur, "SELECT seq, lock_id FROM events WHERE kind = 'LockRelease' AND lock_id IS NOT NULL")
        rel_rows = self.row_of(r["seq"].to_numpy())
        code, names = _codes(r["lock_id"])
        by_name = np.empty(len(names), dtype=np.int64)
        by_name[pc.array_sort_indices(names).to_numpy()] = np.arange(len(names))  # byte order, as SQL's
        o = np.lexsort((self.idx[rel_rows], by_name[code])) if len(code) else np.zeros(0, dtype=np.int64)
        self._releases = (rel_rows[o], names.take(pa.array(code[o], pa.int64())).to_pylist())
        if edges is None:  # a stored analysis
            e = query_arrow(cur, "SELECT src, dst, kind, detail, dropped FROM hb.edges")
            self._stored_dropped = e["dropped"].to_numpy(zero_copy_only=False)
            edges = graph.Edges(src=self.row_of(e["src"].to_numpy()), dst=self.row_of(e["dst"].to_numpy()),
                                kind=e["kind"], detail=e["detail"].combine_chunks())
        else:
            self._stored_dropped = np.zeros(len(edges.src), dtype=bool)
        self.e_src, self.e_dst = edges.src, edges.dst
        # kinds as codes, details left in Arrow: Python objects for a million edges cost ~0.4 s
        self._e_kind_codes, names = _codes(edges.kind)
        self._e_kind_names = names.to_pylist()
        self._e_detail = edges.detail

    def edge_kind(self, k: int) -> str:
        return self._e_kind_names[self._e_kind_codes[k]]

    def edge_detail(self, k: int):
        return self._e_detail[k].as_py()

    def _edges_of_kind(self, *kinds: str) -> np.ndarray:
        """A mask over the edges: those of these kinds."""
        wanted = [i for i, name in enumerate(self._e_kind_names) if name in kinds]
        return np.isin(self._e_kind_codes, wanted)

    def row_of(self, seq):
        """Row(s) of event seq number(s)."""
        return np.searchsorted(self.seq, seq)

    def _topo(self, cur) -> None:
        topo = causal_order(self.idx, self.ctx_rows, self.ctx_start, self.e_src, self.e_dst, self.ts)
        self.rank, self.topo_rows = topo.rank, topo.rows
        alive = np.ones(len(self.e_src), dtype=bool)
        alive[topo.dropped] = False
        self.e_alive = alive
        if len(topo.dropped):
            dropped = pa.table({"src": self.seq[self.e_src[topo.dropped]], "dst": self.seq[self.e_dst[topo.dropped]]})
            cur.register("_dropped", dropped)
            cur.execute("UPDATE hb.edges SET dropped = true FROM _dropped d "
                        "WHERE hb.edges.src = d.src AND hb.edges.dst = d.dst").fetchall()
            cur.unregister("_dropped")
        self.dropped = int(len(topo.dropped))

    def _clocks(self) -> None:
        keep = self.e_alive
        src, dst = self.e_src[keep], self.e_dst[keep]
        order = np.argsort(dst, kind="stable")
        self.in_start = np.searchsorted(dst[order], np.arange(self.n + 1))  # for explanations
        self.in_src = src[order]
        trace_codes, self.trace_names = _codes(pa.array(self.ctx_trace, pa.string()))
        self.trace_of_ctx = trace_codes
        trace = trace_codes[self.ctx]
        handoff = self._edges_of_kind("lock")[keep]
        # parent and join links into another trace (rules 2, 3): one-release chains
        cross_parent = self._edges_of_kind("parent", "join")[keep] & (trace[src] != trace[dst])
        rel = self._releases
        chains = lock_chains(rel[0], rel[1], self.ctx, self.pos, trace_codes,
                             src[handoff], dst[handoff], src[cross_parent])
        self.hb = HappensBefore(self.n_ctx, self.ctx, self.pos, trace_codes)
        self.hb.build(self.topo_rows, src, dst, chains)

    # -- queries ----------------------------------------------------------------
    def before(self, a: int, b: int) -> bool:
        return self.hb.before(a, b)

    def ctx_label(self, c: int) -> str:
        svc = self.ctx_service[c]
        return f"{svc}/{self.ctx_thread[c]}" if svc else self.ctx_thread[c]

    # -- lock sets ----------------------------------------------------------------
    def _locksets(self, cur) -> None:
        """Locks a context holds at each of its accesses, from its acquires and releases in
        program order (a release of a lock not held is ignored: the walk is clamped at 0);
        the given lock_set only for contexts without lock events."""
        cur.execute("""
            CREATE OR REPLACE TABLE hb.locksets AS
            WITH lk AS (
                SELECT o.ctx, o.pos, e.lock_id, CASE e.kind WHEN 'LockAcquire' THEN 1 ELSE -1 END AS d
                FROM events e JOIN hb.ev o USING (seq)
                WHERE e.kind IN ('LockAcquire', 'LockRelease') AND e.lock_id IS NOT NULL
            ), walk AS (
                SELECT ctx, pos, lock_id, sum(d) OVER w AS s FROM lk
                WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
            ), bal AS (
                SELECT ctx, pos, lock_id, s - least(0, min(s) OVER w) AS held FROM walk
                WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
            ), per_ctx AS (SELECT DISTINCT ctx, lock_id FROM lk),
            acc AS (
                SELECT e.seq, o.ctx, o.pos, e.lock_set FROM events e JOIN hb.ev o USING (seq)
                WHERE e.kind = 'StateChange'
            ), cand AS (
                SELECT a.seq, a.ctx, a.pos, p.lock_id FROM acc a JOIN per_ctx p USING (ctx)
            ), held AS (
                SELECT c.seq, list(c.lock_id ORDER BY c.lock_id) FILTER (WHERE b.held > 0) AS locks
                FROM cand c ASOF JOIN bal b ON b.ctx = c.ctx AND b.lock_id = c.lock_id AND c.pos > b.pos
                GROUP BY c.seq
            )
            SELECT a.seq, CASE WHEN a.ctx IN (SELECT ctx FROM per_ctx) THEN coalesce(h.locks, [])
                               ELSE coalesce(list_sort(list_distinct(a.lock_set)), []) END AS locks
            FROM acc a LEFT JOIN held h USING (seq)
        """).fetchall()

    def _locksets_arrays(self, cur) -> None:
        """hb.locksets as _locksets computes it (that SQL stays the reference, and
        incremental.py runs it on appended events), over the engine's arrays: the walk per
        (context, lock) is a segmented cumulative sum and running minimum, the ASOF join a
        binary search (at 1M events 0.7 s of DuckDB CPU -> ~0.2 s)."""
        lk = query_arrow(cur, """SELECT seq, lock_id, kind = 'LockAcquire' AS acq FROM events
                                 WHERE kind IN ('LockAcquire', 'LockRelease') AND lock_id IS NOT NULL""")
        acc = query_arrow(cur, "SELECT seq FROM events WHERE kind = 'StateChange'")
        names = pc.unique(lk["lock_id"]).sort()  # by name: the lists are sorted by lock id
        code = pc.index_in(lk["lock_id"], names).to_numpy().astype(np.int64)
        r = self.row_of(lk["seq"].to_numpy())
        ctx, pos = self.ctx[r], self.pos[r]
        d = np.where(lk["acq"].to_numpy(zero_copy_only=False), 1, -1)
        o = np.lexsort((pos, code, ctx))
        ctx, code, pos, d = ctx[o], code[o], pos[o], d[o]
        m = len(o)
        new = np.ones(m, dtype=bool)
        new[1:] = (ctx[1:] != ctx[:-1]) | (code[1:] != code[:-1])
        group = np.cumsum(new) - 1
        starts = np.flatnonzero(new)
        s = np.cumsum(d)
        s -= np.repeat(np.r_[0, s[starts[1:] - 1]] if m else np.zeros(0, np.int64), np.diff(np.r_[starts, m]))
        # running minimum per group: later groups shifted below every earlier value
        shift = group * (2 * m + 2)
        run_min = np.minimum.accumulate(s - shift) + shift if m else s
        held = (s - np.minimum(0, run_min)) > 0
        g_ctx, g_code = ctx[starts], code[starts]  # groups, by (ctx, lock)
        # accesses: per lock of its context, the last lock event before it
        ar = self.row_of(acc["seq"].to_numpy())
        a_ctx, a_pos = self.ctx[ar], self.pos[ar]
        lo = np.searchsorted(g_ctx, a_ctx, "left")
        hi = np.searchsorted(g_ctx, a_ctx, "right")
        cnt = hi - lo
        who = np.repeat(np.arange(len(ar)), cnt)
        g = np.repeat(lo, cnt) + (np.arange(int(cnt.sum())) - np.repeat(np.r_[0, np.cumsum(cnt)][:-1], cnt))
        span = int(self.pos.max()) + 2 if self.n else 1  # above every position, the accesses' too
        key = group * span + pos
        at = np.searchsorted(key, g * span + a_pos[who], "left") - 1
        ok = (at >= 0) & (group[np.maximum(at, 0)] == g)
        ok[ok] &= held[at[ok]]
        who, g = who[ok], g[ok]  # in (access, lock name) order
        offsets = np.r_[0, np.cumsum(np.bincount(who, minlength=len(ar)))].astype(np.int32)
        computed = pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(g_code[g])))
        # contexts with lock events: the walk; the others: the given lock_set, sorted and
        # distinct in SQL for those accesses only (for every access it cost ~0.09 s at 1M events)
        has_locks = cnt > 0
        given = pa.array([], pa.list_(pa.string()))
        choose = np.arange(len(ar))
        need = np.flatnonzero(~has_locks)
        if len(need):
            seqs = acc["seq"].to_numpy()[need]
            by_seq = np.argsort(seqs, kind="stable")
            cur.register("_need", pa.table({"seq": pa.array(seqs[by_seq])}))
            try:
                given = query_arrow(cur, """SELECT e.seq, coalesce(list_sort(list_distinct(e.lock_set)), []) AS given
                                              FROM events e SEMI JOIN _need USING (seq) ORDER BY e.seq""")["given"]
            finally:
                cur.unregister("_need")
            given = given.combine_chunks() if isinstance(given, pa.ChunkedArray) else given
            at = np.empty(len(need), dtype=np.int64)
            at[by_seq] = np.arange(len(need))  # need[k]'s row in the query's (seq) order
            choose[need] = len(ar) + at
        locks = pa.concat_arrays([computed.cast(given.type), given]).take(pa.array(choose))
        cur.register("_ls", pa.table({"seq": acc["seq"].combine_chunks(), "locks": locks}))
        try:
            cur.execute("CREATE OR REPLACE TABLE hb.locksets AS SELECT * FROM _ls").fetchall()
        finally:
            cur.unregister("_ls")

    # -- races ----------------------------------------------------------------------
    def race_input(self, cur, trace_id: str | None = None, variable: str | None = None) -> "RaceInput":
        """The accesses (of one trace, or all; of one variable, or all), sorted by (variable
        name, causal order), with what the sweep and the counts need."""
        return RaceInput.fetch(self, cur, trace_id, variable)

    def _races(self, cur) -> None:
        ri = self.race_input(cur)
        self.instances = ri.instances  # process instances' lifetimes (scope auto): incremental.py goes on from them
        same = ri.same_trace_counts()
        if np.array_equal(self.rank, self.idx):
            cross = ri.cross_counts()
        else:  # a reordered causal order: "first" is not always the earlier access; list to count
            cross = ri.listed_counts(cross_only=True)
        self.race_visited = ri.checks
        groups, trace_groups = ri.group_tables(same, cross)
        self.race_count = int(sum(groups["count"].to_pylist())) if groups.num_rows else 0
        cur.register("_g", groups)
        cur.register("_tg", trace_groups)
        try:
            cur.execute("CREATE OR REPLACE TABLE hb.race_groups AS SELECT * FROM _g").fetchall()
            cur.execute("CREATE OR REPLACE TABLE hb.race_trace_groups AS SELECT * FROM _tg").fetchall()
        finally:
            cur.unregister("_g")
            cur.unregister("_tg")
        cur.execute("""CREATE OR REPLACE TABLE hb.race_pairs (o BIGINT, first_seq BIGINT, second_seq BIGINT,
                       variable VARCHAR, kind VARCHAR, severity VARCHAR, cross_trace BOOLEAN)""").fetchall()
        left = self.options.stored_pairs
        batches = ri.pair_batches(batch=max(1, min(left, 1 << 16)))
        # stop once the pairs kept are stored: asking for one more batch swept on for it
        for t in batches if left > 0 else ():
            t = t.slice(0, left)
            left -= t.num_rows
            cur.register("_p", t)
            cur.execute("INSERT INTO hb.race_pairs SELECT * FROM _p").fetchall()
            cur.unregister("_p")
            if left <= 0:
                break
        batches.close()

    def iter_race_pairs(self, trace_id: str | None = None, batch: int = 1 << 16, variable: str | None = None):
        """Racing pairs as Arrow tables (o, first_seq, second_seq, variable, kind, severity,
        cross_trace): critical first, then by variable, in causal order; with trace_id the
        pairs with both events in that trace; with variable, those of that variable (as
        the scope names it). Computed as they are taken."""
        cur = self.store.cursor()
        try:
            ri = self.race_input(cur, trace_id, variable)
        finally:
            cur.close()
        yield from ri.pair_batches(batch)

    # -- critical path --------------------------------------------------------------
    def _critical(self, cur) -> None:
        t = query_arrow(cur, f"SELECT seq, {path_ns()} AS d FROM events")  # placed by seq here: no SQL sort
        d = np.zeros(self.n, dtype=np.int64)
        d[self.row_of(t["seq"].to_numpy())] = t["d"].to_numpy()
        trace_codes = self.trace_of_ctx[self.ctx]
        keep = self.e_alive & self._edges_of_kind(*CP_KINDS)
        keep &= trace_codes[self.e_src] == trace_codes[self.e_dst]
        dp, best, recv_of, prev = longest_paths(self.n, self.ctx_rows, self.ctx_start, self.pos, d,
                                                self.rank, self.topo_rows, self.e_src[keep], self.e_dst[keep])
        # per trace: the row with the largest total, latest in causal order on ties
        # (a 3-key sort of every row cost ~0.13 s at 1M events)
        top = np.full(len(self.trace_names), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(top, trace_codes, dp)
        cand = np.flatnonzero(dp == top[trace_codes])
        last = np.full(len(self.trace_names), -1, dtype=np.int64)
        np.maximum.at(last, trace_codes[cand], self.rank[cand])
        ends = self.topo_rows[last[last >= 0]]  # by trace code
        rows, lengths = paths_rows(ends, best, recv_of, prev)
        starts = np.repeat(np.r_[0, np.cumsum(lengths)][:-1], lengths)
        steps_seq = self.seq[rows]
        steps_idx = (np.arange(len(rows)) - starts).astype(np.int32)
        steps_trace = self.trace_names.take(pa.array(np.repeat(trace_codes[ends], lengths))) \
            if len(rows) else pa.array([], pa.string())
        cur.execute("CREATE OR REPLACE TABLE hb.critical (trace_id VARCHAR, step INTEGER, seq BIGINT)").fetchall()
        if len(steps_seq):
            tbl = pa.table({"trace_id": steps_trace, "step": pa.array(steps_idx), "seq": pa.array(steps_seq)})
            cur.register("_cp", tbl)
            cur.execute("INSERT INTO hb.critical SELECT * FROM _cp").fetchall()
            cur.unregister("_cp")
        cur.execute(f"""
            CREATE OR REPLACE TABLE hb.critical_summary AS
            WITH p AS (SELECT c.trace_id, sum({path_ns('e')}) AS path_ns, count(*) AS steps
                       FROM hb.critical c JOIN events e USING (seq) GROUP BY c.trace_id),
                 t AS (SELECT trace_id, {span_ns()} AS span_ns,
                              sum(coalesce(duration_ns, 0)) AS sum_ns FROM events GROUP BY trace_id)
            SELECT p.trace_id, p.path_ns, t.span_ns, t.sum_ns, p.steps,
                   CASE WHEN t.span_ns > 0 THEN 100.0 * p.path_ns / t.span_ns END AS percentage
            FROM p JOIN t USING (trace_id)
        """).fetchall()

    # -- result tables ----------------------------------------------------------------
    def _tables(self, cur) -> None:
        """hb.ev's ord and tord when the causal order is not the time order build_order assumed."""
        if np.array_equal(self.rank, self.idx):
            return
        tbl = pa.table({"seq": pa.array(self.seq), "ord": pa.array(self.rank)})
        cur.register("_ord", tbl)
        cur.execute("""CREATE OR REPLACE TABLE hb.ev AS
            SELECT e.* EXCLUDE (ord, tord), o.ord,
                   CAST(row_number() OVER (PARTITION BY e.trace_id ORDER BY o.ord) - 1 AS BIGINT) AS tord
            FROM hb.ev e JOIN _ord o USING (seq) ORDER BY o.ord""").fetchall()
        cur.unregister("_ord")
