"""Telling NDJSON from a pretty-printed document never drops records (issue 15.1).

A file whose first lines do not parse was taken for one document, and every
later valid line was silently dropped.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import event
from raceway_core.store import Store


def _broken(kind: str, i: int) -> str:
    text = json.dumps(event(1000 + i))
    if kind == "cr":
        return text.replace('"trace-1"', '"tra\rce-1"')
    if kind == "nan":
        return text.replace('"old_value": 1000', '"old_value": NaN').replace(f'"old_value": {1000 + i}',
                                                                           '"old_value": NaN')
    if kind == "inf":
        return text.replace(f'"new_value": {1001 + i}', '"new_value": -Infinity')
    if kind == "1e400":
        return text.replace(f'"new_value": {1001 + i}', '"new_value": 1e400')
    if kind == "surrogate":
        return text.replace('"trace-1"', '"tr\\ud800ce"')
    if kind == "truncated":
        return text[: len(text) // 2]
    if kind == "garbage":
        return "{this is not json"
    raise ValueError(kind)


KINDS = ["cr", "nan", "inf", "1e400", "surrogate", "truncated", "garbage"]


_BROKEN = dict(bad=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4), good=st.integers(1, 6),
               tail_bad=st.lists(st.sampled_from(KINDS), max_size=2))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**_BROKEN)
def test_a_few_broken_first_lines_keep_line_mode(tmp_path, bad, good, tail_bad):
    """`make test`'s few examples of the test below (40 examples, slow)."""
    test_broken_first_lines_keep_line_mode.hypothesis.inner_test(tmp_path, bad, good, tail_bad)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**_BROKEN)
def test_broken_first_lines_keep_line_mode(tmp_path, bad, good, tail_bad):
    lines = [_broken(k, i) for i, k in enumerate(bad)]
    lines += [json.dumps(event(i)) for i in range(good)]
    lines += [_broken(k, 50 + i) for i, k in enumerate(tail_bad)]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with Store() as store:
        [s] = store.load([path])
        assert s.mode == "ndjson"
        assert s.loaded == good
        assert s.rejected == len(bad) + len(tail_bad)
        assert s.records == len(lines)
        rejected_lines = sorted(r["line"] for r in store.sql("SELECT line FROM rejects").to_pylist())
    n_bad = len(bad)
    assert rejected_lines == list(range(1, n_bad + 1)) + list(range(n_bad + good + 1, len(lines) + 1))


@pytest.mark.parametrize("text", [
    json.dumps([event(1), event(2), event(3)], indent=2),
    json.dumps({"events": [event(1), event(2), event(3)]}, indent=1),
    "[\n" + ",\n".join(json.dumps(event(i)) for i in (1, 2, 3)) + "\n]\n",
    "[\n" + ",\n".join(json.dumps(event(i)) for i in (1, 2)) + ",\n" + json.dumps(event(3))[:40] + "\n",
])
def test_documents_still_read_as_documents(tmp_path, text):
    path = tmp_path / "d.json"
    path.write_text(text)
    with Store() as store:
        [s] = store.load([path])
    assert s.mode == "json"
    assert s.loaded >= 2


def test_pretty_document_whose_first_event_is_broken_stays_a_document(tmp_path):
    text = json.dumps([event(1), event(2), event(3)], indent=2).replace('"ev-1"', '"ev-1",,', 1)
    path = tmp_path / "d.json"
    path.write_text(text)
    with Store() as store:
        [s] = store.load([path])
    assert (s.mode, s.loaded, s.rejected) == ("json", 2, 1)
