"""What the panes say about HTTP failures and the critical path's steps (issues 16.12, 16.13)."""

from __future__ import annotations

import pytest
from test_causality_rules import Trace, acq, call, rel
from tui_support import settle, write

from tui_support import create_app  # opens on the timeline, as these tests expect

pytestmark = pytest.mark.asyncio


def http(method, url):
    return {"HttpRequest": {"method": method, "url": url, "headers": {}, "body": None}}


def resp(status):
    return {"HttpResponse": {"status": status, "headers": {}, "body": None, "duration_ms": 1}}


def requests(path):
    """ok: 200; missing: 404; broken: 503. Each: a request, a spawned task awaited, a lock."""
    t = Trace()
    for trace, status in (("ok", 200), ("missing", 404), ("broken", 503)):
        t.ev(f"{trace}-req", "main", http("GET", f"/{trace}"), trace=trace, dur=1_000_000)
        sp = t.ev(f"{trace}-spawn", "main", {"AsyncSpawn": {"task_id": f"task-{trace}", "spawned_by": "main"}},
                  trace=trace)
        t.ev(f"{trace}-work", "child", call("work"), trace=trace, parent=sp, dur=3_000_000)
        t.ev(f"{trace}-await", "main", {"AsyncAwait": {"future_id": f"task-{trace}", "awaited_at": "a.py:9"}},
             trace=trace)
        t.ev(f"{trace}-lock", "main", acq(f"db-lock-{trace}"), trace=trace)
        t.ev(f"{trace}-unlock", "main", rel(f"db-lock-{trace}"), trace=trace)
        t.ev(f"{trace}-resp", "main", resp(status), trace=trace, dur=1_000_000)
    return write(path, t)


def red(style) -> bool:
    return style is not None and style.color is not None and style.color.name in ("red", "bright_red")


async def test_failed_responses_are_red_and_failing_traces_marked(tmp_path):
    app = create_app([requests(tmp_path / "r.jsonl")])
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        table = app.query_one("#trace-table")
        marks = {table.row(i)["trace_id"]: table.render_line(i + 1 - round(table.scroll_y)).text[:3]
                 for i in range(table.row_count)}
        assert marks["broken"].startswith("✗") and marks["missing"].startswith("✗")
        assert "✗" not in marks["ok"]
        view = app.pane("timeline").view
        for i in range(view.count):
            row = view.row(i)
            if row["kind"] != "HttpResponse":
                continue
            strip = view.render_line(i - round(view.scroll_y))
            status_seg = next(s for s in strip if "status" in s.text)
            kind_seg = next(s for s in strip if "HTTP resp" in s.text)
            failing = row["trace_id"] != "ok"
            assert red(status_seg.style) == failing and red(kind_seg.style) == failing, row["trace_id"]


async def test_critical_path_rows_say_what_each_step_did(tmp_path):
    app = create_app([requests(tmp_path / "r.jsonl")])
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        app.choose_trace("broken")
        await pilot.press("2")
        await settle(pilot)
        table = app.pane("critical").table
        rows = [table.row(i) for i in range(table.row_count)]
        whats = {r["id"]: r["what"] for r in rows}
        assert "broken-work" in whats  # the spawned task's work is on the path
        assert set(whats) >= {"broken-req", "broken-spawn", "broken-await", "broken-lock", "broken-resp"}
        assert whats["broken-req"] == "GET /broken" and whats["broken-spawn"] == "task task-broken"
        assert whats["broken-await"].startswith("future task-broken")  # then its location
        assert whats["broken-lock"].startswith("db-lock-broken")
        assert whats["broken-resp"] == "status 503"
        assert all(whats.values())


async def test_exports_go_to_the_data_folder_not_the_current_directory(tmp_path, monkeypatch):
    cwd, data = tmp_path / "cwd", tmp_path / "data"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("RACEWAY_EXPORT_DIR", raising=False)
    app = create_app([requests(tmp_path / "r.jsonl")])
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        app.action_export("json")
        for _ in range(200):
            await pilot.pause(0.02)
            if list((data / "raceway-tui" / "exports").glob("*.json")):
                break
    (written,) = (data / "raceway-tui" / "exports").glob("raceway-critical-all-*.json")
    assert written.stat().st_size > 0 and list(cwd.iterdir()) == []


async def test_an_empty_anomalies_pane_in_one_trace_points_to_the_others(tmp_path):
    from test_causality_rules import Trace

    t = Trace()
    for i, ms in enumerate([10, 11, 12] * 3 + [18, 22, 60]):  # anomalies in req-9..11 (each >= 1.5x the 11.5 median)
        t.ev(f"c{i}", "w", call("work"), trace=f"req-{i}", dur=ms * 1_000_000)
    app = create_app([write(tmp_path / "s.jsonl", t)])
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        total = app.status.info.counts["anomalies"]
        assert total == 3
        app.choose_trace("req-0")
        await pilot.press("5")
        await settle(pilot)
        table = app.pane("anomalies").table
        assert table.row_count == 0
        assert table.empty == "No anomalies in trace req-0; 3 anomalies in all traces (t, then All and Enter, shows them)."


async def test_a_slow_search_shows_progress_and_a_stale_one_is_dropped(tmp_path, monkeypatch):
    """16.9: while a search runs the status line says so (not the last search's count); a
    new search replaces it and the old result, when it comes, moves nothing; Esc cancels."""
    import threading

    from raceway_core.browse import Timeline

    gate = threading.Event()
    original = Timeline.search

    def slow(self, text, after=-1, backwards=False):  # a search over a big store, held until released
        if text == "slow":
            gate.wait(10)
            return original(self, "broken-resp", after, backwards)
        return original(self, text, after, backwards)

    monkeypatch.setattr(Timeline, "search", slow)
    app = create_app([requests(tmp_path / "r.jsonl")])
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        pane, view = app.pane("timeline"), app.pane("timeline").view
        status = app.query_one("#timeline-status")
        await pilot.press("slash", *"slow", "enter")
        await pilot.pause(0.3)
        assert "searching…" in str(status.content) and "Esc cancels" in str(status.content)
        await pilot.press("slash", *"missing-req", "enter")  # replaces the slow one
        for _ in range(100):
            await pilot.pause(0.05)
            if pane.searching is None:
                break
        assert view.row()["id"] == "missing-req" and "1 match" in str(status.content)
        gate.set()  # the stale search finishes now: its result must not move the cursor
        await pilot.pause(0.5)
        assert view.row()["id"] == "missing-req"
        gate.clear()
        await pilot.press("slash", *"slow", "enter")
        await pilot.pause(0.3)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert pane.searching is None and "searching" not in str(status.content)
        gate.set()
        await pilot.pause(0.5)
        assert view.row()["id"] == "missing-req"
