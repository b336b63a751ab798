"""Paging, locating and searching events for a viewer (no UI code).

A ``Timeline`` is the events of one trace, or of all traces, as rows numbered
densely from 0: in causal order once the analysis is up to date (``hb.ev.tord``
inside a trace, ``hb.ev.ord`` across traces), in (timestamp, input) order before
that, so a viewer can show events while the analysis still runs. A viewer
fetches only the rows it shows (``page``), finds the row of an event
(``locate``) and searches (``search``). Every call opens its own cursor, so any
thread may call it.

``trace_list`` lists traces without waiting for the analysis; ``group_pairs``
pages the racing pairs of one race group.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.dbutil import query_arrow
from raceway_core.intervals import span_ns

from raceway_core import rawtext
from raceway_core.rawtext import NOTE  # noqa: F401 - the kind's most telling field, for viewers

# What a viewer needs to draw a row.
ROW_COLUMNS = f"""
    e.seq, e.id, e.trace_id, coalesce(e.thread_id, '') AS thread_id, e.service, e.kind, e.variable, e.access,
    CAST(e.old_value AS VARCHAR) AS old_value, CAST(e.new_value AS VARCHAR) AS new_value, e.location,
    e.function_name, e.http_method, e.http_status, e.lock_id, e.task_id, e.future_id, e.duration_ns, e.ts_ns,
    e.parent_id, {NOTE} AS note
"""

# Time order before the analysis: contexts get their lane by first event, as hb.ctx does.
TIME_LANES = """
    SELECT coalesce(thread_id, '') AS thread_id,
           CAST(row_number() OVER (ORDER BY min(ts_ns), arg_min(seq, (ts_ns, seq))) - 1 AS INTEGER) AS lane,
           coalesce(mode(service) || '/', '') || coalesce(thread_id, '') AS label, count(*) AS events
    FROM events WHERE trace_id = $t GROUP BY 1
