"""Exact race counts between traces, without listing the pairs.

For accesses of one variable in causal order, the earlier accesses ``a`` of a
bucket ``b`` (access class, lock set, location, process instance) that race with
a later access ``i`` are

    (earlier accesses of b)  -  (those in i's own trace)  -  (those of other traces that happen before i)

whenever b and i's bucket conflict (classes, lock sets, instances). The pairs inside
one trace are counted apart (races.sweep per trace: small). The last term comes from
the clocks (clocks.py): outside its trace, ``a -> i`` only through a lock chain release
that a reaches first and i knows. With ``M(a)`` the minimal such releases (usually
one), ``a -> i`` iff ``G(i)[k] >= j`` for some ``(k, j)`` in ``M(a)``: for the common
single release this is a prefix count over the chain, a binary search per access;
the rarer sets of several releases are tested per set. All of it is numpy over the
accesses: work and memory grow with the accesses, never with the racing pairs.

Needs the causal order to be the (timestamp, appearance) order (the usual case), so
that the earlier access of a pair is its "first"; otherwise the engine lists the
pairs to count them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raceway_core.causality.races import QUERY

BLOCK_CELLS = 4_000_000  # chain clock values held at once (32 MB): later accesses go in blocks
MIN_BLOCK = 1024
MATRIX_CELLS = 1_000_000  # (accesses x buckets) counts of one variable held at once (~25 MB); above: per bucket


@dataclass
class Buckets:
    """Per bucket: its variable, access class, lock set id, location code, instance (-1: none)."""

    var: np.ndarray
    cls: np.ndarray
    lockset: np.ndarray
    loc: np.ndarray
    inst: np.ndarray
    locksets: list  # lock set id -> frozenset (id 0: no lock)
    inst_start: np.ndarray  # per instance: first and last event's time (scope "auto")
    inst_end: np.ndarray


def compatible(bk: Buckets, ids: np.ndarray) -> np.ndarray:
    """A boolean matrix over the buckets ``ids``: may an access of the row's bucket race
    with a later one of the column's (conflicting classes, disjoint lock sets, instances
    whose lifetimes overlap)."""
    cls = bk.cls[ids]
    query = np.array(QUERY, dtype=np.int64)
    ok = ((query[cls][None, :] >> cls[:, None]) & 1).astype(bool)
    ls = bk.lockset[ids]
    uniq = np.unique(ls)
    if len(uniq) > 1 or uniq[0] != 0:
        disjoint = {(x, y): not (bk.locksets[x] & bk.locksets[y]) for x in uniq.tolist() for y in uniq.tolist()}
        lut = np.array([[disjoint[(x, y)] for y in uniq.tolist()] for x in uniq.tolist()], dtype=bool)
        pos = np.searchsorted(uniq, ls)
        ok &= lut[pos[:, None], pos[None, :]]
    inst = bk.inst[ids]
    if (inst >= 0).any():
        s, e = bk.inst_start[np.maximum(inst, 0)], bk.inst_end[np.maximum(inst, 0)]
        apart = (e[:, None] < s[None, :]) | (e[None, :] < s[:, None])
        apart &= (inst[:, None] >= 0) & (inst[None, :] >= 0)
        ok &= ~apart
    return ok


def cross_counts(bucket: np.ndarray, var_segments: list[tuple[int, int]], trace: np.ndarray,
                 entries: list[tuple], G: list, g_items, bk: Buckets,
                 later: np.ndarray | None = None, earlier: np.ndarray | None = None,
                 arrays: tuple | None = None) -> dict:
    """Racing pairs between traces, per (bucket of the earlier access, bucket of the later):
    {(b, beta): [count, first later access index]}. Accesses are sorted by (variable,
    causal order) and ``var_segments`` are the runs of one variable; ``entries[a]`` is
    M(a) as a tuple of (chain, index) and ``G[i]`` the chain clock of access i. With
    ``later`` / ``earlier`` (masks over the accesses), only the pairs whose later access,
    earlier access, is one of those (incremental.py counts the pairs an append adds).
    ``arrays``: entry_arrays(entries), so that a run's single releases are numpy, not a
    Python step per access."""
    out: dict = {}
    for s, e in var_segments:
        mv = e - s
        if mv < 2:
            continue
        ub, lb = np.unique(bucket[s:e], return_inverse=True)
        ok = compatible(bk, ub)
        if not ok.any():
            continue
        _, tr = np.unique(trace[s:e], return_inverse=True)
        tr = tr.astype(np.int64)
        t = np.arange(mv, dtype=np.int64)
        ent = entries[s:e]
        multi: dict[tuple, list[int]] = {}
        if arrays is not None:
            en, ek, ej = (x[s:e] for x in arrays)
            one = en == 1
            for n in np.flatnonzero(en > 1).tolist():
                multi.setdefault(ent[n], []).append(n)
            chains = sorted(set(np.unique(ek[one]).tolist()) | {k for m in multi for k, _ in m})
            kpos = {k: n for n, k in enumerate(chains)}
            single_k = np.where(one, np.searchsorted(np.array(chains, dtype=np.int64), ek), -1)
            single_j = np.where(one, ej, 0)
        else:
            chains = sorted({k for m in ent for k, _ in m})
            kpos = {k: n for n, k in enumerate(chains)}
            single_k = np.full(mv, -1, dtype=np.int64)
            single_j = np.zeros(mv, dtype=np.int64)
            for n, m in enumerate(ent):
                if len(m) == 1:
                    single_k[n] = kpos[m[0][0]]
                    single_j[n] = m[0][1]
                elif m:
                    multi.setdefault(m, []).append(n)
        multi_at = {m: np.array(v, dtype=np.int64) for m, v in multi.items()}
        # (trace, release index) as one key: trace * wide + index, with every index below wide
        # (the chain clocks are clamped to the largest index: only index <= clock is asked)
        jmax = int(single_j.max()) if mv else 0
        wide = jmax + 1
        step = max(MIN_BLOCK, BLOCK_CELLS // max(1, len(chains)))
        if later is None and earlier is None and _cross_counts_all(
                s, G[s:e], lb.astype(np.int64), ub, ok, tr, single_k, single_j, jmax, chains, kpos, multi_at,
                g_items, step, out):
            continue
        # per bucket, what its members contribute (sorted keys for binary searches)
        prep = []
        mine_mask = earlier[s:e] if earlier is not None else None
        q_pos = np.flatnonzero(later[s:e]) if later is not None else t
        if not len(q_pos) or (mine_mask is not None and not mine_mask.any()):
            continue
        for b in range(len(ub)):
            if not ok[b].any():
                continue
            members = np.flatnonzero((lb == b) & mine_mask) if mine_mask is not None else np.flatnonzero(lb == b)
            if not len(members):
                continue
            same = np.sort(tr[members] * (mv + 1) + members)
            chains_b = []
            for kk in np.unique(single_k[members]).tolist():
                if kk >= 0:
                    on = members[single_k[members] == kk]
                    chains_b.append((kk, np.sort(single_j[on]), np.sort(tr[on] * wide + single_j[on])))
            multis = []
            for m, at in multi_at.items():
                mine = at[(lb[at] == b) & (mine_mask[at] if mine_mask is not None else True)]
                if len(mine):
                    multis.append((m, len(mine), np.bincount(tr[mine], minlength=int(tr.max()) + 1)))
            prep.append((b, members, same, chains_b, multis))
        sums = {b: np.zeros(len(ub)) for b, *_ in prep}
        firsts: dict = {}
        # the later accesses in blocks: the chain clocks of a block are a (block x chains) matrix
        for q0 in range(0, len(q_pos), step):
            tq = q_pos[q0:q0 + step]
            trq, lbq = tr[tq], lb[tq]
            gq = _chain_clocks(G[s + q0:s + q0 + len(tq)] if later is None else [G[s + x] for x in tq.tolist()],
                               chains, g_items)
            known = {m: _knows(gq, kpos, m) for m in multi}
            for b, members, same, chains_b, multis in prep:
                may = ok[b][lbq]  # the accesses b may race with
                if not may.any():
                    continue
                col = np.searchsorted(members, tq)  # earlier accesses of b
                col -= np.searchsorted(same, trq * (mv + 1) + tq) - np.searchsorted(same, trq * (mv + 1))  # same trace
                for kk, js, key in chains_b:  # ... of other traces that happen before (one release)
                    g = np.minimum(gq[:, kk], jmax)
                    col -= np.searchsorted(js, g, side="right")
                    col += np.searchsorted(key, trq * wide + g, side="right") - np.searchsorted(key, trq * wide)
                for m, n, per_trace in multis:  # (several releases)
                    col -= known[m] * (n - per_trace[trq])
                col = np.where(may, col, 0)
                sums[b] += np.bincount(lbq, weights=col, minlength=len(ub))
                hit = np.flatnonzero(col > 0)
                if len(hit):
                    beta, first = np.unique(lbq[hit], return_index=True)
                    for bt, i in zip(beta.tolist(), (tq[hit[first]] + s).tolist()):
                        firsts.setdefault((b, bt), i)
        for (b, bt), i in firsts.items():
            out[(int(ub[b]), int(ub[bt]))] = [int(round(sums[b][bt])), i]
    return out


def _cross_counts_all(s: int, G_s: list, lb, ub, ok, tr, single_k, single_j, jmax, chains, kpos,
                      multi_at: dict, g_items, step: int, out: dict) -> bool:
    """cross_counts' work on one variable with every bucket at once: the counts of earlier
    accesses per bucket are prefix sums of one-hot rows (accesses x buckets) instead of
    binary searches per bucket (at 1M events ~8,000 numpy calls, most of the run's
    searchsorted time). False (nothing done) when the matrices would be too large."""
    mv, nb = len(lb), len(ub)
    if mv * nb > MATRIX_CELLS or mv * max(1, len(chains)) > BLOCK_CELLS:
        return False
    eye = np.eye(nb, dtype=np.int32)
    onehot = eye[lb]  # (mv, nb)
    # earlier accesses of each bucket, minus those in the access's own trace
    before = np.cumsum(onehot, axis=0, dtype=np.int32) - onehot
    o = np.lexsort((np.arange(mv), tr))
    cs = np.cumsum(onehot[o], axis=0, dtype=np.int32)
    starts = np.r_[0, np.flatnonzero(np.diff(tr[o])) + 1]
    sizes = np.diff(np.r_[starts, mv])
    base = np.repeat(cs[starts] - onehot[o][starts], sizes, axis=0)
    same = np.empty_like(before)
    same[o] = cs - onehot[o] - base
    col = (before - same).astype(np.int64)
    del before, same, cs, base
    # ... of other traces that happen before the access: a single release (k, j) it knows
    if chains:
        gq = _chain_clocks(G_s, chains, g_items)
        wide = jmax + 1
        for kk in np.unique(single_k[single_k >= 0]).tolist():
            on = np.flatnonzero(single_k == kk)
            by_j = on[np.argsort(single_j[on], kind="stable")]
            js = single_j[by_j]
            cum = np.r_[np.zeros((1, nb), np.int32), np.cumsum(eye[lb[by_j]], axis=0, dtype=np.int32)]
            g = np.minimum(gq[:, kk], jmax)  # (keys below stay in their trace's range)
            col -= cum[np.searchsorted(js, g, side="right")]
            tkey = tr[on] * wide + single_j[on]
            by_t = np.argsort(tkey, kind="stable")
            keys = tkey[by_t]
            cum_t = np.r_[np.zeros((1, nb), np.int32), np.cumsum(eye[lb[on[by_t]]], axis=0, dtype=np.int32)]
            hi = np.searchsorted(keys, tr * wide + g, side="right")
            lo = np.searchsorted(keys, tr * wide, side="left")
            col += cum_t[hi] - cum_t[lo]
        for m, at in multi_at.items():  # (several releases)
            known = np.zeros(mv, dtype=bool)
            for k, j in m:
                known |= gq[:, kpos[k]] >= j
            if not known.any():
                continue
            per = np.zeros((int(tr.max()) + 1, nb), dtype=np.int64)
            np.add.at(per, (tr[at], lb[at]), 1)
            col -= known[:, None] * (per.sum(axis=0)[None, :] - per[tr])
    col[~ok.T[lb]] = 0  # buckets the access's own may not race with
    sums = np.zeros((nb, nb), dtype=np.int64)  # [later bucket, earlier bucket]
    np.add.at(sums, lb, col)
    q, b = np.nonzero(col > 0)  # q ascending: each pair's first later access first
    if len(q):
        pair = b * nb + lb[q]
        uniq, first = np.unique(pair, return_index=True)
        # in the order the loop over blocks of later accesses found them: by block, then pair
        fq = q[first]
        for x in np.lexsort((uniq, fq // step)).tolist():
            b_, beta = divmod(int(uniq[x]), nb)
            out[(int(ub[b_]), int(ub[beta]))] = [int(sums[beta, b_]), int(fq[x]) + s]
    return True


def entry_arrays(entries: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per access: how many releases M(a) holds, and its chain and index when one (else
    -1, 0). The tuples are shared: each distinct one is read once."""
    first, inv = by_identity(entries)
    distinct = [entries[x] for x in first.tolist()]
    n = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
    k = np.array([m[0][0] if len(m) == 1 else -1 for m in distinct], dtype=np.int64)
    j = np.array([m[0][1] if len(m) == 1 else 0 for m in distinct], dtype=np.int64)
    return n[inv], k[inv], j[inv]


