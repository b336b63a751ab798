"""The accesses the race analysis works on, and its three uses of them:

- counts inside each trace: per (variable, trace) run, from the clocks (racelocal.py)
  when the run is long, else the sweep (races.py), whose work there is no larger;
- counts between traces: racecount.py, from the clocks, never listing a pair;
- the listing: the sweep as a generator, critical pairs first, stopped by the caller.

Variable scope (spec, "Races"): ``global`` one name is one variable; ``service`` and
``instance`` (service + instance_id) prefix the name; ``auto`` is global except that
two process instances whose lifetimes (first to last event) do not overlap never race.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.causality import racecount, racelocal
from raceway_core.causality.races import AW, CLASS_OF, QUERY, W, Accesses, segments_by, sweep_batches
from raceway_core.dbutil import query_arrow

LIST_FACTOR = 0.75  # a run of one (variable, trace) is listed when accesses / 2 <= this x its (context, bucket) slots
SCOPES = ("auto", "global", "service", "instance")
_KEY = {
    "auto": "e.variable",
    "global": "e.variable",
    "service": "coalesce(e.service, '') || '::' || e.variable",
    "instance": "coalesce(e.service, '') || '#' || coalesce(e.instance_id, '') || '::' || e.variable",
}


class RaceInput:
    def __init__(self) -> None:
        self.checks = 0

    @classmethod
    def fetch(cls, eng, cur, trace_id: str | None = None, variable: str | None = None,
              variables: list[str] | None = None, instances: pa.Table | None = None) -> "RaceInput":
        """``instances`` (scope auto): each process instance's (service, instance_id) and
        lifetime (s, e), when the caller knows them (incremental.py keeps them between runs);
        else aggregated here, once (``self.instances``)."""
        scope = eng.options.variable_scope
        if scope not in _KEY:
            raise ValueError(f"unknown variable scope {scope!r} (one of {', '.join(SCOPES)})")
        cls_sql = " ".join(f"WHEN '{a}' THEN {c}" for a, c in CLASS_OF.items())
        flt = ("AND e.trace_id = $t" if trace_id is not None else "") + (
            f" AND {_KEY[scope]} = $v" if variable is not None else "") + (
            f" AND list_contains($vs, {_KEY[scope]})" if variables is not None else "")  # several (incremental.py)
        params = ({"t": trace_id} if trace_id is not None else {}) | ({"v": variable} if variable is not None else {}) \
            | ({"vs": list(variables)} if variables is not None else {})
        auto = scope == "auto"
        if auto and instances is None:  # an aggregation over every event: once, not per use
            instances = query_arrow(cur, """SELECT service, instance_id, min(ts_ns) AS s, max(ts_ns) AS e FROM events
                                             WHERE instance_id IS NOT NULL GROUP BY service, instance_id""")
        if auto:
            cur.register("_ri_inst", instances)
            inst_sql = """SELECT service, instance_id, s, e,
                                 CAST(row_number() OVER (ORDER BY service, instance_id) - 1 AS BIGINT) AS inst
                          FROM _ri_inst"""
        join = (f"LEFT JOIN ({inst_sql}) i ON i.service IS NOT DISTINCT FROM e.service AND i.instance_id = e.instance_id"
                if auto else "")
        try:
            t = query_arrow(cur, f"""
                SELECT e.seq, {_KEY[scope]} AS var, CAST(CASE e.access {cls_sql} END AS TINYINT) AS cls, e.location,
                       e.ts_ns, CASE WHEN len(l.locks) > 0 THEN l.locks END AS locks,
                       {"coalesce(i.inst, -1)" if auto else "-1"} AS inst
                FROM events e JOIN hb.locksets l USING (seq) {join}
                WHERE e.kind = 'StateChange' AND e.variable IS NOT NULL {flt}""", params or None)
            it = query_arrow(cur, f"SELECT s, e FROM ({inst_sql}) ORDER BY inst") if auto else None
        finally:
            if auto:
                cur.unregister("_ri_inst")
        self = cls()
        self.eng = eng
        self.instances = instances
        if auto:
            self.inst_start, self.inst_end = it["s"].to_numpy(), it["e"].to_numpy()
        else:
            self.inst_start = self.inst_end = np.zeros(0, dtype=np.int64)
        seq = t["seq"].to_numpy()
        rows = eng.row_of(seq)
        var_codes, var_names = codes(t["var"])
        # variables by name, so listings are in a stable order
        by_name = np.argsort(np.argsort(np.array(var_names.to_pylist(), dtype=object))) if len(var_names) else []
        var_codes = np.asarray(by_name, dtype=np.int64)[var_codes] if len(var_codes) else var_codes
        self.var_names = var_names.take(pa.array(np.argsort(np.asarray(by_name, dtype=np.int64)))) \
            if len(var_names) else var_names
        order = np.lexsort((eng.rank[rows], var_codes))
        self.rows, self.seq, self.var = rows[order], seq[order], var_codes[order]
        self.cls = t["cls"].to_numpy()[order].astype(np.int64)
        self.write = np.isin(self.cls, [W, AW])
        loc, self.loc_names = codes(t["location"])
        self.loc = loc[order]
        self.ts = t["ts_ns"].to_numpy()[order]
        self.inst = t["inst"].to_numpy()[order].astype(np.int64)
        self.locks = interned_lock_sets(t["locks"], order)
        self.trace = eng.trace_of_ctx[eng.ctx[self.rows]] if len(self.rows) else np.zeros(0, dtype=np.int64)
        hb = eng.hb
        col = hb.columns(self.rows)
        self.acc = Accesses(
            var=self.var.tolist(), cls=self.cls.tolist(), ctx=col["ctx"], pos=col["pos"], trace=col["trace"],
            lid=col["local"], L=col["L"], G=col["G"], F=col["F"], locks=self.locks,
            local_get={t: ops.get for t, ops in hb.local_ops.items() if ops.depth > 1},
            g_flat=hb.g_ops.depth == 1, g_get=hb.g_ops.get,
            inst=self.inst.tolist() if auto else None, inst_start=self.inst_start.tolist(),
            inst_end=self.inst_end.tolist())
        return self

    @property
    def m(self) -> int:
        return len(self.seq)

    def restricted(self, variables: set) -> "RaceInput":
        """These accesses of ``variables`` (names) only, for listing their pairs: the sweep
        lists each variable's pairs on its own, so the others need not be swept (incremental.py:
        a touched hot variable that keeps its stored pairs cost ~0.2 s at 1M events)."""
        keep = [i for i, v in enumerate(self.var_names.to_pylist()) if v in variables]
        idx = np.flatnonzero(np.isin(self.var, keep))
        if len(idx) == self.m:
            return self
        sub = object.__new__(RaceInput)  # per-access fields cut to idx, caches of the whole left behind
        sub.__dict__.update({k: v for k, v in self.__dict__.items()
                            if k not in ("_bk", "_at_seq", "_tkey", "_vlt", "_ctx", "_ent")})
        for name in ("rows", "seq", "var", "cls", "write", "loc", "ts", "inst", "trace"):
            setattr(sub, name, getattr(self, name)[idx])
        sub.locks = [self.locks[i] for i in idx.tolist()]
        sub.acc = self.acc.take(idx)
        return sub

    # -- counts inside traces ------------------------------------------------------------
    def same_trace_counts(self, traces: np.ndarray | None = None, force: bool | None = None) -> dict:
        """{(trace, var, ww, first loc, second loc): [count, first seq, second seq]} for the
        pairs with both events in one trace (with ``traces``, only in those trace codes):
        counted from the clocks (racelocal.py) when the causal order is the time order,
        else by listing the pairs. ``force``: count (True) or list (False) every run (tests)."""
        order, segs = self._same_segments(traces)
        if order is None:
            return {}
        if not np.array_equal(self.eng.rank, self.eng.idx):
            return self._same_listed(order, segs)
        # Per run of one (variable, trace): counting costs ~ accesses x (context, bucket)
        # slots, listing at most accesses^2 / 2. Short runs are listed (no more work than
        # counting them), long ones counted: the work never grows with the racing pairs.
        bucket, _ = self._buckets()
        starts = np.array([a for a, _ in segs], dtype=np.int64)
        sizes = np.diff(np.r_[starts, len(order)])
        seg = np.repeat(np.arange(len(segs)), sizes)
        ctx = self.eng.ctx[self.rows[order]].astype(np.int64)
        slots = np.unique((seg * (int(ctx.max()) + 1) + ctx) * (int(bucket.max()) + 1) + bucket[order])
        slot_seg = slots // ((int(ctx.max()) + 1) * (int(bucket.max()) + 1))
        per_seg = np.bincount(slot_seg, minlength=len(segs))
        count = (sizes - 1) / 2 > LIST_FACTOR * per_seg
        if force is not None:
            count[:] = force
        out = self._same_listed(*self._subset(order, segs, ~count)) if (~count).any() else {}
        if count.any():
            sub = self._subset(order, segs, count)
            try:
                out.update(self._same_counted(*sub))
            except racelocal.TooLarge:
                out.update(self._same_listed(*sub))
        return out

    @staticmethod
    def _subset(order: np.ndarray, segs: list, keep: np.ndarray):
        """The accesses of the runs ``keep`` selects, and their runs renumbered."""
        chosen = [sg for sg, k in zip(segs, keep.tolist()) if k]
        idx = np.concatenate([np.arange(a, b) for a, b in chosen])
        sizes = [b - a for a, b in chosen]
        ends = np.cumsum(sizes).tolist()
        return order[idx], list(zip([0] + ends[:-1], ends))

    def _same_segments(self, traces):
        """Accesses in (variable, trace, causal order) that may race inside their trace, and
        their runs of one (variable, trace)."""
        if not self.m:
            return None, None
        order = np.lexsort((np.arange(self.m), self.trace, self.var))
        if traces is not None:
            order = order[np.isin(self.trace[order], traces)]
            if not len(order):
                return None, None
        segs = segments_by([self.var[order], self.trace[order]])
        # only runs with two contexts and a write can hold a race (most are one request's own variable)
        ctx = self.eng.ctx[self.rows[order]]
        w = self.write[order]
        starts = np.array([a for a, _ in segs], dtype=np.int64)
        if len(starts):
            lo, hi = np.minimum.reduceat(ctx, starts), np.maximum.reduceat(ctx, starts)
            keep = (lo != hi) & np.logical_or.reduceat(w, starts)
            segs = [sg for sg, k in zip(segs, keep.tolist()) if k]
        if not segs:
            return None, None
        used = np.concatenate([np.arange(a, b) for a, b in segs])
        order = order[used]
        return order, segments_by([self.var[order], self.trace[order]])

    def _same_listed(self, order: np.ndarray, segs: list) -> dict:
        out: dict = {}
        acc = self.acc.take(order)
        stats = [0]
        for a, b in sweep_batches(acc, segs, stats=stats):
            self._aggregate(order[a], order[b], out, with_trace=True)
        self.checks += stats[0]
        return out

    def _same_counted(self, order: np.ndarray, segs: list) -> dict:
        bucket, bk = self._buckets()
        seg = np.zeros(len(order), dtype=np.int64)
        for k, (a, b) in enumerate(segs):
            seg[a:b] = k
        acc, eng = self.acc, self.eng
        ol = order.tolist()
        hb = eng.hb
        sizes = np.bincount(eng.trace_of_ctx, minlength=len(eng.trace_names)).astype(np.int64)
        lc = racelocal.LocalCounter(
            seg, np.asarray(acc.ctx, dtype=np.int64)[order], np.asarray(acc.pos, dtype=np.int64)[order],
            np.asarray(acc.lid, dtype=np.int64)[order], self.trace[order], bucket[order],
            [acc.L[k] for k in ol], [acc.G[k] for k in ol], self._entries([acc.F[k] for k in ol]), sizes, hb.local_ops,
            hb.g_ops.get, hb.g_ops.depth == 1, len(hb.g_ops.zero_leaf), bk.cls, bk.lockset, bk.inst, bk.locksets, bk.inst_start, bk.inst_end)
        i, b, n = lc.counts()  # i: in order's numbering
        out: dict = {}
        if not len(i):
            return out
        g = order[i]
        ww = (self.write[g] & np.isin(bk.cls[b], [W, AW])).astype(np.int64)
        key = np.stack([self.trace[g], self.var[g], ww, bk.loc[b], self.loc[g]], axis=1)
        uniq, _, _, inv = unique_rows(key, inverse=True)
        counts = np.bincount(inv, weights=n, minlength=len(uniq))
        # the example: the earliest second access (time order = causal order here), then its
        # earliest first access
        o = np.lexsort((i, inv))
        xs = i[o[np.r_[0, np.flatnonzero(np.diff(inv[o])) + 1]]]
        loc_first, want_ww = uniq[:, 3], uniq[:, 2].astype(bool)
        loc_o, write_o = self.loc[order], self.write[order]

        def allowed(run, a):
            x = xs[run]
            return (loc_o[a] == loc_first[run]) & ((write_o[a] & write_o[x]) == want_ww[run])

        firsts = lc.first_racing(xs, allowed)
        if (firsts < 0).any():
            raise AssertionError("a counted race without a pair")  # the counts and the clocks disagree
        for k, c, a, x in zip(map(tuple, uniq.tolist()), counts.tolist(), order[firsts].tolist(), order[xs].tolist()):
            out[k] = [int(round(c)), int(self.seq[a]), int(self.seq[x])]
        return out

    @property
    def tkey(self) -> np.ndarray:
        """Per access, its place in (timestamp, seq) order: examples are the first pairs in it."""
        t = getattr(self, "_tkey", None)
        if t is None:
            t = np.empty(self.m, dtype=np.int64)
            t[np.lexsort((self.seq, self.ts))] = np.arange(self.m)
            self._tkey = t
        return t

    def _by_var_loc_time(self):
        """The accesses sorted by (variable, location, time order), with per position its
        (variable, location) key and time rank: one variable's candidates for a group's
        first access are a run of it, already in time order."""
        got = getattr(self, "_vlt", None)
        if got is None:
            tk = self.tkey
            order = np.lexsort((tk, self.loc, self.var))
            width = int(self.loc.max()) + 2 if self.m else 1
            key = self.var[order] * width + (self.loc[order] + 1)
            got = self._vlt = (order, key, tk[order], width)
        return got

    def _first_racing(self, i: int, loc_first: int, ww: int, same_trace: bool, cand=None) -> int:
        """The earliest access (time order) racing with access i as the first of a pair of
        the group (first location, kind), in i's trace or in others (among ``cand``, by
        default every access of i's variable). The candidates are taken in time order a
        block at a time, filtered with numpy, and only the survivors are tested for
        happens-before (a Python test per candidate cost ~0.3 s for a 1,000-event append)."""
        tk = self.tkey
        if cand is None:
            order, key, tks, width = self._by_var_loc_time()
            k = int(self.var[i]) * width + loc_first + 1
            lo, hi = np.searchsorted(key, k, "left"), np.searchsorted(key, k, "right")
            hi = lo + int(np.searchsorted(tks[lo:hi], tk[i], "left"))
            ordered = order[lo:hi]
        else:
            cand = cand[(tk[cand] < tk[i]) & (self.loc[cand] == loc_first)]
            ordered = cand[np.argsort(tk[cand], kind="stable")]
        eng, acc = self.eng, self.acc
        ctx = eng.ctx[self.rows] if getattr(self, "_ctx", None) is None else self._ctx
        self._ctx = ctx
        wi, ti, ci = bool(self.write[i]), int(self.trace[i]), int(ctx[i])
        q = int(np.asarray(QUERY)[int(self.cls[i])])
        li, ii = self.locks[i], int(self.inst[i])
        auto = self.acc.inst is not None
        ri = int(self.rows[i])
        gi, g_get = acc.G[i], acc.g_get
        known: dict = {}  # id(F) -> does i know a release that F reaches (cross-trace happens-before)

        def before(a: int) -> bool:
            if not same_trace and int(acc.pos[a]) >= 1:
                # another trace: a -> i iff i knows a release a reaches (clocks.HappensBefore.before)
                f = acc.F[a]
                got = known.get(id(f))
                if got is None:
                    got = known[id(f)] = bool(f) and any(g_get(gi, c) >= j for c, j in f.items())
                return got
            return eng.before(int(self.rows[a]), ri)

        p, step = 0, 64
        while p < len(ordered):
            c = ordered[p:p + step]
            p += step
            step = min(step * 4, 1 << 16)
            c = c[((self.write[c] & wi) == bool(ww)) & ((self.trace[c] == ti) == same_trace)
                  & ((q >> self.cls[c]) & 1 == 1) & (ctx[c] != ci)]
            if auto and ii >= 0 and len(c):
                ia = self.inst[c]
                apart = (ia >= 0) & ((self.inst_end[np.maximum(ia, 0)] < self.inst_start[ii])
                                     | (self.inst_end[ii] < self.inst_start[np.maximum(ia, 0)]))
                c = c[~apart]
            if not len(c):
                continue
            ent = getattr(self, "_ent", None)
            if same_trace or ent is None or not ent[3][c].all():
                for a in c.tolist():
                    la = self.locks[a]
                    if la and li and la & li:
                        continue
                    if not before(a):
                        return a
                continue
            # another trace: a -> i iff i knows a release of M(a) (racecount.py; the counts
            # use the same test), numpy over the block
            bucket, bk = self._buckets()
            ls = bk.lockset[bucket[c]]
            ids = np.unique(ls).tolist()
            held = bk.locksets[int(bk.lockset[bucket[i]])]
            free = np.array([not (bk.locksets[x] & held) for x in ids], dtype=bool)
            ok = free[np.searchsorted(ids, ls)]
            n, k, j = ent[0][c], ent[1][c], ent[2][c]
            hb = np.zeros(len(c), dtype=bool)
            one = n == 1
            if one.any():
                ks = np.unique(k[one])
                gk = np.array([g_get(gi, x) for x in ks.tolist()], dtype=np.int64)
                hb[one] = gk[np.searchsorted(ks, k[one])] >= j[one]
            for x in np.flatnonzero(n > 1).tolist():
                hb[x] = any(g_get(gi, kk) >= jj for kk, jj in ent[4][int(c[x])])
            hit = np.flatnonzero(ok & ~hb)
            if len(hit):
                a = int(c[hit[0]])
                if not eng.before(int(self.rows[a]), ri):
                    return a
                raise AssertionError("M(a) and happens-before disagree")  # the clocks' invariant broke
        raise AssertionError("a counted race without a pair")  # the counts and the clocks disagree

    def listed_counts(self, cross_only: bool = False) -> dict:
        """The same counts from listing every pair (for a causal order that is not the
        time order); with cross_only the pairs joining two traces."""
        out: dict = {}
        stats = [0]
        for a, b in sweep_batches(self.acc, segments_by([self.var]), stats=stats):
            if cross_only:
                keep = self.trace[a] != self.trace[b]
                a, b = a[keep], b[keep]
            self._aggregate(a, b, out, with_trace=False)
        self.checks += stats[0]
        return out

    def _aggregate(self, a: np.ndarray, b: np.ndarray, out: dict, with_trace: bool) -> None:
        if not len(a):
            return
        f, s = self._ordered(a, b)
        cols = [self.trace[f]] if with_trace else []
        key = np.stack(cols + [self.var[f], (self.write[f] & self.write[s]).astype(np.int64),
                               self.loc[f], self.loc[s]], axis=1)
        uniq, _, _, inv = unique_rows(key, inverse=True)
        counts = np.bincount(inv, minlength=len(uniq))
        # per group its first pair in time order: earliest second, then earliest first
        tk = self.tkey
        o = np.lexsort((tk[f], tk[s], inv))
        first = o[np.r_[0, np.flatnonzero(np.diff(inv[o])) + 1]]
        for k, i, c in zip(map(tuple, uniq.tolist()), first.tolist(), counts.tolist()):
            if not with_trace:
                k = (-1,) + k
            ex = [int(self.seq[f[i]]), int(self.seq[s[i]])]
            cur = out.get(k)
            if cur is None:
                out[k] = [c] + ex
            else:
                cur[0] += c
                if self.example_key(ex) < self.example_key(cur[1:]):
                    cur[1:] = ex

    def example_ranks(self, seqs: np.ndarray) -> np.ndarray:
        """Places in time order of accesses given by seq."""
        at = getattr(self, "_at_seq", None)
        if at is None:
            o = np.argsort(self.seq, kind="stable")
            at = self._at_seq = (self.seq[o], o)
        sorted_seq, o = at
        return self.tkey[o[np.searchsorted(sorted_seq, np.asarray(seqs, dtype=np.int64))]]

    def example_key(self, ex) -> tuple:
        """(second, first) of an example pair (seqs) in time order: the smaller is shown."""
        f, s = self.example_ranks(ex).tolist()
        return (s, f)

    def _ordered(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first, second) of each pair: first = earlier in (timestamp, appearance) order."""
        ts, seq = self.ts, self.seq
        swap = (ts[a] > ts[b]) | ((ts[a] == ts[b]) & (seq[a] > seq[b]))
        return np.where(swap, b, a), np.where(swap, a, b)

    def _entries(self, F: list, rows: np.ndarray | None = None) -> list[tuple]:
        """M(a) for these F snapshots (racecount.minimal_entries), remembered on the clocks.
        With ``rows`` (F's rows), also per row (``entries_by_row``, None: not known), so a
        later incremental run (incremental.py clears the rows whose F it recomputes) takes
        the untouched accesses' entries without a Python step per access (None F: ())."""
        eng = self.eng
        hb = eng.hb
        base = getattr(hb, "_hb", hb)  # incremental.py's view: the engine's own
        memo = base.__dict__.setdefault("entries_memo", {})
        release_row = getattr(self, "_release_row", None)
        if release_row is None:
            release_row = self._release_row = {e: r for r, es in hb.chains.own.items() for e in es}
        if rows is None:
            return racecount.minimal_entries(F, release_row, hb.reaches, eng.rank, memo)
        cache = base.__dict__.get("entries_by_row")
        if cache is None or len(cache) != eng.n:
            cache = base.__dict__["entries_by_row"] = np.full(eng.n, None, dtype=object)
        f = np.fromiter(F, dtype=object, count=len(F))
        unused = np.equal(f, None)
        got = cache[rows]
        need = np.flatnonzero(np.equal(got, None) & ~unused)
        if len(need):
            done = racecount.minimal_entries(f[need].tolist(), release_row, hb.reaches, eng.rank, memo)
            cache[rows[need]] = got[need] = np.fromiter(done, dtype=object, count=len(done))
        if unused.any():
            got[unused] = _EMPTY
        return got.tolist()

    def _buckets(self):
        """Per access its bucket (variable, class, lock set, location, instance), and the buckets."""
        got = getattr(self, "_bk", None)
        if got is None:
            # lock set ids by first appearance (None: 0), a dict step per distinct object only
            # (the sets are interned: a step per access cost ~0.15 s for 300k accesses)
            locks = self.locks
            ids = np.fromiter(map(id, locks), dtype=np.uint64, count=len(locks))
            u, first, inv = np.unique(ids, return_index=True, return_inverse=True)
            ls_ids: dict = {None: 0}
            code = np.empty(len(u), dtype=np.int64)
            for k in np.argsort(first, kind="stable").tolist():
                code[k] = ls_ids.setdefault(locks[int(first[k])], len(ls_ids))
            ls = code[inv.reshape(-1)]
            locksets = [frozenset()] * len(ls_ids)
            for x, n in ls_ids.items():
                locksets[n] = x or frozenset()
            attrs = np.stack([self.var, self.cls, ls, self.loc, self.inst], axis=1)
            uniq, _, _, bucket = unique_rows(attrs, inverse=True)
            bk = racecount.Buckets(uniq[:, 0], uniq[:, 1], uniq[:, 2], uniq[:, 3], uniq[:, 4], locksets,
                                   self.inst_start, self.inst_end)
            got = self._bk = (bucket, bk)
        return got

    # -- counts between traces ---------------------------------------------------------------
    def cross_counts(self, later: np.ndarray | None = None, earlier: np.ndarray | None = None) -> dict:
        """{(-1, var, ww, first loc, second loc): [count, first seq, second seq]} for pairs
        joining two traces, counted from the clocks (racecount.py); with ``later`` /
        ``earlier`` (masks over the accesses) only the pairs whose later / earlier access
        is one of those."""
        out: dict = {}
        if not self.m or len(np.unique(self.trace)) < 2:
            return out
        eng = self.eng
        hb = eng.hb
        # only variables touched by two traces or more (a request's own variables are not)
        segs = segments_by([self.var])
        starts = np.array([a for a, _ in segs], dtype=np.int64)
        multi = np.minimum.reduceat(self.trace, starts) != np.maximum.reduceat(self.trace, starts)
        segs = [sg for sg, k in zip(segs, multi.tolist()) if k]
        if not segs:
            return out
        used = np.zeros(self.m, dtype=bool)
        for a, b in segs:
            used[a:b] = True
        F = [f if u else None for f, u in zip(self.acc.F, used.tolist())]
        entries = self._entries(F, self.rows)
        self._ent = racecount.entry_arrays(entries) + (used, entries)
        bucket, bk = self._buckets()
        found = racecount.cross_counts(bucket, segs, self.trace, entries, self.acc.G,
                                       hb.g_ops.items, bk, later=later, earlier=earlier, arrays=self._ent[:3])
        firsts: dict = {}
        for (b, beta), (count, i) in found.items():
            key = (-1, int(bk.var[b]), int(self.write[i] and bk.cls[b] in (W, AW)), int(bk.loc[b]), int(bk.loc[beta]))
            cur = out.get(key)
            if cur is None:
                out[key] = [count]
                firsts[key] = i
            else:
                cur[0] += count
                if self.tkey[i] < self.tkey[firsts[key]]:
                    firsts[key] = i
        for key, i in firsts.items():  # the group's first pair in time order
            cand = None
            if earlier is not None:
                var = self.var
                cand = np.arange(np.searchsorted(var, var[i], "left"), np.searchsorted(var, var[i], "right"))
                cand = cand[earlier[cand]]
            a = self._first_racing(i, key[3], key[2], same_trace=False, cand=cand)
            out[key] += [int(self.seq[a]), int(self.seq[i])]
        return out

    # -- tables ---------------------------------------------------------------------------------
    def group_tables(self, same: dict, cross: dict) -> tuple[pa.Table, pa.Table]:
        """hb.race_groups (every pair; cross_count: those joining two traces) and
        hb.race_trace_groups (per trace, the pairs with both events in it)."""
        total: dict = {}
        parts = [(k, v, False) for k, v in same.items()] + [(k, v, True) for k, v in cross.items()]
        # each group's example: its first pair in time order (the least (second, first) rank)
        ex = np.array([v[1:] for _, v, _ in parts], dtype=np.int64).reshape(-1, 2)
        rank = self.example_ranks(ex[:, 1]) * (self.m + 1) + self.example_ranks(ex[:, 0])
        for ((_, *k), (c, f, s), is_cross), r in zip(parts, rank.tolist()):
            cur = total.get(tuple(k))
            if cur is None:
                cur = total[tuple(k)] = [0, 0, f, s, r]
            cur[0] += c
            if is_cross:
                cur[1] += c
            if r < cur[4]:
                cur[2:] = [f, s, r]
        for v in total.values():
            del v[4]
        groups = self._table([(None, *k, *v) for k, v in total.items()], with_cross=True)
        trace_rows = [(tr, *k, c, None, f, s) for (tr, *k), (c, f, s) in same.items()]
        return groups, self._table(trace_rows, with_cross=False)

    def _table(self, rows: list[tuple], with_cross: bool) -> pa.Table:
        trace = [r[0] for r in rows]
        var = np.array([r[1] for r in rows], dtype=np.int64)
        ww = np.array([r[2] for r in rows], dtype=bool)
        lf = np.array([r[3] for r in rows], dtype=np.int64)
        ls = np.array([r[4] for r in rows], dtype=np.int64)
        cols = {}
        if not with_cross:
            cols["trace_id"] = decode(np.array(trace, dtype=np.int64), self.eng.trace_names)
        cols |= {
            "variable": decode(var, self.var_names),
            "kind": pa.array(np.where(ww, "write-write", "read-write").tolist(), pa.string()),
            "severity": pa.array(np.where(ww, "critical", "warning").tolist(), pa.string()),
            "first_location": decode(lf, self.loc_names),
            "second_location": decode(ls, self.loc_names),
            "count": pa.array([r[5] for r in rows], pa.int64()),
        }
        if with_cross:
            cols["cross_count"] = pa.array([r[6] for r in rows], pa.int64())
        cols["example_first"] = pa.array([r[7] for r in rows], pa.int64())
        cols["example_second"] = pa.array([r[8] for r in rows], pa.int64())
        return pa.table(cols)

    # -- the listing ------------------------------------------------------------------------------
    def pair_batches(self, batch: int = 1 << 16):
        """Racing pairs as Arrow tables: write-write first, then read-write; by variable;
        in causal order. Computed lazily."""
        if not self.m:
            return
        o = 0
        writes = np.flatnonzero(self.write)
        passes = [(writes, self.acc.take(writes) if len(writes) else None, False),
                  (np.arange(self.m), self.acc, True)]
        for index, acc, skip_ww in passes:
            if acc is None:
                continue
            for a, b in sweep_batches(acc, segments_by([self.var[index]]), batch=batch):
                a, b = index[a], index[b]
                if skip_ww:
                    keep = ~(self.write[a] & self.write[b])
                    a, b = a[keep], b[keep]
                if not len(a):
                    continue
                f, s = self._ordered(a, b)
                ww = self.write[f] & self.write[s]
                yield pa.table({
                    "o": pa.array(np.arange(o, o + len(f), dtype=np.int64)),
                    "first_seq": pa.array(self.seq[f]), "second_seq": pa.array(self.seq[s]),
                    "variable": decode(self.var[f], self.var_names),
                    "kind": pc.if_else(pa.array(ww), "write-write", "read-write"),
                    "severity": pc.if_else(pa.array(ww), "critical", "warning"),
                    "cross_trace": pa.array(self.trace[f] != self.trace[s]),
                })
                o += len(f)


