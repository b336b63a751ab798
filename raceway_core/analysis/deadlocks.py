"""Potential deadlocks: cycles in the lock-order graph (TSan's lock-order-inversion, lockdep).

Lock-order graph: an edge L1 -> L2 when a context acquires L2 while holding L1 (any
trace). Held locks are counted as the spec's lock sets are (a re-entrant acquire
needs as many releases; a release of a lock not held is ignored), and a re-entrant
acquire (of a lock the context already holds) adds no edge: it cannot block.

A cycle L1 -> L2 -> ... -> Ln -> L1 is reported when one instance of each of its
edges can be found such that
- the n acquisitions are in n different contexts;
- their held sets are pairwise disjoint: a lock held across two of them (a "gate"
  lock) means the two contexts can never wait at the same time;
- no acquisition happens-before another, where happens-before is taken *without*
  the locks themselves (program order, parent, join, calls; no lock hand-off and no
  given vector clock, which an SDK advances at each hand-off): an AB/BA pair that
  did not deadlock in this run was ordered by the hand-off of A or B, and is exactly
  what this analysis is for. An order by a join or a call is not a lucky schedule:
  it holds in every run, so such a cycle cannot deadlock.

Severity: critical for two locks (two threads suffice), warning for longer cycles.

The lock-order edges and their held sets come from SQL over the store; Python only
sees distinct lock pairs, their distinct (site, held set) groups, and for the few
groups on a cycle a bounded witness search (nearest instances in time first).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from raceway_core.dbutil import query_arrow

MAX_CYCLE = 4  # longest lock cycle searched (lockdep reports chains of any length; few are longer)
MAX_CYCLES = 1000  # lock cycles examined (simple cycles of a dense graph grow fast)
MAX_COMBOS = 64  # site combinations tried per cycle
MAX_CHECKS = 20_000  # happens-before checks per site combination
WINDOW = 8  # instances nearest in time tried on each side

# Per acquire: the locks its context holds just before it (counted per lock), with the
# acquire that opened each hold (the outermost one, for a re-entrant hold).
ACQUISITIONS = """
WITH lk AS (
    SELECT e.seq, o.ctx, o.pos, e.lock_id, e.kind = 'LockAcquire' AS is_acq,
           CASE e.kind WHEN 'LockAcquire' THEN 1 ELSE -1 END AS d
    FROM events e JOIN hb.ev o USING (seq)
    WHERE e.kind IN ('LockAcquire', 'LockRelease') AND e.lock_id IS NOT NULL
), walk AS (
    SELECT *, sum(d) OVER w AS s FROM lk
    WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
), bal AS (
    SELECT *, s - least(0, min(s) OVER w) AS held FROM walk
    WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
), opened AS (
    SELECT *, last_value(CASE WHEN is_acq AND held = 1 THEN seq END IGNORE NULLS) OVER w AS outer_seq FROM bal
    WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
), acq AS (  -- acquires that can block: the context did not hold the lock already
    SELECT seq, ctx, pos, lock_id FROM opened WHERE is_acq AND held = 1
), per_ctx AS (SELECT DISTINCT ctx, lock_id FROM lk),
cand AS (
    SELECT a.seq, a.ctx, a.pos, p.lock_id AS other FROM acq a JOIN per_ctx p USING (ctx) WHERE p.lock_id <> a.lock_id
), holding AS (
    SELECT c.seq, c.other AS held_lock, b.outer_seq AS held_seq
    FROM cand c ASOF JOIN opened b ON b.ctx = c.ctx AND b.lock_id = c.other AND c.pos > b.pos
    WHERE b.held > 0
), held_sets AS (
    SELECT seq, list(held_lock ORDER BY held_lock) AS held FROM holding GROUP BY seq
)
SELECT h.seq AS acq_seq, a.ctx, a.pos, a.lock_id AS to_lock, h.held_lock AS from_lock, h.held_seq,
       s.held, ea.location AS to_location, eh.location AS from_location, ea.ts_ns