def _chain_clocks(G: list, chains: list[int], items) -> np.ndarray:
    """G(i)[k] for each access and each chain in ``chains``. Accesses share snapshots: each
    distinct one is read once, by its known components."""
    out = np.zeros((len(G), len(chains)), dtype=np.int64)
    if not chains:
        return out
    first, inv = by_identity(G)
    ops = getattr(items, "__self__", None)  # pclock.Clocks.items
    if getattr(ops, "depth", 0) == 1:  # few chains: a clock is one flat tuple, a row as is
        zero = ops.zero_leaf
        try:
            rows = np.array([G[n] if G[n] is not None else zero for n in first.tolist()], dtype=np.int64)
        except ValueError:  # tuples of unequal lengths: read them one by one below
            rows = None
        if rows is not None and rows.shape == (len(first), len(zero)):
            return rows[:, chains][inv]
    col = {k: n for n, k in enumerate(chains)}
    for n in first.tolist():
        g = G[n]
        if g is not None:
            for k, v in items(g):
                c = col.get(k)
                if c is not None:
                    out[n, c] = v
    return out[first[inv]]


def _knows(gq: np.ndarray, kpos: dict, m: tuple) -> np.ndarray:
    """Per access: does it know at least one release of the set m?"""
    hit = np.zeros(len(gq), dtype=bool)
    for k, j in m:
        hit |= gq[:, kpos[k]] >= j
    return hit.astype(np.int64)


