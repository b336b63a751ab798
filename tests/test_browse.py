"""raceway_core.browse: paging, locating and searching timelines, before and after the analysis."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from test_causality_rules import Trace, acq, banking_race, call, rel, sc

from raceway_core.browse import Timeline, event_record, group_pairs, trace_list
from raceway_core.errors import RacewayError
from raceway_core.export import write_table


def locked():
    """Two workers hand a lock over; a spawn and a late child; one unlocked write races."""
    t = Trace()
    t.ev("m1", "main", call("start"))
    t.ev("a1", "A", acq("L"), parent="m1")
    t.ev("a2", "A", sc("x", "Write", "w.py:1", 0, 1))
    t.ev("a3", "A", rel("L"))
    t.ev("b1", "B", acq("L"), parent="m1")
    t.ev("b2", "B", sc("x", "Write", "w.py:1", 1, 2))
    t.ev("b3", "B", rel("L"))
    t.ev("c1", "C", sc("x", "Write", "w.py:9", 2, 3), parent="m1")
    t.ev("m2", "main", call("end"))
    return t


def all_rows(tl: Timeline) -> list[dict]:
    rows = tl.page(0, tl.count() + 5).to_pylist()
    assert [r["row"] for r in rows] == list(range(tl.count()))
    return rows


def test_time_order_before_the_analysis(tmp_path):
    t = locked()
    with t.session(tmp_path) as s:
        tl = Timeline(s, "T")
        assert not tl.causal and not s.analysed
        rows = all_rows(tl)
        # before the analysis: (timestamp, input order) - the builder's order here
        assert [r["id"] for r in rows] == [e["id"] for e in t.events]
        lanes = {ln["lane"]: ln for ln in tl.lanes().to_pylist()}
        assert [lanes[i]["label"] for i in range(4)] == ["svc/main", "svc/A", "svc/B", "svc/C"]
        assert (lanes[1]["first_row"], lanes[1]["last_row"], lanes[1]["events"]) == (1, 3, 3)
        assert {r["id"]: r["lane"] for r in rows}["b2"] == 2
        assert not any(r["racing"] or r["edges_in"] for r in rows)  # known only after the analysis
        assert tl.locate("c1") == 7 and tl.locate("nope") is None
        assert not s.analysed  # nothing above started the analysis


def test_causal_order_is_a_linear_extension_of_happens_before(tmp_path):
    with locked().session(tmp_path) as s:
        s.engine
        tl = Timeline(s, "T")
        assert tl.causal
        ids = [r["id"] for r in all_rows(tl)]
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                assert not s.happens_before(b, a), (b, a)


def test_page_marks_racing_accesses_and_cross_lane_edges(tmp_path):
    with locked().session(tmp_path) as s:
        s.engine
        rows = {r["id"]: r for r in all_rows(Timeline(s, "T"))}
        # the lock orders a2 -> b2; the unlocked c1 races with both
        assert {i for i, r in rows.items() if r["racing"]} == {"a2", "b2", "c1"}
        warm = Timeline(s, "T")
        warm.prepare()  # the racing events computed once instead of per page: same marks
        assert {r["id"] for r in all_rows(warm) if r["racing"]} == {"a2", "b2", "c1"}
        lock_in = [e for e in rows["b1"]["edges_in"] if e["kind"] == "lock"]
        assert lock_in == [{"kind": "lock", "detail": "L", "src_id": "a3", "src_lane": 1, "src_trace": "T"}]
        assert {e["kind"] for e in rows["a1"]["edges_in"]} == {"parent"}
        assert rows["a2"]["edges_in"] is None  # program order only
        assert (rows["a2"]["old_value"], rows["a2"]["new_value"], rows["a2"]["lane"]) == ("0", "1", 1)


def test_all_traces_and_cross_trace_rows(tmp_path):
    with banking_race().session(tmp_path) as s:
        before = Timeline(s, None)
        assert before.count() == 4 and [r["id"] for r in all_rows(before)] == ["r1", "r2", "w1", "w2"]
        assert before.page(2, 10)["row"].to_pylist() == [2, 3]
        s.engine
        tl = Timeline(s, None)
        rows = all_rows(tl)
        assert {r["id"] for r in rows if r["racing"]} == {"r1", "r2", "w1", "w2"}
        assert tl.locate("w2") == [r["id"] for r in rows].index("w2")
        one = Timeline(s, "req-2")
        assert [r["id"] for r in all_rows(one)] == ["r2", "w2"] and one.locate("w1") is None


def test_search_by_id_prefix_field_and_text(tmp_path):
    with locked().session(tmp_path) as s:
        for analysed in (False, True):
            if analysed:
                s.engine
            tl = Timeline(s, "T")
            ids = [r["id"] for r in all_rows(tl)]
            hit = tl.search("b2")
            assert (hit.row, hit.matches, hit.by) == (ids.index("b2"), 1, "id")
            # a prefix of several ids steps through them and wraps around
            b_rows = sorted(ids.index(i) for i in ("b1", "b2", "b3"))
            assert tl.search("b").row == b_rows[0]
            assert tl.search("b", after=b_rows[0]).row == b_rows[1]
            assert tl.search("b", after=b_rows[2]).row == b_rows[0]
            assert tl.search("b", after=b_rows[0], backwards=True).row == b_rows[2]
            # not an id: any text of the event (here a location in the raw JSON)
            loc = tl.search("W.PY:9")
            assert (loc.row, loc.matches, loc.by) == (ids.index("c1"), 1, "text")
            assert tl.search("kind:lockacq").matches == 2
            assert tl.search("var:x").matches == 3
            assert tl.search("loc:w.py:1").matches == 2
            assert tl.search("no such thing").row is None


def test_empty_store(store):
    from raceway_core import TraceSession

    s = TraceSession(store)
    for analysed in (False, True):
        if analysed:
            s.engine
        tl = Timeline(s, None)
        assert tl.count() == 0 and tl.page(0, 50).num_rows == 0 and tl.locate("x") is None
        assert tl.search("x").row is None and tl.start_ns() is None
    assert trace_list(store).num_rows == 0
    # the analysis of nothing is empty, not an error
    assert s.counts()["races"] == 0 and s.traces().num_rows == 0 and s.races().pair_count == 0
    assert s.critical_paths() == [] and s.anomalies().num_rows == 0
    assert s.variables().num_rows == 0 and s.dependencies().num_rows == 0


def test_trace_list_event_record_and_group_pairs(tmp_path):
    with banking_race().session(tmp_path) as s:
        tl = trace_list(s.store).to_pylist()
        assert [(r["trace_id"], r["events"], r["contexts"], r["services"]) for r in tl] == \
            [("req-1", 2, 1, ["svc"]), ("req-2", 2, 1, ["svc"])]
        assert not s.analysed
        rec = event_record(s.store, "w2")
        assert (rec["variable"], rec["access"], json.loads(rec["new_value"])) == ("alice.balance", "Write", 800)
        assert event_record(s.store, "nope") is None
        groups = s.races().groups.to_pylist()
        ww = next(g for g in groups if g["kind"] == "write-write")
        pairs = group_pairs(s, ww).to_pylist()
        assert [(p["first_id"], p["second_id"]) for p in pairs] == [("w1", "w2")]
        rw = next(g for g in groups if g["kind"] == "read-write")
        assert {(p["first_id"], p["second_id"]) for p in group_pairs(s, rw).to_pylist()} == {("r1", "w2"), ("r2", "w1")}
        assert group_pairs(s, rw, limit=1).num_rows == 1
        # races scoped to a trace: the pairs with both events in it; these three join two traces
        scoped = s.races(trace_id="req-1")
        assert (scoped.pair_count, scoped.pairs.num_rows, scoped.groups.num_rows) == (0, 0, 0)
        assert group_pairs(s, rw, trace_id="req-1").num_rows == 0
        assert sum(s.races().groups["cross_count"].to_pylist()) == 3


def test_traces_count_the_races_inside_them(tmp_path):
    t = locked()
    t.ev("z1", "Z", sc("x", "Write", "z.py:1", 9, 9), trace="U")  # a second trace racing on the same variable
    t.ev("z2", "Y", sc("x", "Write", "z.py:2", 9, 9), trace="U")  # and racing inside itself
    with t.session(tmp_path) as s:
        pairs = s.races().pairs.to_pylist()
        expected = {}
        for p in pairs:
            if p["first_trace"] == p["second_trace"]:
                expected[p["first_trace"]] = expected.get(p["first_trace"], 0) + 1
        got = {r["trace_id"]: r["races"] for r in s.traces().to_pylist() if r["races"]}
        assert got == expected and got["U"] == 1
        assert any(p["first_trace"] != p["second_trace"] for p in pairs)  # cross-trace ones are not in any trace


def test_progress_reports_every_stage(tmp_path):
    from raceway_core.causality.engine import STAGES

    seen = []
    with banking_race().session(tmp_path) as s:
        assert not s.analysed
        s.analyze(progress=lambda stage, i, n: seen.append((stage, i, n)))
        assert s.analysed
        assert seen == [(st, i, len(STAGES)) for i, st in enumerate(STAGES)]
        s.analyze(progress=lambda *a: seen.append(a))  # up to date: nothing recomputed
        assert len(seen) == len(STAGES)


def test_export_json_and_parquet(tmp_path):
    with banking_race().session(tmp_path) as s:
        s.engine
        table = Timeline(s, None).table()
        j = write_table(table, tmp_path / "view.json")
        rows = json.loads(j.read_text())
        assert [r["id"] for r in rows] == table["id"].to_pylist() and rows[0]["trace_id"] in ("req-1", "req-2")
        groups = s.races().groups
        p = write_table(groups, tmp_path / "races.parquet")
        assert pq.read_table(p).to_pylist() == groups.to_pylist()
        with pytest.raises(RacewayError, match="unknown format 'csv'"):
            write_table(groups, tmp_path / "x.csv")
        with pytest.raises(RacewayError, match="cannot export"):
            write_table(groups, tmp_path / "missing-dir" / "x.json")


def test_time_order_pages_from_anchors_match_a_full_sort(tmp_path, monkeypatch):
    import raceway_core.browse as browse

    t = locked()
    for i in range(12):  # a second trace interleaved in time, some events at equal timestamps
        t.ev(f"u{i}", f"U{i % 3}", call(f"f{i}"), trace="U", at=5 + 10 * (i // 2))
    with t.session(tmp_path) as s:
        full = Timeline(s, None).page(0, 100)["id"].to_pylist()
        assert len(full) == 21
        monkeypatch.setattr(browse, "ANCHOR_EVERY", 4)
        tl = Timeline(s, None)
        for start in range(0, 22):
            for n in (1, 3, 7):
                page = tl.page(start, n)
                assert page["id"].to_pylist() == full[start:start + n], (start, n)
                assert page["row"].to_pylist() == list(range(start, min(start + n, 21)))
