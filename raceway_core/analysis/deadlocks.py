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
  the locks themselves (program order, parent, join, calls and trusted vector clocks,
  but no lock hand-off and no clock knowledge first learned at a LockAcquire, where an
  SDK merges the releaser's clock): an AB/BA pair that
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
MAX_COMBOS = 64  # held-set combinations searched per cycle
MAX_COMBOS_SEEN = 100_000  # and looked at (most may share a gate lock)
MAX_CHECKS = 20_000  # happens-before checks per held-set combination
MAX_CHECKS_TOTAL = 500_000  # and in all (a cycle left then is reported as undecided)
WINDOW = 8  # instances nearest in time tried on each side

# Per acquire: the locks its context holds just before it (counted per lock), with the
# acquire that opened each hold (the outermost one, for a re-entrant hold). Only acquires
# made while holding another lock fan out (per other lock of the context), and each
# lock's balance is carried to them by a window rather than an ASOF join (DuckDB's ASOF
# join over ~20k small (context, lock) partitions took 4 s for 250k events).
ACQUISITIONS = """
WITH lk_all AS (
    SELECT e.seq, o.ctx, o.pos, e.lock_id, e.kind = 'LockAcquire' AS is_acq,
           CASE e.kind WHEN 'LockAcquire' THEN 1 ELSE -1 END AS d
    FROM events e JOIN hb.ev o USING (seq)
    WHERE e.kind IN ('LockAcquire', 'LockRelease') AND e.lock_id IS NOT NULL
), lk AS (  -- only a context that uses two locks or more can nest them
    SELECT * FROM lk_all WHERE ctx IN (SELECT ctx FROM lk_all GROUP BY ctx HAVING count(DISTINCT lock_id) > 1)
), walk AS (
    SELECT *, sum(d) OVER w AS s FROM lk
    WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
), bal AS (
    SELECT *, s - least(0, min(s) OVER w) AS held FROM walk
    WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
), opened AS (
    SELECT *, last_value(CASE WHEN is_acq AND held = 1 THEN seq END IGNORE NULLS) OVER w AS outer_seq,
           held - coalesce(lag(held) OVER w, 0) AS step
    FROM bal
    WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
), total AS (  -- holds of all locks open in the context after each lock event
    SELECT *, sum(step) OVER (PARTITION BY ctx ORDER BY pos ROWS UNBOUNDED PRECEDING) AS holds FROM opened
), acq AS (  -- acquires that can block (the lock was not held) while another lock is held
    SELECT seq, ctx, pos, lock_id FROM total WHERE is_acq AND held = 1 AND holds > 1
), per_ctx AS (SELECT DISTINCT ctx, lock_id FROM lk WHERE ctx IN (SELECT ctx FROM acq)),
probe AS (  -- per such acquire and other lock of its context, a row to carry that lock's balance to
    SELECT a.seq, a.ctx, p.lock_id, a.pos, NULL::BIGINT AS held, NULL::BIGINT AS outer_seq
    FROM acq a JOIN per_ctx p USING (ctx) WHERE p.lock_id <> a.lock_id
    UNION ALL
    SELECT NULL, ctx, lock_id, pos, held, outer_seq FROM opened WHERE ctx IN (SELECT ctx FROM acq)
), carried AS (
    SELECT seq, lock_id, last_value(held IGNORE NULLS) OVER w AS held_before,
           last_value(outer_seq IGNORE NULLS) OVER w AS outer_seq
    FROM probe WINDOW w AS (PARTITION BY ctx, lock_id ORDER BY pos ROWS UNBOUNDED PRECEDING)
), holding AS (
    SELECT seq, lock_id AS held_lock, outer_seq AS held_seq FROM carried WHERE seq IS NOT NULL AND held_before > 0
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
    """Happens-before without the locks: program order plus the edges between contexts
    of parent links, joins, calls, and trusted vector clocks except where a clock is
    learned at a LockAcquire (an SDK merges the last releaser's clock there: that is
    the lock's hand-off again). Searched on demand."""

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
            JOIN events de ON de.seq = g.dst
            WHERE NOT g.dropped AND s.ctx <> d.ctx
              AND (g.kind IN ('parent', 'join', 'call', 'return') OR (g.kind = 'clock' AND de.kind <> 'LockAcquire'))
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
class Held:
    """Instances of one lock-order edge made with one held set (its sites may differ)."""

    from_lock: str
    to_lock: str
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
                                                   "max_combos": MAX_COMBOS, "max_combos_seen": MAX_COMBOS_SEEN, "max_checks": MAX_CHECKS,
                                                   "max_checks_total": MAX_CHECKS_TOTAL})
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
        inst = query_arrow(cur, """SELECT l.acq_seq, l.ctx, l.pos, l.held_seq, l.ts_ns, l.from_lock, l.to_lock,
                                          l.from_location, l.to_location,
                                          l.held, dense_rank() OVER (ORDER BY l.from_lock, l.to_lock, l.held) AS cls
                                   FROM _lock_order l JOIN _on_cycle USING (from_lock, to_lock)
                                   ORDER BY l.ts_ns, l.acq_seq, l.from_lock""")
        where = query_arrow(cur, """SELECT from_lock, to_lock, from_location, to_location, count(*) AS count
                                    FROM _lock_order l JOIN _on_cycle USING (from_lock, to_lock)
                                    GROUP BY ALL ORDER BY count DESC, from_location, to_location""").to_pylist()
    finally:
        cur.unregister("_on_cycle")
    sites: dict[tuple[str, str], list[dict]] = {}
    for w in where:
        sites.setdefault((w.pop("from_lock"), w.pop("to_lock")), []).append(
            {"holding_location": w["from_location"], "acquiring_location": w["to_location"], "count": w["count"]})
    classes = _held_classes(inst)
    col = {k: inst[k].to_numpy() for k in ("acq_seq", "ctx", "pos", "held_seq", "ts_ns")}
    col["from_location"], col["to_location"] = inst["from_location"], inst["to_location"]
    order = LockFreeOrder.build(cur, engine.n_ctx)
    n_edges = dict(zip(zip(edges["from_lock"].to_pylist(), edges["to_lock"].to_pylist()), edges["count"].to_pylist()))
    for cyc in cycles:
        pairs = [(cyc[i], cyc[(i + 1) % len(cyc)]) for i in range(len(cyc))]
        found, reasons, tried = None, set(), 0
        if _one_chain([c.rows for p in pairs for c in classes[p]], col, order):
            counts = [int(n_edges[p]) for p in pairs]
            report.suppressed.append({"locks": list(cyc), "instances": counts, "reasons": [
                "ordered by happens-before (without locks): each acquisition follows the one before it"]})
            continue
        for seen, combo in enumerate(itertools.product(*(classes[p] for p in pairs))):
            if seen >= MAX_COMBOS_SEEN:
                reasons.add("undecided: held-set combinations capped")
                break
            gate = _shared_lock(combo)
            if gate is not None:
                reasons.add(f"lock {gate!r} held across the acquisitions (a gate)")
                continue
            if tried >= MAX_COMBOS:
                reasons.add("undecided: held-set combinations capped")
                break
            if order.checks >= MAX_CHECKS_TOTAL:
                reasons.add("undecided: search budget spent")
                break
            tried += 1
            w, spent = _witness(combo, col, order)
            if w is not None:
                found = (combo, w)
                break
            reasons.add("undecided: search budget spent" if spent else
                        "ordered by happens-before (without locks) or in one context")
        counts = [int(n_edges[p]) for p in pairs]
        if found is None:
            report.suppressed.append({"locks": list(cyc), "reasons": sorted(reasons), "instances": counts})
            continue
        report.groups.append({
            "locks": list(cyc), "severity": "critical" if len(cyc) == 2 else "warning", "instances": counts,
            "edges": [{"holding": a, "acquiring": b, "sites": sites[(a, b)]} for a, b in pairs],
            "example": _example(found[0], found[1], col, engine)})
    report.checks = order.checks
    _event_ids(cur, report.groups)
    report.groups.sort(key=lambda g: (g["severity"] != "critical", g["locks"]))
    return report


