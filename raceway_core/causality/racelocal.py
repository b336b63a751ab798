"""Exact race counts inside each trace, without listing the pairs.

A segment is the accesses of one variable in one trace, in causal order. For a later
access i, the events of another context y of the trace that happen before i are a
prefix of y: those at positions <= K_i(y), the larger of

- L(i)[y]: what i knows of y along edges inside the trace, and
- the last access a of y with j <= G(i)[c] for some (c, j) in M(a), the minimal lock
  chain releases a reaches (racecount.minimal_entries): a path that leaves the trace
  through a lock hand-off and comes back (clocks.py); every earlier event of y precedes
  a, so those are a prefix of y too.

With i's own context, K = pos(i) - 1. Per bucket b (class, lock set, location, instance):

    racing(b, i) = #(earlier accesses of b in the segment)
                   - sum over contexts y: #(accesses of b in y at positions <= K_i(y))

for the buckets that may race with i's (conflicting classes, disjoint lock sets,
overlapping instances). The work is one K per (access, context of its segment) and one
count per (access, (context, bucket) of its segment): it grows with accesses x contexts
touching the variable, never with the racing pairs. Needs causal order = time order
(the engine lists pairs otherwise).
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from raceway_core.causality.races import QUERY

BLOCK = 1 << 18  # (access, context-bucket) cells held at once (~10 int64 arrays of it: ~20 MB)
MAX_DENSE = 40_000_000  # trace-local clock components unpacked at once; above: the caller lists


class TooLarge(Exception):
    """The traces' local clocks are too wide to unpack: count by listing."""