def minimal_entries(F: list[dict], release_row: dict, reaches, rank: np.ndarray, memo: dict | None = None) -> list[tuple]:
    """Per access, M(a): the releases of F(a) that no other release of F(a) reaches inside
    the trace, as a sorted tuple of (chain, index). (A release reached only through
    another trace stays in: the set is then larger than needed, never wrong, since
    ``a -> i`` iff i knows some release of it.) Snapshots are shared: each is done once;
    ``memo`` (id -> (snapshot, result)) keeps them between calls: an analysed snapshot that
    an append did not replace keeps its releases and their reach (incremental.py)."""
    memo = {} if memo is None else memo
    reach: dict[tuple, dict] = {}

    def precedes(x: tuple, y: tuple) -> bool:
        fx = reach.get(x)
        if fx is None:
            fx = reach[x] = reaches(release_row[x])
        return fx.get(y[0], y[1] + 1) <= y[1]

    out = []
    for f in F:
        got = memo.get(id(f))
        r = got[1] if got is not None and got[0] is f else None
        if r is None:
            items = list(f.items()) if f else []
            if len(items) > 1:
                # in causal order: whatever reaches a release comes before it, and a release
                # reached by a non-minimal one is reached by a minimal one (F is transitive)
                items.sort(key=lambda e: rank[release_row[e]])
                mins: list = []
                for e in items:
                    if not any(precedes(o, e) for o in mins):
                        mins.append(e)
                items = sorted(mins)
            r = tuple(items)
            memo[id(f)] = (f, r)
        out.append(r)
    return out


def by_identity(objs: list) -> tuple[np.ndarray, np.ndarray]:
    """The distinct objects of a list by identity (snapshots and tuples are shared):
    the index of each one's first occurrence, ascending, and per item its distinct one
    (``objs[first[inv[n]]] is objs[n]``). One C-level pass instead of a dict per item."""
    if not len(objs):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    ids = np.fromiter(map(id, objs), dtype=np.uint64, count=len(objs))
    _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")  # numbered by first occurrence
    rank = np.empty(len(first), dtype=np.int64)
    rank[by_first] = np.arange(len(first))
    return first[by_first].astype(np.int64), rank[inv.reshape(-1)]
