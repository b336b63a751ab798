"""The exports of the original's web UI (raceway_core/export.py): a trace as wire-format JSON
that loads back, events as CSV, the critical path and the anomalies as Markdown whose
tables survive any data."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from test_causality_rules import Trace, call
from tui_support import slow_calls, write

from raceway_core import export as ex
from raceway_core.errors import RacewayError
from raceway_core.session import TraceSession
from raceway_core.store import Store

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"
T1 = "3fd52b05-19b7-48c6-a63c-6b785db7f0c9"


def file_events(path: Path, trace: str | None = None) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            obj = json.loads(line)
            out += obj["events"] if "events" in obj else [obj]
    return [e for e in out if trace is None or e["trace_id"] == trace]


def run(session, what, fmt=None, trace=None) -> bytes:
    buf = io.BytesIO()
    ex.export(session, what, fmt, buf, trace)
    return buf.getvalue()


def cells(line: str) -> list[str]:
    """A Markdown table row's cells: split on pipes not escaped by a backslash."""
    assert line.startswith("| ") and line.endswith(" |"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


# -- Markdown escaping -------------------------------------------------------------------------
def test_md_text_keeps_a_cell_on_one_line():
    assert ex.md_text("a|b\nc") == "a\\|b<br>c"
    assert ex.md_text("x\r\ny\rz") == "x<br>y<br>z"
    assert ex.md_text("<b>&`*_[]\\") == "&lt;b&gt;&amp;\\`\\*\\_\\[\\]\\\\"
    assert ex.md_text("bell\x07 esc\x1b[2J") == "bell\\u0007 esc\\u001b\\[2J"
    assert ex.md_text(None) == "" and ex.md_text(3.5) == "3.5"


def test_md_table_has_one_line_per_row_and_its_columns():
    hostile = ["pipe | in it", "two\nlines", "back\\|slash pipe", "ok"]
    lines = ex.md_table(["a", "b", "c", "d"], [hostile, [1, 2, 3, 4]], align="lrrl")
    assert len(lines) == 4  # header, rule, two rows: no line break inside a row
    assert lines[1] == "| --- | ---: | ---: | --- |"
    assert [len(cells(x)) for x in lines] == [4, 4, 4, 4]
    assert cells(lines[2])[0] == "pipe \\| in it" and cells(lines[2])[2] == "back\\\\\\|slash pipe"


# -- a trace as JSON ------------------------------------------------------------------------------
def test_trace_json_loads_back_as_the_same_events(tmp_path):
    with TraceSession.open([ORDERS]) as s:
        doc = json.loads(run(s, "trace", None, T1))
    want = file_events(ORDERS, T1)
    assert doc["trace_id"] == T1 and doc["events"] == want  # the wire events as given, in file order
    assert doc["summary"]["total_events"] == 62 == len(want)
    assert doc["summary"]["race_conditions"] == 5  # all five racing pairs of the sample are in this trace
    out = tmp_path / "t.json"
    out.write_text(json.dumps(doc))
    with Store() as store:
        [summary] = store.load([out])
        assert summary.loaded == 62 and summary.rejected == 0
        ids = store.sql("SELECT id FROM events ORDER BY seq")["id"].to_pylist()
    assert ids == [e["id"] for e in want]


def test_trace_json_of_all_traces_and_an_unknown_trace():
    with TraceSession.open([ORDERS]) as s:
        doc = json.loads(run(s, "trace"))
        assert doc["trace_id"] is None and len(doc["events"]) == 94
        with pytest.raises(RacewayError, match="no trace with id 'nope'"):
            run(s, "trace", None, "nope")


# -- events as CSV --------------------------------------------------------------------------------
def test_events_csv_rows_are_the_events_and_data_stays_in_its_cell(tmp_path):
    t = Trace()
    t.ev("e1", "main", call("start"), dur=1_000_000)
    t.ev("e2", "main", call('odd, "quoted"\nname'), dur=2_000_000)
    path = write(tmp_path / "odd.jsonl", t)
    with TraceSession.open([path]) as s:
        text = run(s, "events", "csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == ["e1", "e2"]
    assert rows[1]["function_name"] == 'odd, "quoted"\nname' and rows[1]["duration_ms"] == "2"
    # the original's columns first
    assert list(rows[0])[:7] == ["id", "timestamp", "kind", "thread_id", "service", "environment", "location"]


def test_events_csv_of_a_trace_of_the_sample():
    with TraceSession.open([ORDERS]) as s:
        rows = list(csv.DictReader(io.StringIO(run(s, "events", "csv", T1).decode())))
    want = file_events(ORDERS, T1)
    assert [r["id"] for r in rows] == [e["id"] for e in want]
    assert [r["kind"] for r in rows] == [next(iter(e["kind"])) for e in want]
    assert [r["service"] for r in rows] == [e["metadata"]["service_name"] for e in want]


# -- the critical path as Markdown ------------------------------------------------------------------
def test_critical_path_markdown_by_hand(tmp_path):
    """One thread, three calls back to back: 10 ms at 0, 20 ms at 10 ms, 30 ms at 30 ms. The
    path is all three, 60 ms of a 60 ms trace."""
    t = Trace()
    t.ev("c1", "main", call("one"), dur=10_000_000, at=0)
    t.ev("c2", "main", call("two|pipe"), dur=20_000_000, at=10_000)
    t.ev("c3", "main", call("three"), dur=30_000_000, at=30_000)
    path = write(tmp_path / "seq.jsonl", t)
    with TraceSession.open([path]) as s:
        md = run(s, "critical", None, "T").decode()
        with pytest.raises(RacewayError, match="critical path is a trace's"):
            run(s, "critical", None, None)
    assert "- **Path events:** 3" in md and "- **Path duration:** 60.00 ms" in md
    assert "- **Trace duration:** 60.00 ms" in md and "- **Share of the trace:** 100.00%" in md
    rows = [cells(x) for x in md.splitlines() if x.startswith("| ") and not x.startswith("| ---")]
    assert rows[0] == ["#", "kind", "what", "context", "location", "time (UTC)", "ms", "event id"]
    steps = rows[1:]
    assert [(r[0], r[2], r[6], r[7]) for r in steps] == [
        ("1", "one", "10.000", "c1"), ("2", "two\\|pipe", "20.000", "c2"), ("3", "three", "30.000", "c3")]
    assert all(len(r) == 8 for r in rows)


# -- the anomalies as Markdown -------------------------------------------------------------------------
def test_anomalies_markdown_of_the_slow_calls(tmp_path):
    """tui_support.slow_calls: 12 calls of work(), nine of 10-12 ms and 18, 22 and 60 ms;
    median 11.5 ms, so 60 ms is critical (z 32.7), 22 warning (7.1), 18 minor (4.4)."""
    path = slow_calls(tmp_path / "slow.jsonl")
    with TraceSession.open([path]) as s:
        md = run(s, "anomalies").decode()
        one = run(s, "anomalies", "md", "req-11").decode()
        table = json.loads(run(s, "anomalies", "json"))
    assert "- **Total anomalies:** 3" in md and "- **Critical:** 1" in md and "- **Warning:** 1" in md
    assert "- **Minor:** 1" in md
    rows = [cells(x) for x in md.splitlines() if x.startswith("| ") and not x.startswith("| ---")][1:]
    assert [(r[1], r[3], r[4], r[5]) for r in rows] == [
        ("critical", "60.000", "11.500", "32.71"), ("warning", "22.000", "11.500", "7.08"),
        ("minor", "18.000", "11.500", "4.38")]
    assert [r[9] for r in rows] == ["c11", "c10", "c9"]
    assert "trace req-11" in one and "- **Total anomalies:** 1" in one
    assert [a["event_id"] for a in table] == ["c11", "c10", "c9"]


def test_formats_and_names():
    assert ex.check_export("critical", None) == "md" and ex.check_export("events", "CSV") == "csv"
    assert ex.check_export("anomalies", "markdown") == "md"
    with pytest.raises(RacewayError, match="cannot export events as md"):
        ex.check_export("events", "md")
    with pytest.raises(RacewayError, match="choose one of"):
        ex.check_export("everything", None)
    import datetime as dt

    assert ex.file_name("critical", "md", "3fd52b05-19b7", dt.datetime(2026, 12, 3, 18, 30)) == \
        "raceway-critical-3fd52b05-20261203-183000.md"
    assert ex.file_name("events", "csv", "a/b:c", dt.datetime(2026, 12, 3)).startswith("raceway-events-a_b_c-")


def test_a_trace_by_its_prefix():
    with TraceSession.open([ORDERS]) as s:
        assert ex.resolve_trace(s, "3fd5") == T1 and ex.resolve_trace(s, T1) == T1
        with pytest.raises(RacewayError, match="no trace"):
            ex.resolve_trace(s, "zz")
