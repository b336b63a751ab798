"""The causality engine: happens-before over the whole store, then the analyses.

Stages (each timed in ``Engine.timings``):

1. order   - contexts, program order, (timestamp, seq) rank          (SQL)
2. trust   - which traces' given vector clocks are valid              (SQL)
3. edges   - rules 2-6 as explicit edges                              (SQL)
4. topo    - a causal order; edges closing a cycle are dropped        (numpy / Kahn)
5. clocks  - a vector clock for every event (persistent tries)        (Python sweep)
6. locks   - lock sets of accesses                                    (Python sweep)
7. races   - frontier-forest sweep per variable                       (Python sweep)
8. critical- longest duration path per trace                          (Python sweep)
9. tables  - results written to the hb schema for SQL and the TUI     (Arrow -> DuckDB)

Rows are events in ``seq`` order; ``row_of(seq)`` maps back.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from raceway_core.causality import graph, trust
from raceway_core.causality.clocks import ClockTable
from raceway_core.causality.critical_path import longest_paths, path_rows
from raceway_core.causality.order import causal_order
from raceway_core.causality.races import CLASS_OF, W, AW, sweep
from raceway_core.dbutil import query_arrow

CP_KINDS = ("parent", "join", "lock", "call", "return")


@dataclass(frozen=True)
class EngineOptions:
    variable_scope: str = "global"  # "global": one variable name is one variable; "service": per service
    stored_pairs: int = 1_000_000  # racing pairs kept as rows; all of them are counted in groups


class Engine:
    def __init__(self, store, options: EngineOptions = EngineOptions()) -> None:
        self.store = store
        self.options = options
        self.timings: dict[str, float] = {}
        self.version = store.version

    # -- build ------------------------------------------------------------------
    def run(self) -> "Engine":
        cur = self.store.cursor()
        try:
            self._stage("order", lambda: graph.build_order(cur))
            clock_sql = self._stage("trust", lambda: trust.judge(cur))
            self._stage("edges", lambda: graph.build_edges(cur, clock_sql))
            self._stage("load", lambda: self._load(cur))
            self._stage("topo", lambda: self._topo(cur))
            self._stage("clocks", self._clocks)
            self._stage("locks", lambda: self._locksets(cur))
            self._stage("races", lambda: self._races(cur))
            self._stage("critical", lambda: self._critical(cur))
            self._stage("tables", lambda: self._tables(cur))
        finally:
            cur.close()
        return self

    def _stage(self, name: str, fn):
        t = time.perf_counter()
        out = fn()
        self.timings[name] = time.perf_counter() - t
        return out

    def _load(self, cur) -> None:
        ev = query_arrow(cur, "SELECT seq, idx, ctx, pos FROM hb.ev ORDER BY seq")
        self.seq = ev["seq"].to_numpy()
        self.idx = ev["idx"].to_numpy()
        self.ctx = ev["ctx"].to_numpy().astype(np.int64)
        self.pos = ev["pos"].to_numpy().astype(np.int64)
        self.n = len(self.seq)
        ctx = query_arrow(cur, "SELECT ctx, trace_id, thread_id, service, events FROM hb.ctx ORDER BY ctx")
        self.n_ctx = ctx.num_rows
        self.ctx_trace = ctx["trace_id"].to_pylist()
        self.ctx_thread = ctx["thread_id"].to_pylist()
        self.ctx_service = ctx["service"].to_pylist()
        self.ctx_rows = np.lexsort((self.pos, self.ctx))
        self.ctx_start = np.r_[0, np.cumsum(ctx["events"].to_numpy())].astype(np.int64)
        e = query_arrow(cur, "SELECT src, dst, kind, detail, cross_trace FROM hb.edges")
        self.e_src = self.row_of(e["src"].to_numpy())
        self.e_dst = self.row_of(e["dst"].to_numpy())
        self.e_kind = e["kind"].to_pylist()
        self.e_detail = e["detail"].to_pylist()

    def row_of(self, seq):
        """Row(s) of event seq number(s)."""
        return np.searchsorted(self.seq, seq)

    def _topo(self, cur) -> None:
        topo = causal_order(self.idx, self.ctx_rows, self.ctx_start, self.e_src, self.e_dst)
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

    def _incoming(self, keep: np.ndarray):
        src, dst = self.e_src[keep], self.e_dst[keep]
        order = np.argsort(dst, kind="stable")
        in_start = np.searchsorted(dst[order], np.arange(self.n + 1))
        return in_start, src[order], dst

    def _clocks(self) -> None:
        in_start, in_src, dst = self._incoming(self.e_alive)
        recv = self.pos == 1
        recv[dst] = True
        self.recv = recv
        self.in_start, self.in_src = in_start, in_src
        self.clocks = ClockTable(self.n_ctx, self.ctx, self.pos)
        self.clocks.build(self.topo_rows, recv, in_start, in_src)

    # -- queries ----------------------------------------------------------------
    def before(self, a: int, b: int) -> bool:
        return self.clocks.before(a, b)

    def ctx_label(self, c: int) -> str:
        svc = self.ctx_service[c]
        return f"{svc}/{self.ctx_thread[c]}" if svc else self.ctx_thread[c]

    # -- lock sets ----------------------------------------------------------------
    def _locksets(self, cur) -> None:
        t = query_arrow(cur, """
            SELECT o.seq, o.ctx, e.kind, e.lock_id, e.lock_set, e.variable, e.access, e.service
            FROM events e JOIN hb.ev o USING (seq)
            WHERE e.kind IN ('LockAcquire', 'LockRelease', 'StateChange')
            ORDER BY o.ctx, o.pos""")
        seqs, ctxs, kinds = t["seq"].to_pylist(), t["ctx"].to_pylist(), t["kind"].to_pylist()
        lock_ids, given = t["lock_id"].to_pylist(), t["lock_set"].to_pylist()
        with_lock_events = {c for c, k in zip(ctxs, kinds) if k != "StateChange"}
        held: Counter = Counter()
        cur_ctx = None
        acc_seq, acc_locks = [], []
        for s, c, k, lid, gl in zip(seqs, ctxs, kinds, lock_ids, given):
            if c != cur_ctx:
                held, cur_ctx = Counter(), c
            if k == "LockAcquire":
                held[lid] += 1
            elif k == "LockRelease":
                if held[lid] > 0:
                    held[lid] -= 1
            else:
                if c in with_lock_events:
                    ls = frozenset(x for x, n in held.items() if n > 0)
                else:
                    ls = frozenset(gl or ())
                acc_seq.append(s)
                acc_locks.append(ls or None)
        self.acc_locks = dict(zip(acc_seq, acc_locks))
        cur.execute("CREATE OR REPLACE TABLE hb.locksets (seq BIGINT, locks VARCHAR[])").fetchall()
        if acc_seq:
            tbl = pa.table({"seq": pa.array(acc_seq, pa.int64()),
                            "locks": pa.array([sorted(x) if x else [] for x in acc_locks], pa.list_(pa.string()))})
            cur.register("_ls", tbl)
            cur.execute("INSERT INTO hb.locksets SELECT * FROM _ls").fetchall()
            cur.unregister("_ls")

    # -- races ----------------------------------------------------------------------
    def _races(self, cur) -> None:
        key = "coalesce(e.service, '') || '::' || e.variable" if self.options.variable_scope == "service" else "e.variable"
        t = query_arrow(cur, f"""
            SELECT e.seq, {key} AS var, e.access, o.ctx, o.pos, e.location, e.ts_ns
            FROM events e JOIN hb.ev o USING (seq)
            WHERE e.kind = 'StateChange' AND e.variable IS NOT NULL""")
        seq = t["seq"].to_numpy()
        rows = self.row_of(seq)
        var_codes, var_names = _codes(t["var"])
        order = np.lexsort((self.rank[rows], var_codes))
        rows, seq, var_codes = rows[order], seq[order], var_codes[order]
        access = np.array(t["access"].to_pylist(), dtype=object)[order]
        cls = [CLASS_OF[a] for a in access]
        ctx = self.ctx[rows].tolist()
        pos = self.pos[rows].tolist()
        locks = [self.acc_locks.get(s) for s in seq.tolist()]
        loc = np.array(t["location"].to_pylist(), dtype=object)[order].tolist()
        ts = t["ts_ns"].to_numpy()[order]
        flat, snap_idx = self.clocks.snapshot_index(self.ctx_rows, self.recv)
        snaps = [flat[i] for i in snap_idx[rows].tolist()]
        get = self.clocks.ops.get

        def knows(i: int, c: int) -> int:
            return pos[i] if ctx[i] == c else get(snaps[i], c)

        seq_l, ts_l, var_l = seq.tolist(), ts.tolist(), var_codes.tolist()
        cap = self.options.stored_pairs
        pairs: list[tuple[int, int, int]] = []  # first seq, second seq, kind (1 = write-write)
        groups: dict[tuple, list] = {}
        count = 0

        def on_pair(a: int, b: int) -> None:
            nonlocal count
            count += 1
            if (ts_l[a], seq_l[a]) > (ts_l[b], seq_l[b]):
                a, b = b, a
            ww = cls[a] in (W, AW) and cls[b] in (W, AW)
            g = (var_l[a], ww, loc[a], loc[b])
            entry = groups.get(g)
            if entry is None:
                groups[g] = [1, seq_l[a], seq_l[b]]
            else:
                entry[0] += 1
            if len(pairs) < cap:
                pairs.append((seq_l[a], seq_l[b], ww))

        self.race_visited = sweep(var_l, cls, ctx, pos, locks, knows, on_pair)
        self.race_count = count
        cur.execute("""CREATE OR REPLACE TABLE hb.race_pairs (
            first_seq BIGINT, second_seq BIGINT, variable VARCHAR, kind VARCHAR, severity VARCHAR)""").fetchall()
        cur.execute("""CREATE OR REPLACE TABLE hb.race_groups (
            variable VARCHAR, kind VARCHAR, severity VARCHAR, first_location VARCHAR, second_location VARCHAR,
            count BIGINT, example_first BIGINT, example_second BIGINT)""").fetchall()
        names = var_names
        if pairs:
            a, b, ww = zip(*pairs)
            by_seq = dict(zip(seq_l, var_l))
            tbl = pa.table({
                "first_seq": pa.array(a, pa.int64()), "second_seq": pa.array(b, pa.int64()),
                "variable": pa.array([names[by_seq[x]] for x in a], pa.string()),
                "kind": pa.array(["write-write" if w else "read-write" for w in ww], pa.string()),
                "severity": pa.array(["critical" if w else "warning" for w in ww], pa.string())})
            cur.register("_rp", tbl)
            cur.execute("INSERT INTO hb.race_pairs SELECT * FROM _rp").fetchall()
            cur.unregister("_rp")
        if groups:
            keys = list(groups)
            tbl = pa.table({
                "variable": pa.array([names[k[0]] for k in keys], pa.string()),
                "kind": pa.array(["write-write" if k[1] else "read-write" for k in keys], pa.string()),
                "severity": pa.array(["critical" if k[1] else "warning" for k in keys], pa.string()),
                "first_location": pa.array([k[2] for k in keys], pa.string()),
                "second_location": pa.array([k[3] for k in keys], pa.string()),
                "count": pa.array([groups[k][0] for k in keys], pa.int64()),
                "example_first": pa.array([groups[k][1] for k in keys], pa.int64()),
                "example_second": pa.array([groups[k][2] for k in keys], pa.int64())})
            cur.register("_rg", tbl)
            cur.execute("INSERT INTO hb.race_groups SELECT * FROM _rg").fetchall()
            cur.unregister("_rg")

    # -- critical path --------------------------------------------------------------
    def _critical(self, cur) -> None:
        d = query_arrow(cur, "SELECT coalesce(duration_ns, 0) AS d FROM events ORDER BY seq")["d"].to_numpy()
        trace_codes, trace_names = _codes(pa.array([self.ctx_trace[c] for c in self.ctx.tolist()], pa.string()))
        keep = self.e_alive & np.isin(np.array(self.e_kind, dtype=object), CP_KINDS)
        keep &= trace_codes[self.e_src] == trace_codes[self.e_dst]
        dp, best, recv_of, prev = longest_paths(self.n, self.ctx_rows, self.ctx_start, self.pos, d.astype(np.int64),
                                                self.rank, self.topo_rows, self.e_src[keep], self.e_dst[keep])
        # per trace: the row with the largest total, latest in causal order on ties
        order = np.lexsort((self.rank, dp, trace_codes))
        last_of_trace = order[np.r_[np.flatnonzero(np.diff(trace_codes[order])), len(order) - 1]] if self.n else []
        steps_trace, steps_idx, steps_seq = [], [], []
        totals = {}
        for end in np.asarray(last_of_trace).tolist():
            tcode = int(trace_codes[end])
            path = path_rows(end, best, recv_of, prev)
            totals[trace_names[tcode]] = (int(dp[end]), len(path))
            steps_trace.extend([trace_names[tcode]] * len(path))
            steps_idx.extend(range(len(path)))
            steps_seq.extend(self.seq[path].tolist())
        cur.execute("CREATE OR REPLACE TABLE hb.critical (trace_id VARCHAR, step INTEGER, seq BIGINT)").fetchall()
        if steps_seq:
            tbl = pa.table({"trace_id": pa.array(steps_trace, pa.string()), "step": pa.array(steps_idx, pa.int32()),
                            "seq": pa.array(steps_seq, pa.int64())})
            cur.register("_cp", tbl)
            cur.execute("INSERT INTO hb.critical SELECT * FROM _cp").fetchall()
            cur.unregister("_cp")
        cur.execute("""
            CREATE OR REPLACE TABLE hb.critical_summary AS
            WITH p AS (SELECT c.trace_id, sum(coalesce(e.duration_ns, 0)) AS path_ns, count(*) AS steps
                       FROM hb.critical c JOIN events e USING (seq) GROUP BY c.trace_id),
                 t AS (SELECT trace_id, max(ts_ns + coalesce(duration_ns, 0)) - min(ts_ns) AS span_ns,
                              sum(coalesce(duration_ns, 0)) AS sum_ns FROM events GROUP BY trace_id)
            SELECT p.trace_id, p.path_ns, t.span_ns, t.sum_ns, p.steps,
                   CASE WHEN t.span_ns > 0 THEN 100.0 * p.path_ns / t.span_ns END AS percentage
            FROM p JOIN t USING (trace_id)
        """).fetchall()

    # -- result tables ----------------------------------------------------------------
    def _tables(self, cur) -> None:
        tbl = pa.table({"seq": pa.array(self.seq), "ord": pa.array(self.rank)})
        cur.register("_ord", tbl)
        # ord: position in the causal order; tord: the same inside the trace (for paging a trace)
        cur.execute("""CREATE OR REPLACE TABLE hb.ev AS
            SELECT e.*, o.ord, CAST(row_number() OVER (PARTITION BY e.trace_id ORDER BY o.ord) - 1 AS BIGINT) AS tord
            FROM hb.ev e JOIN _ord o USING (seq) ORDER BY o.ord""").fetchall()
        cur.unregister("_ord")
        # lane: the context's column in its trace's timeline, by first event
        cur.execute("""CREATE OR REPLACE TABLE hb.ctx AS
            SELECT c.*, CAST(row_number() OVER (PARTITION BY c.trace_id ORDER BY c.first_idx) - 1 AS INTEGER) AS lane,
                   coalesce(c.service || '/', '') || c.thread_id AS label
            FROM hb.ctx c""").fetchall()


def _codes(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """Dense integer codes for a string column, and the names by code."""
    enc = (arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr).dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()
