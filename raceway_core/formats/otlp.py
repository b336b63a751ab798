"""OpenTelemetry OTLP/JSON traces (ExportTraceServiceRequest: resourceSpans → scopeSpans → spans).

Also accepts the collector's file exporter output (one request per line) and a
request wrapped in ``{"result": ...}`` or ``{"data": ...}``. Ids may be hex
(OTLP/JSON) or base64 (plain protobuf JSON); times are ns since the epoch.
"""

from __future__ import annotations

from raceway_core.formats import Converted, ImportOptions, register
from raceway_core.formats._common import LineFinder, Shape, as_int, hex_id, json_documents
from raceway_core.formats._spans import Span, SpanEvent, raw_json, to_events
from raceway_core.loading.reading import Problem

_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_ERROR = (2, "STATUS_CODE_ERROR", "ERROR")


def _get(obj: dict, camel: str):
    """A field by its OTLP/JSON (lowerCamel) or protobuf (snake_case) name."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake)


def _seq(x) -> list:
    return x if isinstance(x, list) else []


def any_value(v):
    """The Python value of an OTLP AnyValue."""
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "string_value", "boolValue", "bool_value", "doubleValue", "double_value",
                "bytesValue", "bytes_value"):
        if key in v:
            return v[key]
    for key in ("intValue", "int_value"):
        if key in v:
            n = as_int(v[key])
            return n if n is not None else v[key]
    arr = _get(v, "arrayValue")
    if isinstance(arr, dict):
        return [any_value(x) for x in _seq(arr.get("values"))]
    kvs = _get(v, "kvlistValue")
    if isinstance(kvs, dict):
        return attributes(kvs.get("values"))
    return None


def attributes(items) -> dict:
    out = {}
    for kv in _seq(items):
        if isinstance(kv, dict) and "key" in kv:
            out[str(kv["key"])] = any_value(kv.get("value"))
    return out


def _kind(value) -> str | None:
    if isinstance(value, str):
        name = value.upper().removeprefix("SPAN_KIND_").lower()
        return name if name in _KINDS.values() else None
    return _KINDS.get(as_int(value) or 0)


def _requests(doc) -> list:
    if isinstance(doc, list):
        return [r for d in doc for r in _requests(d)]
    if not isinstance(doc, dict):
        return []
    if "resourceSpans" in doc or "resource_spans" in doc:
        return [doc]
    for wrapper in ("result", "data"):
        if isinstance(doc.get(wrapper), (dict, list)):
            return _requests(doc[wrapper])
    return []


def _error(status: dict, events: list[SpanEvent]) -> tuple[str, str | None, str | None] | None:
    if status.get("code") not in _ERROR:
        return None
    exc = next((e.data for e in events if e.name == "exception"), {})
    return (str(exc.get("exception.type") or "STATUS_CODE_ERROR"),
            status.get("message") or exc.get("exception.message"), exc.get("exception.stacktrace"))


def _span(s: dict, service: str, instance, tags: dict, line: int, shape: Shape) -> Span:
    sid = hex_id(_get(s, "spanId"))
    start, end = as_int(_get(s, "startTimeUnixNano")), as_int(_get(s, "endTimeUnixNano"))
    events = [SpanEvent(as_int(_get(e, "timeUnixNano")), str(e.get("name") or "event"),
                        attributes(e.get("attributes")))
              for e in shape.list(s.get("events"), f"span {sid}", "events") if isinstance(e, dict)]
    links = [(hex_id(_get(k, "traceId")), hex_id(_get(k, "spanId")), attributes(k.get("attributes")))
             for k in shape.list(s.get("links"), f"span {sid}", "links") if isinstance(k, dict)]
    status = shape.obj(s.get("status"), f"span {sid}", "status")
    extra = dict(tags)
    if status:
        extra["status"] = status
    if _get(s, "traceState"):
        extra["trace_state"] = _get(s, "traceState")
    return Span(
        trace_id=hex_id(_get(s, "traceId")), span_id=sid,
        parent_id=hex_id(_get(s, "parentSpanId")), name=str(s.get("name") or ""), service=service,
        start_ns=start, duration_ns=end - start if start is not None and end is not None else None,
        kind=_kind(s.get("kind")), attributes=attributes(s.get("attributes")), events=events,
        links=[k for k in links if k[0] and k[1]], error=_error(status, events), instance=instance,
        tags=extra, line=line, raw=raw_json(s))


class OtlpImporter:
    name = "otlp"

    def sniff(self, head: str) -> bool:
        return '"resourceSpans"' in head or '"resource_spans"' in head

    def convert(self, text: str, options: ImportOptions) -> Converted:
        docs = json_documents(text, "OTLP")
        spans: list[Span] = []
        problems: list[Problem] = []
        shape = Shape()
        for base, doc in docs:
            lines = LineFinder(text if len(docs) == 1 else "", ("spanId", "span_id"), base)
            requests = _requests(doc)
            if not requests:
                raise ValueError(f"line {base}: no resourceSpans found")
            for req in requests:
                for rs in shape.list(_get(req, "resourceSpans"), "request", "resourceSpans"):
                    rs = shape.obj(rs, "resourceSpans", "item")
                    resource = shape.obj(rs.get("resource"), "resourceSpans", "resource")
                    res = attributes(resource.get("attributes"))
                    service = str(res.get("service.name") or "unknown_service")
                    instance = res.get("service.instance.id") or res.get("host.name")
                    scopes = _get(rs, "scopeSpans") or _get(rs, "instrumentationLibrarySpans")
                    for ss in shape.list(scopes, f"resource {service}", "scopeSpans"):
                        ss = shape.obj(ss, f"resource {service}", "scopeSpans item")
                        scope = shape.obj(ss.get("scope") or ss.get("instrumentationLibrary"), "scope", "scope")
                        tags = {"resource": res}
                        if scope:
                            tags["scope"] = {"name": scope.get("name"), "version": scope.get("version")}
                        for s in shape.list(ss.get("spans"), f"resource {service}", "spans"):
                            ok = isinstance(s, dict) and hex_id(_get(s, "spanId")) and hex_id(_get(s, "traceId"))
                            line = lines.find(_get(s, "spanId") if ok else None)
                            if not ok:
                                problems.append(Problem(line, None, "span without traceId or spanId",
                                                        raw_json(s)))
                                continue
                            spans.append(_span(s, service, instance, tags, line, shape))
        conv = to_events(spans, self.name)
        conv.problems[:0] = problems
        conv.notes += shape.notes()
        return conv


register(OtlpImporter())
