"""Replay: one trace step by step in causal order, with the state at each step.

Step ``i`` is the event at position ``i`` of the trace's causal order (``hb.ev.tord``,
the timeline's order), and "at step i" means that event has happened. The state:

- each variable's value: the ``new_value`` of its last write (Write, AtomicWrite,
  AtomicRMW) at or before the step, and its last access of any kind;
- the live contexts: those whose first event is at or before the step and whose
  last event is at or after it (started and not finished);
- the racing pairs the step's event belongs to, each with its partner.

Everything a step needs is loaded once, as arrays; ``state(step)`` computes it with a
few binary searches (no query), and ``page`` fetches the rows of a window of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.browse import ROW_COLUMNS
from raceway_core.dbutil import query_arrow

WRITES = ("Write", "AtomicWrite", "AtomicRMW")
_WRITES_SQL = ", ".join(f"'{w}'" for w in WRITES)


@dataclass(frozen=True)
class ReplayState:
    step: int
    variables: pa.Table  # variable, value (last write's new value, JSON text), written_step, writer,
    #                      changed (written at this step), last_step, last_access, seen (last access's value)
    live: pa.Table  # context, first_step, last_step, done (its events so far), events, current
    races: pa.Table  # pairs with the step's event: partner_step, partner_id, partner_context, variable,
    #                  kind, severity, partner_first (the partner comes first)


class Replay:
    """The steps of one trace (built by ``build``; ``state`` and ``page`` are cheap)."""

    def __init__(self, store, trace_id: str, seq: np.ndarray, ctx_of: np.ndarray, ctx: pa.Table,
                 acc: pa.Table, var_names: pa.Array, pairs: dict) -> None:
        self.store = store
        self.trace_id = trace_id
        self.steps = len(seq)
        self.seq = seq  # step -> seq
        self.ctx_of = ctx_of  # step -> local context (index into ctx)
        self.contexts = ctx  # label, first_step, last_step, events (local context order)
        self._ctx_first = ctx["first_step"].to_numpy()
        self._ctx_last = ctx["last_step"].to_numpy()
        n1 = self.steps + 1
        # the steps of each context, keyed (context, step), sorted: how many are done by a step
        self._ctx_key = np.sort(ctx_of.astype(np.int64) * n1 + np.arange(self.steps, dtype=np.int64))
        self._ctx_base = np.arange(ctx.num_rows, dtype=np.int64) * n1
        self._ctx_offset = np.searchsorted(self._ctx_key, self._ctx_base)
        self.var_names = var_names
        v = acc["var"].to_numpy().astype(np.int64)
        step = acc["step"].to_numpy().astype(np.int64)
        self._acc = acc
        self._acc_key = v * n1 + step  # sorted by (var, step) in the query
        is_w = acc["is_write"].to_numpy(zero_copy_only=False)
        self._w_rows = np.flatnonzero(is_w)
        self._w_key = self._acc_key[self._w_rows]
        self._var_base = np.arange(len(var_names), dtype=np.int64) * n1
        self._pairs = pairs  # first_step, second_step (numpy), variable, kind, severity (Arrow), id_of
        self.pairs_marked = len(pairs["first_step"])  # racing pairs marked; of pairs_total in the trace
        self.pairs_total = self.pairs_marked
        fs, ss = pairs["first_step"], pairs["second_step"]
        self.racing_steps = np.unique(np.r_[fs, ss]).astype(np.int64)
        both = np.r_[fs, ss]
        self._pair_by_step = np.argsort(both, kind="stable")
        self._pair_sorted = both[self._pair_by_step]

    # -- the state at a step ------------------------------------------------------------
    def _last_at_or_before(self, keys: np.ndarray, base: np.ndarray, step: int) -> np.ndarray:
        """For each group (base = group * (steps + 1)): the index in ``keys`` of its last key at
        or before ``step``, or -1."""
        i = np.searchsorted(keys, base + step, side="right") - 1
        ok = i >= 0
        ok[ok] = keys[i[ok]] >= base[ok]
        return np.where(ok, i, -1)

    def state(self, step: int) -> ReplayState:
        step = int(step)
        if not 0 <= step < self.steps:
            raise IndexError(f"step {step} outside 0..{self.steps - 1}")
        acc, names = self._acc, self.var_names
        wi = self._last_at_or_before(self._w_key, self._var_base, step)
        ai = self._last_at_or_before(self._acc_key, self._var_base, step)
        if not len(self._w_rows):
            wi = np.full(len(wi), -1, dtype=np.int64)
        w_rows = pa.array(np.where(wi >= 0, self._w_rows[np.maximum(wi, 0)], 0) if len(self._w_rows) else
                          np.zeros(len(wi), dtype=np.int64), pa.int64())
        w_mask = pa.array(wi < 0)
        a_rows = pa.array(np.maximum(ai, 0), pa.int64())
        a_mask = pa.array(ai < 0)

        def pick(col: str, rows, mask):
            if not len(names):
                return pa.array([], acc[col].type)
            return pc.if_else(mask, pa.nulls(len(names), acc[col].type), acc[col].take(rows))

        written = pick("step", w_rows, w_mask)
        variables = pa.table({
            "variable": names,
            "value": pick("new_value", w_rows, w_mask),
            "written_step": written,
            "writer": pick("context", w_rows, w_mask),
            "changed": pc.fill_null(pc.equal(written, step), False),
            "last_step": pick("step", a_rows, a_mask),
            "last_access": pick("access", a_rows, a_mask),
            "seen": pick("new_value", a_rows, a_mask),
        })
        done = np.searchsorted(self._ctx_key, self._ctx_base + step, side="right") - self._ctx_offset
        alive = (self._ctx_first <= step) & (self._ctx_last >= step)
        rows = np.flatnonzero(alive)
        cur = int(self.ctx_of[step])
        live = pa.table({
            "context": self.contexts["label"].take(pa.array(rows, pa.int64())),
            "first_step": pa.array(self._ctx_first[rows], pa.int64()),
            "last_step": pa.array(self._ctx_last[rows], pa.int64()),
            "done": pa.array(done[rows], pa.int64()),
            "events": self.contexts["events"].take(pa.array(rows, pa.int64())),
            "current": pa.array(rows == cur, pa.bool_()),
        })
        return ReplayState(step, variables, live, self._races_at(step))

    def _races_at(self, step: int) -> pa.Table:
        p = self._pairs
        lo, hi = np.searchsorted(self._pair_sorted, [step, step + 1])
        idx = self._pair_by_step[lo:hi] % max(1, len(p["first_step"]))
        idx = np.sort(idx)
        fs, ss = p["first_step"][idx], p["second_step"][idx]
        partner = np.where(fs == step, ss, fs)
        return pa.table({
            "partner_step": pa.array(partner, pa.int64()),
            "partner_id": p["id_of"](partner),
            "partner_context": self.contexts["label"].take(pa.array(self.ctx_of[partner], pa.int64())),
            "variable": p["variable"].take(pa.array(idx, pa.int64())),
            "kind": p["kind"].take(pa.array(idx, pa.int64())),
            "severity": p["severity"].take(pa.array(idx, pa.int64())),
            "partner_first": pa.array(partner < step, pa.bool_()),
        })

    # -- rows ------------------------------------------------------------------------------
    def page(self, start: int, count: int) -> pa.Table:
        """Steps start .. start+count-1 as event rows (``step``, the timeline's row columns,
        ``context``, ``racing``)."""
        start = max(0, int(start))
        stop = min(self.steps, start + max(0, int(count)))
        seqs = pa.table({"seq": pa.array(self.seq[start:stop], pa.int64()),
                         "step": pa.array(np.arange(start, stop), pa.int64())})
        cur = self.store.cursor()
        try:
            cur.register("_steps", seqs)
            lo, hi = (int(self.seq[start:stop].min()), int(self.seq[start:stop].max())) if stop > start else (0, -1)
            rows = query_arrow(cur, f"""
                SELECT s.step, c.label AS context, {ROW_COLUMNS}
                FROM _steps s JOIN (SELECT * FROM events WHERE seq BETWEEN {lo} AND {hi} AND trace_id = $t) e
                ON e.seq = s.seq
                JOIN (SELECT seq, ctx FROM hb.ev WHERE seq BETWEEN {lo} AND {hi} AND trace_id = $t) o ON o.seq = s.seq
                JOIN hb.ctx c ON c.ctx = o.ctx ORDER BY s.step""", {"t": self.trace_id})
            cur.unregister("_steps")
        finally:
            cur.close()
        steps = rows["step"].to_numpy()
        at = np.searchsorted(self.racing_steps, steps)
        racing = (at < len(self.racing_steps)) & \
            (self.racing_steps[np.minimum(at, max(len(self.racing_steps) - 1, 0))] == steps) \
            if len(self.racing_steps) else np.zeros(len(steps), dtype=bool)
        return rows.append_column("racing", pa.array(racing, pa.bool_()))


def build(store, cur, trace_id: str, pairs: pa.Table | None = None, pairs_total: int | None = None) -> Replay:
    """The replay of a trace (no steps for an unknown one); ``pairs``: its racing pairs
    (first_seq, second_seq, variable, kind, severity), e.g. from the engine, of
    ``pairs_total`` in all (when the listing was capped). Needs the hb tables."""
    # (events filtered by trace too: its scan then skips what a join would read of a million rows)
    ev = query_arrow(cur, """SELECT o.seq, o.tord, o.ctx, e.id FROM hb.ev o JOIN events e USING (seq)
                             WHERE o.trace_id = $t AND e.trace_id = $t ORDER BY o.tord""", {"t": trace_id})
    n = ev.num_rows
    seq = ev["seq"].to_numpy()
    if n and not np.array_equal(ev["tord"].to_numpy(), np.arange(n)):
        raise ValueError("hb.ev.tord is not dense inside the trace")
    ctx = query_arrow(cur, """
        SELECT o.ctx, c.label, CAST(min(o.tord) AS BIGINT) AS first_step, CAST(max(o.tord) AS BIGINT) AS last_step,
               count(*) AS events
        FROM hb.ev o JOIN hb.ctx c USING (ctx) WHERE o.trace_id = $t GROUP BY o.ctx, c.label
        ORDER BY first_step""", {"t": trace_id})
    local = {c: i for i, c in enumerate(ctx["ctx"].to_pylist())}
    glob = ev["ctx"].to_numpy().astype(np.int64)
    lut = np.zeros(int(glob.max(initial=-1)) + 1, dtype=np.int64)
    for c, i in local.items():
        lut[c] = i
    ctx_of = lut[glob] if n else np.zeros(0, dtype=np.int64)
    acc = query_arrow(cur, f"""
        SELECT CAST(dense_rank() OVER (ORDER BY e.variable) - 1 AS BIGINT) AS var, e.variable, o.tord AS step,
               e.access, e.access IN ({_WRITES_SQL}) AS is_write, CAST(e.new_value AS VARCHAR) AS new_value,
               c.label AS context
        FROM events e JOIN hb.ev o USING (seq) JOIN hb.ctx c ON c.ctx = o.ctx
        WHERE o.trace_id = $t AND e.trace_id = $t AND e.kind = 'StateChange' AND e.variable IS NOT NULL
        ORDER BY e.variable, o.tord""", {"t": trace_id})
    var_names = pc.unique(acc["variable"].combine_chunks()) if acc.num_rows else pa.array([], pa.string())
    ids = ev["id"]
    by_seq = np.argsort(seq, kind="stable")
    sorted_seq = seq[by_seq]

    def steps_of(seqs: np.ndarray) -> np.ndarray:
        """The step of each seq, -1 outside the trace."""
        if not n:
            return np.full(len(seqs), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_seq, seqs), n - 1)
        return np.where(sorted_seq[at] == seqs, by_seq[at], -1)

    if pairs is None or not pairs.num_rows:
        pairs = pa.table({"first_seq": pa.array([], pa.int64()), "second_seq": pa.array([], pa.int64()),
                          "variable": pa.array([], pa.string()), "kind": pa.array([], pa.string()),
                          "severity": pa.array([], pa.string())})
    fs = steps_of(pairs["first_seq"].to_numpy().astype(np.int64))
    ss = steps_of(pairs["second_seq"].to_numpy().astype(np.int64))
    inside = pa.array((fs >= 0) & (ss >= 0))
    kept = pairs.filter(inside)
    keep = inside.to_numpy(zero_copy_only=False)
    pair_data = {"first_step": fs[keep], "second_step": ss[keep],
                 "variable": kept["variable"].combine_chunks(), "kind": kept["kind"].combine_chunks(),
                 "severity": kept["severity"].combine_chunks(),
                 "id_of": lambda steps: ids.take(pa.array(steps, pa.int64())).combine_chunks()}
    rep = Replay(store, trace_id, seq, ctx_of, ctx.drop_columns(["ctx"]), acc, var_names, pair_data)
    rep.pairs_marked = int(len(pair_data["first_step"]))
    rep.pairs_total = rep.pairs_marked if pairs_total is None else int(pairs_total)
    return rep
