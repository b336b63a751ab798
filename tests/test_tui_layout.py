"""What fits on screen: columns, small terminals, the detail panel (issues 16.4, 16.5, 16.10, 16.11)."""

from __future__ import annotations

import pytest
from test_causality_rules import Trace, sc
from tui_support import settle, write

from tui_support import create_app  # opens on the timeline, as these tests expect


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


def slow_traces(path):
    """Twelve requests: start(), work() of 10-60 ms, end(). The 60 ms work() is an anomaly;
    each trace's critical path starts at start(), not at the anomaly."""
    from test_causality_rules import call

    t = Trace()
    for i, ms in enumerate([10, 11, 12] * 3 + [17, 22, 60]):
        t.ev(f"s{i}", "main", call("start"), trace=f"req-{i}", dur=1_000_000)
        t.ev(f"w{i}", "main", call("work"), trace=f"req-{i}", dur=ms * 1_000_000)
        t.ev(f"e{i}", "main", call("end"), trace=f"req-{i}", dur=1_000_000)
    return write(path, t)


async def test_the_detail_panel_follows_the_pane_shown(tmp_path):
    """5, Enter, 2, 1: back in the timeline, the panel shows the timeline's event, not the
    Critical pane's."""
    from raceway_tui.widgets.detail import EventDetail

    app = create_app([slow_traces(tmp_path / "s.jsonl")])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for key in ("5", "enter", "2", "1"):
            await pilot.press(key)
            await settle(pilot)
            detail = app.query_one(EventDetail)
            if key == "enter":
                assert app.pane("timeline").view.row()["id"] == "w11" and detail.record["id"] == "w11"
            if key == "2":
                assert app.pane("critical").table.row()["id"] == "s11" and detail.record["id"] == "s11"
        assert app.active_pane == "timeline" and app.pane("timeline").view.row()["id"] == "w11"
        assert detail.record["id"] == "w11"


SAMPLE = "distributed-orders.jsonl"


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_small_terminals_keep_every_pane_usable(size):
    from tui_support import ROOT

    w, h = size
    app = create_app([ROOT / "sample_traces" / SAMPLE])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        traces = app.query_one("#traces")
        # under 100 columns the list narrows; under 70 it hides by itself, T brings it back
        assert traces.display == (w >= 70) and (not traces.display or traces.size.width <= 26)
        lines = screen_lines(app)
        tabbar = next(line for line in lines if "1 Time" in line)
        # every tab stays on screen: short names, or only the keys beside the active tab's name
        keys = [key for _, _, key in app.PANES]
        assert all(f" {key} " in tabbar or f" {key} {app.TAB_SHORT[pid]} " in tabbar
                   for pid, _, key in app.PANES), tabbar
        assert [tabbar.index(f" {key} ") for key in keys[1:]] == sorted(tabbar.index(f" {key} ") for key in keys[1:])
        view = app.pane("timeline").view
        assert view.size.height >= (8 if h >= 24 else 5)  # timeline rows on screen
        await pilot.press("t", "j", "enter")  # t shows a hidden list to choose from
        await settle(pilot)
        assert traces.display and app.scope is not None
        await pilot.press("T")
        await settle(pilot)
        assert not traces.display
        await pilot.press("T")
        await settle(pilot)
        assert traces.display
        await pilot.press("T", "3")
        await settle(pilot)
        table = app.pane("races").table
        # narrow: the severity / kind columns give way, the pairs count stays whole
        shown = [c.key for c in table.shown_columns()]
        assert "count" in shown and "race" in shown
        group = next(line for line in screen_lines(app) if "stock.widget" in line)
        assert group.split()[-1].replace(",", "").isdigit()
        for key in "12456":  # every pane draws without an error at this size
            await pilot.press(key)
            await settle(pilot)
            assert app.pane().ready and app.state == "ready"


async def test_a_key_scrolls_the_detail_panel():
    from tui_support import ROOT

    from raceway_tui.widgets.detail import EventDetail

    app = create_app([ROOT / "sample_traces" / SAMPLE])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        detail = app.query_one(EventDetail)
        assert detail.max_top > 0  # the raw JSON is below the panel's edge
        await pilot.press("D")
        assert app.focused is detail
        await pilot.press("j", "j", "j")
        await pilot.pause(0.2)
        assert detail.top == 3
        await pilot.press("G")
        await pilot.pause(0.2)
        assert detail.top == detail.max_top
        assert detail.render_line(detail.content_size.height - 1).text.strip().startswith("}")  # the raw JSON's end
        await pilot.press("escape")
        assert app.focused is app.pane("timeline").view


