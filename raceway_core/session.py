"""TraceSession: the public Python API over a store and its causality analysis.

    from raceway_core import TraceSession
    s = TraceSession.open(["orders.jsonl"])
    s.traces()                      # pyarrow.Table, one row per trace
    s.races().groups                # race groups (pyarrow.Table)
    s.explain(id_a, id_b).text      # why A -> B, or why they are concurrent
    s.critical_path(trace_id)       # CriticalPath
    s.anomalies(); s.audit("acct.balance"); s.dependencies()
    s.sql("SELECT kind, count(*) FROM events GROUP BY 1")

The analysis is computed on first use and again whenever events were added;
every method is safe to call from worker threads (each uses its own cursor).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from raceway_core import intervals as _intervals
from raceway_core import rawtext
from raceway_core.analysis import anomalies as _anomalies
from raceway_core.analysis import deadlocks as _deadlocks
from raceway_core.analysis import audit as _audit
from raceway_core.analysis import calltree as _calltree
from raceway_core.analysis import replay as _replay
from raceway_core.analysis import dashboard as _dashboard
from raceway_core.analysis import dependencies as _deps
from raceway_core.analysis import hotspots as _hotspots
from raceway_core.analysis import service_stats as _service_stats
from raceway_core.analysis.span_critical_path import SpanCriticalPath, has_spans, span_critical_path
from raceway_core.causality import explain as _explain
from raceway_core.causality.engine import Engine, EngineOptions
from raceway_core.causality.raceinput import _KEY as _VAR_KEY
from raceway_core.dbutil import query_arrow
from raceway_core.errors import AnalysisError
from raceway_core.store import Store

log = logging.getLogger("raceway.session")


@dataclass(frozen=True)
class Explanation:
    a: str
    b: str
    relation: str  # "before" (a -> b), "after" (b -> a), "concurrent", "same"
    steps: tuple[dict, ...]  # {kind, text, from_id, to_id}
    text: str


@dataclass(frozen=True)
class RaceReport:
    pair_count: int  # every racing pair in scope (exact)
    truncated: bool  # pairs holds fewer rows than pair_count
    pairs: pa.Table  # first/second event columns, variable, kind, severity
    groups: pa.Table  # variable, kind, severity, locations, count, example ids


@dataclass(frozen=True)
class CriticalPath:
    trace_id: str
    events: pa.Table  # the path, in order: seq, id, kind, context, duration_ms (what it adds to the path), ...
    duration_ms: float  # sum of durations along the path (an HttpResponse adds 0: raceway_core.intervals)
    trace_span_ms: float  # latest event end - earliest event start (raceway_core.intervals)
    sum_ms: float  # sum of all durations in the trace
    percentage: float | None  # duration_ms / trace_span_ms * 100


def _incremental(old: Engine, store: Store) -> Engine | None:
    """incremental.update, or None (a full run) when it cannot take this append or fails."""
    from raceway_core.causality import incremental

    try:
        return incremental.update(old, store)
    except Exception:  # a bug there must not cost the analysis: the full run is always right
        log.exception("incremental analysis failed; running the whole engine")
        incremental.last_reason = "failed (logged)"
        return None


@dataclass(frozen=True)
class Hotspots:
    variables: pa.Table  # variable, name, accesses, writes, races
    functions: pa.Table  # function, calls, total_ms, mean_ms, max_ms
    services: pa.Table  # service, events, traces, contexts
    locks: pa.Table  # lock_id, acquisitions, contexts, handoffs, max_hold_ms, total_hold_ms


class TraceSession:
    def __init__(self, store: Store, options: EngineOptions = EngineOptions()) -> None:
        self.store = store
        self.options = options
        self.summaries: list = []
        self._engine: Engine | None = None
        self._deadlock_cache = None  # (engine, DeadlockReport)
        self._service_races: tuple = (None, {})  # (engine, {trace_id: races by service})
        self._anomaly_cache: tuple = (None, None)  # (store version, every anomaly at the default settings)
        self._anomaly_lock = threading.Lock()
        self._lock = threading.RLock()

    @classmethod
    def open(cls, paths: Iterable[str | Path] = (), db: str | Path | None = None,
             import_options=None, options: EngineOptions = EngineOptions()) -> "TraceSession":
        s = cls(Store(db), options)
        if paths:
            s.load(paths, import_options)
        return s

    def load(self, paths: Iterable[str | Path], import_options=None) -> list:
        summaries = self.store.load(list(paths), import_options)
        self.summaries.extend(summaries)
        return summaries

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "TraceSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_variable_scope(self, scope: str) -> None:
        """Analyse again with this variable scope (auto, global, service, instance) on next use."""
        from raceway_core.causality.raceinput import SCOPES

        if scope not in SCOPES:
            raise AnalysisError(f"unknown variable scope {scope!r} (one of {', '.join(SCOPES)})")
        with self._lock:
            if scope != self.options.variable_scope:
                self.options = replace(self.options, variable_scope=scope)
                self._engine = None

    # -- the analysis -------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The causality engine, (re)computed when the store changed."""
        return self.analyze()

    @property
    def analysed(self) -> bool:
        """Whether the analysis is up to date with the store (never blocks, never computes)."""
        eng = self._engine
        return eng is not None and eng.version == self.store.version

    def analyze(self, progress=None) -> Engine:
        """The engine, computed now if needed; ``progress(stage, index, total)`` reports its stages."""
        with self._lock:
            if self._engine is None or self._engine.version != self.store.version:
                engine = None
                if self._engine is not None:  # events were added: only what they change (else None)
                    engine = _incremental(self._engine, self.store)
                    if engine is not None:
                        self._engine = engine
                        return engine
                if self._engine is None and self.store.path is not None:
                    engine = Engine.restore(self.store, self.options)  # a --db store analysed before
                if engine is None:
                    engine = Engine(self.store, self.options).run(progress)
                _explain.recv_index(engine)
                _explain.edge_index(engine)
                self._engine = engine
            return self._engine

    def _row(self, event_id: str) -> int:
        eng = self.engine
        rows = self._q("SELECT seq FROM events WHERE id = $id", {"id": event_id})["seq"].to_pylist()
        if not rows:
            raise AnalysisError(f"no event with id {event_id!r}")
        return int(eng.row_of(rows[0]))

    def _id_of(self, row: int) -> str:
        seq = int(self.engine.seq[row])
        return self._q("SELECT id FROM events WHERE seq = $s", {"s": seq})["id"][0].as_py()

    def _q(self, sql: str, params=None, tables: dict[str, pa.Table] | None = None) -> pa.Table:
        """A query on a cursor of its own; ``tables``: Arrow tables it reads by those names."""
        cur = self.store.cursor()
        try:
            for name, table in (tables or {}).items():
                cur.register(name, table)
            return query_arrow(cur, sql, params)
        finally:
            cur.close()

    def sql(self, query: str, params=None) -> pa.Table:
        self.engine  # the hb tables exist for the query
        return self.store.sql(query, params)

    # -- data -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        eng = self.engine
        c = self.store.counts()
        c["contexts"] = eng.n_ctx
        c["races"] = eng.race_count
        c["race_groups"] = self._q("SELECT count(*) AS n FROM hb.race_groups")["n"][0].as_py()
        c["anomalies"] = self._all_anomalies().num_rows
        return c

    def traces(self) -> pa.Table:
        """One row per trace: events, contexts, services, start, duration, failures (HTTP 4xx /
        5xx responses and errors), races, anomalies."""
        self.engine
        return self._q(f"""
            WITH t AS (
                SELECT trace_id, count(*) AS events, count(DISTINCT thread_id) AS contexts,
                       list(DISTINCT service ORDER BY service) FILTER (WHERE service IS NOT NULL) AS services,
                       min(timestamp) AS start, {_intervals.span_ns()} / 1e6 AS duration_ms,
                       count(*) FILTER (WHERE http_status >= 400 OR kind = 'Error') AS failures
                FROM events GROUP BY trace_id
            ), r AS (SELECT trace_id, CAST(sum(count) AS BIGINT) AS races FROM hb.race_trace_groups GROUP BY trace_id
            ), a AS (SELECT trace_id, count(*) AS anomalies FROM _anomalies GROUP BY trace_id)
            SELECT t.*, coalesce(r.races, 0) AS races, coalesce(a.anomalies, 0) AS anomalies, tr.trusted AS clocks_trusted
            FROM t LEFT JOIN r USING (trace_id) LEFT JOIN a USING (trace_id) LEFT JOIN hb.trust tr USING (trace_id)
            ORDER BY t.start, t.trace_id""", tables={"_anomalies": self._all_anomalies()})

    def event(self, event_id: str) -> dict:
        """Every field of one event, its given and computed vector clocks, lock set and raw JSON."""
        row = self._row(event_id)
        eng = self.engine
        rec = self._q("""
            SELECT e.*, o.ctx, o.pos, o.ord, c.thread_id AS context, l.locks AS held_locks
            FROM events e JOIN hb.ev o USING (seq) JOIN hb.ctx c ON c.ctx = o.ctx
            LEFT JOIN hb.locksets l USING (seq) WHERE e.seq = $s""", {"s": int(eng.seq[row])}).to_pylist()[0]
        rec["vector_clock"] = self._labelled_clock(row)
        cur = self.store.cursor()
        try:
            rawtext.fill(cur, [rec])
        except rawtext.RawUnavailable as exc:  # the rest of the event is still there to show
            rec["raw_error"] = str(exc)
        finally:
            cur.close()
        return rec

    def vector_clock(self, event_id: str) -> dict[str, int]:
        """The computed clock: context label -> how many of its events happened before (inclusive)."""
        return self._labelled_clock(self._row(event_id))

    def _labelled_clock(self, row: int) -> dict[str, int]:
        """Contexts of the event's trace -> position known; lock chains -> last release known."""
        eng = self.engine
        local, chains = eng.hb.clock(row)
        out = {eng.ctx_label(c): n for c, n in sorted(local.items())}
        out.update({f"{eng.hb.chains.label[c]} release": n for c, n in sorted(chains.items())})
        return out

    def clock_trust(self) -> pa.Table:
        self.engine
        return self._q("SELECT trace_id, trusted, reason, contexts FROM hb.trust ORDER BY trace_id")

    # -- causality ------------------------------------------------------------------
    def happens_before(self, a: str, b: str) -> bool:
        return self.engine.before(self._row(a), self._row(b))

    def concurrent(self, a: str, b: str) -> bool:
        ra, rb = self._row(a), self._row(b)
        eng = self.engine
        return ra != rb and not eng.before(ra, rb) and not eng.before(rb, ra)

    def explain(self, a: str, b: str) -> Explanation:
        ra, rb = self._row(a), self._row(b)
        eng = self.engine
        v = _explain.describe(eng, ra, rb, self._id_of)
        ids = {r: self._id_of(r) for s in v.steps for r in (s.from_row, s.to_row)}
        steps = tuple({"kind": s.kind, "text": s.text, "from_id": ids[s.from_row], "to_id": ids[s.to_row]}
                      for s in v.steps)
        return Explanation(a, b, v.relation, steps, v.text)

    # -- analyses -------------------------------------------------------------------
    def races(self, trace_id: str | None = None, max_pairs: int | None = None) -> RaceReport:
        """Race groups and racing pairs (the first ``max_pairs``; counts are always exact).
        With trace_id: the pairs with both events in that trace; without: every pair,
        those joining two traces included."""
        eng = self.engine
        if trace_id:
            groups = self._q("""
                SELECT g.variable, g.severity, g.kind, g.first_location, g.second_location, g.count,
                       a.id AS example_first, b.id AS example_second
                FROM hb.race_trace_groups g JOIN events a ON a.seq = g.example_first JOIN events b ON b.seq = g.example_second
                WHERE g.trace_id = $t
                ORDER BY g.severity = 'critical' DESC, g.count DESC, g.variable, g.first_location, g.second_location""",
                             {"t": trace_id})
            total = sum(groups["count"].to_pylist())
        else:
            total = eng.race_count
            groups = self._q("""
                SELECT g.variable, g.severity, g.kind, g.first_location, g.second_location, g.count, g.cross_count,
                       a.id AS example_first, b.id AS example_second
                FROM hb.race_groups g JOIN events a ON a.seq = g.example_first JOIN events b ON b.seq = g.example_second
                ORDER BY g.severity = 'critical' DESC, g.count DESC, g.variable, g.first_location, g.second_location""")
        limit = total if max_pairs is None else min(int(max_pairs), total)
        batches = list(self.iter_race_pairs(trace_id, limit))
        pairs = pa.concat_tables(batches) if batches else self._pair_details(None)
        return RaceReport(pair_count=int(total), truncated=pairs.num_rows < total, pairs=pairs, groups=groups)

    def iter_race_pairs(self, trace_id: str | None = None, limit: int | None = None, variable: str | None = None):
        """Racing pairs with both events' details, as Arrow tables, critical first, at most
        ``limit``: read from the stored pairs when they hold enough, else listed as they go
        (nothing but the current batch is held)."""
        eng = self.engine
        if limit is not None and limit <= 0:
            return
        if trace_id is None and variable is None:
            stored = self._q("SELECT count(*) AS n FROM hb.race_pairs")["n"][0].as_py()
            if limit is not None and limit <= stored:
                yield self._pair_details(None, limit)
                return
        left = limit
        for batch in eng.iter_race_pairs(trace_id, variable=variable):
            if left is not None:
                batch = batch.slice(0, left)
                left -= batch.num_rows
            yield self._pair_details(batch)
            if left is not None and left <= 0:
                return

    def _pair_details(self, batch: pa.Table | None, limit: int | None = None) -> pa.Table:
        """Both events of each pair (of ``batch``, or of the stored pairs up to ``limit``)."""
        src = "_pairs" if batch is not None else "hb.race_pairs"
        lim = f"LIMIT {int(limit)}" if limit is not None else ("LIMIT 0" if batch is None else "")
        cur = self.store.cursor()
        try:
            if batch is not None:
                cur.register("_pairs", batch)
            return query_arrow(cur, f"""
                SELECT p.variable, p.severity, p.kind,
                       a.id AS first_id, a.trace_id AS first_trace, a.thread_id AS first_thread, a.access AS first_access,
                       a.location AS first_location, a.timestamp AS first_timestamp,
                       b.id AS second_id, b.trace_id AS second_trace, b.thread_id AS second_thread, b.access AS second_access,
                       b.location AS second_location, b.timestamp AS second_timestamp,
                       p.first_seq, p.second_seq
                FROM (SELECT * FROM {src} ORDER BY o {lim}) p
                JOIN events a ON a.seq = p.first_seq JOIN events b ON b.seq = p.second_seq ORDER BY p.o""")
        finally:
            if batch is not None:
                cur.unregister("_pairs")
            cur.close()

    def critical_path(self, trace_id: str) -> CriticalPath:
        self.engine
        summary = self._q("SELECT * FROM hb.critical_summary WHERE trace_id = $t", {"t": trace_id}).to_pylist()
        if not summary:
            raise AnalysisError(f"no trace {trace_id!r}")
        s = summary[0]
        from raceway_core.browse import NOTE

        events = self._q(f"""
            SELECT c.step, e.seq, e.id, e.kind, e.thread_id, e.service, e.location, e.function_name, e.variable,
                   e.timestamp, {_intervals.path_ns('e')} / 1e6 AS duration_ms,
                   e.lock_id, e.http_method, e.http_status, e.task_id, e.future_id, {NOTE} AS note
            FROM hb.critical c JOIN events e USING (seq) WHERE c.trace_id = $t ORDER BY c.step""", {"t": trace_id})
        return CriticalPath(trace_id, events, float(s["path_ns"]) / 1e6, float(s["span_ns"]) / 1e6,
                            float(s["sum_ns"]) / 1e6, s["percentage"])

    def span_critical_path(self, trace_id: str) -> SpanCriticalPath:
        """Jaeger's critical path (last-finishing-child walk, self-time sections) of a trace
        imported from spans (OTLP, Jaeger, Zipkin); no sections for other traces."""
        return span_critical_path(self.store, trace_id)

    def has_spans(self, trace_id: str) -> bool:
        """Whether ``span_critical_path`` has a span tree to walk in this trace."""
        return has_spans(self.store, trace_id)

    def critical_paths(self) -> list[CriticalPath]:
        self.engine
        summary = self._q("SELECT * FROM hb.critical_summary ORDER BY trace_id").to_pylist()
        steps = self._q("""SELECT c.trace_id, list(e.id ORDER BY c.step) AS ids
                           FROM hb.critical c JOIN events e USING (seq) GROUP BY c.trace_id""").to_pylist()
        ids = {r["trace_id"]: r["ids"] for r in steps}
        # a typed array: pa.table over a bare list retries a failing optional import each call
        # (3.2 s for the 8,000 traces of 1M events, against 0.2 s)
        return [CriticalPath(s["trace_id"], pa.table({"id": pa.array(ids.get(s["trace_id"], []), pa.string())}),
                             float(s["path_ns"]) / 1e6, float(s["span_ns"]) / 1e6, float(s["sum_ns"]) / 1e6,
                             s["percentage"]) for s in summary]

    def anomalies(self, trace_id: str | None = None, min_samples: int = _anomalies.MIN_SAMPLES,
                  threshold: float = _anomalies.THRESHOLD, min_ratio: float = _anomalies.MIN_RATIO) -> pa.Table:
        """Events with z > threshold, at least min_ratio x their key's median, keys of min_samples or more."""
        self.engine
        if (min_samples, threshold, min_ratio) == (_anomalies.MIN_SAMPLES, _anomalies.THRESHOLD, _anomalies.MIN_RATIO):
            every = self._all_anomalies()
            if trace_id is None:
                return every
            import pyarrow.compute as pc

            return every.filter(pc.equal(every["trace_id"], trace_id))  # the order kept: the query's
        flt = "AND trace_id = $t" if trace_id else ""
        return self._q(_anomalies.sql(min_samples, threshold, flt, min_ratio), {"t": trace_id} if trace_id else None)

    def _all_anomalies(self) -> pa.Table:
        """Every anomaly at the default settings, computed once per store version: the baselines
        (median, MAD per operation) are over all events whatever the scope, so a trace's anomalies
        are these rows of that trace. The query took 0.7 s at 1M events; the trace list, the
        counts, the dashboard and the anomalies pane each ran it, and again per chosen trace."""
        with self._anomaly_lock:  # a second caller waits for the first one's result
            version = self.store.version
            cached_version, table = self._anomaly_cache
            if cached_version != version or table is None:
                table = self._q(_anomalies.sql())
                self._anomaly_cache = (version, table)
            return table

    def audit(self, variable: str, trace_id: str | None = None) -> pa.Table:
        """Every access of a variable in causal order, with the causal link to the previous one."""
        eng = self.engine
        # the variable as the scope names it (variables(), races), or its plain name (the
        # original API's audit-trail route): the same under global and auto. A plain name may
        # itself contain '::' ("svc::x"): the scope's name wins when some access has it.
        key = _VAR_KEY[eng.options.variable_scope]
        match = "e.variable = $variable"
        if key != "e.variable":
            scoped = key.replace("e.", "x.")
            match = (f"CASE WHEN EXISTS (SELECT 1 FROM events x WHERE x.kind = 'StateChange' AND {scoped} = $variable) "
                     f"THEN {key} = $variable ELSE e.variable = $variable END")
        sql = _audit.sql(f"({match})").replace("__TRACE__", "AND e.trace_id = $t" if trace_id else "")
        params = {"variable": variable} | ({"t": trace_id} if trace_id else {})
        t = self._q(sql, params)
        rows = eng.row_of(t["seq"].to_numpy()).tolist()
        linked = [None] * min(1, len(rows)) + [eng.before(rows[i - 1], rows[i]) for i in range(1, len(rows))]
        return t.append_column("after_previous", pa.array(linked, pa.bool_()))

    def variables(self, trace_id: str | None = None) -> pa.Table:
        """Per variable as the race analysis names it under the variable scope (``name``: the
        events' variable): accesses, writes, contexts, traces, races and critical_races
        (racing pairs, exact; of a trace, the pairs with both events in it), most races first."""
        eng = self.engine
        return self._q(f"SELECT * FROM ({_hotspots.variable_stats(eng, trace_id, detail=True)}) "
                       "ORDER BY races DESC, accesses DESC, variable", {"t": trace_id} if trace_id is not None else None)

    def dependencies(self, trace_id: str | None = None) -> pa.Table:
        self.engine
        return self._q(_deps.sql("AND trace_id = $t" if trace_id else ""), {"t": trace_id} if trace_id else None)

    def services(self, trace_id: str | None = None, races: bool = True) -> pa.Table:
        """Per service: traces, events, failures, span latency (p50/p95/max) and self time,
        callers and callees, and (``races``) the races touching it, exact
        (analysis.service_stats). Without ``races`` the column holds what was counted
        before for this analysis, else nulls: counting takes seconds on a million events."""
        eng = self.engine
        cached_eng, cached = self._service_races
        known = self.service_races(trace_id) if races else (cached.get(trace_id) if cached_eng is eng else None)
        return self._with_cursor(_service_stats.summary, trace_id, known)

    def service_races(self, trace_id: str | None = None) -> dict[str, int]:
        """Service -> racing pairs with an access in it (exact; kept for this analysis)."""
        eng = self.engine
        cached_eng, cached = self._service_races
        got = cached.get(trace_id) if cached_eng is eng else None
        if got is None:
            got = self._with_cursor(_service_stats.races_by_service, eng, trace_id)
            with self._lock:
                cached_eng, cached = self._service_races
                self._service_races = (eng, (cached if cached_eng is eng else {}) | {trace_id: got})
        return got

    def service_traces(self, service: str, trace_id: str | None = None) -> pa.Table:
        """The traces a service took part in, its slowest span first."""
        self.engine
        return self._with_cursor(_service_stats.traces_of, service, trace_id)

    def hotspots(self, trace_id: str | None = None, top: int = _hotspots.TOP) -> "Hotspots":
        """Busiest variables, functions, services and locks (analysis.hotspots)."""
        eng = self.engine
        cur = self.store.cursor()
        try:
            return Hotspots(_hotspots.variables(cur, eng, trace_id, top), _hotspots.functions(cur, trace_id, top),
                            _hotspots.services(cur, trace_id, top), _hotspots.locks(cur, trace_id, top))
        finally:
            cur.close()

    def lock_events(self, lock_id: str, trace_id: str | None = None, limit: int = _hotspots.LISTED) -> pa.Table:
        """A lock's acquisitions and releases in time order, with hold times and hand-offs."""
        self.engine
        return self._with_cursor(_hotspots.lock_events, lock_id, trace_id, limit)

    def function_calls(self, function: str, trace_id: str | None = None, limit: int = _hotspots.LISTED) -> pa.Table:
        """A function's calls, slowest first."""
        self.engine
        return self._with_cursor(_hotspots.function_calls, function, trace_id, limit)

    def _with_cursor(self, fn, *args):
        cur = self.store.cursor()
        try:
            return fn(cur, *args)
        finally:
            cur.close()

    def call_tree(self, trace_id: str) -> "_calltree.CallTree":
        """The trace's events as a tree (spawns and calls under what started them), in
        pre-order with depths, subtree sizes and spans; rows via ``call_tree_rows``."""
        self.engine
        cur = self.store.cursor()
        try:
            return _calltree.build(cur, trace_id)
        finally:
            cur.close()

    def call_tree_rows(self, tree: "_calltree.CallTree", nodes) -> pa.Table:
        """The event rows (the timeline's columns, plus ``node``) of these nodes of ``tree``, in that order."""
        self.engine
        picked = tree.nodes.take(pa.array(nodes, pa.int64()))
        keys = pa.table({"node": pa.array(nodes, pa.int64()), "seq": picked["seq"]})
        cur = self.store.cursor()
        try:
            cur.register("_nodes", keys)
            from raceway_core.browse import ROW_COLUMNS

            seqs = picked["seq"].to_numpy()
            lo, hi = (int(seqs.min()), int(seqs.max())) if len(seqs) else (0, -1)
            # filtered by trace (and seq range): the scan then reads the row columns of this trace's
            # events only, not of every event the join probes (138 -> 21 ms for 256 rows of a 1M store)
            out = query_arrow(cur, f"""SELECT n.node, {ROW_COLUMNS}
                                       FROM _nodes n JOIN (SELECT * FROM events WHERE seq BETWEEN {lo} AND {hi}
                                                           AND trace_id = $t) e
                                       ON e.seq = n.seq ORDER BY n.node""", {"t": tree.trace_id})
            cur.unregister("_nodes")
            return out
        finally:
            cur.close()

    def replay(self, trace_id: str, max_pairs: int = 50_000) -> "_replay.Replay":
        """The trace step by step in causal order (at most ``max_pairs`` of its racing pairs marked)."""
        self.engine
        pairs, total = self._trace_pairs(trace_id, max_pairs)
        cur = self.store.cursor()
        try:
            return _replay.build(self.store, cur, trace_id, pairs, total)
        finally:
            cur.close()

    def _trace_pairs(self, trace_id: str, limit: int) -> tuple[pa.Table | None, int]:
        """The racing pairs with both events in the trace (first_seq, second_seq, variable, kind,
        severity), at most ``limit``, and how many there are: the stored ones when they are all of them (listing a
        trace's pairs from the engine reads every access of the trace's variables)."""
        total = self._q("SELECT coalesce(sum(count), 0) AS n FROM hb.race_trace_groups WHERE trace_id = $t",
                        {"t": trace_id})["n"][0].as_py()
        if not total or limit <= 0:
            return None, int(total)
        stored = self._q("""
            SELECT p.first_seq, p.second_seq, p.variable, p.kind, p.severity FROM hb.race_pairs p
            SEMI JOIN (SELECT seq FROM hb.ev WHERE trace_id = $t) a ON a.seq = p.first_seq
            WHERE NOT p.cross_trace ORDER BY p.o""", {"t": trace_id})
        if stored.num_rows >= total:
            return stored.slice(0, limit), int(total)
        batches, left = [], limit
        for batch in self.engine.iter_race_pairs(trace_id):
            batches.append(batch.slice(0, left))
            left -= batches[-1].num_rows
            if left <= 0:
                break
        return (pa.concat_tables(batches) if batches else None), int(total)
    def dashboard(self, trace_id: str | None = None, top: int = 5, analysed: bool = True) -> "_dashboard.Dashboard":
        """Totals, the worst races, the slowest traces (of a trace: operations), the top
        anomalies, a request latency histogram and events over time (analysis/dashboard.py);
        ``analysed`` False: without the analysis (nor starting it)."""
        return _dashboard.dashboard(self, trace_id, top, analysed)

    def deadlocks(self) -> "_deadlocks.DeadlockReport":
        """Potential deadlocks: lock-order cycles no happens-before (without locks) rules out."""
        with self._lock:
            eng = self.engine
            cached = self._deadlock_cache
            if cached is None or cached[0] is not eng:
                cur = self.store.cursor()
                try:
                    cached = (eng, _deadlocks.analyze(cur, eng))
                finally:
                    cur.close()
                self._deadlock_cache = cached
            return cached[1]

    def report(self, max_pairs: int = 100_000, lazy_pairs: bool = False) -> dict:
        """The analysis document; with lazy_pairs its race pairs are an iterator (see
        report.write_json), so a listing of millions is never held."""
        from raceway_core.report import analysis_document

        return analysis_document(self, max_pairs, lazy_pairs)
