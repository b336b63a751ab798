"""Span trees (OTLP, Jaeger, Zipkin) to Raceway events.

Every importer of spans fills ``Span`` records; ``to_events`` turns them into
events with one mapping for all three formats:

* each span (each *half* of a shared client/server span) is its own context:
  ``thread_id`` = ``distributed_span_id`` = its key (the span id; ``<id>/server``
  for the server half of a Zipkin-style shared id; ``<id>#2`` for a second,
  different span reusing an id);
* a start event ``FunctionCall{function_name: span name, module: service,
  args: attributes}`` with ``metadata.duration_ns`` = the span's duration, then one
  ``Custom{name, data}`` per span event / log / annotation, then an ``Error``
  event (at the span's end) when the span failed;
* ``parent_id`` of a start event = the parent span's start event when the parent
  is in the input (the server half's parent is its client half); otherwise the
  first *link* (OTLP link, extra Jaeger reference) to a span in the input that
  started no later, so links become happens-before only for spans without a
  parent. Other links are kept in ``metadata.tags["span.links"]``;
* ``upstream_span_id`` = the parent's key when the parent runs in another
  service (a cross-service call for the dependency analysis);
* span events are clamped to start no earlier than their span, so a context is
  never ordered against its parent edge.

Duplicate span ids, clock skew (a span starting before its parent), parents
missing from the input and negative durations are reported as notes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from raceway_core.formats import Converted
from raceway_core.formats._common import rfc3339_ns, rfc3339_us
from raceway_core.loading.reading import Problem

MAX_EXAMPLES = 3
MIN_NS, MAX_NS = -62135596800 * 10**9, 253402300799 * 10**9  # years 1 to 9999


def _in_range(ns: int) -> bool:
    return MIN_NS <= ns <= MAX_NS


@dataclass
class SpanEvent:
    ts_ns: int | None
    name: str
    data: dict


@dataclass
class Span:
    trace_id: str
    span_id: str
    name: str
    service: str
    start_ns: int | None
    duration_ns: int | None
    parent_id: str | None = None  # parent span id as given
    parent_trace: str | None = None  # trace of the parent, when it differs (Jaeger references)
    ref_type: str = "child_of"  # of the parent reference: child_of | follows_from
    kind: str | None = None  # client, server, producer, consumer, internal
    shared: bool = False  # Zipkin: the server half of an id shared with the client
    attributes: dict = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    links: list[tuple[str, str, dict]] = field(default_factory=list)  # (trace, span, attributes)
    error: tuple[str, str | None, str | None] | None = None  # (type, message, stack trace)
    instance: str | None = None
    tags: dict = field(default_factory=dict)  # extra metadata.tags for the start event
    line: int | None = None
    raw: str = ""  # the span as given, for rejects
    precision_us: bool = False  # µs sources print six fractional digits
    # set by to_events
    key: str = ""
    parent: "Span | None" = None
    via: str | None = None  # how the parent was chosen: child_of, follows_from, shared, link


def _fmt_ts(span: Span, ns: int) -> str:
    return rfc3339_us(ns // 1000) if span.precision_us and ns % 1000 == 0 else rfc3339_ns(ns)


def _same(a: Span, b: Span) -> bool:
    return a.raw == b.raw if a.raw and b.raw else False


class _Notes:
    def __init__(self) -> None:
        self.items: dict[str, list[str]] = defaultdict(list)

    def add(self, what: str, example: str = "") -> None:
        if example and example in self.items[what]:
            return  # an identical copy of a span says nothing new
        self.items[what].append(example)

    def render(self) -> list[str]:
        out = []
        for what, examples in self.items.items():
            text = what.format(n=len(examples), s="" if len(examples) == 1 else "s")
            shown = [e for e in examples if e]
            if shown:
                text += ": " + "; ".join(shown[:MAX_EXAMPLES]) + ("; ..." if len(shown) > MAX_EXAMPLES else "")
            out.append(text)
        return out


def _assign_keys(spans: list[Span], notes: _Notes) -> dict[tuple[str, str], list[Span]]:
    """Group spans by (trace, id) and give each half or duplicate its own key."""
    groups: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for s in spans:
        groups[(s.trace_id, s.span_id)].append(s)
    for (trace, sid), group in groups.items():
        if len(group) == 1:
            group[0].key = sid
            continue
        clients = [s for s in group if s.kind == "client"]
        servers = [s for s in group if s.kind == "server" or s.shared]
        kept: list[Span] = []
        if len(clients) == 1 and servers and len(clients) + len(servers) == len(group):
            clients[0].key = sid
            for i, s in enumerate(servers):
                s.key = f"{sid}/server" + (f"#{i + 1}" if i else "")
                s.parent, s.via = clients[0], "shared"
            if len(servers) > 1:
                notes.add("span id{s} shared by one client and several servers ({n})",
                          f"{sid}: {len(servers)} server halves kept as {sid}/server, {sid}/server#2, ...")
            continue
        for s in group:
            twin = next((k for k in kept if _same(k, s)), None)
            if twin is not None:
                s.key = twin.key  # same event ids: the loader skips the copy as a duplicate
                notes.add("duplicate span{s}, identical copies skipped ({n})", f"{sid} in trace {trace}")
                continue
            s.key = sid if not kept else f"{sid}#{len(kept) + 1}"
            if kept:
                notes.add("span id{s} reused by different spans ({n})",
                          f"{sid} in trace {trace}: kept as {s.key}")
            kept.append(s)
    return groups


def _pick_half(group: list[Span], child: Span) -> Span:
    """Which span of an id a child belongs to: the half in the child's service (server first)."""
    distinct = []
    for s in group:
        if all(s.key != d.key for d in distinct):
            distinct.append(s)
    if len(distinct) == 1:
        return distinct[0]
    servers = [s for s in distinct if s.via == "shared"]
    for pool in (servers, distinct):
        for s in pool:
            if s.service == child.service and (not child.instance or s.instance == child.instance):
                return s
        for s in pool:
            if s.service == child.service:
                return s
    return servers[0] if servers else distinct[0]


