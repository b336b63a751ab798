"""The exact POST /events bodies the original Raceway SDKs send, for one program.

Each builder follows the SDK's source (Mode7Labs/raceway; file named on each builder)
field by field: event kinds and their fields, metadata (thread ids, instance ids,
span ids, tags, durations), causality vectors, timestamps' text form, the
propagation headers and what the callee makes of them, batching and request
headers. Ids and times are fixed so expectations can be written down.

The program, the same in every SDK: two clients call service `api` at once
(POST /transfer, no incoming trace headers: two new traces). Each request reads
`account.balance`, calls service `ledger` (POST /debit) with the SDK's
propagation headers, and once it answers records the response and writes
`account.balance`. `ledger` reads and writes `ledger.total` and runs `debit`
(20 ms). Nothing orders the two requests: a lost update on each variable.

    request r (offset o = 2 ms * (r - 1)):  api  0+o HttpRequest, 1+o Read balance
        ledger 3+o HttpRequest, 4+o Read total, 5+o Write total, debit 6+o .. 26+o
        api 30+o HttpResponse (29 ms), 31+o Write balance

Each builder returns (list of (request headers, body)), in the order the SDKs' flushes send them.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

BASE = datetime(2026, 11, 20, 10, 0, 0, tzinfo=timezone.utc)
API_PID, LEDGER_PID = 4242, 5151


def _uuid(*parts) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


def _span(*parts) -> str:  # 16 hex digits, as every SDK's generateSpanId
    return uuid.uuid5(uuid.NAMESPACE_DNS, "/".join(map(str, parts))).hex[:16]


def _at(ms: float, extra_us: int = 0) -> datetime:
    return BASE + timedelta(milliseconds=ms, microseconds=extra_us)


def _clock_header(trace_id, child_span, parent_span, service, instance, clock) -> str:
    """raceway-clock: "v1;" + unpadded base64url of the JSON payload (every SDK's buildPropagationHeaders)."""
    payload = {"trace_id": trace_id, "span_id": child_span, "parent_span_id": parent_span,
               "service": service, "instance": instance, "clock": clock}
    return "v1;" + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _inc(vector: list, component: str) -> list:
    """incrementClockVector (identical in the three SDKs): +1 on the own component, appended at 1."""
    out, found = [], False
    for c, n in vector:
        out.append([c, n + 1] if c == component else [c, n])
        found |= c == component
    return out if found else out + [[component, 1]]


# -- TypeScript ------------------------------------------------------------------------
def typescript() -> list[tuple[dict, dict]]:
    """Follows sdks/typescript/src/raceway.ts (middleware, captureEvent, buildMetadata,
    trackHttpResponse, trackFunction, getHighResolutionTimestamp), src/client.ts (flush:
    headers, {"events": [...]}, batchSize 100 / flushInterval 1000) and
    causeway/sdks/typescript/src/trace-context.ts (parseIncomingTraceHeaders: the callee's
    span id is new and its parent span id is the *child* span id the caller sent)."""
    def ts(ms):  # ISO with 6 fraction digits and Z
        return _at(ms).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"

    def meta(service, instance, pid, thread, span, upstream, duration_ns=None):
        return {"thread_id": thread, "process_id": pid, "service_name": service, "environment": "development",
                "tags": {"sdk_language": "typescript"}, "duration_ns": duration_ns,
                "instance_id": instance, "distributed_span_id": span, "upstream_span_id": upstream}

    api, ledger = [], []
    for r in (1, 2):
        o = 2 * (r - 1)
        trace = _uuid("ts-trace", r)
        a_thread, l_thread = f"node-{API_PID}-{_uuid('ts-a', r)[:8]}", f"node-{LEDGER_PID}-{_uuid('ts-l', r)[:8]}"
        a_span, child, l_span = _span("ts-a", r), _span("ts-child", r), _span("ts-l", r)

        # api: captureEvent's causality_vector is [[rootId, clock]] ([] before the root exists);
        # the service#instance vector only travels in the propagation headers
        ctx = {"parent": None, "root": None, "clock": 0}

        def emit(out, kind, ms, m, ctx=ctx):
            ev = {"id": _uuid("ts", r, len(out), m["service_name"]), "trace_id": trace, "parent_id": ctx["parent"],
                  "timestamp": ts(ms), "kind": kind, "metadata": m,
                  "causality_vector": [[ctx["root"], ctx["clock"]]] if ctx["root"] else [], "lock_set": []}
            out.append(ev)
            if ctx["root"] is None and "HttpResponse" not in kind:
                ctx["root"] = ev["id"]
            ctx["parent"] = ev["id"]
            ctx["clock"] += 1

        am = lambda d=None: meta("api", "api-1", API_PID, a_thread, a_span, None, d)  # noqa: E731
        emit(api, {"HttpRequest": {"method": "POST", "url": "/transfer", "headers": {}, "body": None}}, o, am())
        emit(api, {"StateChange": {"variable": "account.balance", "old_value": None, "new_value": 100,
                                   "location": "/srv/api/server.js:21", "access_type": "Read"}}, o + 1, am())
        lctx = {"parent": None, "root": None, "clock": 0}
        lm = lambda d=None: meta("ledger", "ledger-1", LEDGER_PID, l_thread, l_span, child, d)  # noqa: E731
        emit(ledger, {"HttpRequest": {"method": "POST", "url": "/debit", "headers": {}, "body": None}}, o + 3, lm(), lctx)
        emit(ledger, {"StateChange": {"variable": "ledger.total", "old_value": None, "new_value": 500,
                                      "location": "/srv/ledger/server.js:14", "access_type": "Read"}}, o + 4, lm(), lctx)
        emit(ledger, {"StateChange": {"variable": "ledger.total", "old_value": 500, "new_value": 490,
                                      "location": "/srv/ledger/server.js:15", "access_type": "Write"}}, o + 5, lm(), lctx)
        # trackFunction records the call once fn has returned, with its duration
        emit(ledger, {"FunctionCall": {"function_name": "debit", "module": "unknown", "args": {"amount": 10},
                                       "file": "/srv/ledger/server.js", "line": 16}}, o + 26, lm(20_000_000), lctx)
        # trackHttpResponse: duration_ms in the kind and, as ns, in metadata
        emit(api, {"HttpResponse": {"status": 200, "headers": {}, "body": None, "duration_ms": 29}}, o + 30,
             am(29_000_000))
        emit(api, {"StateChange": {"variable": "account.balance", "old_value": 100, "new_value": 90,
                                   "location": "/srv/api/server.js:25", "access_type": "Write"}}, o + 31, am())
    headers = {"Content-Type": "application/json", "X-Raceway-Internal": "true"}
    return [(headers, {"events": api}), (headers, {"events": ledger})]


# -- Go --------------------------------------------------------------------------------
def go() -> list[tuple[dict, dict]]:
    """Follows sdks/go/client.go (captureEvent, buildMetadata, TrackFunctionReturn,
    TrackHTTPResponse, Flush: POST {"events": [...]} with no key header, BatchSize 50),
    sdks/go/types.go (omitempty distributed fields, FunctionReturn, duration_ms as an
    integer, causality entries as [component, value] arrays), causeway/sdks/go/raceway/
    context.go (ThreadID: a fresh UUID per request context, clock [service#instance, 0])
    and causeway/sdks/go/raceway/trace_context.go (the callee's span id is new; its
    parent span is the sender's span_id field: the child id the caller generated)."""
    def ts(ms):  # time.RFC3339Nano: trailing fraction zeros dropped, Z
        t = _at(ms, 7 if ms % 2 else 0)
        frac = f"{t.microsecond * 1000:09d}".rstrip("0")
        return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"

    api, ledger = [], []
    for r in (1, 2):
        o = 2 * (r - 1)
        trace = _uuid("go-trace", r)
        a_span, child, l_span = _span("go-a", r), _span("go-child", r), _span("go-l", r)

        def ctx(service, instance, thread, span, upstream, clock):
            return {"service": service, "instance": instance, "thread": thread, "span": span,
                    "upstream": upstream, "clock": clock, "parent": None}

        def emit(out, c, kind, ms, pid):
            c["clock"] = _inc(c["clock"], f"{c['service']}#{c['instance']}")
            md = {"thread_id": c["thread"], "process_id": pid, "service_name": c["service"],
                  "environment": "development", "tags": {"sdk_language": "go"}, "duration_ns": None,
                  "instance_id": c["instance"], "distributed_span_id": c["span"]}
            if c["upstream"] is not None:  # *string with omitempty: absent at the entry service
                md["upstream_span_id"] = c["upstream"]
            ev = {"id": _uuid("go", r, c["service"], len(out)), "trace_id": trace, "parent_id": c["parent"],
                  "timestamp": ts(ms), "kind": kind, "metadata": md,
                  "causality_vector": [list(x) for x in c["clock"]], "lock_set": []}
            out.append(ev)
            c["parent"] = ev["id"]

        a = ctx("api", "api-1", _uuid("go-thread-a", r), a_span, None, [["api#api-1", 0]])
        emit(api, a, {"HttpRequest": {"method": "POST", "url": "/transfer", "headers": {}, "body": None}}, o, API_PID)
        emit(api, a, {"StateChange": {"variable": "account.balance", "old_value": None, "new_value": 100,
                                      "location": "main.go:41", "access_type": "Read"}}, o + 1, API_PID)
        # PropagationHeaders: the headers carry the incremented vector, kept by the caller's context
        a["clock"] = _inc(a["clock"], "api#api-1")
        sent = [list(x) for x in a["clock"]]
        l_ = ctx("ledger", "ledger-1", _uuid("go-thread-l", r), l_span, child, sent + [["ledger#ledger-1", 0]])
        emit(ledger, l_, {"HttpRequest": {"method": "POST", "url": "/debit", "headers": {}, "body": None}}, o + 3, LEDGER_PID)
        emit(ledger, l_, {"StateChange": {"variable": "ledger.total", "old_value": None, "new_value": 500,
                                          "location": "main.go:20", "access_type": "Read"}}, o + 4, LEDGER_PID)
        emit(ledger, l_, {"StateChange": {"variable": "ledger.total", "old_value": 500, "new_value": 490,
                                          "location": "main.go:21", "access_type": "Write"}}, o + 5, LEDGER_PID)
        emit(ledger, l_, {"FunctionCall": {"function_name": "debit", "module": "ledger", "args": {"amount": 10},
                                           "file": "main.go", "line": 22}}, o + 6, LEDGER_PID)
        emit(ledger, l_, {"FunctionReturn": {"function_name": "debit", "return_value": 490, "file": "main.go",
                                             "line": 30}}, o + 26, LEDGER_PID)
        emit(api, a, {"HttpResponse": {"status": 200, "headers": {}, "body": None, "duration_ms": 29}}, o + 30, API_PID)
        emit(api, a, {"StateChange": {"variable": "account.balance", "old_value": 100, "new_value": 90,
                                      "location": "main.go:47", "access_type": "Write"}}, o + 31, API_PID)
    headers = {"Content-Type": "application/json"}
    return [(headers, {"events": api}), (headers, {"events": ledger})]


# -- Rust ------------------------------------------------------------------------------
def rust(api_key: str | None = None) -> list[tuple[dict, dict]]:
    """Follows sdks/rust/src/client.rs (track_* methods, capture_event: thread_id is the OS
    thread's Debug form "ThreadId(N)", chrono's to_rfc3339 timestamps, duration_ns from
    track_function and track_http_response; propagation_headers moves the caller's own
    context to the child span id it sends; flush: every buffered event in one
    {"events": [...]}, Authorization and X-Raceway-Key when built with a key) and
    sdks/rust/src/trace_context.rs (the callee takes span_id and parent_span_id from
    raceway-clock: its upstream is the caller's span)."""
    def ts(ms):  # chrono to_rfc3339: fraction digits in groups of 3 as needed, +00:00
        t = _at(ms, 123 if ms % 2 else 0)
        frac = f"{t.microsecond * 1000:09d}"
        frac = frac[:3] if frac.endswith("000000") else frac[:6] if frac.endswith("000") else frac
        return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if int(frac) else "") + "+00:00"

    api, ledger = [], []
    for r in (1, 2):
        o = 2 * (r - 1)
        trace = _uuid("rs-trace", r)
        a_span, child = _span("rs-a", r), _span("rs-child", r)
        thread = f"ThreadId({r + 1})"  # both services' tokio workers: ThreadId(2), ThreadId(3)

        def emit(out, c, kind, ms, pid, duration_ns=None):
            c["clock"] = _inc(c["clock"], f"{c['service']}#{c['instance']}")
            ev = {"id": _uuid("rs", r, c["service"], len(out)), "trace_id": trace, "parent_id": c["parent"],
                  "timestamp": ts(ms), "kind": kind,
                  "metadata": {"thread_id": thread, "process_id": pid, "service_name": c["service"],
                               "environment": "development", "tags": {"sdk_language": "rust"},
                               "duration_ns": duration_ns, "instance_id": c["instance"],
                               "distributed_span_id": c["span"], "upstream_span_id": c["upstream"]},
                  "causality_vector": [list(x) for x in c["clock"]], "lock_set": []}
            out.append(ev)
            c["parent"] = ev["id"]

        a = {"service": "api", "instance": "api-1", "span": a_span, "upstream": None, "clock": [["api#api-1", 0]],
             "parent": None}
        emit(api, a, {"HttpRequest": {"method": "POST", "url": "/transfer", "headers": {}, "body": None}}, o, API_PID)
        emit(api, a, {"StateChange": {"variable": "account.balance", "old_value": None, "new_value": 100,
                                      "location": "src/client.rs:120", "access_type": "Read"}}, o + 1, API_PID)
        a["clock"] = _inc(a["clock"], "api#api-1")  # build_propagation_headers
        sent = [list(x) for x in a["clock"]]
        a["upstream"], a["span"] = a_span, child  # propagation_headers: the caller continues in the child span
        l_ = {"service": "ledger", "instance": "ledger-1", "span": child, "upstream": a_span,
              "clock": sent + [["ledger#ledger-1", 0]], "parent": None}
        emit(ledger, l_, {"HttpRequest": {"method": "POST", "url": "/debit", "headers": {}, "body": None}}, o + 3, LEDGER_PID)
        emit(ledger, l_, {"StateChange": {"variable": "ledger.total", "old_value": None, "new_value": 500,
                                          "location": "src/client.rs:120", "access_type": "Read"}}, o + 4, LEDGER_PID)
        emit(ledger, l_, {"StateChange": {"variable": "ledger.total", "old_value": 500, "new_value": 490,
                                          "location": "src/client.rs:120", "access_type": "Write"}}, o + 5, LEDGER_PID)
        emit(ledger, l_, {"FunctionCall": {"function_name": "debit", "module": "app", "args": {"amount": 10},
                                           "file": "src/client.rs", "line": 197}}, o + 26, LEDGER_PID, 20_000_000)
        emit(api, a, {"HttpResponse": {"status": 200, "headers": {}, "body": None, "duration_ms": 29}}, o + 30,
             API_PID, 29_000_000)
        emit(api, a, {"StateChange": {"variable": "account.balance", "old_value": 100, "new_value": 90,
                                      "location": "src/client.rs:120", "access_type": "Write"}}, o + 31, API_PID)
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers |= {"Authorization": f"Bearer {api_key}", "X-Raceway-Key": api_key}
    return [(headers, {"events": api}), (headers, {"events": ledger})]


SDKS = {"typescript": typescript, "go": go, "rust": rust}
