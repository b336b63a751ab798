"""The one place the server asks the causality engine for analyses.

Every analysis endpoint calls a method here, which runs ``TraceSession`` (the
same engine the TUI and ``raceway-tui analyze`` use) and shapes its answer like
the original Raceway server's JSON: field names and types as there, our own
extra fields alongside. Where our analysis differs in substance, the shapes
stay and the values are ours: races are happens-before races (never plain
"concurrent reads"), anomalies are robust z-scores over each operation's
median and MAD, global races are variables the engine found racing.

The engine reads the events in several statements; while it (re)computes and
answers, appends are held back (``Store.frozen``) so it sees one state of the
store. Requests queue meanwhile; nothing is lost.
"""

from __future__ import annotations

import orjson
import pyarrow as pa

from raceway_core.errors import AnalysisError
from raceway_core.report import deadlock_document
from raceway_core.server.queries import rfc3339
from raceway_core.session import RaceReport, TraceSession
from raceway_core.store import Store

MAX_RACE_DETAILS = 100  # as the original


class TraceNotFound(Exception):
    """No events with that trace id (HTTP 404)."""


def display_ts(ns: int) -> str:
    """A timestamp as the original prints chrono's Display: ``2026-11-01 12:00:00.012670 UTC``."""
    return rfc3339(ns).replace("T", " ").replace("+00:00", " UTC")


_SEVERITY = {"critical": "CRITICAL", "warning": "WARNING"}
_ANOMALY_SEVERITY = {"critical": "Critical", "warning": "Warning", "minor": "Minor"}


def _race_description(kind: str, variable: str) -> str:
    if kind == "write-write":
        return f"Write-Write race on {variable}: both sides modified it with no happens-before order between them."
    return f"Read-Write race on {variable}: one side read it while the other wrote, unordered."