def simple_cycles(graph: dict[str, set[str]], max_len: int, cap: int, steps: int = 2_000_000) -> list[tuple[str, ...]]:
    """Simple cycles up to max_len locks, each once, starting at its least lock: all
    two-lock cycles first, then longer ones inside strongly connected components, at most
    ``cap`` cycles and ``steps`` search steps (a dense graph has very many)."""
    out = sorted((a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, ()))
    if len(out) >= cap or max_len < 3:
        return out[:cap]
    comp = _components(graph)
    found: list[tuple[str, ...]] = []
    for start in sorted(graph):
        stack = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ()), reverse=True):
                steps -= 1
                if steps < 0 or len(out) + len(found) >= cap:
                    return out + sorted(found, key=lambda c: (len(c), c))
                if comp.get(nxt) != comp.get(start):
                    continue
                if nxt == start and len(path) > 2:
                    found.append(path)
                elif nxt > start and nxt not in path and len(path) < max_len:
                    stack.append((nxt, path + (nxt,)))
    return out + sorted(found, key=lambda c: (len(c), c))


def _components(graph: dict[str, set[str]]) -> dict[str, int]:
    """Strongly connected components (iterative Tarjan): lock -> component id."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    comp: dict[str, int] = {}
    on: set[str] = set()
    st: list[str] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        st.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    st.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    while True:
                        w = st.pop()
                        on.discard(w)
                        comp[w] = index[v]
                        if w == v:
                            break
    return comp


def _held_classes(inst: pa.Table) -> dict[tuple[str, str], list[Held]]:
    """Instances of the edges on a cycle, grouped by held set (the gate test needs no more)."""
    cls = inst["cls"].to_numpy()
    order = np.argsort(cls, kind="stable")  # rows stay in ts order inside a class
    bounds = np.flatnonzero(np.diff(cls[order])) + 1
    out: dict[tuple[str, str], list[Held]] = {}
    for rows in np.split(order, bounds) if len(order) else []:
        r = int(rows[0])
        a, b = inst["from_lock"][r].as_py(), inst["to_lock"][r].as_py()
        out.setdefault((a, b), []).append(Held(a, b, frozenset(inst["held"][r].as_py()), rows.astype(np.int64)))
    for v in out.values():
        v.sort(key=lambda c: -len(c.rows))  # the most frequent first
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


def _one_chain(rows: list[np.ndarray], col, order: LockFreeOrder) -> bool:
    """Whether all these acquisitions, in time order, each happen before the next: then no
    two are concurrent (transitivity), whatever their number; n - 1 checks decide it."""
    r = np.concatenate(rows)
    if len(r) > MAX_CHECKS_TOTAL - order.checks:
        return False
    r = r[np.lexsort((col["acq_seq"][r], col["ts_ns"][r]))]
    ctx, pos = col["ctx"][r].tolist(), col["pos"][r].tolist()
    return all(order.before(ctx[i], pos[i], ctx[i + 1], pos[i + 1]) for i in range(len(r) - 1))


def _witness(combo, col, order: LockFreeOrder) -> tuple[list[int] | None, bool]:
    """One instance per held class, in distinct contexts, no acquisition happening before
    another; and whether the search stopped at its budget (MAX_CHECKS) without one.
    For each instance of the first class, the nearest instances in time of the others."""
    ctx, pos, ts = col["ctx"], col["pos"], col["ts_ns"]
    budget = [MAX_CHECKS]

    def unordered(i: int, j: int) -> bool:
        budget[0] -= 1
        if ts[i] > ts[j]:
            i, j = j, i  # the earlier first: when ordered, that is the direction that answers
        ci, pi_, cj, pj = int(ctx[i]), int(pos[i]), int(ctx[j]), int(pos[j])
        return ci != cj and not order.before(ci, pi_, cj, pj) and not order.before(cj, pj, ci, pi_)

    def near(cls: Held, t: int) -> list[int]:
        k = int(np.searchsorted(ts[cls.rows], t))
        cand = cls.rows[max(0, k - WINDOW):k + WINDOW].tolist()
        return sorted(cand, key=lambda r: abs(int(ts[r]) - t))

    def extend(chosen: list[int]) -> list[int] | None:
        if len(chosen) == len(combo):
            return chosen
        for r in near(combo[len(chosen)], int(ts[chosen[0]])):
            if budget[0] <= 0:
                return None
            if all(unordered(r, c) for c in chosen):
                got = extend(chosen + [r])
                if got is not None:
                    return got
        return None

    for first in combo[0].rows.tolist():
        if budget[0] <= 0:
            return None, True
        got = extend([first])
        if got is not None:
            return got, False
    return None, budget[0] <= 0


def _example(combo, rows, col, engine) -> list[dict]:
    """The witness: per edge of the cycle, the context, the lock it holds and the one it takes."""
    out = []
    for cls, r in zip(combo, rows):
        c = int(col["ctx"][r])
        out.append({
            "holding": cls.from_lock, "acquiring": cls.to_lock, "context": engine.ctx_label(c),
            "trace_id": engine.ctx_trace[c], "thread_id": engine.ctx_thread[c],
            "holding_location": col["from_location"][r].as_py(), "acquiring_location": col["to_location"][r].as_py(),
            "held": sorted(cls.held), "holding_seq": int(col["held_seq"][r]), "acquiring_seq": int(col["acq_seq"][r])})
    return out


def _event_ids(cur, groups: list[dict]) -> None:
    """Event ids for the witness acquisitions (seq is the store's own)."""
    seqs = sorted({e[k] for g in groups for e in g["example"] for k in ("holding_seq", "acquiring_seq")})
    if not seqs:
        return
    t = query_arrow(cur, "SELECT seq, id FROM events WHERE list_contains($s, seq)", {"s": seqs})
    ids = dict(zip(t["seq"].to_pylist(), t["id"].to_pylist()))
    for g in groups:
        for e in g["example"]:
            e["holding_event"] = ids[e["holding_seq"]]
            e["acquiring_event"] = ids[e["acquiring_seq"]]
