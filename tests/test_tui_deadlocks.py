"""The Deadlocks pane driven like a user: the lock cycle shown, explained, and Enter jumps."""

from __future__ import annotations

import pytest
from test_causality_rules import Trace, rel
from test_deadlocks import acq, nested
from test_tui_app import plain, text_of
from tui_support import SIZE, settle, write

from tui_support import create_app  # opens on the timeline, as these tests expect

pytestmark = pytest.mark.asyncio


async def test_deadlocks_pane_lists_the_cycle_explains_it_and_jumps(tmp_path):
    t = Trace()
    nested(t, "T1", "A", "B", 10, 10)
    nested(t, "T2", "B", "A", 20, 20)
    for thread, at in (("T3", 40), ("T4", 50)):  # C/D both ways, under the gate G: ruled out
        t.ev(f"{thread}-G", thread, acq("G"), at=at)
        nested(t, thread, "C" if thread == "T3" else "D", "D" if thread == "T3" else "C", at + 1, at)
        t.ev(f"{thread}-rel-G", thread, rel("G"), at=at + 8)
    path = write(tmp_path / "dl.jsonl", t)
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        pane = app.pane("deadlocks")
        assert app.active_pane == "deadlocks" and pane.ready
        assert text_of(app, "#deadlocks-summary").startswith("1 potential deadlocks (lock cycles) · 1 ruled out")
        rows = [pane.table.row(i) for i in range(pane.table.row_count)]
        assert [(r["type"], r.get("thread_id"), r["locks"]) for r in rows] == [
            ("cycle", "T1", ["A", "B"]), ("cycle", "T2", ["A", "B"]), ("suppressed", None, ["C", "D"])]
        detail = plain(app.query_one("#deadlock-detail").content)
        assert "svc/T1 holds A and waits for B, while svc/T2 holds B and waits for A" in detail
        assert "l.py:10 → l.py:11 ×1" in detail and "l.py:20 → l.py:21 ×1" in detail
        await pilot.press("j", "j")
        await settle(pilot)
        assert "not reported, lock 'G' held across the acquisitions (a gate)" in plain(
            app.query_one("#deadlock-detail").content)
        await pilot.press("k", "enter")  # T2's acquisition of A, its hold of B highlighted
        await settle(pilot)
        view = app.pane("timeline").view
        assert app.active_pane == "timeline" and view.row()["id"] == "T2-A" and view.highlight == {"T2-A", "T2-B"}
        await pilot.press("escape")
        await settle(pilot)
        assert app.active_pane == "deadlocks"


async def test_lock_ids_are_shown_literally(tmp_path):
    t = Trace()
    nested(t, "T1", "[bold]A\x1b", "B", 10, 10)
    nested(t, "T2", "B", "[bold]A\x1b", 20, 20)
    app = create_app([write(tmp_path / "m.jsonl", t)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        detail = plain(app.query_one("#deadlock-detail").content)
        assert "svc/T1 holds [bold]A" in detail and "\x1b" not in detail  # not markup, no raw escape
        line = app.pane("deadlocks").table.render_line(1).text
        assert "B → [bold]A" in line and "\x1b" not in line
