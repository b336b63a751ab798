"""The server's read queries. Each takes a DuckDB cursor of the calling thread.

Events go out as their stored raw JSON text, spliced into the response without
being parsed again. A server's store is filled by appends (or is a --db file), which
always keep the text in events.raw (rawtext: only in-memory file loads do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from raceway_core.dbutil import query_arrow
from raceway_core.loading.pyfast import ROW_COLUMNS
from raceway_core.schema import REC_BITS

MAX_PAGE_SIZE = 10_000
MAX_FEED_LIMIT = 20_000


def rfc3339(ns: int) -> str:
    """A UTC timestamp the way the original server prints it (chrono's to_rfc3339):
    fraction digits only as needed, in groups of 3, and a +00:00 offset."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        tail = ""
    elif frac % 1_000_000 == 0:
        tail = f".{frac // 1_000_000:03d}"
    elif frac % 1_000 == 0:
        tail = f".{frac // 1_000:06d}"
    else:
        tail = f".{frac:09d}"
    return f"{base}{tail}+00:00"


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    event_count: int
    first_ns: int
    last_ns: int
    services: tuple[str, ...]

    def as_json(self) -> dict:
        return {"trace_id": self.trace_id, "event_count": self.event_count,
                "first_timestamp": rfc3339(self.first_ns), "last_timestamp": rfc3339(self.last_ns),
                "service_count": len(self.services), "services": list(self.services)}

    def as_stored_json(self) -> dict:
        """As the original's storage TraceSummary serialises (serde: its field order,
        chrono's UTC timestamps ending in Z), which /api/services/{name}/traces sends."""
        return {"trace_id": self.trace_id, "event_count": self.event_count,
                "first_timestamp": rfc3339(self.first_ns).replace("+00:00", "Z"),
                "last_timestamp": rfc3339(self.last_ns).replace("+00:00", "Z"),
                "services": list(self.services), "service_count": len(self.services)}


def trace_page(cur: duckdb.DuckDBPyConnection, page: int, page_size: int, *, min_events: int | None = None,
               service: str | None = None) -> tuple[list[TraceSummary], int]:
    """One page of traces, newest last event first (as the original orders them); and the total.
    ``min_events``: only traces with at least that many events; ``service``: only
    traces with an event of that service (both as the original's filters)."""
    having = "WHERE n >= $min" if min_events is not None else ""
    with_service = "HAVING bool_or(service = $svc)" if service is not None else ""
    params = {"size": page_size, "skip": (page - 1) * page_size}
    if min_events is not None:
        params["min"] = min_events
    if service is not None:
        params["svc"] = service
    rows = cur.execute(f"""
        WITH t AS (
            SELECT trace_id, count(*) AS n, min(ts_ns) AS first_ns, max(ts_ns) AS last_ns,
                   list(DISTINCT service ORDER BY service) FILTER (WHERE service IS NOT NULL) AS services
            FROM events GROUP BY trace_id {with_service})
        SELECT trace_id, n, first_ns, last_ns, services, count(*) OVER () AS total
        FROM t {having} ORDER BY last_ns DESC, trace_id LIMIT $size OFFSET $skip
    """, params).fetchall()
    if rows:
        total = rows[0][5]
    elif min_events is None and service is None:  # past the last page: still say how many there are
        total = cur.execute("SELECT count(DISTINCT trace_id) FROM events").fetchall()[0][0]
    else:
        params.pop("size"), params.pop("skip")
        total = cur.execute(f"""
            SELECT count(*) FROM (SELECT trace_id, count(*) AS n FROM events GROUP BY trace_id {with_service}) {having}
        """, params).fetchall()[0][0]
    return [TraceSummary(r[0], r[1], r[2], r[3], tuple(r[4] or ())) for r in rows], total


def trace_events(cur: duckdb.DuckDBPyConnection, trace_id: str) -> list[str]:
    """A trace's events as raw JSON, in the original's order: time, clock size, id."""
    rows = cur.execute(
        "SELECT CAST(raw AS VARCHAR) FROM events WHERE trace_id = ? "
        "ORDER BY ts_ns, coalesce(len(clock), 0), id", [trace_id]).fetchall()
    return [r[0] for r in rows]


def linked_trace_events(cur: duckdb.DuckDBPyConnection, trace_id: str) -> list[str]:
    """A trace's events merged with those of the traces its spans link to, as the
    original does with distributed tracing on: from the spans of this trace, follow
    span links (upstream_span_id -> distributed_span_id) both ways, trace by trace,
    to every trace reached; add those traces' events whose span was reached. A span
    belongs to the trace of its first event. Order as ``trace_events``."""
    rows = cur.execute("""
        WITH RECURSIVE owner AS (
            SELECT span_id, arg_min(trace_id, seq) AS trace_id FROM events WHERE span_id IS NOT NULL GROUP BY span_id
        ), links AS (
            SELECT DISTINCT upstream_span_id AS a, span_id AS b FROM events
            WHERE span_id IS NOT NULL AND upstream_span_id IS NOT NULL
        ), hops AS (  -- trace to trace, both ways
            SELECT oa.trace_id AS x, ob.trace_id AS y FROM links JOIN owner oa ON oa.span_id = a JOIN owner ob ON ob.span_id = b
            UNION SELECT ob.trace_id, oa.trace_id FROM links JOIN owner oa ON oa.span_id = a JOIN owner ob ON ob.span_id = b
        ), reach(t) AS (
            SELECT CAST($t AS VARCHAR) UNION SELECT hops.y FROM hops JOIN reach ON hops.x = reach.t
        ), spans AS (  -- this trace's spans and both ends of every link touching a reached trace's span
            SELECT span_id AS s FROM owner WHERE trace_id = $t
            UNION SELECT l.a FROM links l JOIN owner o ON o.span_id IN (l.a, l.b) JOIN reach ON reach.t = o.trace_id
            UNION SELECT l.b FROM links l JOIN owner o ON o.span_id IN (l.a, l.b) JOIN reach ON reach.t = o.trace_id
        )
        SELECT CAST(raw AS VARCHAR) FROM events
        WHERE trace_id = $t OR (trace_id IN (SELECT t FROM reach) AND span_id IN (SELECT s FROM spans))
        ORDER BY ts_ns, coalesce(len(clock), 0), id
    """, {"t": trace_id}).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[str]  # raw JSON, in arrival order
    next_cursor: int  # the seq of the last event returned (or the cursor given)
    has_more: bool


def _page_end(cur: duckdb.DuckDBPyConnection, after: int, limit: int) -> tuple[int | None, bool]:
    """The seq of the last event of a page (None: no events after ``after``) and
    whether more follow. Only the seq column is sorted: sorting whole rows to
    keep a page of them cost a catching-up client a scan of everything after
    its cursor, for each page."""
    seqs = cur.execute("SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                       [after, limit + 1]).fetchnumpy()["seq"]
    if not len(seqs):
        return None, False
    return int(seqs[min(limit, len(seqs)) - 1]), len(seqs) > limit


def feed(cur: duckdb.DuckDBPyConnection, after: int, limit: int) -> FeedPage:
    """Events stored after ``after`` (a seq), in arrival order.

    One writer numbers commits in increasing seq and readers see whole commits,
    so a reader never sees a later seq before an earlier one: resuming from the
    last seq returned misses nothing.
    """
    end, more = _page_end(cur, after, limit)
    if end is None:
        return FeedPage([], after, False)
    rows = cur.execute("SELECT CAST(raw AS VARCHAR) FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
                       [after, end]).fetchall()
    return FeedPage([r[0] for r in rows], end, more)


def feed_rows(cur: duckdb.DuckDBPyConnection, after: int, limit: int) -> tuple[pa.Table, int, bool]:
    """``feed`` as stored rows, which a client stores as they are (``batch.Rows``,
    numbered its own way): (the table of ``ROW_COLUMNS``, next cursor, more?)."""
    cols = ", ".join(f'"{c}"' for c in ROW_COLUMNS)
    end, more = _page_end(cur, after, limit)
    bound = after if end is None else end
    t = query_arrow(cur, f"SELECT {cols} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq", [after, bound])
    return t, bound, more


def counts(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    events, traces = cur.execute("SELECT count(*), count(DISTINCT trace_id) FROM events").fetchall()[0]
    rejected = cur.execute("SELECT count(*) FROM rejects").fetchall()[0][0]
    return {"events": events, "traces": traces, "rejected": rejected}


def parse_cursor(text: str | None) -> int:
    """A feed cursor (the decimal seq of the last event seen); '' or None for the start."""
    if text in (None, ""):
        return 0
    if not text.isdigit() or len(text) > 19:
        raise ValueError(f"invalid cursor {text!r}: expected the next_cursor of a previous page")
    value = int(text)
    if value >= 1 << (31 + REC_BITS):
        raise ValueError(f"invalid cursor {text!r}: out of range")
    return value
