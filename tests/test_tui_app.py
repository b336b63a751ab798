"""The explorer driven like a user: keys in, app state out (Textual pilot, no terminal)."""

from __future__ import annotations

import json
import threading

import pytest
from textual.widgets import Static
from tui_support import ROOT, SIZE, banking, no_races, settle, slow_calls

from raceway_core import TraceSession
from tui_support import create_app  # opens on the timeline, as these tests expect
from raceway_tui.screens import ErrorScreen, HelpScreen
from raceway_tui.widgets.detail import EventDetail
from raceway_tui.widgets.status import StatusBar
from raceway_tui.widgets.traces import TraceList

pytestmark = pytest.mark.asyncio
BANKING = ROOT / "sample_traces" / "banking-unsafe.jsonl"  # recorded with the SDK: two concurrent transfers


def plain(renderable, width: int = 200) -> str:
    """What a Static shows, as plain text."""
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(renderable)
    return " ".join(console.export_text().split())  # wrapped lines joined again


def text_of(app, selector: str) -> str:
    return plain(app.query_one(selector, Static).content)


async def test_banking_sample_race_found_explained_and_shown_in_the_timeline():
    with TraceSession.open([BANKING]) as s:  # what the engine says, to compare with what the panes show
        trace_id = s.traces()["trace_id"][0].as_py()
        ww = s.races().groups.to_pylist()[0]
        a_id, b_id = ww["example_first"], ww["example_second"]
        why_ab = s.explain(a_id, b_id).text
        clock_a = [f"{k}: {n}" for k, n in s.vector_clock(a_id).items()]
    app = create_app([BANKING])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.query_one(StatusBar).info.counts["races"] == 3
        await pilot.press("3")
        await settle(pilot)
        races = app.pane("races")
        assert app.active_pane == "races" and races.ready
        first = races.table.row(0)
        assert (first["type"], first["severity"], first["kind"], first["variable"], first["count"]) == \
            ("group", "critical", "write-write", "alice.balance", 1)
        assert first["first_location"] == first["second_location"] == "examples/banking.py:43"
        assert "3 racing pairs in 2 groups" in text_of(app, "#races-summary")

        await pilot.press("right_square_bracket")
        await settle(pilot)
        pair = races.table.row()
        assert (pair["type"], pair["first_id"], pair["second_id"]) == ("pair", a_id, b_id)
        assert a_id.startswith("1907e678") and b_id.startswith("02716783")
        a, b, why = text_of(app, "#race-a"), text_of(app, "#race-b"), text_of(app, "#race-why")
        assert a_id in a and "1000 → 900" in a and b_id in b and "1000 → 800" in b
        assert all(c in a for c in clock_a) and "∅ (no lock held)" in b  # vector clock and lock set
        assert "concurrent" in why and " ".join(why_ab.split()) in why

        await pilot.press("enter")
        await settle(pilot)
        view = app.pane("timeline").view
        assert app.active_pane == "timeline" and app.focused is view and app.scope == trace_id
        assert view.row()["id"] == a_id and view.highlight == {a_id, b_id}
        rows = [view.row(i) for i in range(view.count)]
        partner = next(i for i, r in enumerate(rows) if r["id"] == b_id)
        for i in (view.cursor, partner):  # both drawn highlighted (▶), both racing (◆)
            line = view.render_line(i - round(view.scroll_y)).text
            assert line.startswith("▶") and "◆" in line and "RACE" in line
        assert app.query_one(EventDetail).record["id"] == a_id

        await pilot.press("escape")  # back where the jump started
        await settle(pilot)
        assert app.active_pane == "races" and races.table.row()["first_id"] == a_id

        await pilot.press("left_square_bracket")  # the first race: nothing before it
        await pilot.press("right_square_bracket")
        await settle(pilot)
        nxt = races.table.row()
        assert (nxt["type"], nxt["kind"], nxt["severity"]) == ("pair", "read-write", "warning")


