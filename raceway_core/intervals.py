"""Where an event's interval lies in time, and what it weighs on a critical path.

One rule for every place that needs an event's start or end (trace spans, the
trace list, service latencies, critical paths, the server's answers), as SQL over
the ``events`` columns ``kind``, ``ts_ns`` and ``duration_ns``.

From the SDKs that write the events:
- the original Raceway SDKs (Python ``track_http_response``, TypeScript
  ``trackHttpResponse``, Go ``TrackHTTPResponse``, Rust ``track_http_response``)
  record an ``HttpResponse`` when the response is done, with ``duration_ms`` (and
  metadata.duration_ns) the time the request took *before* it: it covers
  ``[ts - d, ts]``. Its time is already carried by the request's own events or by
  the downstream span of the call, so it weighs 0 on a critical path;
- every other kind covers ``[ts, ts + d]``: our SDK stamps a FunctionCall with a
  duration at its start. (The original SDKs' ``track_function`` helpers stamp a
  FunctionCall at its end instead; the wire format does not say which SDK wrote an
  event, so the spec's reading - the start - is kept for FunctionCall.)
"""

from __future__ import annotations

# kinds recorded when their work is done: the duration lies before the timestamp
END_STAMPED = ("HttpResponse",)
_END_STAMPED_SQL = ", ".join(f"'{k}'" for k in END_STAMPED)


def _col(alias: str, name: str) -> str:
    return f"{alias}.{name}" if alias else name


def start_ns(alias: str = "") -> str:
    """SQL: when the event's interval starts."""
    kind, ts, d = (_col(alias, c) for c in ("kind", "ts_ns", "duration_ns"))
    return f"(CASE WHEN {kind} IN ({_END_STAMPED_SQL}) THEN {ts} - coalesce({d}, 0) ELSE {ts} END)"


def end_ns(alias: str = "") -> str:
    """SQL: when the event's interval ends."""
    kind, ts, d = (_col(alias, c) for c in ("kind", "ts_ns", "duration_ns"))
    return f"(CASE WHEN {kind} IN ({_END_STAMPED_SQL}) THEN {ts} ELSE {ts} + coalesce({d}, 0) END)"


def path_ns(alias: str = "") -> str:
    """SQL: what the event adds to a critical path."""
    kind, d = (_col(alias, c) for c in ("kind", "duration_ns"))
    return f"(CASE WHEN {kind} IN ({_END_STAMPED_SQL}) THEN 0 ELSE coalesce({d}, 0) END)"


def span_ns(alias: str = "") -> str:
    """SQL aggregate: wall-clock span of a group of events (latest end - earliest start)."""
    return f"(max({end_ns(alias)}) - min({start_ns(alias)}))"