_EMPTY = np.empty(1, dtype=object)  # M(a) of an unused access: () (a tuple numpy would unpack)
_EMPTY[0] = ()


def unique_rows(key: np.ndarray, inverse: bool = False):
    """np.unique(key, axis=0) with first index and counts (and the inverse), through one
    int64 per row when the columns' ranges allow (several times faster)."""
    if not len(key):
        empty = np.zeros(0, dtype=np.int64)
        return (key, empty, empty, empty) if inverse else (key, empty, empty)
    lo, hi = key.min(axis=0), key.max(axis=0)
    span = (hi - lo + 1).astype(object)
    total = 1
    for x in span.tolist():
        total *= x
    if total < 2 ** 62:
        code = np.zeros(len(key), dtype=np.int64)
        for c in range(key.shape[1]):
            code = code * int(span[c]) + (key[:, c] - lo[c])
        _, first, inv, counts = np.unique(code, return_index=True, return_inverse=True, return_counts=True)
        uniq = key[first]
    else:
        uniq, first, inv, counts = np.unique(key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1).astype(np.int64)
    return (uniq, first, counts, inv) if inverse else (uniq, first, counts)


def interned_lock_sets(col: pa.Array | pa.ChunkedArray, order: np.ndarray) -> list:
    """Per access (in ``order``), its lock set as a frozenset, or None when it holds no lock.
    Accesses share few distinct lock sets: each is built once (lists are sorted and
    distinct, so equal sets have equal lists)."""
    lists = (col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col).take(pa.array(order))
    out: list = [None] * len(order)
    held = np.flatnonzero(~lists.is_null().to_numpy(zero_copy_only=False))
    if not len(held):
        return out
    lists = lists.take(pa.array(held))
    values = lists.flatten()
    if values.null_count or pc.any(pc.match_substring(values, "\x1f")).as_py():
        # a null, or the separator inside a lock id: one set per access
        for i, ls in zip(held.tolist(), lists.to_pylist()):
            out[i] = frozenset(ls)
        return out
    enc = pc.binary_join(lists, "\x1f").dictionary_encode()
    sets = np.fromiter((frozenset(k.split("\x1f")) for k in enc.dictionary.to_pylist()), dtype=object,
                       count=len(enc.dictionary))
    got = np.full(len(order), None, dtype=object)  # placed by numpy: a Python step per access cost ~0.05 s
    got[held] = sets[enc.indices.to_numpy()]
    return got.tolist()


def codes(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Dense integer codes for a string column (nulls get code -1), and the names by code."""
    enc = (arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr).dictionary_encode()
    c = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return c, enc.dictionary


def decode(c: np.ndarray, names: pa.Array) -> pa.Array:
    """Strings for codes from codes() (-1 -> null)."""
    valid = c >= 0
    taken = names.take(pa.array(np.where(valid, c, 0))) if len(names) else pa.nulls(len(c), pa.string())
    return pc.if_else(pa.array(valid), taken, pa.scalar(None, pa.string())) if not valid.all() else taken