async def test_cross_trace_race_jumps_to_the_all_traces_timeline(tmp_path):
    app = create_app([banking(tmp_path / "bank.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("right_square_bracket", "enter")
        await settle(pilot)
        view = app.pane("timeline").view
        assert app.scope is None  # w1 and w2 are in two traces: only "all traces" holds both
        assert view.row()["id"] == "w1" and view.highlight == {"w1", "w2"}
        assert {view.row(i)["id"] for i in range(view.count)} == {"r1", "r2", "w1", "w2"}


async def test_audit_trail_lists_accesses_in_causal_order():
    with TraceSession.open([BANKING]) as s:
        accesses = set(s.sql("SELECT id FROM events WHERE variable = 'alice.balance'")["id"].to_pylist())
        app = create_app([BANKING])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("4")
            await settle(pilot)
            pane = app.pane("variables")
            assert pane.variables.row(0)["variable"] == "alice.balance" and pane.variables.row(0)["races"] == 3
            trail = [pane.trail.row(i) for i in range(pane.trail.row_count)]
            ids = [r["event_id"] for r in trail]
            assert set(ids) == accesses and len(ids) == 6
            for i, x in enumerate(ids):  # a linear extension of happens-before
                assert not any(s.happens_before(y, x) for y in ids[i + 1:])
            # hand-checked: the initial balance first, the read after both transfers last
            assert (ids[0][:8], trail[0]["access"], trail[0]["new_value"]) == ("07279364", "Write", "1000")
            assert (ids[-1][:8], trail[-1]["access"], trail[-1]["new_value"]) == ("1a05da2c", "Read", "800")
            assert [r["after_previous"] for r in trail] == \
                [None] + [s.happens_before(ids[i - 1], ids[i]) for i in range(1, 6)]
            assert {r["event_id"][:8] for r in trail if r["racing"]} == {"f88d6069", "40ef954b", "1907e678", "02716783"}
            await pilot.press("enter")  # into the trail, then Enter on an access jumps to it
            assert app.focused is pane.trail
            await pilot.press("j", "enter")
            await settle(pilot)
            assert app.active_pane == "timeline" and app.pane("timeline").view.row()["id"] == ids[1]
            await pilot.press("escape")
            await settle(pilot)
            assert app.active_pane == "variables" and app.focused is pane.trail


async def test_search_finds_an_event_by_id_prefix_and_steps_through_text_matches(tmp_path):
    app = create_app([banking(tmp_path / "bank.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")  # search works from any pane: it goes to the timeline
        await settle(pilot)
        await pilot.press("slash", "w", "2", "enter")
        await settle(pilot)
        pane = app.pane("timeline")
        assert app.active_pane == "timeline" and pane.view.row()["id"] == "w2"
        assert pane.last_result.by == "id" and pane.last_result.matches == 1
        await pilot.press("slash", *"bank.py:21", "enter")
        await settle(pilot)
        assert pane.last_result.matches == 2 and pane.view.row()["id"] == "w1"
        await pilot.press("n")
        await settle(pilot)
        assert pane.view.row()["id"] == "w2"
        await pilot.press("n")  # wraps around
        await settle(pilot)
        assert pane.view.row()["id"] == "w1"
        await pilot.press("N")
        await settle(pilot)
        assert pane.view.row()["id"] == "w2"
        await pilot.press("slash", *"nothing here", "enter")
        await settle(pilot)
        assert pane.view.row()["id"] == "w2" and pane.last_result.matches == 0
        await pilot.press("slash", "escape")  # Esc closes the search box
        assert not app.query_one("#search").display


PANES = ["1", "2", "3", "4", "5", "6"]


async def test_every_pane_renders_with_an_empty_store():
    app = create_app([])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.state == "ready" and app.query_one(StatusBar).info.counts["events"] == 0
        for key in PANES:
            await pilot.press(key)
            await settle(pilot)
            assert app.pane().ready, key
        assert app.pane("timeline").view.count == 0
        assert app.pane("races").table.row_count == 0 and "0 racing pairs" in text_of(app, "#races-summary")
        assert app.pane("critical").table.row_count == 0
        assert app.pane("variables").variables.row_count == 0
        assert app.pane("anomalies").table.row_count == 0
        assert "No calls between services" in text_of(app, "#deps-graph")
        assert app.query_one(TraceList).table.row_count == 1  # just "All traces"
        assert not isinstance(app.screen, ErrorScreen)


async def test_every_pane_renders_a_trace_without_races(tmp_path):
    app = create_app([no_races(tmp_path / "calm.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t", "j", "enter")  # choose the one trace
        await settle(pilot)
        assert app.scope == "T"
        for key in PANES:
            await pilot.press(key)
            await settle(pilot)
            assert app.pane().ready, key
        view = app.pane("timeline").view
        assert view.count == 8 and not any(view.row(i)["racing"] for i in range(8))
        lock_from = view.row([view.row(i)["id"] for i in range(8)].index("b1"))["edges_in"]
        assert [(e["kind"], e["src_id"]) for e in lock_from] == [("lock", "a3"), ("parent", "m1")]  # latest first
        assert "0 racing pairs" in text_of(app, "#races-summary") and app.pane("races").table.row_count == 0
        crit = app.pane("critical")
        assert [crit.table.row(i)["id"] for i in range(crit.table.row_count)][0] == "m1"
        assert "path 3.00 ms" in text_of(app, "#critical-summary")
        variables = app.pane("variables")
        assert variables.variables.row(0)["races"] == 0
        assert [variables.trail.row(i)["after_previous"] for i in range(2)] == [None, True]


async def test_analysis_in_progress_shows_events_in_time_order_first(tmp_path, monkeypatch):
    release = threading.Event()
    original = TraceSession.analyze

    def slow(self, progress=None):
        release.wait(10)
        return original(self, progress)

    monkeypatch.setattr(TraceSession, "analyze", slow)
    app = create_app([banking(tmp_path / "bank.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if app.pane("timeline").view.row(3) is not None:
                break
        view = app.pane("timeline").view
        assert app.state == "analysing" and not view.model.causal
        assert [view.row(i)["id"] for i in range(4)] == ["r1", "r2", "w1", "w2"]
        detail = app.query_one(EventDetail)
        for _ in range(100):
            await pilot.pause(0.02)
            if detail.record is not None:
                break
        assert detail.record["id"] == "r1" and "vector_clock" not in detail.record  # fields only, for now
        assert app.query_one(StatusBar).info.counts.get("races") is None  # not known yet
        assert "… races" in plain(app.query_one(StatusBar).content)
        await pilot.press("3")
        await pilot.pause(0.1)
        assert "Waiting for the analysis" in plain(app.pane("races").placeholder.content)
        release.set()
        await settle(pilot)
        assert app.state == "ready" and app.pane("races").table.row_count == 2
        assert detail.record["id"] == "r1" and detail.record["vector_clock"]  # fetched again, now with its clock
        await pilot.press("1")  # hidden panes catch up when shown
        await settle(pilot)
        assert app.pane("timeline").view.model.causal


async def test_trace_list_filter_sort_and_choose(tmp_path):
    app = create_app([banking(tmp_path / "bank.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        traces = app.query_one(TraceList)
        assert [traces.table.row(i)["trace_id"] for i in range(3)] == [None, "req-1", "req-2"]
        await pilot.press("t", "f", *"req-2", "enter")
        assert [traces.table.row(i)["trace_id"] for i in range(traces.table.row_count)] == [None, "req-2"]
        await pilot.press("j", "enter")
        await settle(pilot)
        assert app.scope == "req-2" and app.pane("timeline").view.count == 2
        assert "trace req-2" in plain(app.query_one(StatusBar).content)
        await pilot.press("t", "f", "escape")  # Esc in the filter box clears it
        assert traces.table.row_count == 3 and app.focused is traces.table
        traces.table.sort_by("label", reverse=True)
        assert [traces.table.row(i)["trace_id"] for i in range(3)] == [None, "req-2", "req-1"]


async def test_follow_an_edge_back_and_return(tmp_path):
    app = create_app([no_races(tmp_path / "calm.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = app.pane("timeline").view
        ids = [view.row(i)["id"] for i in range(view.count)]
        view.goto(ids.index("b1"))
        await settle(pilot)
        await pilot.press("enter")  # b1 acquires the lock a3 released
        await settle(pilot)
        assert view.row()["id"] == "a3"
        await pilot.press("escape")
        await settle(pilot)
        assert view.row()["id"] == "b1"


async def test_help_palette_export_and_reload(tmp_path):
    path = banking(tmp_path / "bank.jsonl")
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"pane: races")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert app.active_pane == "races"

        app.export_dir = tmp_path
        app.action_export("json")
        await settle(pilot)
        [exported] = tmp_path.glob("raceway-races-all-*.json")
        assert {(g["kind"], g["count"]) for g in json.loads(exported.read_text())} == \
            {("write-write", 1), ("read-write", 2)}
        await pilot.press("1")
        await settle(pilot)
        app.action_export("parquet")
        await settle(pilot)
        import pyarrow.parquet as pq

        [pq_file] = tmp_path.glob("raceway-timeline-all-*.parquet")
        assert pq.read_table(pq_file)["id"].to_pylist()[:2] == ["r1", "r2"]

        # a line appended to the file: r reloads it and the analysis sees the new event
        extra = json.loads(path.read_text().splitlines()[-1]) | {"id": "w3", "timestamp": "2026-11-01T12:00:00.000050Z"}
        with path.open("a") as f:
            f.write(json.dumps(extra) + "\n")
        await pilot.press("r")
        await settle(pilot)
        assert app.query_one(StatusBar).info.counts["events"] == 5 and app.pane("timeline").view.count == 5


async def test_a_file_with_nothing_valid_opens_an_error_dialog_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n{also not\n")
    app = create_app([bad])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.state == "error" and isinstance(app.screen, ErrorScreen)
        assert "line 1" in app.screen.message and "bad.jsonl" in app.screen.message
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorScreen)
        await pilot.press("3")
        await settle(pilot)
        assert "loading failed" in plain(app.pane("races").placeholder.content)


async def test_a_failing_query_is_a_message_not_a_crash(tmp_path, monkeypatch):
    def boom(self, *a, **kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(TraceSession, "anomalies", boom)
    app = create_app([banking(tmp_path / "bank.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        assert "Could not load Anomalies: RuntimeError: disk on fire" in plain(app.pane("anomalies").placeholder.content)
        assert any("disk on fire" in str(n.message) for n in app._notifications)
        await pilot.press("3")  # the rest keeps working
        await settle(pilot)
        assert app.pane("races").table.row_count == 2 and app.is_running


async def test_anomalies_sort_by_z_and_severity_and_jump(tmp_path):
    app = create_app([slow_calls(tmp_path / "slow.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        table = app.pane("anomalies").table

        def column(key):
            return [table.row(i)[key] for i in range(table.row_count)]

        assert column("event_id") == ["c11", "c10", "c9"]  # by z, largest first
        assert column("severity") == ["critical", "warning", "minor"]
        assert [round(z, 1) for z in column("z")] == [32.7, 7.1, 4.4]
        assert table.sort_column == "z"
        await pilot.press("S")  # reverse
        assert column("event_id") == ["c9", "c10", "c11"]
        await pilot.press("s")  # the next column: actual time, longest first
        assert table.sort_column == "actual_ms" and column("event_id") == ["c11", "c10", "c9"]
        await pilot.click("#anomalies-table", offset=(2, 0))  # the severity header
        assert table.sort_column == "severity" and column("severity") == ["critical", "warning", "minor"]
        await pilot.click("#anomalies-table", offset=(2, 0))  # again: reversed
        assert column("severity") == ["minor", "warning", "critical"]
        assert table.row()["event_id"] == "c11"  # the cursor stays on its row
        await pilot.press("g", "enter")  # the first row now: the minor one (c9), in its trace's timeline
        await settle(pilot)
        assert app.active_pane == "timeline" and app.scope == "req-9"
        assert app.pane("timeline").view.row()["id"] == "c9"


async def test_jump_from_one_trace_to_a_cross_trace_race_and_back():
    app = create_app([ROOT / "sample_traces" / "original-sdk-distributed.jsonl"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t", "j", "enter")
        await settle(pilot)
        first_trace = app.scope
        assert first_trace is not None
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("s")  # races joining two traces show under all traces (spec: Races)
        await settle(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        pair = app.pane("races").table.row()
        assert pair["first_trace"] != pair["second_trace"]  # the two requests race with each other
        await pilot.press("enter")
        await settle(pilot)
        view = app.pane("timeline").view
        assert app.active_pane == "timeline" and app.focused is view and app.scope is None
        assert view.row()["id"] == pair["first_id"] and view.highlight == {pair["first_id"], pair["second_id"]}
        await pilot.press("escape")
        await settle(pilot)
        assert app.active_pane == "races" and app.scope == first_trace
        assert app.pane("races").table.row()["first_id"] == pair["first_id"]


async def test_search_from_another_pane_after_the_scope_changed(tmp_path):
    app = create_app([banking(tmp_path / "bank.jsonl")])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6", "t", "j", "j", "enter")  # choose req-2 while the timeline is hidden
        await settle(pilot)
        assert app.scope == "req-2" and app.active_pane == "dependencies"
        await pilot.press("slash", "w", "2", "enter")  # the timeline reloads for req-2, then searches
        await settle(pilot)
        view = app.pane("timeline").view
        assert view.model.trace_id == "req-2" and view.row()["id"] == "w2"


async def test_race_keys_pressed_while_pairs_load_each_move_from_where_the_last_lands(monkeypatch):
    """Two quick ] presses: the second waits for the pairs the first one opens (it used to
    open the same group again, cancelling the first fetch: the cursor stayed in group 1)."""
    import raceway_core.browse as browse

    gate, original = threading.Event(), browse.group_pairs

    def held(*args, **kw):  # a store slow to answer: the pairs come after both keys
        gate.wait(10)
        return original(*args, **kw)

    monkeypatch.setattr(browse, "group_pairs", held)
    app = create_app([BANKING])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        races = app.pane("races")
        await pilot.press("right_square_bracket", "right_square_bracket")
        await pilot.pause(0.1)
        gate.set()
        await settle(pilot)
        row = races.table.row()
        assert set(races.expanded) == {0, 1}
        assert (row["type"], row["g"], row["p"]) == ("pair", 1, 0)
        g1 = races.expanded[1][0]
        assert (row["first_id"], row["second_id"]) == (g1["first_id"], g1["second_id"])
        await pilot.press("left_square_bracket")  # back to the first group's pair: already open
        await settle(pilot)
        assert (races.table.row()["type"], races.table.row()["g"]) == ("pair", 0)


async def test_new_events_keep_open_race_groups_and_the_selected_pair(tmp_path):
    """A refresh with new events (live mode, or r) must not collapse what the user opened."""
    path = tmp_path / "bank.jsonl"
    path.write_text(BANKING.read_text())
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "right_square_bracket", "right_square_bracket")  # group 1's pair, then group 2's
        await settle(pilot)
        races = app.pane("races")
        before = races.table.row()
        assert before["type"] == "pair" and set(races.expanded) == {0, 1}
        first_group = [races.table.row(i)["type"] for i in range(races.table.row_count)]
        extra = json.loads(BANKING.read_text().splitlines()[0])
        extra.update(id="late-1", thread_id="late")  # a new event of another context: the races stay the same
        with path.open("a") as f:
            f.write(json.dumps(extra) + "\n")
        await pilot.press("r")
        await settle(pilot)
        assert app.query_one(StatusBar).info.counts["events"] == 22
        assert set(races.expanded) == {0, 1}
        assert [races.table.row(i)["type"] for i in range(races.table.row_count)] == first_group
        after = races.table.row()
        assert (after["type"], after["first_id"], after["second_id"]) == ("pair", before["first_id"], before["second_id"])
