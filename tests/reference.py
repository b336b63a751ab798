"""A slow, obviously-correct reference for the causality rules (tests and benchmarks).

Works on plain event dicts in the wire format, in input order. Builds every edge
of the spec directly, takes the transitive closure with bit sets, and compares all
pairs of accesses. No code is shared with raceway_core.causality.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from itertools import combinations

WRITES = {"Write", "AtomicWrite", "AtomicRMW"}
ATOMICS = {"AtomicRead", "AtomicWrite", "AtomicRMW"}


def ts_ns(ts: str) -> int:
    frac = ""
    if "." in ts:
        head, rest = ts.split(".", 1)
        digits = ""
        for ch in rest:
            if ch.isdigit():
                digits += ch
            else:
                break
        frac = digits
        tail = rest[len(digits):]
        ts = head + tail
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 10**9 + int((frac + "000000000")[:9])


def kind_of(e):
    return next(iter(e["kind"])) if isinstance(e["kind"], dict) else e["kind"]


def field(e, name):
    k = e["kind"]
    return (next(iter(k.values())) or {}).get(name) if isinstance(k, dict) else None


class Reference:
    def __init__(self, events: list[dict], trust_clocks: bool = True) -> None:
        self.events = events
        n = len(events)
        self.id_index = {e["id"]: i for i, e in enumerate(events)}
        self.t = [ts_ns(e["timestamp"]) for e in events]
        self.ctx = [(e["trace_id"], e["metadata"].get("thread_id") or "") for e in events]
        by_ctx = defaultdict(list)
        for i in range(n):
            by_ctx[self.ctx[i]].append(i)
        for c in by_ctx:
            by_ctx[c].sort(key=lambda i: (self.t[i], i))
        self.by_ctx = by_ctx
        self.pos = {}
        for c, lst in by_ctx.items():
            for p, i in enumerate(lst):
                self.pos[i] = p
        self.preds = [set() for _ in range(n)]
        self.cp_preds = [set() for _ in range(n)]  # rules 1-5 inside a trace
        self._locksets: dict[int, frozenset] = {}
        self.po = set()  # program-order pairs
        self.extra = set()  # pairs from rules 2-6
        self._edges(trust_clocks)
        self.dropped = self._break_cycles()
        self._closure()

    # -- edges --------------------------------------------------------------
    def _add(self, a, b, cp=True, po=False):
        if a == b:
            return
        (self.po if po else self.extra).add((a, b))
        self.preds[b].add(a)
        if cp and self.events[a]["trace_id"] == self.events[b]["trace_id"]:
            self.cp_preds[b].add(a)

    def _edges(self, trust_clocks):
        ev, t = self.events, self.t
        order_key = lambda i: (t[i], i)  # noqa: E731
        for lst in self.by_ctx.values():  # rule 1
            for a, b in zip(lst, lst[1:]):
                self._add(a, b, po=True)
        for i, e in enumerate(ev):  # rule 2
            p = e.get("parent_id")
            if p in self.id_index:
                self._add(self.id_index[p], i)
        for i, e in enumerate(ev):  # rule 3
            if kind_of(e) != "AsyncAwait":
                continue
            # the latest spawn of the task in the await's trace at or before it
            spawns = [j for j, x in enumerate(ev) if kind_of(x) == "AsyncSpawn" and x["trace_id"] == e["trace_id"]
                      and str(field(x, "task_id")) == str(field(e, "future_id")) and order_key(j) < order_key(i)]
            if not spawns:
                continue
            s = max(spawns, key=order_key)
            for c, lst in self.by_ctx.items():  # every context, in any trace, the spawn started
                if ev[lst[0]].get("parent_id") == ev[s]["id"] and c != self.ctx[i]:
                    self._add(lst[-1], i)
        releases = defaultdict(list)  # lock id -> its releases, in input order
        for j, x in enumerate(ev):
            if kind_of(x) == "LockRelease":
                releases[field(x, "lock_id")].append(j)
        for i, e in enumerate(ev):  # rule 4
            if kind_of(e) != "LockAcquire":
                continue
            rels = [j for j in releases.get(field(e, "lock_id"), ()) if order_key(j) < order_key(i)]
            if rels:
                self._add(max(rels, key=order_key), i)
        self._cross_service()  # rule 5
        if trust_clocks:  # rule 6
            self._clock_edges()

    def _cross_service(self):
        ev, t = self.events, self.t
        spans = defaultdict(list)
        for i, e in enumerate(ev):
            sid = e["metadata"].get("distributed_span_id")
            if sid:
                spans[(e["trace_id"], sid)].append(i)
        for (trace, sid), members in spans.items():
            ups = {ev[i]["metadata"].get("upstream_span_id") for i in members} - {None, sid}
            if not ups:
                continue
            up = ups.pop()
            callers = spans.get((trace, up), [])
            members.sort(key=lambda i: (t[i], i))
            first, last = members[0], members[-1]
            before = [u for u in callers if (t[u], u) < (t[first], first)]
            if not before:
                continue
            call = max(before, key=lambda i: (t[i], i))
            self._add(call, first)
            lst = self.by_ctx[self.ctx[call]]
            after = [x for x in lst[self.pos[call] + 1:] if (t[x], x) > (t[last], last)]
            if not after:  # skew left no later caller event: the calling event's successor
                after = lst[self.pos[call] + 1:self.pos[call] + 2]
            if after:
                self._add(last, after[0])

    def _clock_edges(self):
        """Valid given clocks: a -> b when VC(a) <= VC(b) and differ (same trace)."""
        ev = self.events
        for trace in {e["trace_id"] for e in ev}:
            members = [i for i, e in enumerate(ev) if e["trace_id"] == trace]
            if not self._valid(members):
                continue
            vcs = {i: dict(ev[i].get("causality_vector") or []) for i in members}
            for a in members:
                for b in members:
                    if a != b and vcs[a] != vcs[b] and all(vcs[b].get(k, 0) >= v for k, v in vcs[a].items()):
                        self._add(a, b, cp=False)

    def _valid(self, members) -> bool:
        ev = self.events
        ctxs = {self.ctx[i] for i in members}
        owner = {}
        for c in ctxs:
            lst = self.by_ctx[c]
            if any(not ev[i].get("causality_vector") for i in lst):
                return False
            cands = [k for k in dict(ev[lst[0]]["causality_vector"])
                     if all(dict(ev[i]["causality_vector"]).get(k) == p + 1 for p, i in enumerate(lst))]
            if not cands:
                return False
            # several qualify (e.g. a one-event context): prefer the one named after the context
            k = min(cands, key=lambda comp: (c[1] not in comp, comp))
            if k in owner:
                return False
            owner[k] = c
        for i in members:
            for k, v in ev[i]["causality_vector"]:
                if k in owner and owner[k] != self.ctx[i]:
                    lst = self.by_ctx[owner[k]]
                    if v > len(lst):
                        return False
                    src = dict(ev[lst[v - 1]]["causality_vector"]) if v > 0 else {}
                    mine = dict(ev[i]["causality_vector"])
                    if any(mine.get(kk, 0) < vv for kk, vv in src.items() if kk in owner):
                        return False
        return True

    # -- cycles -------------------------------------------------------------
    @staticmethod
    def _succ(pairs) -> dict:
        succ = defaultdict(list)
        for x, y in pairs:
            succ[x].append(y)
        return succ

    def _reach_from(self, a, succ) -> set:
        seen, todo = set(), [a]
        while todo:
            for y in succ.get(todo.pop(), ()):
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return seen

    def _acyclic(self, comp, pairs) -> bool:
        succ = self._succ(pairs)
        return not any(a in self._reach_from(a, succ) for a in comp)

    def _unsortable(self, succ) -> set:
        """The events a topological sort (Kahn's) cannot place: those on a cycle and after one."""
        indeg = Counter(y for ys in succ.values() for y in ys)
        ready = [a for a in range(len(self.events)) if not indeg[a]]
        placed = set(ready)
        while ready:
            for y in succ.get(ready.pop(), ()):
                indeg[y] -= 1
                if not indeg[y]:
                    placed.add(y)
                    ready.append(y)
        return set(range(len(self.events))) - placed

    def _break_cycles(self) -> set:
        """The spec: per strongly connected component, the fewest rule 2-6 pairs whose removal
        leaves no cycle; among those, the first in the ranking (target furthest before source
        in time, then source, then target in (timestamp, input) order), compared in order."""
        t = self.t
        pairs = self.po | self.extra
        succ = self._succ(pairs)
        left = self._unsortable(succ)  # every event on a cycle is among them
        reach = {a: self._reach_from(a, succ) for a in left}
        comps = {frozenset([a] + [b for b in reach[a] if b in left and a in reach[b]]) for a in left if a in reach[a]}
        dropped = set()
        for comp in comps:
            cands = sorted(((a, b) for a, b in self.extra - self.po if a in comp and b in comp),
                           key=lambda p: (t[p[1]] - t[p[0]], (t[p[0]], p[0]), (t[p[1]], p[1])))
            inside = {(a, b) for a, b in pairs if a in comp and b in comp}
            for k in range(1, len(cands) + 1):
                found = next((c for c in combinations(cands, k) if self._acyclic(comp, inside - set(c))), None)
                if found:
                    dropped |= set(found)
                    break
        for a, b in dropped:
            self.preds[b].discard(a)
            self.cp_preds[b].discard(a)
        return dropped

    # -- closure ------------------------------------------------------------
    def _closure(self):
        n = len(self.events)
        order = self._topo()
        self.reach = [0] * n  # bit a set in reach[b] <=> a -> b
        for b in order:
            r = 0
            for a in self.preds[b]:
                r |= self.reach[a] | (1 << a)
            self.reach[b] = r

    def _topo(self):
        n = len(self.events)
        indeg = [len(p) for p in self.preds]
        succ = [[] for _ in range(n)]
        for b in range(n):
            for a in self.preds[b]:
                succ[a].append(b)
        ready = [i for i in range(n) if indeg[i] == 0]
        out = []
        while ready:
            a = ready.pop()
            out.append(a)
            for b in succ[a]:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
        assert len(out) == n, "cycles left after breaking them"
        return out

    def before(self, a: int, b: int) -> bool:
        return bool(self.reach[b] >> a & 1)

    # -- analyses -----------------------------------------------------------
    def lockset(self, i: int) -> frozenset:
        if i not in self._locksets:  # races() asks once per pair
            self._locksets[i] = self._lockset(i)
        return self._locksets[i]

    def _lockset(self, i: int) -> frozenset:
        lst = self.by_ctx[self.ctx[i]]
        ev = self.events
        if not any(kind_of(ev[j]) in ("LockAcquire", "LockRelease") for j in lst):
            return frozenset(ev[i].get("lock_set") or ())
        held = Counter()
        for j in lst[: self.pos[i]]:
            k = kind_of(ev[j])
            if k == "LockAcquire":
                held[field(ev[j], "lock_id")] += 1
            elif k == "LockRelease" and held[field(ev[j], "lock_id")] > 0:
                held[field(ev[j], "lock_id")] -= 1
        return frozenset(x for x, c in held.items() if c > 0)

    def variable(self, i: int, scope: str = "global") -> str:
        """The variable access i touches, named as the spec's variable scope splits it
        (service: "service::name", instance: "service#instance::name"; auto as global)."""
        md, name = self.events[i]["metadata"], field(self.events[i], "variable")
        if scope == "service":
            return f"{md.get('service_name') or ''}::{name}"
        if scope == "instance":
            return f"{md.get('service_name') or ''}#{md.get('instance_id') or ''}::{name}"
        return name

    def _lifetimes(self) -> dict:
        """(service, instance) -> (first, last) timestamp over all its events (scope auto)."""
        out: dict = {}
        for i, e in enumerate(self.events):
            inst = e["metadata"].get("instance_id")
            if inst is not None:
                k = (e["metadata"].get("service_name"), inst)
                lo, hi = out.get(k, (self.t[i], self.t[i]))
                out[k] = (min(lo, self.t[i]), max(hi, self.t[i]))
        return out

    def races(self, scope: str = "global") -> set[tuple[str, str]]:
        """Unordered racing pairs as (id, id) sorted by (timestamp, input order), under a
        variable scope (global, service, instance, auto: global, but two process
        instances whose lifetimes do not overlap never race)."""
        ev = self.events
        acc = [i for i, e in enumerate(ev) if kind_of(e) == "StateChange" and field(e, "variable") is not None]
        life = self._lifetimes() if scope == "auto" else {}
        out = set()
        for x in range(len(acc)):
            for y in range(x + 1, len(acc)):
                a, b = acc[x], acc[y]
                fa, fb = field(ev[a], "access_type"), field(ev[b], "access_type")
                if self.variable(a, scope) != self.variable(b, scope) or self.ctx[a] == self.ctx[b]:
                    continue
                if scope == "auto":
                    ia = (ev[a]["metadata"].get("service_name"), ev[a]["metadata"].get("instance_id"))
                    ib = (ev[b]["metadata"].get("service_name"), ev[b]["metadata"].get("instance_id"))
                    if ia[1] is not None and ib[1] is not None:
                        (s1, e1), (s2, e2) = life[ia], life[ib]
                        if e1 < s2 or e2 < s1:
                            continue
                if not (fa in WRITES or fb in WRITES) or (fa in ATOMICS and fb in ATOMICS):
                    continue
                if self.before(a, b) or self.before(b, a):
                    continue
                if self.lockset(a) & self.lockset(b):
                    continue
                first, second = sorted((a, b), key=lambda i: (self.t[i], i))
                out.add((ev[first]["id"], ev[second]["id"]))
        return out

    def critical_total(self, trace: str) -> int:
        """Largest sum of durations over paths of rules 1-5 inside the trace."""
        ev = self.events
        members = [i for i, e in enumerate(ev) if e["trace_id"] == trace]
        best = {}
        for b in self._topo():
            if ev[b]["trace_id"] != trace:
                continue
            best[b] = self.weight(b) + max((best[a] for a in self.cp_preds[b]), default=0)
        return max(best[i] for i in members)

    def duration(self, i: int) -> int:
        e = self.events[i]
        d = e["metadata"].get("duration_ns")
        if d is None and kind_of(e) in ("HttpResponse", "DatabaseQuery"):
            d = (field(e, "duration_ms") or 0) * 1_000_000
        return int(d or 0)

    def weight(self, i: int) -> int:
        """On a critical path an HttpResponse counts 0: its time is the request's, already on the path."""
        return 0 if kind_of(self.events[i]) == "HttpResponse" else self.duration(i)

    def interval(self, i: int) -> tuple[int, int]:
        """An HttpResponse is recorded when the response is done: [ts - d, ts]; the rest [ts, ts + d]."""
        d = self.duration(i)
        return (self.t[i] - d, self.t[i]) if kind_of(self.events[i]) == "HttpResponse" else (self.t[i], self.t[i] + d)

    def span(self, trace: str) -> int:
        iv = [self.interval(i) for i, e in enumerate(self.events) if e["trace_id"] == trace]
        return max(b for _, b in iv) - min(a for a, _ in iv)

    def is_cp_path(self, ids: list[str]) -> bool:
        rows = [self.id_index[i] for i in ids]
        return all(a in self.cp_preds[b] for a, b in zip(rows, rows[1:]))