def test_the_explorer_module_loads_without_the_database_and_arrow():
    """The first frame must not wait for DuckDB, Arrow, NumPy or httpx (16.8): they load
    on a worker thread, after the first frame."""
    import subprocess
    import sys

    code = ("import sys, raceway_tui.cli, raceway_tui.app\n"
            "print(sorted(m for m in ('duckdb', 'pyarrow', 'numpy', 'httpx', 'raceway_core.session') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


async def test_the_first_frame_says_loading():
    from tui_support import ROOT

    app = create_app([ROOT / "sample_traces" / SAMPLE])
    async with app.run_test(size=(120, 36)) as pilot:
        first = "\n".join(screen_lines(app))
        assert "Loading…" in first and "No traces loaded" not in first
        await settle(pilot)
        assert "No traces loaded" not in "\n".join(screen_lines(app))


def count_layouts(monkeypatch) -> list[int]:
    """Layout passes of the whole screen from now on (one counter)."""
    from textual.screen import Screen

    calls, original = [0], Screen._refresh_layout

    def counted(self, *args, **kw):
        calls[0] += 1
        return original(self, *args, **kw)

    monkeypatch.setattr(Screen, "_refresh_layout", counted)
    return calls


async def test_the_audit_trail_follows_the_variables_cursor_without_laying_out_the_screen(tmp_path, monkeypatch):
    """18.7: j/k in Variables shows each variable's audit trail and title; the title (fixed
    height) and a trail of another length are repainted, not laid out with the whole screen
    (a layout per key made j/k p95 ~110 ms at 1M events under load). A trail long enough for
    a scrollbar shows it, and the next short one hides it."""
    from raceway_core import TraceSession

    path = many_races(tmp_path / "r.jsonl")
    with TraceSession.open([path]) as s:
        ids: dict[str, set] = {}
        for r in s.sql("SELECT variable, id FROM events WHERE variable IS NOT NULL").to_pylist():
            ids.setdefault(r["variable"], set()).add(r["id"])
    assert len(ids["hot"]) == 80 and len(ids["v00"]) == 2
    app = create_app([path])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        pane = app.pane("variables")
        names = [pane.variables.row(i)["variable"] for i in range(pane.variables.row_count)]
        assert names[0] == "hot" and pane.trail.row_count == 80 and pane.trail.show_vertical_scrollbar
        layouts = None
        for i in range(1, 8):
            await pilot.press("j")
            await settle(pilot)
            name = names[i]
            assert pane.variable == name
            assert {pane.trail.row(k)["event_id"] for k in range(pane.trail.row_count)} == ids[name]
            assert not pane.trail.show_vertical_scrollbar  # two accesses: the bar went with the long trail
            lines = screen_lines(app)
            # two writes from two threads, unordered: the second not after the first, both racing
            title = "".join(line.split("▕")[-1].strip() + " " for line in lines[3:5])
            assert f"Audit trail of {name} 2 accesses in causal order · 1 not ordered after the previous one · 2 " \
                   "racing" in " ".join(title.split())
            assert sum("▕W " in line and "RACE" in line for line in lines) == 2  # both writes drawn
            if layouts is None:
                layouts = count_layouts(monkeypatch)  # from the second short trail on
        assert layouts[0] == 0
        await pilot.press("g")  # back to hot: its scrollbar again
        await settle(pilot)
        assert pane.trail.row_count == 80 and pane.trail.show_vertical_scrollbar
        assert any("Audit trail of hot  80 accesses" in line for line in screen_lines(app))


async def test_the_service_line_follows_the_services_cursor_without_laying_out_the_screen(monkeypatch):
    """18.7: the line under the services table (callers, callees) follows j/k; it has a fixed
    height, so it is repainted without a layout of the screen."""
    from tui_support import ROOT

    app = create_app([ROOT / "sample_traces" / "distributed-orders.jsonl"])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("8")
        await settle(pilot)
        pane = app.pane("services")
        assert app.active_pane == "services" and pane.table.row_count >= 3
        layouts = count_layouts(monkeypatch)
        for i in range(1, pane.table.row_count):
            await pilot.press("j")
            await settle(pilot)
            row = pane.table.row(i)
            assert pane.table.cursor == i
            assert any(f"▕ {row['service']}  called by " in line for line in screen_lines(app))
        assert layouts[0] == 0