class Analyses:
    """Analyses over the server's store (one instance per server)."""

    def __init__(self, store: Store, races: bool = True, anomalies: bool = True) -> None:
        self.store = store
        self.session = TraceSession(store)
        self.races_on = races  # the original's race_detection / anomaly_detection switches
        self.anomalies_on = anomalies

    def _races(self, trace_id: str | None = None) -> RaceReport:
        if not self.races_on:
            return RaceReport(pair_count=0, truncated=False, pairs=pa.table({}), groups=pa.table({}))
        return self.session.races(trace_id, max_pairs=MAX_RACE_DETAILS)

    # -- helpers ------------------------------------------------------------------
    def _q(self, sql: str, params=None) -> list[dict]:
        return self.session.sql(sql, params).to_pylist()

    def _require(self, trace_id: str) -> None:
        if not self._q("SELECT 1 AS x FROM events WHERE trace_id = $t LIMIT 1", {"t": trace_id}):
            raise TraceNotFound(f"no trace with id {trace_id!r}")

    def _details(self, seqs: list[int]) -> dict[int, dict]:
        """Per event: ts_ns, location and the kind's own fields (from the raw JSON, which a
        server's store always holds: see queries)."""
        if not seqs:
            return {}
        rows = self._q("SELECT seq, ts_ns, kind, location, CAST(raw->'$.kind' AS VARCHAR) AS k "
                       "FROM events WHERE list_contains($s, seq)", {"s": seqs})
        out = {}
        for r in rows:
            k = orjson.loads(r["k"]) if r["k"] else None
            r["fields"] = next(iter(k.values()), {}) if isinstance(k, dict) and len(k) == 1 else {}
            r["fields"] = r["fields"] if isinstance(r["fields"], dict) else {}
            out[r["seq"]] = r
        return out

    # -- per trace ----------------------------------------------------------------
    def critical_path(self, trace_id: str) -> dict:
        with self.store.frozen():
            return self._critical_path(trace_id)

    def _critical_path(self, trace_id: str) -> dict:
        try:
            cp = self.session.critical_path(trace_id)
        except AnalysisError as exc:
            raise TraceNotFound(str(exc)) from exc
        steps = cp.events.to_pylist()
        details = self._details([s["seq"] for s in steps])
        path = []
        for s in steps:
            d = details[s["seq"]]
            f, kind = d["fields"], s["kind"]
            label = {"FunctionCall": f"FunctionCall({f.get('function_name')})",
                     "StateChange": f"StateChange({f.get('variable')})",
                     "AsyncSpawn": "AsyncSpawn",
                     "HttpRequest": f"HttpRequest({f.get('method')} {f.get('url')})",
                     "DatabaseQuery": "DatabaseQuery"}.get(kind, "Other")
            where = {"FunctionCall": f"{f.get('file')}:{f.get('line')}", "StateChange": d["location"],
                     "HttpRequest": f.get("url")}.get(kind, "unknown")
            path.append({"id": s["id"], "kind": label, "location": where if where is not None else "unknown",
                         "timestamp": rfc3339(d["ts_ns"]), "duration_ms": s["duration_ms"],
                         "thread_id": s["thread_id"], "service": s["service"]})
        return {"trace_id": trace_id, "path_events": len(path), "total_duration_ms": cp.duration_ms,
                "trace_total_duration_ms": cp.trace_span_ms,
                "percentage_of_total": cp.percentage if cp.percentage is not None else 0.0, "path": path}

    def anomalies(self, trace_id: str) -> dict:
        with self.store.frozen():
            self._require(trace_id)
            found = self._anomalies(trace_id)
        return {"trace_id": trace_id, "anomaly_count": len(found), "anomalies": found}

    def _anomalies(self, trace_id: str) -> list[dict]:
        rows = self.session.anomalies(trace_id).to_pylist() if self.anomalies_on else []
        details = self._details([r["seq"] for r in rows])
        out = []
        for r in rows:
            d = details[r["seq"]]
            ratio = r["actual_ms"] / r["expected_ms"] if r["expected_ms"] else None
            out.append({
                "event_id": r["event_id"], "event_kind": r["key"],
                "severity": _ANOMALY_SEVERITY.get(r["severity"], r["severity"]),
                "actual_duration_ms": r["actual_ms"], "expected_duration_ms": r["expected_ms"],
                # a robust z-score (median and MAD); null when most samples are identical
                "std_dev_from_mean": r["z"],
                "description": f"{r['key']} took {r['actual_ms']:.3f} ms; its median over {r['samples']} samples "
                               f"is {r['expected_ms']:.3f} ms" + (f" ({ratio:.1f}x)" if ratio else ""),
                "location": d["location"] or "unknown", "timestamp": rfc3339(d["ts_ns"]),
                "samples": r["samples"]})
        return out

    def dependencies(self, trace_id: str) -> dict:
        with self.store.frozen():
            self._require(trace_id)
            return self._dependencies(trace_id)

    def _dependencies(self, trace_id: str) -> dict:
        services = self._q("SELECT service AS name, count(*) AS event_count FROM events "
                           "WHERE trace_id = $t AND service IS NOT NULL GROUP BY service ORDER BY service",
                           {"t": trace_id})
        deps = [{"from": d["from"], "to": d["to"], "call_count": d["calls"], "mean_ms": d["mean_ms"],
                 "p95_ms": d["p95_ms"]} for d in self.session.dependencies(trace_id).to_pylist()]
        return {"trace_id": trace_id, "services": services, "dependencies": deps}

    def audit_trail(self, trace_id: str, variable: str) -> dict:
        with self.store.frozen():
            self._require(trace_id)
            return {"trace_id": trace_id, "variable": variable, "accesses": self._accesses(variable, trace_id)}

    def _accesses(self, variable: str, trace_id: str) -> list[dict]:
        rows = self.session.audit(variable, trace_id).to_pylist()
        details = self._details([r["seq"] for r in rows])
        return [{
            "event_id": r["event_id"], "timestamp": rfc3339(details[r["seq"]]["ts_ns"]),
            "thread_id": r["thread_id"], "service_name": r["service"], "access_type": r["access"],
            "old_value": orjson.loads(r["old_value"]) if r["old_value"] is not None else None,
            "new_value": orjson.loads(r["new_value"]) if r["new_value"] is not None else None,
            "location": r["location"], "has_causal_link_to_previous": bool(r["after_previous"]),
            "is_race": bool(r["racing"]), "locks_held": r["locks"] or []} for r in rows]

    def trace(self, trace_id: str) -> dict:
        """The analysis fields of GET /api/traces/{id}."""
        with self.store.frozen():
            races = self._races(trace_id)
            details, text = [], []
            for p in races.pairs.to_pylist():
                sev = _SEVERITY.get(p["severity"], p["severity"].upper())
                details.append({"severity": sev, "variable": p["variable"],
                                "event1_thread": p["first_thread"], "event2_thread": p["second_thread"],
                                "event1_location": p["first_location"], "event2_location": p["second_location"],
                                "description": _race_description(p["kind"], p["variable"]),
                                "event1_id": p["first_id"], "event2_id": p["second_id"]})
                text.append(f"{sev} RACE on {p['variable']}: {p['first_location']} [{p['first_thread']}] "
                            f"vs {p['second_location']} [{p['second_thread']}]")
            if races.truncated:
                text.append(f"showing the first {len(details)} of {races.pair_count} racing pairs")
            variables = [r["variable"] for r in self._q(
                "SELECT DISTINCT variable FROM events WHERE trace_id = $t AND kind = 'StateChange' "
                "AND variable IS NOT NULL ORDER BY variable", {"t": trace_id})]
            try:
                critical = self._critical_path(trace_id)
            except TraceNotFound:
                critical = None
            return {
                "audit_trails": {v: self._accesses(v, trace_id) for v in variables},
                "analysis": {"concurrent_events": races.pair_count, "potential_races": races.pair_count,
                             "anomalies": text or ["No potential races detected for this trace"],
                             "race_details": details},
                "critical_path": critical,
                "anomalies": self._anomalies(trace_id),
                "dependencies": self._dependencies(trace_id),
            }

    # -- global -------------------------------------------------------------------
    def global_analysis(self) -> dict:
        with self.store.frozen():
            races = self._races()
            counts = self.store.counts()
            pairs = races.pairs.to_pylist()
            ts = self._details([s for p in pairs for s in (p["first_seq"], p["second_seq"])])
            deadlocks = deadlock_document(self.session.deadlocks())
        details = [{
            "severity": _SEVERITY.get(p["severity"], p["severity"].upper()), "variable": p["variable"],
            "trace1_id": p["first_trace"], "trace2_id": p["second_trace"],
            "event1_thread": p["first_thread"], "event2_thread": p["second_thread"],
            "event1_location": p["first_location"], "event2_location": p["second_location"],
            "event1_timestamp": display_ts(ts[p["first_seq"]]["ts_ns"]),
            "event2_timestamp": display_ts(ts[p["second_seq"]]["ts_ns"]),
            "description": _race_description(p["kind"], p["variable"]),
            "event1_id": p["first_id"], "event2_id": p["second_id"]} for p in pairs]
        notes = []
        if details:
            notes.append(f"GLOBAL: Found {races.pair_count} racing pairs of events across all traces")
            if races.pair_count > len(details):
                notes.append(f"   Showing first {len(details)} race pairs ({races.pair_count} total)")
        return {"total_traces": counts["traces"], "total_events": counts["events"],
                "concurrent_events": races.pair_count, "potential_races": races.pair_count,
                "anomalies": notes, "race_details": details, "deadlocks": deadlocks}

    def deadlocks(self) -> dict:
        """Potential deadlocks across all traces (raceway-tui's own; the original has none)."""
        with self.store.frozen():
            return deadlock_document(self.session.deadlocks())

    def global_races(self) -> dict:
        """Variables the engine found racing, with the original's per-variable statistics."""
        with self.store.frozen():
            racing: dict = {}  # per variable name (the scope may split one name into several variables)
            for r in self.session.variables().to_pylist() if self.races_on else []:
                if r["races"]:
                    got = racing.setdefault(r["name"], {"races": 0, "critical_races": 0})
                    got["races"] += r["races"]
                    got["critical_races"] += r["critical_races"]
            stats = self._q("""
                SELECT variable, count(DISTINCT trace_id) AS trace_count, count(*) AS access_count,
                       list(DISTINCT access ORDER BY access) AS access_types,
                       count(DISTINCT thread_id) AS thread_count, list(DISTINCT trace_id ORDER BY trace_id) AS trace_ids
                FROM events WHERE kind = 'StateChange' AND list_contains($v, variable) GROUP BY variable""",
                            {"v": list(racing)}) if racing else []
        races = [{**s, "severity": "CRITICAL" if racing[s["variable"]]["critical_races"] else "WARNING",
                  "race_pairs": racing[s["variable"]]["races"]} for s in stats]
        races.sort(key=lambda r: (-r["trace_count"], -r["access_count"], r["variable"]))
        return {"total_races": len(races), "races": races}
