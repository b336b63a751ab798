"""Compare two runs: what appeared, disappeared or changed between side A and side B.

A side is a session (e.g. one file) and optionally one trace of it. Ids, thread names
and timestamps differ from run to run, so things are matched by *operation and
location*, never by ids:

- races:          (variable, kind, the two locations as a set)
- anomalies:      (operation, location)
- critical path:  the steps on the paths, by (operation, location): how many, their time
- durations:      every timed operation, by (operation, location): count and median
- orderings:      happens-before edges between contexts, by (kind, lock or services,
                  operation and location at both ends): a lock hand-off added by a fix
                  shows here
- deadlocks:      lock cycles, by their locks

The operation of an event is its kind with what names it: FunctionCall(name),
StateChange(variable, access), LockAcquire(lock), HttpRequest(METHOD), ...
A matched entry "changed" when its count differs, or its time (median, or total on
a critical path) differs by more than ``threshold`` (relative, default 20%) and by
more than ``min_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

from raceway_core.analysis.anomalies import KEY as ANOMALY_KEY
from raceway_core.analysis.anomalies import sql as anomalies_sql

SCHEMA = "raceway-tui/diff/v1"
CATEGORIES = ("races", "anomalies", "critical_path", "durations", "orderings", "deadlocks")

OP = f"""CASE kind
    WHEN 'StateChange' THEN 'StateChange(' || coalesce(variable, '?') || ', ' || coalesce(access, '?') || ')'
    WHEN 'LockAcquire' THEN 'LockAcquire(' || coalesce(lock_id, '?') || ')'
    WHEN 'LockRelease' THEN 'LockRelease(' || coalesce(lock_id, '?') || ')'
    ELSE {ANOMALY_KEY} END"""


@dataclass(frozen=True)
class Side:
    session: object  # TraceSession
    trace_id: str | None = None  # None: every trace of the session
    label: str = ""


def _q(side: Side, sql: str, params: dict | None = None) -> list[dict]:
    if side.trace_id is not None:
        params = {**(params or {}), "t": side.trace_id}
    return side.session.sql(sql, params or None).to_pylist()


def _flt(side: Side, col: str = "trace_id") -> str:
    return f"AND {col} = $t" if side.trace_id is not None else ""


def profile(side: Side) -> dict[str, dict[tuple, dict]]:
    """Per category: key -> measures, for one side."""
    s = side.session
    out: dict[str, dict[tuple, dict]] = {c: {} for c in CATEGORIES}
    for g in s.races(trace_id=side.trace_id, max_pairs=0).groups.to_pylist():
        locs = tuple(sorted((g["first_location"] or "?", g["second_location"] or "?")))
        k = (g["variable"], g["kind"], *locs)
        m = out["races"].setdefault(k, {"count": 0, "severity": g["severity"]})
        m["count"] += g["count"]
    an = anomalies_sql(trace_filter=_flt(side))
    for r in _q(side, f"""SELECT a.key AS op, e.location, count(*) AS count, max(a.actual_ms) AS max_ms,
                                 median(a.expected_ms) AS expected_ms, max(a.severity) AS severity
                          FROM ({an}) a JOIN events e USING (seq) GROUP BY ALL"""):
        out["anomalies"][(r["op"], r["location"])] = {"count": r["count"], "max_ms": r["max_ms"],
                                                      "expected_ms": r["expected_ms"]}
    for r in _q(side, f"""SELECT {OP} AS op, location, count(*) AS count, sum(coalesce(duration_ns, 0)) / 1e6 AS ms
                          FROM hb.critical c JOIN events e USING (seq) WHERE true {_flt(side, 'c.trace_id')}
                          GROUP BY ALL"""):
        out["critical_path"][(r["op"], r["location"])] = {"count": r["count"], "ms": r["ms"]}
    for r in _q(side, f"""SELECT {OP} AS op, location, count(*) AS count, median(duration_ns) / 1e6 AS median_ms,
                                 sum(duration_ns) / 1e6 AS total_ms
                          FROM events WHERE duration_ns IS NOT NULL {_flt(side)} GROUP BY ALL"""):
        out["durations"][(r["op"], r["location"])] = {"count": r["count"], "median_ms": r["median_ms"],
                                                      "total_ms": r["total_ms"]}
    for r in _q(side, f"""
            WITH ops AS (SELECT seq, trace_id, service, location, {OP} AS op FROM events)
            SELECT g.kind, CASE g.kind WHEN 'lock' THEN g.detail
                                       WHEN 'call' THEN coalesce(s.service, '?') || ' -> ' || coalesce(d.service, '?')
                                       WHEN 'return' THEN coalesce(s.service, '?') || ' -> ' || coalesce(d.service, '?')
                                  END AS what,
                   s.op AS src_op, s.location AS src_location, d.op AS dst_op, d.location AS dst_location,
                   count(*) AS count
            FROM hb.edges g JOIN ops s ON s.seq = g.src JOIN ops d ON d.seq = g.dst
            WHERE NOT g.dropped AND g.kind <> 'clock' AND g.src_ctx <> g.dst_ctx {_flt(side, 'd.trace_id')}
            GROUP BY ALL"""):
        k = (r["kind"], r["what"], r["src_op"], r["src_location"], r["dst_op"], r["dst_location"])
        out["orderings"][k] = {"count": r["count"]}
    dl = s.deadlocks()
    for g in dl.groups:
        if side.trace_id is None or any(e["trace_id"] == side.trace_id for e in g["example"]):
            out["deadlocks"][tuple(g["locks"])] = {"count": 1, "severity": g["severity"]}
    return out


KEY_FIELDS = {
    "races": ("variable", "kind", "location_1", "location_2"),
    "anomalies": ("operation", "location"),
    "critical_path": ("operation", "location"),
    "durations": ("operation", "location"),
    "orderings": ("kind", "what", "from_operation", "from_location", "to_operation", "to_location"),
    "deadlocks": ("locks",),
}
TIME_FIELD = {"critical_path": "ms", "durations": "median_ms", "anomalies": "max_ms"}


def _changed(cat: str, a: dict, b: dict, threshold: float, min_ms: float) -> bool:
    if a.get("count") != b.get("count"):
        return True
    f = TIME_FIELD.get(cat)
    if f is None or a.get(f) is None or b.get(f) is None:
        return False
    x, y = float(a[f]), float(b[f])
    return abs(y - x) > min_ms and abs(y - x) > threshold * max(abs(x), abs(y))


def compare(a: Side, b: Side, threshold: float = 0.2, min_ms: float = 0.01) -> dict:
    """The diff document: per category, every key of either side with its status
    (appeared, disappeared, changed, same) and both sides' measures."""
    pa_, pb = profile(a), profile(b)
    doc = {"schema": SCHEMA, "threshold": threshold, "min_ms": min_ms,
           "a": _side_info(a), "b": _side_info(b), "summary": {}}
    for cat in CATEGORIES:
        rows = []
        for k in sorted(set(pa_[cat]) | set(pb[cat]), key=lambda k: tuple("" if v is None else str(v) for v in k)):
            ma, mb = pa_[cat].get(k), pb[cat].get(k)
            status = ("appeared" if ma is None else "disappeared" if mb is None
                      else "changed" if _changed(cat, ma, mb, threshold, min_ms) else "same")
            key = {"locks": list(k)} if cat == "deadlocks" else dict(zip(KEY_FIELDS[cat], k))
            rows.append({"status": status, **key, "a": ma, "b": mb})
        order = {"appeared": 0, "disappeared": 1, "changed": 2, "same": 3}
        rows.sort(key=lambda r: order[r["status"]])
        doc[cat] = rows
        doc["summary"][cat] = {st: sum(r["status"] == st for r in rows) for st in order}
    return doc


def _side_info(side: Side) -> dict:
    r = _q(side, f"""SELECT count(*) AS events, count(DISTINCT trace_id) AS traces FROM events WHERE true {_flt(side)}""")[0]
    paths = _q(side, f"""SELECT sum(path_ns) / 1e6 AS path_ms, sum(span_ns) / 1e6 AS span_ms
                         FROM hb.critical_summary WHERE true {_flt(side)}""")[0]
    return {"label": side.label, "trace_id": side.trace_id, **r, "critical_path_ms": paths["path_ms"],
            "span_ms": paths["span_ms"]}
