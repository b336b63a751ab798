"""An independent checker for the SDK's vector clocks, and a brute-force race finder.

Written from the rules in the brief and docs/causality, not from the SDK:
- a context is (trace_id, thread_id); its events in (timestamp, appearance) order;
- each context owns one component whose value at its i-th event is exactly i;
- own components are distinct across contexts;
- every component is non-decreasing along a context;
- an event holding component c = k (c owned by context C) holds at least
  everything C's k-th event held, and C has at least k events.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def ts_ns(text: str) -> int:
    m = _TS.match(text)
    assert m, f"bad timestamp {text!r}"
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return int(base.timestamp()) * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))


def read_events(path: Path) -> list[dict]:
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            out.extend(rec["events"] if isinstance(rec, dict) and "events" in rec else [rec])
    return out


def vc(e: dict) -> dict[str, int]:
    return {c: n for c, n in e["causality_vector"]}


def contexts(events: list[dict]) -> dict[tuple[str, str], list[dict]]:
    by: dict[tuple[str, str], list[tuple[int, int, dict]]] = defaultdict(list)
    for i, e in enumerate(events):
        by[(e["trace_id"], e["metadata"]["thread_id"])].append((ts_ns(e["timestamp"]), i, e))
    return {k: [e for _, _, e in sorted(v, key=lambda t: t[:2])] for k, v in by.items()}


def owners(ctxs: dict) -> tuple[dict[str, tuple], list[str]]:
    """Own component of each context: one whose value at the i-th event is i, distinct per context.

    A short child context can have two such components (the spawner's value may also
    run 1..N over it); the spawner's own one is taken first, as distinctness requires.
    """
    problems, cands = [], {}
    for key, evs in ctxs.items():
        clocks = [vc(e) for e in evs]
        cands[key] = {c for c in clocks[0] if all(cl.get(c) == i + 1 for i, cl in enumerate(clocks))}
    owner: dict[str, tuple] = {}
    progress = True
    while progress:
        progress = False
        for key, cs in cands.items():
            cs -= owner.keys()
            if len(cs) == 1 and key not in owner.values():
                (c,) = cs
                owner[c] = key
                progress = True
    for key, cs in cands.items():
        if key not in owner.values():
            problems.append(f"{key}: no own component running 1..{len(ctxs[key])} (candidates {sorted(cs)})")
    return owner, problems


def clock_problems(events: list[dict]) -> list[str]:
    """Everything that makes the clocks invalid (empty list: the engine may trust them)."""
    ctxs = contexts(events)
    owner, problems = owners(ctxs)
    for key, evs in ctxs.items():
        clocks = [vc(e) for e in evs]
        for prev, cur in zip(clocks, clocks[1:]):
            for c, n in prev.items():
                if cur.get(c, 0) < n:
                    problems.append(f"{key}: component {c} decreases {n} -> {cur.get(c, 0)}")
    for key, evs in ctxs.items():
        for e in evs:
            clock = vc(e)
            for c, k in clock.items():
                if c not in owner:
                    problems.append(f"{key}: event {e['id']} holds {c}={k}, owned by no context")
                    continue
                ref = ctxs[owner[c]]
                if k > len(ref):
                    problems.append(f"{key}: event {e['id']} holds {c}={k} but that context has {len(ref)} events")
                    continue
                if k == 0:
                    continue
                for c2, n2 in vc(ref[k - 1]).items():
                    if clock.get(c2, 0) < n2:
                        problems.append(f"{key}: event {e['id']} holds {c}={k} but {c2}={clock.get(c2, 0)} < {n2}")
    return problems


def parent_problems(events: list[dict]) -> list[str]:
    """parent_id is the previous event of the context; a spawned context's first event points at the spawn."""
    problems = []
    by_id = {e["id"]: e for e in events}
    for key, evs in contexts(events).items():
        first = evs[0]
        p = first["parent_id"] and by_id.get(first["parent_id"])
        if first["parent_id"] is not None and p is None:
            problems.append(f"{key}: first event's parent {first['parent_id']} is not in the trace")
        for prev, cur in zip(evs, evs[1:]):
            if cur["parent_id"] != prev["id"]:
                problems.append(f"{key}: event {cur['id']} has parent {cur['parent_id']}, expected {prev['id']}")
    return problems


def before(a: dict, b: dict) -> bool:
    """a -> b by the vector clocks."""
    va, vb = vc(a), vc(b)
    return va != vb and all(vb.get(c, 0) >= n for c, n in va.items())


def lock_sets(events: list[dict]) -> dict[str, frozenset]:
    """Locks held by each event's context before it, from Lock events in program order."""
    out = {}
    for evs in contexts(events).values():
        held: list[str] = []
        for e in evs:
            out[e["id"]] = frozenset(held)
            kind, body = next(iter(e["kind"].items()))
            if kind == "LockAcquire":
                held.append(body["lock_id"])
            elif kind == "LockRelease" and body["lock_id"] in held:
                held.remove(body["lock_id"])
    return out


WRITES = {"Write", "AtomicWrite", "AtomicRMW"}
ATOMIC = {"AtomicRead", "AtomicWrite", "AtomicRMW"}


def races(events: list[dict], same_trace: bool = False) -> list[dict]:
    """Every racing pair of StateChanges (causality.md), ordered by timestamp, brute force."""
    sc = [e for e in events if "StateChange" in e["kind"]]
    locks = lock_sets(events)
    out = []
    for i, a in enumerate(sc):
        for b in sc[i + 1:]:
            ka, kb = a["kind"]["StateChange"], b["kind"]["StateChange"]
            if ka["variable"] != kb["variable"] or (same_trace and a["trace_id"] != b["trace_id"]):
                continue
            if (a["trace_id"], a["metadata"]["thread_id"]) == (b["trace_id"], b["metadata"]["thread_id"]):
                continue
            acc = {ka["access_type"], kb["access_type"]}
            if not (acc & WRITES) or (ka["access_type"] in ATOMIC and kb["access_type"] in ATOMIC):
                continue
            if before(a, b) or before(b, a) or locks[a["id"]] & locks[b["id"]]:
                continue
            first, second = sorted((a, b), key=lambda e: ts_ns(e["timestamp"]))
            f, s = first["kind"]["StateChange"], second["kind"]["StateChange"]
            both_write = f["access_type"] in WRITES and s["access_type"] in WRITES
            out.append({"variable": f["variable"], "severity": "critical" if both_write else "warning",
                        "first": first, "second": second,
                        "services": (first["metadata"]["service_name"], second["metadata"]["service_name"])})
    return out
