"""Write an Arrow table (a view of the analysis) to JSON or Parquet; and what the original's
web UI exports: a trace's events as wire-format JSON, events as CSV, the critical path and
the anomalies as Markdown (``export``, used by `raceway-tui export` and the palette)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from raceway_core import rawtext
from raceway_core.errors import RacewayError

FORMATS = ("json", "parquet")


def json_default(value):
    """orjson's ``default`` for what DuckDB results hold beyond plain JSON types."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError


def write_table(table: pa.Table, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``table`` to ``path``: ``json`` (an array of row objects) or ``parquet``;
    the format defaults to the file's suffix. Returns the path written."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise RacewayError(f"cannot export to {path}: unknown format {fmt!r} (use .json or .parquet)")
    try:
        if fmt == "parquet":
            pq.write_table(table, path)
        else:
            path.write_bytes(orjson.dumps(table.to_pylist(), default=json_default,
                                          option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2))
    except OSError as exc:
        raise RacewayError(f"cannot export to {path}: {exc.strerror or exc}") from exc
    return path


# -- what the original's web UI exports: a trace as JSON, events as CSV, the critical path
# and the anomalies as Markdown (web/src/lib/export.ts), here for one trace or all traces.

WHATS = ("trace", "events", "critical", "anomalies")
WHAT_FORMATS = {"trace": ("json",), "events": ("csv", "json"), "critical": ("md", "json", "csv"),
                "anomalies": ("md", "json", "csv")}
DEFAULT_FORMAT = {"trace": "json", "events": "csv", "critical": "md", "anomalies": "md"}
BATCH = 20_000  # rows fetched at a time while streaming events out

# The events CSV: the original's columns first (ID, Timestamp, Kind, Thread ID, Service Name,
# Environment, Location), then what our events hold besides.
EVENT_COLUMNS = f"""
    id, strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%fZ') AS timestamp, kind, thread_id, service,
    {rawtext.environment()} AS environment, location, trace_id, parent_id, ts_ns,
    duration_ns / 1e6 AS duration_ms, variable, access, CAST(old_value AS VARCHAR) AS old_value,
    CAST(new_value AS VARCHAR) AS new_value, lock_id, function_name, http_method, http_status, span_id,
    upstream_span_id, instance_id"""


def _where(trace_id: str | None) -> tuple[str, dict | None]:
    return ("WHERE trace_id = $t", {"t": trace_id}) if trace_id is not None else ("", None)


def _check_trace(session, trace_id: str | None) -> None:
    if trace_id is None:
        return
    cur = session.store.cursor()
    try:
        found = cur.execute("SELECT 1 FROM events WHERE trace_id = $t LIMIT 1", {"t": trace_id}).fetchall()
    finally:
        cur.close()
    if not found:
        raise RacewayError(f"no trace with id {trace_id!r} in the store")


def resolve_trace(session, given: str) -> str:
    """A trace id, or an unambiguous prefix of one (the explorer shows 8 characters)."""
    cur = session.store.cursor()
    try:
        exact = cur.execute("SELECT 1 FROM events WHERE trace_id = $t LIMIT 1", {"t": given}).fetchall()
        if exact:
            return given
        found = [r[0] for r in cur.execute(
            "SELECT DISTINCT trace_id FROM events WHERE starts_with(trace_id, $t) ORDER BY 1 LIMIT 6",
            {"t": given}).fetchall()]
    finally:
        cur.close()
    if not found:
        raise RacewayError(f"no trace with id {given!r} in the store")
    if len(found) > 1:
        raise RacewayError(f"{given!r} starts several trace ids ({', '.join(found[:5])}"
                           f"{', …' if len(found) > 5 else ''}): give more of it")
    return found[0]


def _batches(session, sql: str, params: dict | None):
    """The rows of ``sql`` as Arrow record batches, a few at a time (a 1M-event export is never held)."""
    cur = session.store.cursor()
    try:
        rel = cur.sql(sql, params=params) if params else cur.sql(sql)
        reader = getattr(rel, "to_arrow_reader", None) or rel.record_batch  # DuckDB 2.x / 1.x
        yield from reader(BATCH)
    finally:
        cur.close()


def write_trace_json(session, trace_id: str | None, out, summary: bool = True) -> int:
    """The events of a trace (None: of every trace) in the wire format, as stored, in their
    input order: ``{"trace_id", "exported_at", "summary", "events": [...]}``, a document
    `raceway-tui load` reads back (its ``events`` array). ``summary`` (as the original's
    export: event count, racing pairs, anomalies, critical path share and trace duration)
    needs the analysis. Returns the number of events written."""
    _check_trace(session, trace_id)
    head = {"trace_id": trace_id, "exported_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    if summary:
        head["summary"] = trace_summary(session, trace_id)
    out.write(orjson.dumps(head, default=json_default)[:-1] + b', "events": [')
    where, params = _where(trace_id)
    n = 0
    sql = f"SELECT seq, line, CAST(raw AS VARCHAR) AS raw, raw_at FROM events {where} ORDER BY seq"
    cur = session.store.cursor()
    try:
        for raw in rawtext.texts(_batches(session, sql, params), cur):
            out.write(b"\n  " if n == 0 else b",\n  ")
            out.write(raw.encode())
            n += 1
    finally:
        cur.close()
    out.write(b"\n]}\n")
    return n


def trace_summary(session, trace_id: str | None) -> dict:
    """The original export's summary: total_events, race_conditions (racing pairs), anomalies,
    critical_path_percentage and duration_ms (of the trace; None for all traces)."""
    where, params = _where(trace_id)
    cur = session.store.cursor()
    try:
        events = cur.execute(f"SELECT count(*) FROM events {where}", params).fetchall()[0][0]
    finally:
        cur.close()
    out = {"total_events": events, "race_conditions": session.races(trace_id, max_pairs=0).pair_count,
           "anomalies": session.anomalies(trace_id).num_rows, "critical_path_percentage": None, "duration_ms": None}
    if trace_id is not None:
        cp = session.critical_path(trace_id)
        out["critical_path_percentage"], out["duration_ms"] = cp.percentage, cp.trace_span_ms
    return out


def events_table(session, trace_id: str | None = None) -> pa.Table:
    """The events (of a trace), one row each with the CSV's columns, in input order."""
    _check_trace(session, trace_id)
    where, params = _where(trace_id)
    return session._q(f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY seq", params)


def write_events_csv(session, trace_id: str | None, out) -> int:
    """The events (of a trace) as CSV (RFC 4180 quoting: commas, quotes and newlines in data
    stay inside their cell), streamed. Returns the number of rows."""
    import pyarrow.csv as pacsv

    _check_trace(session, trace_id)
    where, params = _where(trace_id)
    writer, n = None, 0
    for batch in _batches(session, f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY seq", params):
        if writer is None:
            writer = pacsv.CSVWriter(out, batch.schema)
        writer.write_batch(batch)
        n += batch.num_rows
    if writer is None:  # no events: the header alone
        pacsv.write_csv(session._q(f"SELECT {EVENT_COLUMNS} FROM events LIMIT 0"), out)
    else:
        writer.close()
    return n


def critical_table(session, trace_id: str) -> pa.Table:
    """The critical path's steps: step, id, kind, what (a one-line note), context, location,
    timestamp, duration_ms (what it adds to the path)."""
    if trace_id is None:
        raise RacewayError("the critical path is a trace's: name the trace (--trace ID)")
    _check_trace(session, trace_id)
    cp = session.critical_path(trace_id)
    t = cp.events
    return pa.table({
        "step": pa.array(range(1, t.num_rows + 1), pa.int32()), "id": t["id"], "kind": t["kind"],
        "function_name": t["function_name"], "variable": t["variable"], "lock_id": t["lock_id"],
        "note": t["note"], "service": t["service"], "thread_id": t["thread_id"], "location": t["location"],
        "timestamp": t["timestamp"], "duration_ms": t["duration_ms"]})


def critical_markdown(session, trace_id: str) -> str:
    """The critical path as Markdown: its summary, then one table row per step."""
    table = critical_table(session, trace_id)
    cp = session.critical_path(trace_id)
    pct = "-" if cp.percentage is None else f"{cp.percentage:.2f}%"
    lines = [f"# Critical path of trace {md_text(trace_id)}", "",
             f"Generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by raceway-tui.", "",
             "## Summary", "",
             f"- **Path events:** {table.num_rows}",
             f"- **Path duration:** {cp.duration_ms:.2f} ms",
             f"- **Trace duration:** {cp.trace_span_ms:.2f} ms",
             f"- **Share of the trace:** {pct}", "",
             "## Steps", ""]
    rows = [[r["step"], r["kind"], _what(r), _context(r), r["location"], _ts(r["timestamp"]),
             f"{r['duration_ms']:.3f}", r["id"]] for r in table.to_pylist()]
    lines += md_table(["#", "kind", "what", "context", "location", "time (UTC)", "ms", "event id"], rows,
                      align="rlllllrl")
    return "\n".join(lines) + "\n"


def anomalies_table(session, trace_id: str | None = None) -> pa.Table:
    """The anomalies (of a trace), worst first, with each event's location and time."""
    from raceway_core.analysis import anomalies as _anomalies

    _check_trace(session, trace_id)
    session.engine
    flt = "AND trace_id = $t" if trace_id is not None else ""
    return session._q(f"""
        SELECT a.severity, a.key AS operation, a.actual_ms, a.expected_ms, a.z, a.samples, a.trace_id,
               a.event_id, e.kind, e.location, e.timestamp
        FROM ({_anomalies.sql(trace_filter=flt)}) a JOIN events e USING (seq)
        ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                 a.z DESC NULLS LAST, a.actual_ms DESC, a.event_id""", {"t": trace_id} if trace_id is not None else None)


def anomalies_markdown(session, trace_id: str | None = None) -> str:
    """The anomalies as Markdown: counts by severity, then one table row per anomaly."""
    table = anomalies_table(session, trace_id)
    sev = table["severity"].to_pylist()
    scope = f"trace {md_text(trace_id)}" if trace_id is not None else "all traces"
    lines = [f"# Anomalies: {scope}", "",
             f"Generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by raceway-tui "
             "(an operation far slower than its own median: robust z-score over median and MAD).", "",
             "## Summary", "",
             f"- **Total anomalies:** {len(sev)}",
             f"- **Critical:** {sev.count('critical')}",
             f"- **Warning:** {sev.count('warning')}",
             f"- **Minor:** {sev.count('minor')}", ""]
    if not sev:
        return "\n".join(lines + ["No anomalies."]) + "\n"
    rows = [[i, r["severity"], r["operation"], f"{r['actual_ms']:.3f}", f"{r['expected_ms']:.3f}",
             "-" if r["z"] is None else f"{r['z']:.2f}", r["location"], _ts(r["timestamp"]), r["trace_id"],
             r["event_id"]] for i, r in enumerate(table.to_pylist(), 1)]
    lines += ["## Anomalies", ""]
    lines += md_table(["#", "severity", "operation", "actual ms", "expected ms", "z", "location", "time (UTC)",
                       "trace", "event id"], rows, align="rllrrrllll")
    return "\n".join(lines) + "\n"


def _what(r: dict) -> str:
    return r.get("function_name") or r.get("variable") or r.get("lock_id") or r.get("note") or ""


def _context(r: dict) -> str:
    s, t = r.get("service"), r.get("thread_id")
    return f"{s}/{t}" if s else (t or "")


def _ts(v) -> str:
    return v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, dt.datetime) else ("" if v is None else str(v))


# -- Markdown ---------------------------------------------------------------------------
_MD_SPECIAL = {"\\": "\\\\", "|": "\\|", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
               "<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_text(value) -> str:
    """Data as Markdown text that reads back as itself on one line: Markdown's special
    characters escaped (``|`` cannot end a table cell), a line break as <br>, other
    control characters as \\uXXXX (they would move the text around in a terminal)."""
    if value is None:
        return ""
    out = []
    s = str(value).replace("\r\n", "\n")
    for ch in s:
        if ch in _MD_SPECIAL:
            out.append(_MD_SPECIAL[ch])
        elif ch in "\n\r\u2028\u2029\x85":
            out.append("<br>")
        elif ch == "\t":
            out.append(" ")
        elif ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def md_table(header: list[str], rows: list[list], align: str = "") -> list[str]:
    """A GitHub-flavoured Markdown table, every cell through ``md_text``."""
    rule = [("---:" if a == "r" else "---") for a in align.ljust(len(header), "l")]
    lines = ["| " + " | ".join(md_text(h) for h in header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
    return lines


# -- one entry point for the CLI and the explorer --------------------------------------------
def check_export(what: str, fmt: str | None) -> str:
    """The format to write ``what`` in (its default when ``fmt`` is None); RacewayError for a
    combination that does not exist."""
    if what not in WHATS:
        raise RacewayError(f"cannot export {what!r}: choose one of {', '.join(WHATS)}")
    fmt = (fmt or DEFAULT_FORMAT[what]).lower()
    if fmt == "markdown":
        fmt = "md"
    if fmt not in WHAT_FORMATS[what]:
        raise RacewayError(f"cannot export {what} as {fmt}: as {' or '.join(WHAT_FORMATS[what])}")
    return fmt


def export(session, what: str, fmt: str | None, out, trace_id: str | None = None) -> int:
    """Write ``what`` (trace, events, critical, anomalies) of a trace (None: all traces; the
    critical path needs one) as ``fmt`` to the binary stream ``out``. Returns the rows written."""
    fmt = check_export(what, fmt)
    if what == "trace":
        return write_trace_json(session, trace_id, out)
    if what == "events" and fmt == "csv":
        return write_events_csv(session, trace_id, out)
    if fmt == "md":
        table = critical_table(session, trace_id) if what == "critical" else anomalies_table(session, trace_id)
        text = critical_markdown(session, trace_id) if what == "critical" else anomalies_markdown(session, trace_id)
        out.write(text.encode())
        return table.num_rows
    table = {"events": events_table, "critical": critical_table, "anomalies": anomalies_table}[what](session, trace_id)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, out)
    else:
        out.write(orjson.dumps(table.to_pylist(), default=json_default,
                               option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z))
        out.write(b"\n")
    return table.num_rows


def file_name(what: str, fmt: str, trace_id: str | None, when: dt.datetime | None = None) -> str:
    """raceway-critical-3fd52b05-20261203-183000.md"""
    scope = trace_id[:8] if trace_id else "all"
    scope = "".join(c if c.isalnum() or c in "-_." else "_" for c in scope)
    return f"raceway-{what}-{scope}-{(when or dt.datetime.now()):%Y%m%d-%H%M%S}.{fmt}"