def _resolve_parents(spans: list[Span], groups, notes: _Notes) -> None:
    for s in spans:
        if s.parent is not None:
            continue
        if s.parent_id:
            group = groups.get((s.parent_trace or s.trace_id, s.parent_id))
            if group:
                s.parent, s.via = _pick_half(group, s), s.ref_type
                continue
            notes.add("{n} span{s} whose parent is not in the input (roots unless a link orders them)",
                      f"{s.key} (parent {s.parent_id})")
        for trace, sid, _attrs in s.links:
            group = groups.get((trace, sid))
            if not group:
                continue
            cand = _pick_half(group, s)
            if cand is s or (cand.trace_id, cand.key) == (s.trace_id, s.key):
                continue
            if s.start_ns is not None and cand.start_ns is not None and cand.start_ns > s.start_ns:
                continue
            s.parent, s.via = cand, "link"
            break
    # bad data may hold parent cycles: cut each one at the span where it closes
    state: dict[int, int] = {}
    for s in spans:
        path = []
        cur: Span | None = s
        while cur is not None and state.get(id(cur), 0) == 0:
            state[id(cur)] = 1
            path.append(cur)
            cur = cur.parent
        if cur is not None and state.get(id(cur)) == 1:
            notes.add("parent cycle{s} cut ({n})", f"{cur.key} no longer has parent {cur.parent.key}")
            cur.parent, cur.via = None, None
        for p in path:
            state[id(p)] = 2


