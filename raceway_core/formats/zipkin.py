"""Zipkin v2 JSON: an array of spans (or of traces, each an array of spans).

A span has ``traceId``, ``id``, ``parentId``, ``kind``, ``name``, ``timestamp`` and
``duration`` in µs, ``localEndpoint``/``remoteEndpoint``, ``tags``, ``annotations``
and ``shared`` (the server half of an id shared with its client).

Ids are padded as Zipkin does; pieces of one span reported separately (a
fragment without kind or timestamp and the same local endpoint) are merged
before conversion. A CLIENT and SERVER reusing one id become two contexts, the
server half a child of the client half (a cross-service edge), see ``_spans``.
"""

from __future__ import annotations

from raceway_core.formats import Converted, ImportOptions, register
from raceway_core.formats._common import LineFinder, Shape, as_int, json_documents
from raceway_core.formats._spans import Span, SpanEvent, raw_json, to_events
from raceway_core.loading.reading import Problem


def _pad_trace(t: str) -> str:
    if len(t) > 16:
        t = t.rjust(32, "0")
        return t[16:] if t.startswith("0" * 16) else t
    return t.rjust(16, "0")


def _spans_of(doc) -> list:
    if isinstance(doc, list):
        out = []
        for d in doc:
            out.extend(_spans_of(d) if isinstance(d, list) else [d])
        return out
    return [doc]


def _endpoint_ok(a: dict, b: dict) -> bool:
    return all(not a.get(k) or not b.get(k) or a[k] == b[k] for k in ("serviceName", "ipv4", "ipv6", "port"))


def _fragment(s: dict) -> bool:
    return not s.get("kind") or not s.get("timestamp")


def _merge(a: dict, b: dict) -> dict:
    """Fill what ``a`` lacks from ``b`` (pieces of one span sent separately)."""
    out = dict(a)
    for k, v in b.items():
        if k in ("tags", "localEndpoint", "remoteEndpoint"):
            out[k] = {**(v or {}), **(a.get(k) or {})}
        elif k == "annotations":
            seen = {(x.get("timestamp"), x.get("value")) for x in a.get(k) or []}
            out[k] = list(a.get(k) or []) + [x for x in v or [] if (x.get("timestamp"), x.get("value")) not in seen]
        elif not out.get(k):
            out[k] = v
    return out


def _merge_pieces(group: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    whole = [(i, s) for i, s in group if not _fragment(s)]
    pieces = [(i, s) for i, s in group if _fragment(s)]
    for i, frag in pieces:
        for j, (k, s) in enumerate(whole):
            if (not frag.get("kind") or frag.get("kind") == s.get("kind")) and \
                    _endpoint_ok(s.get("localEndpoint") or {}, frag.get("localEndpoint") or {}):
                whole[j] = (k, _merge(s, frag))
                break
        else:
            whole.append((i, frag))
    return sorted(whole, key=lambda p: p[0])


class ZipkinImporter:
    name = "zipkin"

    def sniff(self, head: str) -> bool:
        body = head.lstrip("\ufeff \t\r\n")
        return body[:1] == "[" and '"traceId"' in head and '"id"' in head and '"spanId"' not in head

    def convert(self, text: str, options: ImportOptions) -> Converted:
        docs = json_documents(text, "Zipkin")
        problems: list[Problem] = []
        shape = Shape()
        cleaned: list[tuple[int, dict, int]] = []  # (input order, span, line)
        for base, doc in docs:
            lines = LineFinder(text if len(docs) == 1 else "", ("id",), base)
            for s in _spans_of(doc):
                if not isinstance(s, dict) or not _is_id(s.get("traceId")) or not _is_id(s.get("id")):
                    problems.append(Problem(lines.line, None, "span without traceId or id", raw_json(s)))
                    continue
                line = lines.find(s["id"])
                c = dict(s, traceId=_pad_trace(str(s["traceId"]).lower()), id=str(s["id"]).lower().rjust(16, "0"))
                where = f"span {c['id']}"
                for key in ("localEndpoint", "remoteEndpoint", "tags"):
                    c[key] = shape.obj(c.get(key), where, key)
                c["annotations"] = [a for a in shape.list(c.get("annotations"), where, "annotations")
                                    if isinstance(a, dict)]
                if not _is_id(c.get("parentId")):
                    c.pop("parentId", None)
                if c.get("parentId"):
                    c["parentId"] = str(c["parentId"]).lower().rjust(16, "0")
                    if c["parentId"] == c["id"]:
                        del c["parentId"]
                if c.get("kind") == "CLIENT":
                    c.pop("shared", None)  # shared marks the server side only
                cleaned.append((len(cleaned), c, line))
        longest = {t[-16:]: t for _, s, _ in cleaned for t in [s["traceId"]] if len(t) == 32}
        groups: dict[tuple[str, str], list[tuple[int, dict]]] = {}
        line_of = {}
        for i, s, line in cleaned:
            s["traceId"] = longest.get(s["traceId"], s["traceId"])
            groups.setdefault((s["traceId"], s["id"]), []).append((i, s))
            line_of[i] = line
        merged = sorted((p for g in groups.values() for p in _merge_pieces(g)), key=lambda p: p[0])
        spans = [self._span(s, line_of[i]) for i, s in merged]
        conv = to_events(spans, self.name)
        conv.problems[:0] = problems
        conv.notes += shape.notes()
        return conv

    def _span(self, s: dict, line: int) -> Span:
        local, remote = s["localEndpoint"], s["remoteEndpoint"]
        tags = {str(k): v for k, v in s["tags"].items()}
        events = [SpanEvent(_us(a.get("timestamp")), str(a.get("value") or "annotation"), {})
                  for a in s["annotations"]]
        host = local.get("ipv4") or local.get("ipv6")
        extra = {k: v for k, v in (("local_endpoint", local), ("remote_endpoint", remote)) if v}
        error = ("error", str(tags["error"]) if tags["error"] else None, None) if "error" in tags else None
        return Span(
            trace_id=s["traceId"], span_id=s["id"], parent_id=s.get("parentId"), name=str(s.get("name") or ""),
            service=str(local.get("serviceName") or "unknown"), start_ns=_us(s.get("timestamp")) or None,
            duration_ns=_us(s.get("duration")), kind=str(s["kind"]).lower() if s.get("kind") else None,
            shared=bool(s.get("shared")), attributes=tags, events=events, error=error,
            instance=f"{host}:{local['port']}" if host and local.get("port") else host,
            tags=extra, line=line, raw=raw_json(s), precision_us=True)


def _is_id(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != ""


def _us(value) -> int | None:
    n = as_int(value)
    return n * 1000 if n is not None else None


register(ZipkinImporter())
