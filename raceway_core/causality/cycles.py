"""Which edges to drop when skewed timestamps or inconsistent links make a cycle.

The spec: only edges that lie on a cycle are dropped, as few as break every
cycle, never program order; prefer the edge whose target's timestamp is furthest
before its source's. Precisely, per strongly connected component (an edge lies on
a cycle iff its ends share one):

- candidates are the component's (source, target) pairs of explicit edges (all
  edges between the two events go together), ranked by ts(source) - ts(target)
  descending, then by the source's and the target's place in (timestamp,
  appearance) order;
- the dropped set is the smallest set of candidates whose removal leaves the
  component acyclic; among sets of that size, the first in the ranking's
  lexicographic order (so a single edge that breaks every cycle is the most
  backward such edge);
- a component too large to search exactly (trial sets times its size over
  ``SEARCH_BUDGET``) falls back to: drop every candidate that points back in
  (timestamp, appearance) order, then put back, from the worst-ranked, each one
  whose return closes no cycle (few, and rarely more than needed).

Work happens on a contracted graph: the events that are ends of explicit edges,
linked along their context by program order, which keeps reachability between
them (a cycle through other events passes only along program order).
"""

from __future__ import annotations

from itertools import combinations

SEARCH_BUDGET = 250_000  # trial sets x (events + pairs) of the component: about a second


def sccs(n: int, succ: list[list[int]]) -> list[int]:
    """Component id of each node (Tarjan, iterative)."""
    index = [-1] * n
    low = [0] * n
    comp = [-1] * n
    on_stack = [False] * n
    stack: list[int] = []
    counter = 0
    n_comp = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, i = work[-1]
            nbrs = succ[v]
            if i < len(nbrs):
                work[-1] = (v, i + 1)
                w = nbrs[i]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = n_comp
                    if w == v:
                        break
                n_comp += 1
    return comp


def _acyclic(nodes: list[int], chain: dict[int, int], pairs: list[tuple[int, int]]) -> bool:
    """Whether program-order links (chain: node -> next node) plus pairs, over nodes, have no cycle."""
    indeg = dict.fromkeys(nodes, 0)
    succ: dict[int, list[int]] = {v: [] for v in nodes}
    for v in nodes:
        w = chain.get(v)
        if w is not None and w in indeg:
            succ[v].append(w)
            indeg[w] += 1
    for a, b in pairs:
        succ[a].append(b)
        indeg[b] += 1
    ready = [v for v in nodes if indeg[v] == 0]
    seen = 0
    while ready:
        v = ready.pop()
        seen += 1
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    return seen == len(nodes)


def _choose(nodes: list[int], chain: dict[int, int], cands: list[tuple[int, int]], order) -> list[tuple[int, int]]:
    """The pairs to drop from one component; cands are its pairs, best-ranked first."""
    tried = 0
    cost = len(nodes) + len(cands)
    if cost * len(cands) > SEARCH_BUDGET:  # not even every single pair can be tried
        return _put_back(nodes, chain, cands, order)
    for k in range(1, len(cands) + 1):
        for combo in combinations(range(len(cands)), k):
            tried += cost
            if tried > SEARCH_BUDGET:
                return _put_back(nodes, chain, cands, order)
            gone = set(combo)
            if _acyclic(nodes, chain, [p for i, p in enumerate(cands) if i not in gone]):
                return [cands[i] for i in combo]
    return list(cands)  # unreachable: without any pair only program order is left


def _put_back(nodes, chain, cands, order) -> list[tuple[int, int]]:
    """Drop every candidate that points back in (timestamp, appearance) order - every cycle
    has one, as program order points forward - then put back, the least preferred to drop
    first, each whose return closes no cycle (its target does not reach its source)."""
    local = {v: i for i, v in enumerate(nodes)}
    succ: list[list[int]] = [[] for _ in nodes]
    for v in nodes:
        w = chain.get(v)
        if w is not None and w in local:
            succ[local[v]].append(local[w])
    dropped = []
    for a, b in cands:
        if order[b] < order[a]:
            dropped.append((a, b))
        else:
            succ[local[a]].append(local[b])
    kept_out = []
    for a, b in reversed(dropped):
        s, d = local[a], local[b]
        seen = bytearray(len(nodes))
        seen[d] = 1
        todo = [d]
        closes = False
        while todo and not closes:
            for w in succ[todo.pop()]:
                if w == s:
                    closes = True
                    break
                if not seen[w]:
                    seen[w] = 1
                    todo.append(w)
        if closes:
            kept_out.append((a, b))
        else:
            succ[s].append(d)
    return kept_out


def edges_to_drop(rows_ctx: list[int], rows_pos: list[int], pairs: list[tuple[int, int]], rank,
                  order: list[int]) -> list[tuple[int, int]]:
    """Pairs (source row, target row) to drop so that no cycle is left.

    rows_ctx/rows_pos give each row's context and position (any row an edge names);
    pairs are the explicit edges still alive (distinct); rank(pair) is the sort key
    (most preferred first); order[row] is the row's place in (timestamp, appearance) order."""
    nodes = sorted({r for p in pairs for r in p}, key=lambda r: (rows_ctx[r], rows_pos[r]))
    chain = {a: b for a, b in zip(nodes, nodes[1:]) if rows_ctx[a] == rows_ctx[b]}
    local = {v: i for i, v in enumerate(nodes)}
    succ = [[] for _ in nodes]
    for a, b in chain.items():
        succ[local[a]].append(local[b])
    for a, b in pairs:
        succ[local[a]].append(local[b])
    comp = sccs(len(nodes), succ)
    members: dict[int, list[int]] = {}
    for v in nodes:
        members.setdefault(comp[local[v]], []).append(v)
    inside: dict[int, list[tuple[int, int]]] = {}
    for p in pairs:
        c = comp[local[p[0]]]
        if c == comp[local[p[1]]]:
            inside.setdefault(c, []).append(p)
    out = []
    for c in sorted(inside, key=lambda c: min(rank(p) for p in inside[c])):
        cands = sorted(inside[c], key=rank)
        out.extend(_choose(members[c], chain, cands, order))
    return out
