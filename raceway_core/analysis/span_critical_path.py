"""Jaeger's critical path of a span tree (the jaeger-ui algorithm), for imported traces.

How it works (jaeger-ui's TraceCriticalPath, re-implemented from its description):

1. The tree: the spans of a trace imported from OTLP, Jaeger or Zipkin, each a
   child of its parent span (a server half is the child of its client half).
   Children that do not block their parent are removed with their subtrees:
   FOLLOWS_FROM references (classic jaeger-ui) and a CONSUMER child of a
   PRODUCER (current jaeger-ui: the only non-blocking pair OpenTelemetry can
   express). Spans joined only by a span link are roots.
2. Sanitising, parents before children, against the already-sanitised parent:
   a child starting at or after its parent's end, or ending at or before its
   parent's start, is dropped with its subtree; a child sticking out at either
   side is clipped to the parent.
3. The walk, from each root: take the span's last-finishing child (LFC); the
   part of the span after the LFC's end (up to the span's end, or up to the start
   of the child we came back from) is a section of the path; continue in the LFC.
   A span without such a child contributes from its own start, and the walk
   returns to its parent, looking there for a child that finished strictly
   before this span started. Empty sections are left out.

So the sections partition each root's time: every instant is charged to the
deepest span that was (by this heuristic) the one being waited on — its *self
time* on the path.

How it differs from ``raceway_core.causality``'s critical path: that one is the
longest path along happens-before edges (program order, parents, joins, lock
hand-offs, cross-service calls) weighted by event durations; it needs no
nesting and works on any events. This one knows nothing of happens-before: it
assumes a parent waits for its children, attributes wall-clock time by
timestamps (so clock skew is cut away by the sanitiser rather than reported),
and its total is the root's duration minus any gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

# a span's start event, as the OTLP / Jaeger / Zipkin importers write it
_IS_SPAN = """s.trace_id = ? AND s.kind = 'FunctionCall' AND s.span_id IS NOT NULL
  AND json_extract_string(s.raw, '$.metadata.tags."span.format"') IS NOT NULL"""

_SPANS = f"""
SELECT s.span_id AS key, s.service, s.function_name AS operation, s.ts_ns AS start,
       coalesce(s.duration_ns, 0) AS duration, s.seq, s.id,
       CASE WHEN p.trace_id = s.trace_id THEN p.span_id END AS parent,
       json_extract_string(s.raw, '$.metadata.tags."span.ref"') AS ref,
       json_extract_string(s.raw, '$.metadata.tags."span.kind"') AS span_kind
FROM events s LEFT JOIN events p ON p.id = s.parent_id
WHERE {_IS_SPAN}
ORDER BY s.ts_ns, s.seq
"""


@dataclass(frozen=True)
class Section:
    span_id: str  # the span's context (thread_id / distributed_span_id)
    service: str | None
    operation: str | None
    start_ns: int
    end_ns: int
    event_id: str = ""  # the span's start event

    @property
    def self_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class SpanCriticalPath:
    trace_id: str
    sections: tuple[Section, ...]  # in time order
    roots: tuple[str, ...]
    dropped: tuple[str, ...]  # spans outside their parent's time (left out with their subtrees)
    clipped: tuple[str, ...]  # spans clipped to their parent's time
    non_blocking: tuple[str, ...]  # follows-from children, consumers of producers (left out with subtrees)

    @property
    def duration_ns(self) -> int:
        return sum(s.self_ns for s in self.sections)


@dataclass
class _Node:
    key: str
    service: str | None
    operation: str | None
    start: int
    end: int
    seq: int
    id: str
    parent: str | None
    ref: str | None
    kind: str | None
    children: list["_Node"] = field(default_factory=list)
    up: "_Node | None" = None


def _nodes(conn, trace_id: str) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    for key, service, op, start, dur, seq, eid, parent, ref, kind in conn.execute(_SPANS, [trace_id]).fetchall():
        if key in nodes:
            continue
        parent = None if ref == "link" else parent
        nodes[key] = _Node(key, service, op, start, start + dur, seq, eid, parent, ref, kind)
    return nodes


def _sanitise(roots: list[_Node], kids: dict[str, list[_Node]], dropped: list, clipped: list,
              non_blocking: list) -> None:
    """Link the tree of blocking children, clipping or dropping those that overflow their parent.

    Parents come before children, so a child is checked against its parent as clipped.
    """
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        for child in kids.get(node.key, []):
            if child.ref == "follows_from" or (node.kind == "producer" and child.kind == "consumer"):
                non_blocking.append(child.key)
                continue
            inside = child.start < node.end if child.start >= node.start else child.end > node.start
            if not inside:
                dropped.append(child.key)
                continue
            if child.start < node.start or child.end > node.end:
                child.start, child.end = max(child.start, node.start), min(child.end, node.end)
                clipped.append(child.key)
            child.up = node
            node.children.append(child)
            stack.append(child)
        node.children.sort(key=lambda c: (-c.end, c.start, c.seq))


def _walk(root: _Node, out: list[Section]) -> None:
    node, returning = root, None
    while node is not None:
        limit = node.end if returning is None else returning
        lfc = next((c for c in node.children if returning is None or c.end < returning), None)
        begin = lfc.end if lfc is not None else node.start
        if begin != limit:
            out.append(Section(node.key, node.service, node.operation, begin, limit, node.id))
        if lfc is not None:
            node, returning = lfc, None
        else:
            node, returning = node.up, node.start


def has_spans(source, trace_id: str) -> bool:
    """Whether the trace was imported from spans (its Jaeger path can be walked)."""
    owned = not isinstance(source, duckdb.DuckDBPyConnection)
    conn = source.cursor() if owned else source
    try:
        return conn.execute(f"SELECT EXISTS (SELECT 1 FROM events s WHERE {_IS_SPAN})", [trace_id]).fetchone()[0]
    finally:
        if owned:
            conn.close()


def span_critical_path(source, trace_id: str) -> SpanCriticalPath:
    """Jaeger's critical path of ``trace_id``; ``source`` is a Store or a DuckDB connection/cursor."""
    owned = not isinstance(source, duckdb.DuckDBPyConnection)
    conn = source.cursor() if owned else source
    try:
        nodes = _nodes(conn, trace_id)
    finally:
        if owned:
            conn.close()
    kids: dict[str, list[_Node]] = {}
    roots = []
    for n in nodes.values():
        if n.parent is None or n.parent not in nodes:
            roots.append(n)
        else:
            kids.setdefault(n.parent, []).append(n)
    dropped: list[str] = []
    clipped: list[str] = []
    non_blocking: list[str] = []
    _sanitise(roots, kids, dropped, clipped, non_blocking)
    sections: list[Section] = []
    for root in sorted(roots, key=lambda r: (r.start, r.seq)):
        _walk(root, sections)
    sections.sort(key=lambda s: (s.start_ns, s.end_ns))
    return SpanCriticalPath(trace_id, tuple(sections), tuple(r.key for r in roots), tuple(dropped),
                            tuple(clipped), tuple(non_blocking))
