"""The headless analysis document (schema raceway-tui/analysis/v1)."""

from __future__ import annotations

import datetime as dt
import gc

SCHEMA = "raceway-tui/analysis/v1"


def _ts(v) -> str | None:
    return v.isoformat() if isinstance(v, dt.datetime) else v


def _side(p: dict, which: str) -> dict:
    return {
        "event_id": p[f"{which}_id"], "trace_id": p[f"{which}_trace"], "thread_id": p[f"{which}_thread"],
        "access": p[f"{which}_access"], "location": p[f"{which}_location"], "timestamp": _ts(p[f"{which}_timestamp"]),
    }


def deadlock_document(report) -> dict:
    """The ``deadlocks`` part: one group per lock cycle, with its sites and one witness."""
    def edge(e: dict) -> dict:
        return {k: v for k, v in e.items() if not k.endswith("_seq")}

    return {
        "count": len(report.groups),
        "groups": [{"locks": g["locks"], "severity": g["severity"], "instances": g["instances"],
                    "edges": g["edges"], "example": [edge(e) for e in g["example"]]} for g in report.groups],
        "suppressed": report.suppressed,
        "lock_order": [{"from": a, "to": b, "count": n, "contexts": c} for a, b, n, c in zip(
            *(report.lock_edges[k].to_pylist() for k in ("from_lock", "to_lock", "count", "contexts")))],
        "limits": report.limits,
    }


def _pairs(session, limit: int):
    for batch in session.iter_race_pairs(None, limit):
        for p in batch.to_pylist():
            yield {"variable": p["variable"], "severity": p["severity"], "kind": p["kind"],
                   "first": _side(p, "first"), "second": _side(p, "second")}


def analysis_document(session, max_pairs: int = 100_000, lazy_pairs: bool = False) -> dict:
    """The document; with lazy_pairs, ``races.pairs`` is an iterator (write it with write_json)."""
    from raceway_core.causality.engine import memory_cap

    # the collector off as in Engine.run: with the engine's millions of tuples alive each
    # full collection walked them all (0.2-0.35 s of CPU at 1M events, none freed)
    collecting = gc.isenabled()
    gc.disable()
    try:
        with memory_cap(session.store):  # the analysis and the document's queries alike
            return _analysis_document(session, max_pairs, lazy_pairs)
    finally:
        if collecting:
            gc.enable()


def _analysis_document(session, max_pairs: int, lazy_pairs: bool) -> dict:
    counts = session.store.counts()
    races = session.races(max_pairs=0)
    listed = min(max(int(max_pairs), 0), races.pair_count)
    pairs = _pairs(session, listed) if lazy_pairs else list(_pairs(session, listed))
    groups = [{"variable": g["variable"], "severity": g["severity"], "kind": g["kind"],
               "locations": [g["first_location"], g["second_location"]], "count": g["count"],
               "cross_trace_count": g["cross_count"],
               "example": [g["example_first"], g["example_second"]]} for g in races.groups.to_pylist()]
    paths = [{"trace_id": cp.trace_id, "event_ids": cp.events["id"].to_pylist(),
              "duration_ms": cp.duration_ms, "trace_span_ms": cp.trace_span_ms, "sum_ms": cp.sum_ms,
              "percentage": cp.percentage} for cp in session.critical_paths()]
    anomalies = [{"event_id": a["event_id"], "trace_id": a["trace_id"], "key": a["key"],
                  "actual_ms": a["actual_ms"], "expected_ms": a["expected_ms"], "z": a["z"],
                  "severity": a["severity"]} for a in session.anomalies().to_pylist()]
    deps = [{"from": d["from"], "to": d["to"], "calls": d["calls"], "mean_ms": d["mean_ms"], "p95_ms": d["p95_ms"]}
            for d in session.dependencies().to_pylist()]
    return {
        "schema": SCHEMA,
        "events": counts["events"],
        "traces": counts["traces"],
        "rejected": counts["rejected"],
        "races": {"pair_count": races.pair_count, "truncated": listed < races.pair_count,
                  "variable_scope": session.options.variable_scope, "pairs": pairs, "groups": groups},
        "critical_paths": paths,
        "anomalies": anomalies,
        "dependencies": deps,
        "deadlocks": deadlock_document(session.deadlocks()),
    }


def write_json(doc: dict, out, default=str) -> None:
    """Write the document as one line of JSON to a binary stream, the race pairs as they
    are listed (an iterator is never held in full)."""
    import orjson

    pairs = doc["races"]["pairs"]
    if isinstance(pairs, list):
        out.write(orjson.dumps(doc, default=default) + b"\n")
        return
    marker = "\x00pairs\x00"
    head = orjson.dumps({**doc, "races": {**doc["races"], "pairs": marker}}, default=default)
    before, after = head.split(orjson.dumps(marker), 1)
    out.write(before + b"[")
    for n, p in enumerate(pairs):
        out.write((b"," if n else b"") + orjson.dumps(p, default=default))
    out.write(b"]" + after + b"\n")
