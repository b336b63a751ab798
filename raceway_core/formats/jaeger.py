"""Jaeger JSON traces: the query API's ``{"data": [trace, ...]}``, a bare trace, or a list of traces.

A trace is ``{traceID, spans, processes}``; a span has ``spanID``, ``operationName``,
``references`` (CHILD_OF / FOLLOWS_FROM), ``startTime`` and ``duration`` in µs,
``tags``, ``logs`` and a ``processID`` (or an embedded ``process``).

The parent is the first CHILD_OF reference found in the input, else the first
FOLLOWS_FROM one, else the first reference (then absent); the other references
are kept as links.
"""

from __future__ import annotations

from raceway_core.formats import Converted, ImportOptions, register
from raceway_core.formats._common import LineFinder, Shape, as_int, json_documents
from raceway_core.formats._spans import Span, SpanEvent, raw_json, to_events
from raceway_core.loading.reading import Problem


def kv(items, shape: Shape, where: str, name: str) -> dict:
    """Jaeger ``[{key, type, value}]`` as a dict (a plain object is accepted too)."""
    if isinstance(items, dict):
        return dict(items)
    return {str(t["key"]): t.get("value") for t in shape.list(items, where, name)
            if isinstance(t, dict) and "key" in t}


def _traces(doc) -> list[dict]:
    if isinstance(doc, list):
        return [t for d in doc for t in _traces(d)]
    if not isinstance(doc, dict):
        return []
    if isinstance(doc.get("spans"), list):
        return [doc]
    if "data" in doc:
        return _traces(doc["data"])
    return []


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.lower() == "true")


def _error(tags: dict, logs: list[SpanEvent]) -> tuple[str, str | None, str | None] | None:
    if not _truthy(tags.get("error")):
        return None
    log = next((e.data for e in logs if e.data.get("event") == "error"), {})
    return (str(log.get("error.kind") or tags.get("error.kind") or "error"),
            log.get("message") or log.get("error.object") or tags.get("error.message"), log.get("stack"))


def _refs(span: dict, trace_id: str, shape: Shape) -> list[tuple[str, str, str]]:
    refs = [(str(r.get("refType") or "CHILD_OF").lower(), str(r.get("traceID") or trace_id), str(r["spanID"]))
            for r in shape.list(span.get("references"), f"span {span.get('spanID')}", "references")
            if isinstance(r, dict) and r.get("spanID")]
    if span.get("parentSpanID") and all(r[2] != span["parentSpanID"] for r in refs):
        refs.insert(0, ("child_of", trace_id, str(span["parentSpanID"])))
    return refs


def _choose_parent(refs, present: set) -> int | None:
    for wanted in ("child_of", "follows_from", None):
        for i, (ref, trace, sid) in enumerate(refs):
            if (wanted is None or ref == wanted) and (wanted is None or (trace, sid) in present):
                return i
    return None


class JaegerImporter:
    name = "jaeger"

    def sniff(self, head: str) -> bool:
        return '"traceID"' in head and ('"spanID"' in head or '"operationName"' in head)

    def convert(self, text: str, options: ImportOptions) -> Converted:
        docs = json_documents(text, "Jaeger")
        spans: list[Span] = []
        problems: list[Problem] = []
        notes: list[str] = []
        shape = Shape()
        for base, doc in docs:
            traces = _traces(doc)
            if not traces:
                raise ValueError(f"line {base}: no Jaeger trace (an object with 'spans') found")
            lines = LineFinder(text if len(docs) == 1 else "", ("spanID",), base)
            for t in traces:
                trace_id = str(t.get("traceID") or "")
                processes = shape.obj(t.get("processes"), f"trace {trace_id}", "processes")
                notes += [f"trace {trace_id}: Jaeger warning: {w}"
                          for w in shape.list(t.get("warnings"), f"trace {trace_id}", "warnings")]
                raw_spans = [s for s in t["spans"] if isinstance(s, dict)]
                present = {(str(s.get("traceID") or trace_id), str(s.get("spanID"))) for s in raw_spans}
                for s in raw_spans:
                    line = lines.find(s.get("spanID"))
                    tid = str(s.get("traceID") or trace_id)
                    if not s.get("spanID") or not tid:
                        problems.append(Problem(line, None, "span without traceID or spanID", raw_json(s)))
                        continue
                    spans.append(self._span(s, tid, processes, present, line, shape))
        conv = to_events(spans, self.name)
        conv.problems[:0] = problems
        conv.notes[:0] = notes
        conv.notes += shape.notes()
        return conv

    def _span(self, s: dict, trace_id: str, processes: dict, present: set, line: int, shape: Shape) -> Span:
        where = f"span {s['spanID']}"
        pid = s.get("processID")
        proc = shape.obj(s.get("process") or (processes.get(pid) if isinstance(pid, str) else None), where, "process")
        ptags = kv(proc.get("tags"), shape, where, "process tags")
        tags = kv(s.get("tags"), shape, where, "tags")
        logs = []
        for log in shape.list(s.get("logs"), where, "logs"):
            log = shape.obj(log, where, "log")
            fields = kv(log.get("fields"), shape, where, "log fields")
            name = fields.get("event") or fields.get("message") or "log"
            logs.append(SpanEvent(_us(log.get("timestamp")), str(name), fields))
        refs = _refs(s, trace_id, shape)
        pick = _choose_parent(refs, present)
        parent = refs[pick] if pick is not None else None
        extra = {"process": ptags} if ptags else {}
        warnings = shape.list(s.get("warnings"), where, "warnings")
        if warnings:
            extra["warnings"] = warnings
        start, dur = _us(s.get("startTime")), _us(s.get("duration"))
        return Span(
            trace_id=trace_id, span_id=str(s["spanID"]), name=str(s.get("operationName") or ""),
            service=str(proc.get("serviceName") or "unknown"), start_ns=start, duration_ns=dur,
            parent_id=parent[2] if parent else None,
            parent_trace=parent[1] if parent and parent[1] != trace_id else None,
            ref_type=parent[0] if parent else "child_of",
            kind=str(tags["span.kind"]).lower() if tags.get("span.kind") else None,
            attributes=tags, events=logs,
            links=[(tr, sid, {"ref_type": ref}) for i, (ref, tr, sid) in enumerate(refs) if i != pick],
            error=_error(tags, logs), instance=ptags.get("hostname") or ptags.get("ip"),
            tags=extra, line=line, raw=raw_json(s), precision_us=True)


def _us(value) -> int | None:
    n = as_int(value)
    return n * 1000 if n is not None else None


register(JaegerImporter())
