"""Random and mutated input never crashes a loader; every record is accounted for."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import event
from raceway_core.store import Store

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
FIELDS = ["id", "trace_id", "parent_id", "timestamp", "kind", "metadata", "causality_vector", "lock_set"]


@st.composite
def mutated_event(draw, i):
    ev = event(i, thread=draw(st.sampled_from(["a", "b"])))
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["drop", "replace", "nested"]))
        key = draw(st.sampled_from(FIELDS))
        if action == "drop":
            ev.pop(key, None)
        elif action == "replace":
            ev[key] = draw(json_values)
        elif isinstance(ev.get("metadata"), dict):
            ev["metadata"][draw(st.sampled_from(["thread_id", "duration_ns", "service_name"]))] = draw(json_values)
    return ev


@st.composite
def ndjson_lines(draw):
    """Lines of events (some mutated, some not JSON, some cut short); returns (lines, records)."""
    lines = []
    for i in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["ok", "mutated", "garbage", "cut", "blank"]))
        if kind == "ok":
            lines.append(json.dumps(event(i)))
        elif kind == "mutated":
            lines.append(json.dumps(draw(mutated_event(i))))
        elif kind == "garbage":
            lines.append(draw(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"),
                                      min_size=1, max_size=30)))
        elif kind == "cut":
            text = json.dumps(event(i))
            lines.append(text[: draw(st.integers(1, len(text) - 1))])
        else:
            lines.append("   ")
    return lines


def _check(path):
    with Store() as s:
        [summary] = s.load([path])
        assert summary.fatal is None
        events = s.sql("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
        rejects = s.sql("SELECT count(*) AS n FROM rejects").to_pylist()[0]["n"]
        assert summary.loaded == events and summary.rejected == rejects
        assert summary.records == summary.loaded + summary.rejected + summary.duplicates
        return summary


@pytest.mark.slow
@SETTINGS
@given(lines=ndjson_lines(), gz=st.booleans())
def test_ndjson_every_line_is_loaded_or_rejected(tmp_path_factory, lines, gz):
    path = tmp_path_factory.mktemp("f") / "x.jsonl"
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    s = _check(path)
    non_blank = [ln for ln in lines if ln.strip(" \t\r\n")]  # JSON whitespace only: U+0085 is a bad line, not a blank one
    # lines that are JSON arrays or batches hold several records; count the rest one each
    def weight(ln):
        try:
            v = json.loads(ln)
        except ValueError:
            return None
        if isinstance(v, list) or (isinstance(v, dict) and isinstance(v.get("events"), list)):
            return None
        return 1
    if all(weight(ln) == 1 or weight(ln) is None and not ln.lstrip().startswith(("[", "{")) for ln in non_blank):
        assert s.records == len(non_blank)


@pytest.mark.slow
@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("r") / "x.jsonl"
    path.write_bytes(data)
    _check(path)


@SETTINGS
@given(events=st.lists(st.integers(0, 50).flatmap(lambda i: mutated_event(i)), max_size=6),
       wrap=st.sampled_from(["array", "events", "response"]), cut=st.integers(0, 400), indent=st.sampled_from([None, 2]))
@pytest.mark.slow
def test_documents_mutated_and_cut(tmp_path_factory, events, wrap, cut, indent):
    doc = {"array": events, "events": {"events": events}, "response": {"success": True, "data": {"events": events}}}[wrap]
    text = json.dumps(doc, indent=indent)
    if cut and cut < len(text):
        text = text[: len(text) - cut]
    path = tmp_path_factory.mktemp("d") / "x.json"
    path.write_text(text)
    with Store() as s:
        [summary] = s.load([path])
        if summary.fatal is None:
            n_ev = s.sql("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
            n_rej = s.sql("SELECT count(*) AS n FROM rejects").to_pylist()[0]["n"]
            assert (summary.loaded, summary.rejected) == (n_ev, n_rej)
            assert summary.records == summary.loaded + summary.rejected + summary.duplicates
            if not cut:
                assert summary.records == len(events)
