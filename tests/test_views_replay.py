"""The Replay pane (key p) driven like a user, on the banking sample. Read in the file by
hand: 21 events in one trace; the two transfers read alice.balance = 1000 (steps 5 and 8)
and write 900 (step 9, transfer 79f2021c) and 800 (step 13, transfer 9b3c4c1b); the first
transfer's last event is step 11."""

from __future__ import annotations

import pytest
from test_tui_app import text_of
from tui_support import ROOT, SIZE, settle

from tui_support import create_app

pytestmark = pytest.mark.asyncio
BANKING = ROOT / "sample_traces" / "banking-unsafe.jsonl"


def var(pane, name: str) -> dict:
    t = pane.vars_table
    return next(t.row(i) for i in range(t.row_count) if t.row(i)["variable"] == name)


async def open_replay(pilot):
    app = pilot.app
    await settle(pilot)
    await pilot.press("p")
    await settle(pilot)
    assert "Choose a trace (t)" in text_of(app, "#replay-status")  # All traces: no guessing
    await pilot.press("t", "j", "enter")
    await settle(pilot)
    assert app.active_pane == "replay" and app.scope is not None
    return app.pane("replay")


async def test_stepping_shows_values_live_contexts_and_the_race_with_its_partner():
    app = create_app([BANKING])
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_replay(pilot)
        assert pane.step == 0 and pane.steps_table.row_count == 21
        assert var(pane, "alice.balance")["value"] == "1000" and var(pane, "bob.balance")["written_step"] is None
        for _ in range(9):
            await pilot.press("right")
        await settle(pilot)
        assert pane.step == 9
        assert var(pane, "alice.balance")["value"] == "900" and var(pane, "alice.balance")["changed"]
        assert "Live contexts: 3" in text_of(app, "#replay-live")
        cur = text_of(app, "#replay-current")
        assert "#9" in cur and "1000 → 900" in cur
        assert "RACE critical write-write on alice.balance with step #13 (later)" in cur
        assert "RACE warning read-write on alice.balance with step #8 (earlier)" in cur
        assert pane.partners == {13, 8}
        await pilot.press("right", "right", "right", "right")
        await settle(pilot)
        assert pane.step == 13 and var(pane, "alice.balance")["value"] == "800"
        assert "with step #9 (earlier)" in text_of(app, "#replay-current") and pane.partners == {9, 5}
        assert "Live contexts: 2" in text_of(app, "#replay-live")  # transfer 79f2021c ended at step 11
        # both accesses of the race are marked in the steps list, the partner highlighted
        row9 = pane.steps_table.render_line(9 + 1 - round(pane.steps_table.scroll_y))
        assert "◆" in row9.text and any("reverse" in str(seg.style) for seg in row9 if seg.style)
        await pilot.press("left")
        await settle(pilot)
        assert pane.step == 12 and var(pane, "alice.balance")["value"] == "900"
        await pilot.press("end")
        await settle(pilot)
        assert pane.step == 20 and [var(pane, v)["value"] for v in ("alice.balance", "bob.balance",
                                                                      "charlie.balance")] == ["800", "600", "500"]
        await pilot.press("home")
        await settle(pilot)
        assert pane.step == 0 and "step 0 of 20" in text_of(app, "#replay-status")
        await pilot.press("right", "right", "right", "right", "right")
        target = pane.steps_table.row()["id"]
        await pilot.press("enter")
        await settle(pilot)
        assert app.active_pane == "timeline" and app.pane("timeline").view.row()["id"] == target


async def test_play_pause_and_speed():
    app = create_app([BANKING])
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_replay(pilot)
        await pilot.press("minus", "minus", "minus", "minus")
        assert "1 steps/s" in text_of(app, "#replay-status")
        await pilot.press("space")
        assert pane.playing and "playing" in text_of(app, "#replay-status")
        await pilot.press("space")
        stopped = pane.step
        assert not pane.playing and "paused" in text_of(app, "#replay-status") and stopped < 20
        await pilot.pause(1.5)
        assert pane.step == stopped  # paused: the timer is gone
        for _ in range(10):
            await pilot.press("plus")
        assert "64 steps/s" in text_of(app, "#replay-status")
        await pilot.press("space")
        for _ in range(400):  # 20 steps at 64 a second; generous under load
            if not pane.playing:
                break
            await pilot.pause(0.05)
        assert not pane.playing and pane.step == 20  # stops at the end
        assert var(pane, "charlie.balance")["value"] == "500"
        await pilot.press("minus", "minus", "minus", "minus", "minus", "minus")
        await pilot.press("space")  # at the end: from the start again
        assert pane.playing and pane.step < 20


async def test_new_events_keep_the_replay_playing_at_its_step(tmp_path):
    import json

    path = tmp_path / "bank.jsonl"
    path.write_text(BANKING.read_text())
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_replay(pilot)
        await pilot.press("minus", "minus", "minus", "right", "right", "right", "space")  # 1 step/s from step 3
        assert pane.playing and pane.step >= 3
        extra = json.loads(BANKING.read_text().splitlines()[-1])
        extra.update(id="late-1", timestamp="2026-11-27T04:22:53.903602809+00:00")  # after every event
        with path.open("a") as f:
            f.write(json.dumps(extra) + "\n")
        before = pane.step
        await pilot.press("r")
        await settle(pilot)
        assert pane.replay.steps == 22 and pane.playing and pane.step >= before
        await pilot.press("space")
        assert not pane.playing
