"""The OpenAPI 3.1 description of the server, served at /openapi.json."""

from __future__ import annotations

from functools import lru_cache

import orjson


def _envelope(data: dict) -> dict:
    return {"type": "object", "required": ["success", "data", "error"], "properties": {
        "success": {"type": "boolean"}, "data": data, "error": {"type": ["string", "null"]}}}


def _answer(description: str, data: dict | None = None) -> dict:
    schema = _envelope(data) if data is not None else {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "401": _answer("Missing or unknown API key"),
    "429": _answer("Rate limited (a configured limit): see the Retry-After header"),
    "500": _answer("Internal error: a short message with a request id (X-Request-Id); the details are "
                   "in the server's log"),
}
_TRACE_ID = {"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}
_ANY = {"type": "object"}


def _obj(**props) -> dict:
    return {"type": "object", "properties": props}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(item: dict) -> dict:
    return {"type": "array", "items": item}


_S, _N, _I, _B = {"type": "string"}, {"type": "number"}, {"type": "integer"}, {"type": "boolean"}
_ANALYSIS_SCHEMAS = {
    "Deadlocks": _obj(
        count=_I,
        groups=_list(_obj(locks=_list(_S), severity={"enum": ["critical", "warning"]}, instances=_list(_I),
                          sites=_list(_list(_obj(holding=_S, acquiring=_S, context=_S, trace_id=_S, thread_id=_S,
                                                 holding_location=_S, acquiring_location=_S, held=_list(_S),
                                                 instances=_I, holding_event=_S, acquiring_event=_S))))),
        suppressed=_list(_obj(locks=_list(_S), reasons=_list(_S), instances=_list(_I))),
        lock_order=_list(_obj(**{"from": _S, "to": _S, "count": _I, "contexts": _I}))),
    "CriticalPath": _obj(trace_id=_S, path_events=_I, total_duration_ms=_N, trace_total_duration_ms=_N,
                         percentage_of_total=_N, path=_list(_obj(id=_S, kind=_S, location=_S, timestamp=_S,
                                                                 duration_ms=_N))),
    "Anomaly": _obj(event_id=_S, event_kind=_S, severity={"enum": ["Minor", "Warning", "Critical"]},
                    actual_duration_ms=_N, expected_duration_ms=_N,
                    std_dev_from_mean={"type": ["number", "null"], "description": "robust z-score (median, MAD)"},
                    description=_S, location=_S, timestamp=_S),
    "Dependencies": _obj(trace_id=_S, services=_list(_obj(name=_S, event_count=_I)),
                         dependencies=_list(_obj(**{"from": _S, "to": _S, "call_count": _I}))),
    "VariableAccess": _obj(event_id=_S, timestamp=_S, thread_id=_S, service_name=_S, access_type=_S,
                           old_value={}, new_value={}, location=_S, has_causal_link_to_previous=_B,
                           is_race=_B),
    "RaceDetail": _obj(severity={"enum": ["CRITICAL", "WARNING"]}, variable=_S, event1_thread=_S,
                       event2_thread=_S, event1_location=_S, event2_location=_S, description=_S),
}


_TRACE_SUMMARY = {"type": "object", "properties": {
    "trace_id": _S, "event_count": _I, "first_timestamp": {"type": "string", "format": "date-time"},
    "last_timestamp": {"type": "string", "format": "date-time"}, "services": _list(_S), "service_count": _I}}
_SERVICE_NAME = {"name": "service_name", "in": "path", "required": True, "schema": _S}
_CALLS = _list(_obj(to=_S, total_calls=_I, trace_count=_I,
                    mean_ms={"type": ["number", "null"], "description": "ours: the callee's mean latency"},
                    p95_ms={"type": ["number", "null"]}))
_BY_TYPE = _list(_obj(type=_S, count=_I, avg_duration_ms=_N))


def _parity_paths() -> dict:
    """The original's system-wide routes (parity_routes.py)."""
    return {
        "/api/services": _get("Every service that sent events", _obj(
            total_services=_I, services=_list(_obj(name=_S, event_count=_I, trace_count=_I)))),
        "/api/services/health": _get(
            "Per service: activity in a time window; status from the time since its last event "
            "(< 5 min healthy, < 30 warning, else critical)",
            _list(_obj(name=_S, status={"enum": ["healthy", "warning", "critical"]}, trace_count=_I,
                       last_activity={"type": "string", "format": "date-time"}, avg_events_per_trace=_N,
                       minutes_since_last_activity=_N)),
            [{"name": "time_window_minutes", "in": "query", "schema": {"type": "integer", "default": 60}}]),
        "/api/services/{service_name}/traces": _get("Traces with an event of the service, newest first", _obj(
            service_name=_S, total_traces=_I, page=_I, page_size=_I, total_pages=_I, traces=_list(_TRACE_SUMMARY)),
            [_SERVICE_NAME, {"name": "page", "in": "query", "schema": {"type": "integer", "default": 1}},
             {"name": "page_size", "in": "query", "schema": {"type": "integer", "default": 100}}]),
        "/api/services/{service_name}/dependencies": _get(
            "Services it calls and services calling it (called_by names the caller in `to`, as the original)",
            _obj(service_name=_S, calls_to=_CALLS, called_by=_CALLS), [_SERVICE_NAME]),
        "/api/performance/metrics": _get("Trace latency, event durations by kind and service, throughput", _obj(
            trace_latency=_obj(avg_ms=_N, p50_ms=_N, p95_ms=_N, p99_ms=_N, slowest_traces=_list(
                _obj(trace_id=_S, duration_ms=_N, services=_list(_S)))),
            event_performance=_obj(avg_duration_ms=_N, by_type=_BY_TYPE, slow_operations=_BY_TYPE),
            service_latency=_list(_obj(service=_S, event_count=_I, avg_duration_ms=_N)),
            throughput=_obj(events_per_second=_N, traces_per_second=_N, time_range_seconds=_N)),
            [{"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50},
              "description": "slowest traces listed"}]),
        "/api/distributed/edges": _get("Cross-service calls by caller, callee and link type", _obj(
            total_edges=_I, edges=_list(_obj(from_service=_S, to_service=_S,
                                             link_type={"enum": ["HttpCall", "DatabaseQuery", "Custom"]},
                                             call_count=_I, mean_ms=_N, p95_ms=_N)))),
        "/api/distributed/hotspots": _get("The 10 most accessed variables and the 10 busiest calls", _obj(
            top_variables=_list(_obj(variable=_S, access_count=_I, trace_count=_I, services=_list(_S),
                                     race_pairs={"type": "integer", "description": "ours"})),
            top_service_calls=_list(_obj(from_service=_S, to_service=_S, call_count=_I)))),
    }


def _get(summary: str, data: dict, params: list | None = None, extra: dict | None = None) -> dict:
    return {"get": {"summary": summary, "parameters": params or [],
                    "responses": {"200": _answer("OK", data), **(extra or {}), **_ERRORS}}}


_BUSY = {"description": "Too many analyses running at once; retry after the Retry-After header's seconds",
         "headers": {"Retry-After": {"schema": {"type": "integer"}}},
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _analysis(summary: str, data: dict, params: list | None = None) -> dict:
    malformed = {"400": _answer("Invalid trace ID format (not a UUID, not stored)")} if _TRACE_ID in (params or ()) else {}
    return _get(summary, data, params, {"404": _answer("No such trace"), "503": _BUSY, **malformed})


def _build(version: str) -> dict:
    page = {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}}
    page_size = {"name": "page_size", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 20}}
    ingest_result = {
        "ingested": {"type": "integer", "description": "events stored by this request"},
        "duplicates": {"type": "integer", "description": "events whose id was already stored (acknowledged)"},
        "rejected": {"type": "array", "items": {"$ref": "#/components/schemas/Rejected"}},
    }
    ingest_answer = {"description": "", "content": {"application/json": {"schema": {"allOf": [
        _envelope({"type": ["string", "null"], "examples": ["Ingested 100 events"]}),
        {"type": "object", "properties": ingest_result}]}}}}
    paths = {
        "/events": {"post": {
            "summary": "Ingest a batch of events (what the Raceway SDKs send)",
            "description": "Acknowledged only once committed. Invalid events are kept aside and listed "
                           "in `rejected`; the valid ones are stored. Bodies may be gzip-encoded.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [{"type": "object", "required": ["events"], "properties": {
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}},
                    {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}]}}}},
            "responses": {
                "200": {**ingest_answer, "description": "Every event stored (or already stored)"},
                "206": {**ingest_answer, "description": "Some events rejected, the others stored"},
                "400": _answer("Malformed JSON or not an event batch"),
                "413": _answer("Body larger than the server's limit"),
                "415": _answer("Content-Type is not application/json, or an unsupported Content-Encoding"),
                "422": _answer("Every event of the batch was rejected"),
                "503": _answer("The server is shutting down"),
                **_ERRORS}}},
        "/health": _get("Liveness (no API key needed)", {"$ref": "#/components/schemas/Warmup"}),
        "/status": _get("Counts, version and writer statistics", {"type": "object", "properties": {
            "version": {"type": "string"}, "uptime_seconds": {"type": "integer"},
            "events_captured": {"type": "integer"}, "traces_active": {"type": "integer"},
            "warmup": {"$ref": "#/components/schemas/Warmup"},
            "implementation": {"const": "raceway-tui"}, "store_id": {"type": "string"},
            "feed": {"type": "string"}}}),
        "/api/events": _get(
            "Incremental feed: events in arrival order after a cursor",
            {"type": "object", "required": ["events", "next_cursor", "has_more", "store_id"], "properties": {
                "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                "next_cursor": {"type": "string", "description": "pass as `after` for the next page"},
                "has_more": {"type": "boolean"},
                "store_id": {"type": "string", "description": "changes when the server's database is another "
                                                              "one: start again from the beginning"}}},
            [{"name": "after", "in": "query", "schema": {"type": "string"},
              "description": "next_cursor of the previous page; omit to start at the beginning"},
             {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 20000,
                                                         "default": 1000}},
             {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "arrow"]},
              "description": "arrow: the stored rows as an Arrow IPC stream "
                             "(application/vnd.apache.arrow.stream), the envelope's fields in the "
                             "X-Raceway-Next-Cursor, X-Raceway-Has-More and X-Raceway-Store-Id headers"}],
            {"400": _answer("Invalid cursor")}),
        "/api/traces": _get("Traces, newest first, paged", {"type": "object", "properties": {
            "total_traces": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"},
            "total_pages": {"type": "integer"},
            "traces": {"type": "array", "items": {"$ref": "#/components/schemas/TraceSummary"}}}},
            [page, page_size, {"name": "min_events", "in": "query", "schema": {"type": "integer", "minimum": 0},
                               "description": "only traces with at least this many events"}]),
        "/api/traces/{trace_id}": _get("A trace's events and its analysis", _obj(
            trace_id=_S, events=_list(_ref("Event")),
            audit_trails={"type": "object", "additionalProperties": _list(_ref("VariableAccess"))},
            analysis=_obj(concurrent_events=_I, potential_races=_I, anomalies=_list(_S),
                          race_details=_list(_ref("RaceDetail"))),
            critical_path={"oneOf": [_ref("CriticalPath"), {"type": "null"}]},
            anomalies=_list(_ref("Anomaly")), dependencies=_ref("Dependencies")),
            [_TRACE_ID, {"name": "analysis", "in": "query", "schema": {"type": "boolean", "default": True},
                         "description": "false: the events only, without running the analysis"}],
            {"404": _answer("No such trace"), "400": _answer("Invalid trace ID format (not a UUID, not stored)"),
             "503": _BUSY}),
        "/api/traces/{trace_id}/critical-path": _analysis("Critical path of a trace", _ref("CriticalPath"),
                                                          [_TRACE_ID]),
        "/api/traces/{trace_id}/anomalies": _analysis(
            "Anomalies of a trace", _obj(trace_id=_S, anomaly_count=_I, anomalies=_list(_ref("Anomaly"))),
            [_TRACE_ID]),
        "/api/traces/{trace_id}/dependencies": _analysis("Service dependencies of a trace", _ref("Dependencies"),
                                                         [_TRACE_ID]),
        "/api/traces/{trace_id}/audit-trail/{variable}": _analysis(
            "Every access of a variable in causal order",
            _obj(trace_id=_S, variable=_S, accesses=_list(_ref("VariableAccess"))),
            [_TRACE_ID, {"name": "variable", "in": "path", "required": True, "schema": _S}]),
        "/api/analyze/global": _analysis("Racing pairs across all traces", _obj(
            total_traces=_I, total_events=_I, concurrent_events=_I, potential_races=_I, anomalies=_list(_S),
            race_details=_list(_ref("RaceDetail")), deadlocks=_ref("Deadlocks"))),
        "/api/analyze/deadlocks": _analysis("Potential deadlocks (lock-order cycles) across all traces",
                                            _ref("Deadlocks")),
        "/api/distributed/global-races": _analysis("Variables with races, across all traces", _obj(
            total_races=_I, races=_list(_obj(variable=_S, trace_count=_I, access_count=_I,
                                             access_types=_list(_S), thread_count=_I,
                                             severity={"enum": ["CRITICAL", "WARNING"]},
                                             trace_ids=_list(_S), race_pairs=_I)))),
        **_parity_paths(),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "raceway-tui server (Raceway-compatible)", "version": version,
                 "description": "Every answer is wrapped as {success, data, error}."},
        "paths": paths,
        "security": [{"bearer": []}, {"racewayKey": []}, {}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "racewayKey": {"type": "apiKey", "in": "header", "name": "X-Raceway-Key"}},
            "schemas": {
                "Error": _envelope({"type": "null"}),
                "Rejected": {"type": "object", "required": ["index", "reason"], "properties": {
                    "index": {"type": ["integer", "null"], "description": "position in the batch"},
                    "reason": {"type": "string"}}},
                "Event": {"type": "object", "required": ["id", "trace_id", "timestamp", "kind", "metadata"],
                          "description": "A Raceway event (see the event format)"},
                "TraceSummary": {"type": "object", "properties": {
                    "trace_id": {"type": "string"}, "event_count": {"type": "integer"},
                    "first_timestamp": {"type": "string", "format": "date-time"},
                    "last_timestamp": {"type": "string", "format": "date-time"},
                    "service_count": {"type": "integer"},
                    "services": {"type": "array", "items": {"type": "string"}}}},
                **_ANALYSIS_SCHEMAS,
                "Warmup": {"type": "object", "properties": {
                    "phase": {"type": "string"}, "ready": {"type": "boolean"},
                    "total_traces": {"type": "integer"}, "processed_traces": {"type": "integer"}}},
            },
        },
    }


@lru_cache(maxsize=4)
def document(version: str) -> bytes:
    return orjson.dumps(_build(version))