def pair_ok(cls_a, cls_b, ls_a, ls_b, inst_a, inst_b, locksets, inst_start, inst_end) -> np.ndarray:
    """Per pair (arrays): may these two accesses race, by class, lock sets and instances."""
    query = np.asarray(QUERY, dtype=np.int64)
    ok = ((query[cls_b] >> cls_a) & 1).astype(bool)
    if len(ls_a) and (ls_a.any() or ls_b.any()):
        key = ls_a * (len(locksets) + 1) + ls_b
        uk, inv = np.unique(key, return_inverse=True)
        dis = np.array([not (locksets[k // (len(locksets) + 1)] & locksets[k % (len(locksets) + 1)])
                        for k in uk.tolist()], dtype=bool)
        ok &= dis[inv.reshape(-1)]
    both = (inst_a >= 0) & (inst_b >= 0)
    if both.any():
        ia, ib = np.maximum(inst_a, 0), np.maximum(inst_b, 0)
        apart = (inst_end[ia] < inst_start[ib]) | (inst_end[ib] < inst_start[ia])
        ok &= ~(apart & both)
    return ok


def _codes_by_identity(objs: list) -> tuple[np.ndarray, list]:
    """Dense codes for objects by identity (snapshots are shared), and the distinct ones."""
    ids = np.fromiter(map(id, objs), dtype=np.int64, count=len(objs))
    _, first, code = np.unique(ids, return_index=True, return_inverse=True)
    return code.reshape(-1).astype(np.int64), [objs[k] for k in first.tolist()]


def _dense_local(L: list, trace: np.ndarray, sizes: np.ndarray, local_ops: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each access's trace-local clock as a row of its trace's width in one flat array:
    (offset per access, flat values)."""
    code, distinct = _codes_by_identity(L)
    first = np.full(len(distinct), -1, dtype=np.int64)
    first[code[::-1]] = np.arange(len(code))[::-1]
    width = sizes[trace[first]] if len(first) else np.zeros(0, dtype=np.int64)
    total = int(width.sum())
    if total > MAX_DENSE:
        raise TooLarge(total)
    rows = []
    for snap, t, w in zip(distinct, trace[first].tolist(), width.tolist()):
        if snap is None:
            rows.append((0,) * w)
            continue
        ops = local_ops[t]
        if ops.depth == 1:
            rows.append(snap if len(snap) == w else (tuple(snap[:w]) + (0,) * max(0, w - len(snap))))
        else:
            row = [0] * w
            for k, v in ops.items(snap):
                if k < w:
                    row[k] = v
            rows.append(row)
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=total)
    off = np.r_[0, np.cumsum(width)][:-1].astype(np.int64) if len(width) else np.zeros(0, dtype=np.int64)
    return off[code], flat


def _groups(key: np.ndarray):
    """The distinct keys (sorted) and each element's index among them."""
    uk, inv = np.unique(key, return_inverse=True)
    return uk, inv.reshape(-1).astype(np.int64)


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs [start, start + count): (run of each element, element)."""
    total = int(counts.sum())
    run = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    off = np.r_[0, np.cumsum(counts)][:-1]
    return run, np.repeat(starts - off, counts) + np.arange(total, dtype=np.int64)


class LocalCounter:
    """Race counts inside segments (see the module doc), and the first racing access of a
    later one. Accesses are sorted by (segment, causal order): ``seg`` is non-decreasing."""

    def __init__(self, seg: np.ndarray, ctx: np.ndarray, pos: np.ndarray, lid: np.ndarray, trace: np.ndarray,
                 bucket: np.ndarray, L: list, G: list, F: list, sizes: np.ndarray, local_ops: dict,
                 g_get, g_flat: bool, g_width: int, b_cls: np.ndarray, b_ls: np.ndarray, b_inst: np.ndarray, locksets: list,
                 inst_start: np.ndarray, inst_end: np.ndarray) -> None:
        n = self.n = len(seg)
        self.seg, self.ctx, self.pos, self.bucket = seg, ctx, pos, bucket
        self.b_cls, self.b_ls, self.b_inst = b_cls, b_ls, b_inst
        self.locksets, self.inst_start, self.inst_end = locksets, inst_start, inst_end
        k_idx = np.arange(n, dtype=np.int64)
        nb = int(bucket.max()) + 1
        nc = int(ctx.max()) + 1
        S = int(seg.max()) + 1
        self.seg_start = np.searchsorted(seg, np.arange(S + 1))
        # slots: (segment, context); slot-buckets: (slot, bucket); segment-buckets: (segment, bucket)
        slot_key, slot = _groups(seg * nc + ctx)
        self.slot = slot
        self.slot_seg, self.slot_ctx = slot_key // nc, slot_key % nc
        self.slot_lid = np.zeros(len(slot_key), dtype=np.int64)
        self.slot_lid[slot] = lid
        self.seg_slot0 = np.searchsorted(self.slot_seg, np.arange(S + 1))
        yb_key, yb = _groups(slot * nb + bucket)
        self.yb_slot, yb_bucket = yb_key // nb, yb_key % nb
        yb_seg = self.slot_seg[self.yb_slot]
        self.seg_yb0 = np.searchsorted(yb_seg, np.arange(S + 1))
        sb_key, sb = _groups(seg * nb + bucket)
        self.sb_bucket = sb_key % nb
        self.seg_sb0 = np.searchsorted(sb_key // nb, np.arange(S + 1))
        self.yb_sb = np.searchsorted(sb_key, yb_seg * nb + yb_bucket)
        # members of each slot-bucket by position, of each segment-bucket by causal order
        self.pw = pw = int(pos.max()) + 2
        self.yb_members = np.sort(yb * pw + pos)
        self.yb_first = np.searchsorted(self.yb_members, np.arange(len(yb_key)) * pw)
        self.sb_members = np.sort(sb * n + k_idx)
        self.sb_first = np.searchsorted(self.sb_members, np.arange(len(sb_key)) * n)
        self.l_off, self.l_flat = _dense_local(L, trace, sizes, local_ops)
        # lock chains that accesses reach: per (slot, chain), by release index, the last position
        # (F is M(a) per access: the releases that no other of F(a) reaches; a -> i through
        # chains iff i knows one of them, racecount.py)
        f_code, f_distinct = _codes_by_identity(F)
        per = [list(f) if f else [] for f in f_distinct]
        cnt = np.array([len(p) for p in per], dtype=np.int64)
        self.has_chains = bool(cnt.sum())
        if self.has_chains:
            total = int(cnt.sum())
            fc = np.fromiter((c for p in per for c, _ in p), dtype=np.int64, count=total)
            fj = np.fromiter((j for p in per for _, j in p), dtype=np.int64, count=total)
            e_acc, at = _expand(np.r_[0, np.cumsum(cnt)][:-1][f_code], cnt[f_code])
            e_c, e_j = fc[at], fj[at]
            self.nch = nch = int(e_c.max()) + 1
            sc_key, sc = _groups(slot[e_acc] * nch + e_c)
            self.sc_slot, self.sc_chain = sc_key // nch, sc_key % nch
            self.seg_sc0 = np.searchsorted(self.slot_seg[self.sc_slot], np.arange(S + 1))
            self.jw = jw = int(e_j.max()) + 2
            o = np.lexsort((pos[e_acc], e_j, sc))
            self.sc_entries = sc[o] * jw + e_j[o]
            # the largest position among a slot-chain's entries up to each (sorted by index)
            shift = sc[o] * (pw + 1)
            self.e_best = np.maximum.accumulate(pos[e_acc][o] + shift) - shift
            self.sc_first = np.searchsorted(self.sc_entries, np.arange(len(sc_key)) * jw)
            self.g_code, g_distinct = _codes_by_identity(G)
            # the chain clocks of the distinct snapshots, for the chains accesses reach
            chains = np.unique(e_c)
            self.g_col = np.full(nch, -1, dtype=np.int64)
            self.g_col[chains] = np.arange(len(chains))
            if g_flat:  # tuples over every chain (few): one C-level conversion
                zero = (0,) * g_width
                dense = np.array([g if g is not None else zero for g in g_distinct], dtype=np.int64).reshape(
                    len(g_distinct), g_width)
                self.g_dense = dense[:, chains] if g_width else np.zeros((len(g_distinct), 0), dtype=np.int64)
            else:
                self.g_dense = np.zeros((len(g_distinct), len(chains)), dtype=np.int64)
                cl = chains.tolist()
                for r, g in enumerate(g_distinct):
                    if g is not None:
                        self.g_dense[r] = [g_get(g, c) for c in cl]

    def known(self, ii: np.ndarray):
        """For accesses ii: per (access, slot of its segment) the last position of the slot's
        context that happens before the access. Returns (first cell of each access, K)."""
        si = self.seg[ii]
        cc = self.seg_slot0[si + 1] - self.seg_slot0[si]
        c_run, c_slot = _expand(self.seg_slot0[si], cc)
        cell0 = np.r_[0, np.cumsum(cc)][:-1]
        c_i = ii[c_run]
        K = self.l_flat[self.l_off[c_i] + self.slot_lid[c_slot]]
        if self.has_chains:
            pc = self.seg_sc0[si + 1] - self.seg_sc0[si]
            if pc.sum():
                p_run, p_sc = _expand(self.seg_sc0[si], pc)
                g = np.minimum(self.g_dense[self.g_code[ii[p_run]], self.g_col[self.sc_chain[p_sc]]], self.jw - 1)
                last = np.searchsorted(self.sc_entries, p_sc * self.jw + g, side="right") - 1
                hit = last >= self.sc_first[p_sc]
                if hit.any():
                    r = p_run[hit]
                    np.maximum.at(K, cell0[r] + (self.sc_slot[p_sc[hit]] - self.seg_slot0[si[r]]), self.e_best[last[hit]])
        K = np.where(self.slot_ctx[c_slot] == self.ctx[c_i], self.pos[c_i] - 1, K)
        return cell0, np.clip(K, 0, self.pw - 1)

    def _ok(self, b_earlier: np.ndarray, b_later: np.ndarray) -> np.ndarray:
        return pair_ok(self.b_cls[b_earlier], self.b_cls[b_later], self.b_ls[b_earlier], self.b_ls[b_later],
                       self.b_inst[b_earlier], self.b_inst[b_later], self.locksets, self.inst_start, self.inst_end)

    def counts(self):
        """Three arrays: later access i, earlier bucket b, how many earlier accesses of b race
        with i (entries > 0 only)."""
        n = self.n
        empty = np.zeros(0, dtype=np.int64)
        out_i, out_b, out_n = [], [], []
        s_of = self.seg
        n_pairs = self.seg_sb0[s_of + 1] - self.seg_sb0[s_of]
        n_tri = self.seg_yb0[s_of + 1] - self.seg_yb0[s_of]
        cum = np.cumsum(n_tri)
        i0 = 0
        while i0 < n:
            base = int(cum[i0 - 1]) if i0 else 0
            i1 = min(n, max(i0 + 1, int(np.searchsorted(cum, base + BLOCK, side="right"))))
            ii = np.arange(i0, i1, dtype=np.int64)
            si = s_of[ii]
            cell0, K = self.known(ii)
            # triples: accesses of each slot-bucket at positions <= K, summed per segment-bucket
            t_run, t_yb = _expand(self.seg_yb0[si], n_tri[ii])
            t_cell = cell0[t_run] + (self.yb_slot[t_yb] - self.seg_slot0[si[t_run]])
            hb = np.searchsorted(self.yb_members, t_yb * self.pw + K[t_cell], side="right") - self.yb_first[t_yb]
            npc = n_pairs[ii]
            pair0 = np.r_[0, np.cumsum(npc)][:-1]
            t_pair = pair0[t_run] + (self.yb_sb[t_yb] - self.seg_sb0[si[t_run]])
            hb = np.bincount(t_pair, weights=hb, minlength=int(npc.sum())).astype(np.int64)
            q_run, q_sb = _expand(self.seg_sb0[si], npc)
            q_i = ii[q_run]
            earlier = np.searchsorted(self.sb_members, q_sb * n + q_i) - self.sb_first[q_sb]
            racing = earlier - hb
            keep = racing > 0
            if keep.any():
                q_i, q_b, racing = q_i[keep], self.sb_bucket[q_sb[keep]], racing[keep]
                ok = self._ok(q_b, self.bucket[q_i])
                out_i.append(q_i[ok])
                out_b.append(q_b[ok])
                out_n.append(racing[ok])
            i0 = i1
        if not out_i:
            return empty, empty, empty
        return np.concatenate(out_i), np.concatenate(out_b), np.concatenate(out_n)

    def first_racing(self, xs: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Per later access xs[g]: the earliest access of its segment racing with it among
        those where ``allowed[g, ...]`` holds - ``allowed(g_index, a)`` is a function of
        two arrays returning a mask. -1 where none."""
        si = self.seg[xs]
        cell0, K = self.known(xs)
        run, a = _expand(self.seg_start[si], xs - self.seg_start[si])
        keep = allowed(run, a)
        run, a = run[keep], a[keep]
        x = xs[run]
        cell = cell0[run] + (self.slot[a] - self.seg_slot0[si[run]])
        keep = (self.ctx[a] != self.ctx[x]) & (self.pos[a] > K[cell]) & self._ok(self.bucket[a], self.bucket[x])
        run, a = run[keep], a[keep]
        out = np.full(len(xs), -1, dtype=np.int64)
        g, first = np.unique(run, return_index=True)
        out[g] = a[first]
        return out