FROM holding h JOIN acq a USING (seq) JOIN held_sets s USING (seq)
JOIN events ea ON ea.seq = h.seq JOIN events eh ON eh.seq = h.held_seq
"""


@dataclass
class LockFreeOrder:
    """Happens-before without the locks: program order plus the structural edges
    (parent, join, call, return) between contexts, searched on demand."""

    out_start: np.ndarray  # per context, its edges in out_* (sorted by source pos)
    out_pos: np.ndarray
    out_dst_ctx: np.ndarray
    out_dst_pos: np.ndarray
    checks: int = 0

    @classmethod
    def build(cls, cur, n_ctx: int) -> "LockFreeOrder":
        e = query_arrow(cur, """
            SELECT s.ctx AS sc, s.pos AS sp, d.ctx AS dc, d.pos AS dp
            FROM hb.edges g JOIN hb.ev s ON s.seq = g.src JOIN hb.ev d ON d.seq = g.dst
            WHERE NOT g.dropped AND g.kind IN ('parent', 'join', 'call', 'return') AND s.ctx <> d.ctx
            ORDER BY s.ctx, s.pos""")
        sc = e["sc"].to_numpy().astype(np.int64)
        return cls(np.searchsorted(sc, np.arange(n_ctx + 1)), e["sp"].to_numpy().astype(np.int64),
                   e["dc"].to_numpy().astype(np.int64), e["dp"].to_numpy().astype(np.int64))

    def before(self, cx: int, px: int, cy: int, py: int) -> bool:
        """(cx, px) -> (cy, py): the earliest position of each context reachable from x,
        relaxed along edges leaving at or after it (Dijkstra on positions)."""
        self.checks += 1
        if cx == cy:
            return px < py
        best = {cx: px}
        heap = [(px, cx)]
        while heap:
            p, c = heapq.heappop(heap)
            if best.get(c) != p:
                continue
            lo, hi = self.out_start[c], self.out_start[c + 1]
            k = lo + int(np.searchsorted(self.out_pos[lo:hi], p))
            for dc, dp in zip(self.out_dst_ctx[k:hi].tolist(), self.out_dst_pos[k:hi].tolist()):
                if dc == cy and dp <= py:
                    return True
                if dp < best.get(dc, 1 << 62):
                    best[dc] = dp
                    heapq.heappush(heap, (dp, dc))
        return False


@dataclass
class Site:
    """Instances of one lock-order edge from one pair of sites with one held set."""

    from_lock: str
    to_lock: str
    from_location: str | None
    to_location: str | None
    held: frozenset
    rows: np.ndarray  # indices into the instance columns, sorted by ts


@dataclass
class DeadlockReport:
    groups: list[dict]  # one per reported lock cycle
    suppressed: list[dict]  # cycles in the lock-order graph not reported, and why
    lock_edges: pa.Table  # the lock-order graph: from_lock, to_lock, count, contexts
    checks: int = 0  # happens-before checks made in witness searches
    limits: dict = field(default_factory=dict)


def analyze(cur, engine) -> DeadlockReport:
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _lock_order AS {ACQUISITIONS}").fetchall()
    edges = query_arrow(cur, """SELECT from_lock, to_lock, count(*) AS count, count(DISTINCT ctx) AS contexts
                                FROM _lock_order GROUP BY ALL ORDER BY from_lock, to_lock""")
    report = DeadlockReport([], [], edges, limits={"max_cycle": MAX_CYCLE, "max_cycles": MAX_CYCLES,
                                                   "max_combos": MAX_COMBOS, "max_checks": MAX_CHECKS})
    graph: dict[str, set[str]] = {}
    for a, b in zip(edges["from_lock"].to_pylist(), edges["to_lock"].to_pylist()):
        graph.setdefault(a, set()).add(b)
    cycles = simple_cycles(graph, MAX_CYCLE, MAX_CYCLES)
    report.limits["cycles_capped"] = len(cycles) >= MAX_CYCLES
    if not cycles:
        return report
    on_cycle = sorted({(c[i], c[(i + 1) % len(c)]) for c in cycles for i in range(len(c))})
    cur.register("_on_cycle", pa.table({"from_lock": [a for a, _ in on_cycle], "to_lock": [b for _, b in on_cycle]}))
    try:
        inst = query_arrow(cur, """SELECT l.* FROM _lock_order l JOIN _on_cycle USING (from_lock, to_lock)
                                   ORDER BY l.ts_ns, l.acq_seq, l.from_lock""")
    finally:
        cur.unregister("_on_cycle")
    sites = _sites(inst)
    col = {k: inst[k].to_numpy() for k in ("acq_seq", "ctx", "pos", "held_seq", "ts_ns")}
    order = LockFreeOrder.build(cur, engine.n_ctx)
    for cyc in cycles:
        per_edge = [sites[(cyc[i], cyc[(i + 1) % len(cyc)])] for i in range(len(cyc))]
        found, reasons, tried = [], set(), 0
        for combo in itertools.product(*per_edge):
            if tried >= MAX_COMBOS:
                reasons.add("site combinations capped")
                break
            gate = _shared_lock(combo)
            if gate is not None:
                reasons.add(f"lock {gate!r} held across the acquisitions (a gate)")
                continue
            tried += 1
            w = _witness(combo, col, order)
            if w is None:
                reasons.add("ordered by happens-before (without locks) or in one context")
                continue
            found.append((combo, w))
        counts = [int(sum(len(s.rows) for s in e)) for e in per_edge]
        if not found:
            report.suppressed.append({"locks": list(cyc), "reasons": sorted(reasons), "instances": counts})
            continue
        report.groups.append({"locks": list(cyc), "severity": "critical" if len(cyc) == 2 else "warning",
                              "instances": counts,
                              "sites": [_site_entry(combo, w, col, engine) for combo, w in found]})
    report.checks = order.checks
    _event_ids(cur, report.groups)
    report.groups.sort(key=lambda g: (g["severity"] != "critical", g["locks"]))
    return report


def simple_cycles(graph: dict[str, set[str]], max_len: int, cap: int) -> list[tuple[str, ...]]:
    """Simple cycles up to max_len locks, each once, starting at its least lock."""
    out: list[tuple[str, ...]] = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ()), reverse=True):
                if nxt == start and len(path) > 1:
                    out.append(tuple(path))
                    if len(out) >= cap:
                        return out
                elif nxt > start and nxt not in path and len(path) < max_len:
                    stack.append((nxt, path + [nxt]))
    out.sort(key=lambda c: (len(c), c))
    return out


def _sites(inst: pa.Table) -> dict[tuple[str, str], list[Site]]:
    """Instances of the edges on a cycle, grouped by (sites, held set)."""
    fl, tl = inst["from_lock"].to_pylist(), inst["to_lock"].to_pylist()
    floc, tloc = inst["from_location"].to_pylist(), inst["to_location"].to_pylist()
    held = inst["held"].to_pylist()
    groups: dict[tuple, list[int]] = {}
    for i, (a, b) in enumerate(zip(fl, tl)):  # rows are already in ts order
        groups.setdefault((a, b, floc[i], tloc[i], tuple(held[i])), []).append(i)
    out: dict[tuple[str, str], list[Site]] = {}
    for (a, b, lf, lt, h), rows in groups.items():
        out.setdefault((a, b), []).append(Site(a, b, lf, lt, frozenset(h), np.array(rows, dtype=np.int64)))
    for v in out.values():
        v.sort(key=lambda s: -len(s.rows))  # the most frequent sites first
    return out


def _shared_lock(combo) -> str | None:
    """A lock in two held sets of the combination (its contexts can never wait together)."""
    seen: set[str] = set()
    for s in combo:
        both = seen & s.held
        if both:
            return min(both)
        seen |= s.held
    return None


def _witness(combo, col, order: LockFreeOrder) -> list[int] | None:
    """One instance per site, in distinct contexts, no acquisition happens-before another.
    Nearest instances in time are tried first; at most MAX_CHECKS checks."""
    ctx, pos, ts = col["ctx"], col["pos"], col["ts_ns"]
    budget = [MAX_CHECKS]

    def unordered(i: int, j: int) -> bool:
        budget[0] -= 2
        ci, pi_, cj, pj = int(ctx[i]), int(pos[i]), int(ctx[j]), int(pos[j])
        return ci != cj and not order.before(ci, pi_, cj, pj) and not order.before(cj, pj, ci, pi_)

    def near(site: Site, t: int) -> list[int]:
        st = ts[site.rows]
        k = int(np.searchsorted(st, t))
        lo, hi = max(0, k - WINDOW), min(len(site.rows), k + WINDOW)
        cand = site.rows[lo:hi].tolist()
        return sorted(cand, key=lambda r: abs(int(ts[r]) - t))

    def extend(chosen: list[int]) -> list[int] | None:
        if len(chosen) == len(combo):
            return chosen
        site = combo[len(chosen)]
        for r in near(site, int(ts[chosen[0]])):
            if budget[0] <= 0:
                return None
            if all(unordered(r, c) for c in chosen):
                got = extend(chosen + [r])
                if got is not None:
                    return got
        return None

    for first in combo[0].rows.tolist():
        if budget[0] <= 0:
            return None
        got = extend([first])
        if got is not None:
            return got
    return None


def _site_entry(combo, rows, col, engine) -> list[dict]:
    """One reported site combination: per edge of the cycle, who holds what and where."""
    out = []
    for site, r in zip(combo, rows):
        c = int(col["ctx"][r])
        out.append({
            "holding": site.from_lock, "acquiring": site.to_lock, "context": engine.ctx_label(c),
            "trace_id": engine.ctx_trace[c], "thread_id": engine.ctx_thread[c],
            "holding_location": site.from_location, "acquiring_location": site.to_location,
            "held": sorted(site.held), "instances": len(site.rows),
            "holding_seq": int(col["held_seq"][r]), "acquiring_seq": int(col["acq_seq"][r])})
    return out


def _event_ids(cur, groups: list[dict]) -> None:
    """Event ids for the witness acquisitions (seq is the store's own)."""
    seqs = sorted({e[k] for g in groups for s in g["sites"] for e in s for k in ("holding_seq", "acquiring_seq")})
    if not seqs:
        return
    t = query_arrow(cur, "SELECT seq, id FROM events WHERE list_contains($s, seq)", {"s": seqs})
    ids = dict(zip(t["seq"].to_pylist(), t["id"].to_pylist()))
    for g in groups:
        for s in g["sites"]:
            for e in s:
                e["holding_event"] = ids[e["holding_seq"]]
                e["acquiring_event"] = ids[e["acquiring_seq"]]
