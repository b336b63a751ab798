"""What fits on screen: columns, small terminals, the detail panel (issues 16.4, 16.5, 16.10, 16.11)."""

from __future__ import annotations

import pytest
from test_causality_rules import Trace, sc
from tui_support import settle, write

from raceway_tui.app import create_app

pytestmark = pytest.mark.asyncio


def many_races(path):
    """Thirty variables racing once each, and `hot` written 40 times by each of two threads
    (1,600 racing pairs): more groups than the table has rows, so it needs a scrollbar."""
    t = Trace()
    for i in range(30):
        t.ev(f"a{i}", "A", sc(f"v{i:02d}", "Write", "a.py:1", 0, 1))
        t.ev(f"b{i}", "B", sc(f"v{i:02d}", "Write", "b.py:1", 0, 2))
    for i in range(40):
        t.ev(f"ha{i}", "A", sc("hot", "Write", "h.py:1", i, i + 1))
        t.ev(f"hb{i}", "B", sc("hot", "Write", "h.py:2", i, i + 2))
    return write(path, t)


def screen_lines(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def test_races_pairs_column_is_whole_beside_the_scrollbar(tmp_path):
    app = create_app([many_races(tmp_path / "r.jsonl")])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        table = app.pane("races").table
        assert table.row_count > 30 and table.show_vertical_scrollbar
        lines = screen_lines(app)
        header = next(line for line in lines if "severity" in line and "kind" in line)
        assert header.split()[-1] == "pairs"
        # hot's 40 x 40 racing pairs, in two groups (which write came first); each count whole
        hot = [line for line in lines if " hot " in line and "↔" in line]
        assert len(hot) == 2 and sum(int(line.split()[-1].replace(",", "")) for line in hot) == 1600