def _skew(spans: list[Span], notes: _Notes) -> None:
    for s in spans:
        p = s.parent
        if p is None or s.via == "link" or s.start_ns is None or p.start_ns is None:
            continue
        if s.start_ns < p.start_ns:
            gap = (p.start_ns - s.start_ns) / 1000
            notes.add("clock skew: {n} span{s} starting before the parent (timestamps kept as recorded)",
                      f"{s.key} ({s.service}) starts {gap:,.0f} µs before its parent {p.key} ({p.service})")


def _event(s: Span, eid: str, ts_ns: int, kind: dict, parent: str | None, duration: int | None,
           tags: dict) -> dict:
    up = s.parent.key if s.parent is not None and s.parent.service != s.service and s.via != "link" else None
    return {
        "id": eid,
        "trace_id": s.trace_id,
        "parent_id": parent,
        "timestamp": _fmt_ts(s, ts_ns),
        "kind": kind,
        "metadata": {"thread_id": s.key, "service_name": s.service, "tags": tags,
                     "duration_ns": duration, "instance_id": s.instance,
                     "distributed_span_id": s.key, "upstream_span_id": up},
        "causality_vector": [],
        "lock_set": [],
    }


def _start_tags(s: Span, fmt: str) -> dict:
    tags = {"span.format": fmt, "span.id": s.span_id, "span.kind": s.kind,
            "span.parent_id": s.parent_id, "span.ref": s.via}
    if s.links:
        tags["span.links"] = [{"trace_id": t, "span_id": i, "attributes": a} for t, i, a in s.links]
    tags.update(s.tags)
    return tags


def to_events(spans: list[Span], fmt: str) -> Converted:
    notes = _Notes()
    problems: list[Problem] = []
    groups = _assign_keys(spans, notes)
    _resolve_parents(spans, groups, notes)
    _skew(spans, notes)
    events: list[dict] = []
    lines: list[int | None] = []
    placed: set[tuple[str, str]] = set()  # (trace, key) of the spans whose start event exists
    for s in spans:
        if s.start_ns is None:
            problems.append(Problem(s.line, None, f"span {s.span_id} ({s.name!r}) has no start time", s.raw))
        elif not _in_range(s.start_ns):
            problems.append(Problem(s.line, None, f"span {s.span_id} ({s.name!r}): start time {s.start_ns:,} ns "
                                    "since the epoch is out of range (years 1-9999)", s.raw))
        else:
            placed.add((s.trace_id, s.key))
    for s in spans:
        if (s.trace_id, s.key) not in placed:
            continue
        base = f"{s.trace_id}:{s.key}"
        p = s.parent
        parent = f"{p.trace_id}:{p.key}" if p is not None and (p.trace_id, p.key) in placed else None
        dur = s.duration_ns
        if dur is not None and (dur < 0 or not _in_range(s.start_ns + dur)):
            notes.add("{n} span{s} with an impossible duration (dropped)", f"{s.key} ({dur:,} ns)")
            dur = None
        kind = {"FunctionCall": {"function_name": s.name, "module": s.service, "args": s.attributes}}
        events.append(_event(s, base, s.start_ns, kind, parent, dur, _start_tags(s, fmt)))
        lines.append(s.line)
        last = s.start_ns
        for i, ev in enumerate(s.events):
            ts = ev.ts_ns if ev.ts_ns is not None and s.start_ns <= ev.ts_ns <= MAX_NS else s.start_ns
            last = max(last, ts)
            events.append(_event(s, f"{base}:e{i + 1}", ts, {"Custom": {"name": ev.name, "data": ev.data}},
                                 base, None, {"span.id": s.span_id}))
            lines.append(s.line)
        if s.error is not None:
            etype, message, stack = s.error
            end = s.start_ns + dur if dur else s.start_ns
            kind = {"Error": {"error_type": etype, "message": message, "stack_trace": stack}}
            events.append(_event(s, f"{base}:error", max(end, last), kind, base, None, {"span.id": s.span_id}))
            lines.append(s.line)
    return Converted(events, lines, problems, notes.render(), fmt)


def raw_json(obj) -> str:
    return orjson.dumps(obj).decode()
