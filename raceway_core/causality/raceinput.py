"""The accesses the race analysis works on, and its three uses of them:

- counts inside each trace: the sweep (races.py) per (variable, trace), aggregated
  per batch (a trace's pairs are few: it is one request or one run);
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

from raceway_core.causality import racecount
from raceway_core.causality.races import AW, CLASS_OF, W, Accesses, segments_by, sweep_batches
from raceway_core.dbutil import query_arrow

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
              variables: list[str] | None = None) -> "RaceInput":
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
        inst_sql = """SELECT service, instance_id, min(ts_ns) AS s, max(ts_ns) AS e,
                             CAST(row_number() OVER (ORDER BY service, instance_id) - 1 AS BIGINT) AS inst
                      FROM events WHERE instance_id IS NOT NULL GROUP BY service, instance_id"""
        join = (f"LEFT JOIN ({inst_sql}) i ON i.service IS NOT DISTINCT FROM e.service AND i.instance_id = e.instance_id"
                if auto else "")
        t = query_arrow(cur, f"""
            SELECT e.seq, {_KEY[scope]} AS var, CAST(CASE e.access {cls_sql} END AS TINYINT) AS cls, e.location,
                   e.ts_ns, CASE WHEN len(l.locks) > 0 THEN l.locks END AS locks,
                   {"coalesce(i.inst, -1)" if auto else "-1"} AS inst
            FROM events e JOIN hb.locksets l USING (seq) {join}
            WHERE e.kind = 'StateChange' AND e.variable IS NOT NULL {flt}""", params or None)
        self = cls()
        self.eng = eng
        if auto:
            it = query_arrow(cur, f"SELECT s, e FROM ({inst_sql}) ORDER BY inst")
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

    # -- counts inside traces ------------------------------------------------------------
    def same_trace_counts(self, traces: np.ndarray | None = None) -> dict:
        """{(trace, var, ww, first loc, second loc): [count, first seq, second seq]} for the
        pairs with both events in one trace (with ``traces``, only in those trace codes)."""
        out: dict = {}
        if not self.m:
            return out
        order = np.lexsort((np.arange(self.m), self.trace, self.var))
        if traces is not None:
            order = order[np.isin(self.trace[order], traces)]
            if not len(order):
                return out
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
            return out
        used = np.concatenate([np.arange(a, b) for a, b in segs])
        order = order[used]
        segs = segments_by([self.var[order], self.trace[order]])
        acc = self.acc.take(order)
        stats = [0]
        for a, b in sweep_batches(acc, segs, stats=stats):
            self._aggregate(order[a], order[b], out, with_trace=True)
        self.checks += stats[0]
        return out

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
        uniq, first, counts = unique_rows(key)
        for k, i, c in zip(map(tuple, uniq.tolist()), first.tolist(), counts.tolist()):
            if not with_trace:
                k = (-1,) + k
            cur = out.get(k)
            if cur is None:
                out[k] = [c, int(self.seq[f[i]]), int(self.seq[s[i]])]
            else:
                cur[0] += c

    def _ordered(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first, second) of each pair: first = earlier in (timestamp, appearance) order."""
        ts, seq = self.ts, self.seq
        swap = (ts[a] > ts[b]) | ((ts[a] == ts[b]) & (seq[a] > seq[b]))
        return np.where(swap, b, a), np.where(swap, a, b)

    # -- counts between traces ---------------------------------------------------------------
    def cross_counts(self) -> dict:
        """{(-1, var, ww, first loc, second loc): [count, first seq, second seq]} for pairs
        joining two traces, counted from the clocks (racecount.py)."""
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
        release_row = {e: r for r, es in hb.chains.own.items() for e in es}
        entries = racecount.minimal_entries(F, release_row, hb.reaches, eng.rank)
        ls_ids: dict = {None: 0}
        ls = np.array([ls_ids.setdefault(x, len(ls_ids)) for x in self.locks], dtype=np.int64)
        locksets = [frozenset()] * len(ls_ids)
        for x, n in ls_ids.items():
            locksets[n] = x or frozenset()
        attrs = np.stack([self.var, self.cls, ls, self.loc, self.inst], axis=1)
        uniq, _, _, bucket = unique_rows(attrs, inverse=True)
        bk = racecount.Buckets(uniq[:, 0], uniq[:, 1], uniq[:, 2], uniq[:, 3], uniq[:, 4], locksets,
                               self.inst_start, self.inst_end)
        found = racecount.cross_counts(bucket, segs, self.trace, entries, self.acc.G,
                                       hb.g_ops.items, bk)
        for (b, beta), (count, i) in found.items():
            key = (-1, int(bk.var[b]), int(self.write[i] and bk.cls[b] in (W, AW)), int(bk.loc[b]), int(bk.loc[beta]))
            cur = out.get(key)
            if cur is None:
                a = self._example(bucket, b, i)
                out[key] = [count, int(self.seq[a]), int(self.seq[i])]
            else:
                cur[0] += count
        return out

    def _example(self, bucket: np.ndarray, b: int, i: int) -> int:
        """An earlier access of bucket b in another trace that races with access i."""
        acc, eng = self.acc, self.eng
        for a in np.flatnonzero(bucket[:i] == b).tolist():
            if self.trace[a] != self.trace[i] and not eng.before(int(self.rows[a]), int(self.rows[i])):
                return a
        raise AssertionError("a counted race without a pair")  # the counts and the clocks disagree

    # -- tables ---------------------------------------------------------------------------------
    def group_tables(self, same: dict, cross: dict) -> tuple[pa.Table, pa.Table]:
        """hb.race_groups (every pair; cross_count: those joining two traces) and
        hb.race_trace_groups (per trace, the pairs with both events in it)."""
        total: dict = {}
        for (tr, *k), (c, f, s) in same.items():
            cur = total.setdefault(tuple(k), [0, 0, f, s])
            cur[0] += c
        for (_, *k), (c, f, s) in cross.items():
            cur = total.setdefault(tuple(k), [0, 0, f, s])
            cur[0] += c
            cur[1] += c
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
    sets = [frozenset(k.split("\x1f")) for k in enc.dictionary.to_pylist()]
    for i, code in zip(held.tolist(), enc.indices.to_numpy().tolist()):
        out[i] = sets[code]
    return out


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
