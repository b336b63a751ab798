"""Malformed input never crashes an importer: damaged fields are read as empty and noted,
damaged spans or entries are rejects, and only an unreadable file is refused (ValueError)."""

from __future__ import annotations

import json
import random

import pytest

from raceway_core.formats import ImportOptions, by_name

WEIRD = [None, 1, -5, 2**70, -2**70, 10**19, 1.5, "x", "", [], {}, [1], {"a": 1}, True, "123", "-1"]


def _paths(o, p=()):
    yield p
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _paths(v, p + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _paths(v, p + (i,))


def _set(o, path, value):
    if not path:
        return value
    o = json.loads(json.dumps(o))
    cur = o
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return o


SAMPLES = {
    "otlp": "/work/shared/corpus/otel/otlp/otel_traces_01.json",
    "jaeger": "/work/shared/corpus/otel/jaeger/ui_01.json",
    "zipkin": "/work/shared/corpus/otel/zipkin/yelp.json",
}


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_damaged_span_documents(fmt):
    try:
        doc = json.load(open(SAMPLES[fmt]))
    except FileNotFoundError:
        pytest.skip("shared corpus not available")
    rng = random.Random(7)
    importer = by_name(fmt)
    outcomes = {"converted": 0, "refused": 0}
    for _ in range(200):
        damaged = doc
        for _ in range(rng.randint(1, 3)):
            damaged = _set(damaged, rng.choice(list(_paths(damaged))), rng.choice(WEIRD))
        try:
            conv = importer.convert(json.dumps(damaged), ImportOptions(source="d.json"))
        except ValueError as exc:  # the whole document is unusable: a clear message, no traceback
            assert "found" in str(exc) or "document" in str(exc), exc
            outcomes["refused"] += 1
            continue
        json.dumps(conv.events)  # events are plain JSON
        assert len(conv.events) == len(conv.lines)
        outcomes["converted"] += 1
    assert outcomes["converted"] > 100


def test_damaged_field_is_read_as_empty_and_noted():
    spans = [{"traceId": "a", "id": "1", "name": "x", "timestamp": 5, "duration": 1, "tags": "oops",
              "localEndpoint": ["not", "an", "object"]}]
    conv = by_name("zipkin").convert(json.dumps(spans), ImportOptions())
    assert len(conv.events) == 1 and conv.events[0]["metadata"]["service_name"] == "unknown"
    assert conv.notes == ["2 malformed fields read as empty: span 0000000000000001: 'localEndpoint' is list, "
                          "not an object; span 0000000000000001: 'tags' is str, not an object"]


def test_span_time_out_of_range_is_a_reject():
    spans = [{"traceId": "a", "id": "1", "name": "far", "timestamp": 10**19, "duration": 1},
             {"traceId": "a", "id": "2", "name": "ok", "timestamp": 5, "duration": 10**19}]
    conv = by_name("zipkin").convert(json.dumps(spans), ImportOptions())
    assert [(p.line, p.reason) for p in conv.problems] == [
        (1, "span 0000000000000001 ('far'): start time 10,000,000,000,000,000,000,000 ns since the epoch "
            "is out of range (years 1-9999)")]
    [ok] = conv.events
    assert ok["metadata"]["duration_ns"] is None
    assert conv.notes[0].startswith("1 span with an impossible duration (dropped)")


def test_random_text_is_refused_or_loaded_by_the_shiviz_importer():
    rng = random.Random(3)
    pieces = ["a", "b", " ", "\n", "{", "}", '"a"', ":", "1", "0", "-", "\\\"", "=== x ===", "é", "\r\n"]
    importer = by_name("shiviz")
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        try:
            conv = importer.convert(text, ImportOptions(source="r.log"))
        except ValueError as exc:
            assert "no events match" in str(exc) or "motif" in str(exc)
            continue
        assert len(conv.events) + len(conv.problems) >= 1
        json.dumps(conv.events)