"""


ANCHOR_EVERY = 2048  # time order across all traces: a known (ts_ns, seq) every this many rows


@dataclass(frozen=True)
class SearchResult:
    row: int | None  # the next (or previous) matching row, wrapping around; None when nothing matches
    matches: int  # how many rows match in the timeline
    by: str  # "id" (an id prefix matched) or "text"


class Timeline:
    """The rows of one trace (``trace_id``) or of all traces (None)."""

    def __init__(self, session, trace_id: str | None = None) -> None:
        self.session = session
        self.store = session.store
        self.trace_id = trace_id
        self.causal = session.analysed  # decided once: the row numbering must not change under a viewer
        self.version = self.store.version
        self._anchor_keys: list[tuple[int, int]] | None = None
        self._racing_seqs: np.ndarray | None = None
        self._anchor_lock = threading.Lock()  # the lazily computed indexes above
        self._hits: tuple | None = None  # (text, version) and the seqs found in files

    # -- plumbing ---------------------------------------------------------------------
    def _q(self, sql: str, params: dict | None = None, tables: dict | None = None) -> pa.Table:
        if self.causal:
            self.session.engine  # the hb tables are current (waits if a new analysis runs)
        cur = self.store.cursor()
        try:
            for name, table in (tables or {}).items():
                cur.register(name, table)
            return query_arrow(cur, sql, params)
        finally:
            cur.close()

    def _params(self, **kw) -> dict:
        return ({"t": self.trace_id} if self.trace_id is not None else {}) | kw

    def _row_numbers_sql(self) -> str:
        """seq -> row for every event of the timeline."""
        if self.causal:
            col, flt = ("tord", "WHERE trace_id = $t") if self.trace_id is not None else ("ord", "")
            return f"SELECT seq, {col} AS row FROM hb.ev {flt}"
        flt = "WHERE trace_id = $t" if self.trace_id is not None else ""
        return f"SELECT seq, row_number() OVER (ORDER BY ts_ns, seq) - 1 AS row FROM events {flt}"

    # -- size and lanes ---------------------------------------------------------------
    def count(self) -> int:
        if self.trace_id is None:
            return int(self._q("SELECT count(*) AS n FROM events")["n"][0].as_py())
        return int(self._q("SELECT count(*) AS n FROM events WHERE trace_id = $t", self._params())["n"][0].as_py())

    def start_ns(self) -> int | None:
        """The earliest timestamp of the timeline (ns), for relative times."""
        sql = "SELECT min(ts_ns) AS t FROM events" + (" WHERE trace_id = $t" if self.trace_id is not None else "")
        return self._q(sql, self._params())["t"][0].as_py()

    def lanes(self) -> pa.Table:
        """One row per lane: lane, label, events, first_row, last_row (rows only within a trace)."""
        if self.trace_id is None:
            sql = """SELECT lane, 'lane ' || lane AS label, CAST(sum(events) AS BIGINT) AS events,
                            CAST(NULL AS BIGINT) AS first_row, CAST(NULL AS BIGINT) AS last_row
                     FROM hb.ctx GROUP BY lane ORDER BY lane"""
            if not self.causal:
                return pa.table({"lane": pa.array([], pa.int32()), "label": pa.array([], pa.string()),
                                 "events": pa.array([], pa.int64()), "first_row": pa.array([], pa.int64()),
                                 "last_row": pa.array([], pa.int64())})
            return self._q(sql)
        if self.causal:
            sql = """SELECT c.lane, c.label, c.events, min(o.tord) AS first_row, max(o.tord) AS last_row
                     FROM hb.ctx c JOIN hb.ev o ON o.ctx = c.ctx WHERE c.trace_id = $t
                     GROUP BY ALL ORDER BY c.lane"""
        else:
            sql = f"""WITH r AS (SELECT coalesce(thread_id, '') AS thread_id,
                                        row_number() OVER (ORDER BY ts_ns, seq) - 1 AS row
                                 FROM events WHERE trace_id = $t)
                      SELECT l.lane, l.label, l.events, min(r.row) AS first_row, max(r.row) AS last_row
                      FROM r JOIN ({TIME_LANES}) l USING (thread_id) GROUP BY ALL ORDER BY l.lane"""
        return self._q(sql, self._params())

    # -- rows ---------------------------------------------------------------------------
    def page(self, start: int, count: int) -> pa.Table:
        """Rows start .. start+count-1, with ``racing`` (the event takes part in a race) and
        ``edges_in``: the incoming happens-before edges from other contexts
        (list of {kind, detail, src_id, src_lane, src_trace})."""
        start, end = max(0, int(start)), max(0, int(start) + int(count))
        if self.causal and self.trace_id is None:
            rows = self._q(f"""SELECT o.ord AS row, c.lane, {ROW_COLUMNS}
                               FROM hb.ev o JOIN events e USING (seq) JOIN hb.ctx c ON c.ctx = o.ctx
                               WHERE o.ord >= $a AND o.ord < $b ORDER BY o.ord""", {"a": start, "b": end})
        elif self.causal:
            rows = self._q(f"""SELECT o.tord AS row, c.lane, {ROW_COLUMNS}
                               FROM hb.ev o JOIN events e USING (seq) JOIN hb.ctx c ON c.ctx = o.ctx
                               WHERE o.trace_id = $t AND o.tord >= $a AND o.tord < $b ORDER BY o.tord""",
                           self._params(a=start, b=end))
        elif self.trace_id is not None:
            rows = self._q(f"""
                WITH p AS (SELECT seq, row_number() OVER (ORDER BY ts_ns, seq) - 1 AS row
                           FROM events WHERE trace_id = $t QUALIFY row >= $a AND row < $b)
                SELECT p.row, l.lane, {ROW_COLUMNS}
                FROM p JOIN events e USING (seq) JOIN ({TIME_LANES}) l ON l.thread_id = coalesce(e.thread_id, '')
                ORDER BY p.row""", self._params(a=start, b=end))
        else:
            # (timestamp, seq) order over everything: start from the nearest anchor row, so a
            # page deep in a million events costs a filtered scan, not a million-row OFFSET
            flt, skip = "", start
            if start >= ANCHOR_EVERY:
                t, s = self._anchors()[start // ANCHOR_EVERY]
                flt = f"WHERE ts_ns > {int(t)} OR (ts_ns = {int(t)} AND seq >= {int(s)})"
                skip = start % ANCHOR_EVERY
            rows = self._q(f"""
                WITH p AS (SELECT seq, ts_ns FROM events {flt} ORDER BY ts_ns, seq LIMIT {end - start} OFFSET {skip})
                SELECT {start} + row_number() OVER (ORDER BY p.ts_ns, p.seq) - 1 AS row,
                       CAST(NULL AS INTEGER) AS lane, {ROW_COLUMNS}
                FROM p JOIN events e USING (seq) ORDER BY row""")
        return self._decorate(rows)

    def prepare(self) -> None:
        """Do now what random access will need, so that the first jump deep into the
        timeline is quick: the racing events (after the analysis), or one sort for the
        anchors (before it, across all traces)."""
        if self.causal:
            self._racing()
        elif self.trace_id is None and self.count() > ANCHOR_EVERY:
            self._anchors()

    def _racing(self) -> np.ndarray:
        """The seq of every event in a stored racing pair, sorted (computed once)."""
        with self._anchor_lock:
            if self._racing_seqs is None:
                t = self._q("SELECT first_seq AS s FROM hb.race_pairs UNION SELECT second_seq FROM hb.race_pairs")
                self._racing_seqs = np.sort(t["s"].to_numpy(zero_copy_only=False).astype(np.int64))
            return self._racing_seqs

    def _anchors(self) -> list[tuple[int, int]]:
        """(ts_ns, seq) of every ANCHOR_EVERY-th event in time order (one sort, then cached)."""
        with self._anchor_lock:
            if self._anchor_keys is None:
                t = self._q(f"""SELECT ts_ns, seq FROM (
                                    SELECT ts_ns, seq, row_number() OVER (ORDER BY ts_ns, seq) - 1 AS r FROM events)
                                WHERE r % {ANCHOR_EVERY} = 0 ORDER BY r""")
                self._anchor_keys = list(zip(t["ts_ns"].to_pylist(), t["seq"].to_pylist()))
            return self._anchor_keys

    def _decorate(self, rows: pa.Table) -> pa.Table:
        n = rows.num_rows
        if not self.causal or n == 0:
            return (rows.append_column("racing", pa.array([False] * n, pa.bool_()))
                    .append_column("edges_in", pa.nulls(n, EDGE_LIST)))
        seqs = pa.table({"seq": rows["seq"]})
        racing_seqs = self._racing_seqs  # until prepare() has it, ask for this page's rows only
        cur = self.store.cursor()
        try:
            cur.register("_page", seqs)
            if racing_seqs is None:
                racing_seqs = np.sort(query_arrow(cur, """
                    SELECT p.first_seq AS s FROM hb.race_pairs p SEMI JOIN _page ON _page.seq = p.first_seq
                    UNION SELECT p.second_seq FROM hb.race_pairs p SEMI JOIN _page ON _page.seq = p.second_seq
                    """)["s"].to_numpy(zero_copy_only=False).astype(np.int64))
            edges = query_arrow(cur, """
                SELECT g.dst AS seq, list({'kind': g.kind, 'detail': g.detail, 'src_id': s.id,
                                           'src_lane': c.lane, 'src_trace': c.trace_id} ORDER BY g.src_idx DESC) AS edges_in
                FROM hb.edges g SEMI JOIN _page ON _page.seq = g.dst
                JOIN hb.ctx c ON c.ctx = g.src_ctx JOIN events s ON s.seq = g.src
                WHERE NOT g.dropped AND g.src_ctx <> g.dst_ctx
                GROUP BY g.dst""")
            cur.unregister("_page")
        finally:
            cur.close()
        page_seqs = rows["seq"].to_numpy()
        at = np.searchsorted(racing_seqs, page_seqs)
        racing = (at < len(racing_seqs)) & (racing_seqs[np.minimum(at, len(racing_seqs) - 1)] == page_seqs) \
            if len(racing_seqs) else np.zeros(len(page_seqs), dtype=bool)
        by_seq = dict(zip(edges["seq"].to_pylist(), edges["edges_in"].to_pylist()))
        seq_list = page_seqs.tolist()
        return (rows.append_column("racing", pa.array(racing, pa.bool_()))
                .append_column("edges_in", pa.array([by_seq.get(s) for s in seq_list], EDGE_LIST)))

    def table(self) -> pa.Table:
        """Every row (for export)."""
        return self.page(0, self.count())

    def locate(self, event_id: str) -> int | None:
        """The row of an event, or None when it is not in this timeline."""
        t = self._q(f"""SELECT r.row FROM ({self._row_numbers_sql()}) r
                        SEMI JOIN (SELECT seq FROM events WHERE id = $id) m ON m.seq = r.seq""",
                    self._params(id=event_id))
        rows = t["row"].to_pylist()
        return int(rows[0]) if rows else None

    def search(self, text: str, after: int = -1, backwards: bool = False) -> SearchResult:
        """The next row after ``after`` (or the previous one before it) matching ``text``.

        ``id:X`` an id prefix, ``kind:X``, ``var:X``, ``loc:X`` a field containing X;
        plain text: an id prefix when some event id starts with it, else any text of
        the event (kind, variable, location, values, the raw JSON). Case-insensitive.
        """
        text = text.strip()
        if not text:
            return SearchResult(None, 0, "text")
        field, _, value = text.partition(":")
        fields = {"id": "starts_with(lower(e.id), $q)", "kind": "contains(lower(e.kind), $q)",
                  "var": "contains(lower(coalesce(e.variable, '')), $q)",
                  "loc": "contains(lower(coalesce(e.location, '')), $q)"}
        if field in fields and value:
            conds = [(field if field == "id" else "text", fields[field], value.strip().lower())]
        else:
            q = text.lower()
            # events whose text is not stored: their lines are searched in the file
            conds = [("id", fields["id"], q), ("text", "(contains(lower(CAST(e.raw AS VARCHAR)), $q) "
                                                      "OR e.seq IN (SELECT seq FROM _raw_hits))", q)]
        for by, cond, q in conds:
            flt = "AND e.trace_id = $t" if self.trace_id is not None else ""
            tables = {"_raw_hits": self._raw_hits(q)} if "_raw_hits" in cond else None
            t = self._q(f"""
                SELECT count(*) AS n, min(row) FILTER (WHERE row > $after) AS next, min(row) AS first,
                       max(row) FILTER (WHERE row < $after) AS prev, max(row) AS last
                FROM ({self._row_numbers_sql()}) r
                SEMI JOIN (SELECT e.seq FROM events e WHERE {cond} {flt}) m ON m.seq = r.seq""",
                        self._params(q=q, after=int(after)), tables)
            r = t.to_pylist()[0]
            if r["n"]:
                row = (r["prev"] if r["prev"] is not None else r["last"]) if backwards else \
                      (r["next"] if r["next"] is not None else r["first"])
                return SearchResult(int(row), int(r["n"]), by)
        return SearchResult(None, 0, "text")

    def _raw_hits(self, q: str) -> pa.Table:
        """rawtext.search, kept for the next search of the same text (n, N)."""
        key = (q, self.store.version)
        if self._hits is None or self._hits[0] != key:
            cur = self.store.cursor()
            try:
                self._hits = (key, rawtext.search(cur, q))
            finally:
                cur.close()
        return self._hits[1]


EDGE_LIST = pa.list_(pa.struct([("kind", pa.string()), ("detail", pa.string()), ("src_id", pa.string()),
                                ("src_lane", pa.int32()), ("src_trace", pa.string())]))


def trace_list(store) -> pa.Table:
    """One row per trace without waiting for the analysis: trace_id, events, contexts,
    services, start, duration_ms, failures (HTTP 4xx / 5xx responses and errors; race and
    anomaly counts come with ``TraceSession.traces``)."""
    cur = store.cursor()
    try:
        return query_arrow(cur, f"""
            SELECT trace_id, count(*) AS events, count(DISTINCT thread_id) AS contexts,
                   list(DISTINCT service ORDER BY service) FILTER (WHERE service IS NOT NULL) AS services,
                   min(timestamp) AS start, {span_ns()} / 1e6 AS duration_ms,
                   count(*) FILTER (WHERE http_status >= 400 OR kind = 'Error') AS failures
            FROM events GROUP BY trace_id ORDER BY start, trace_id""")
    finally:
        cur.close()


def critical_overview(session) -> pa.Table:
    """Every trace's critical path in one query, ordered by trace id: trace_id, duration_ms,
    trace_span_ms, sum_ms, percentage, steps. The figures of ``session.critical_paths()``
    without building a table per trace (seconds at a million events)."""
    session.engine  # the hb tables are current
    cur = session.store.cursor()
    try:
        return query_arrow(cur, """
            WITH n AS (SELECT c.trace_id, count(*) AS steps FROM hb.critical c JOIN events e USING (seq)
                       GROUP BY c.trace_id)
            SELECT s.trace_id, CAST(s.path_ns AS DOUBLE) / 1e6 AS duration_ms,
                   CAST(s.span_ns AS DOUBLE) / 1e6 AS trace_span_ms, CAST(s.sum_ns AS DOUBLE) / 1e6 AS sum_ms,
                   s.percentage, coalesce(n.steps, 0) AS steps
            FROM hb.critical_summary s LEFT JOIN n USING (trace_id) ORDER BY s.trace_id""")
    finally:
        cur.close()


def event_record(store, event_id: str) -> dict | None:
    """Every stored field of one event, without the analysis (no computed clock or lock set)."""
    cur = store.cursor()
    try:
        rows = rawtext.fill(cur, query_arrow(cur, "SELECT * FROM events WHERE id = $id", {"id": event_id}).to_pylist())
    finally:
        cur.close()
    return rows[0] if rows else None


def group_pairs(session, group: dict, trace_id: str | None = None, limit: int = 200) -> pa.Table:
    """The racing pairs of one race group (keys: variable, kind, first_location,
    second_location), in causal order, at most ``limit``; with ``trace_id`` only the
    pairs with both events in that trace. Listed from the engine (not the stored pairs,
    which are capped), so every group shows its pairs."""
    parts, n = [], 0
    for batch in session.iter_race_pairs(trace_id, None, group["variable"]):
        keep = pc.and_(pc.equal(batch["kind"], group["kind"]), pc.and_(
            _same(batch["first_location"], group["first_location"]),
            _same(batch["second_location"], group["second_location"])))
        batch = batch.filter(keep).slice(0, limit - n)
        parts.append(batch.drop_columns(["first_seq", "second_seq"]))
        n += batch.num_rows
        if n >= limit:
            break
    return pa.concat_tables(parts) if parts else session._pair_details(None).drop_columns(["first_seq", "second_seq"])


def _same(col, value):
    """Equal, nulls included (a location may be unknown)."""
    return pc.is_null(col) if value is None else pc.fill_null(pc.equal(col, value), False)

