"""Keys in the explorer do what they say at once: the cursor's rows are repainted where they
are on screen, a pane key shows that pane, rows of long lists are read off the UI thread
and the panels that follow the cursor show the row under it. (Speed itself is measured in
bench/tui.py, never asserted here.)"""

from __future__ import annotations

import threading

import pytest
from textual.app import App
from textual.geometry import Region
from tui_support import ROOT, SIZE, create_app, settle, write

from raceway_tui.widgets.detail import EventDetail
from raceway_tui.widgets.table import Column, VirtualTable
from test_causality_rules import Trace, call

pytestmark = pytest.mark.asyncio
SAMPLES = [ROOT / "sample_traces" / f for f in ("banking-unsafe.jsonl", "distributed-orders.jsonl", "slow-api.jsonl")]


def record_repaints(widget) -> list[Region | None]:
    """The regions (in the widget's screen area, None: all of it) it asks to repaint."""
    asked: list[Region | None] = []
    original = widget.refresh

    def refresh(*regions, **kw):
        asked.extend(regions or [None])
        return original(*regions, **kw)

    widget.refresh = refresh
    return asked


def repainted(asked: list[Region | None], line: int) -> bool:
    return any(r is None or r.y <= line < r.bottom for r in asked)


class TableApp(App):
    def compose(self):
        yield VirtualTable([Column("n", "n", None)], id="t")

    def on_mount(self) -> None:
        self.query_one(VirtualTable).set_rows([{"n": f"row {i}"} for i in range(100)])
        self.query_one(VirtualTable).focus()


async def test_a_scrolled_table_repaints_the_rows_the_cursor_leaves_and_reaches():
    app = TableApp()
    async with app.run_test(size=(30, 10)) as pilot:
        table = app.query_one(VirtualTable)
        await pilot.press("G")  # the last row: the table scrolled by 91 lines
        await pilot.pause()
        assert table.cursor == 99 and round(table.scroll_y) > 0
        asked = record_repaints(table)
        await pilot.press("k")  # no scrolling: only the two rows change
        assert table.cursor == 98
        top = round(table.scroll_y)
        # row i is on the widget's line i + 1 - top (under the header)
        assert repainted(asked, 98 + 1 - top) and repainted(asked, 99 + 1 - top)
        assert table.render_line(98 + 1 - top).text.startswith("row 98")


async def test_the_scrolled_timeline_repaints_the_rows_the_cursor_leaves_and_reaches():
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = app.pane("timeline").view
        await pilot.press("G")
        await settle(pilot)
        last = view.cursor
        assert last > view.size.height and round(view.scroll_y) > 0
        asked = record_repaints(view)
        await pilot.press("k")
        assert view.cursor == last - 1
        top = round(view.scroll_y)
        assert repainted(asked, last - 1 - top) and repainted(asked, last - top)


async def test_pane_keys_show_their_pane_and_focus_stays_there():
    # Leaving Services for Hotspots, its hidden table handed the focus to its neighbour in
    # Services and the tabs followed the focus back: 9 and then c still showed Services.
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for _ in range(3):
            for key, pid in (("8", "services"), ("9", "hotspots"), ("c", "calltree"), ("3", "races")):
                await pilot.press(key)
                await settle(pilot)
                assert app.active_pane == pid
                assert app.focused is not None and app.pane(pid) in app.focused.ancestors, (pid, app.focused)


def long_trace(tmp_path, n: int = 700):
    """One thread of n calls: its call tree is a root (e000) and the others under it, in order."""
    t = Trace()
    for i in range(n):
        t.ev(f"e{i:03d}", "main", call(f"step{i}"))
    return write(tmp_path / "long.jsonl", t)


async def test_the_call_tree_reads_its_rows_off_the_ui_thread_and_the_panel_follows(tmp_path):
    app = create_app([long_trace(tmp_path)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        real, on_ui = app.session.call_tree_rows, []

        def rows(*args, **kw):  # the real query; where it ran is noted
            on_ui.append(threading.current_thread() is threading.main_thread())
            return real(*args, **kw)

        app.session.call_tree_rows = rows
        await pilot.press("t", "j", "enter", "c")  # the only trace, then its call tree
        await settle(pilot)
        table = app.pane("calltree").table
        assert table.row_count == 700 and table.row(0)["id"] == "e000"
        await pilot.press("G")  # the third chunk of rows
        await settle(pilot)
        assert table.cursor == 699 and table.row()["id"] == "e699"
        assert app.query_one(EventDetail).record["id"] == "e699"
        await pilot.press("pageup", "k")
        await settle(pilot)
        i = table.cursor
        assert table.row()["id"] == f"e{i:03d}" and app.query_one(EventDetail).record["id"] == f"e{i:03d}"
        line = table.render_line(1 + i - round(table.scroll_y)).text
        assert f"step{i}" in line
        assert on_ui and not any(on_ui)  # every chunk was read in a worker


async def test_following_new_events_does_not_precompute_every_pane_on_each_sync(monkeypatch):
    from server_proc import ServerProcess
    from test_tui_live import FAST, events_shown, post, until, write as state_write

    from raceway_tui import warm

    monkeypatch.setattr(warm, "FOLLOW_GAP", 120.0)  # the passes after the first are put off past the test
    with ServerProcess() as s:
        post(s.url, [state_write(1, "v1", 1), state_write(2, "v1", 2)])
        app = create_app(server=s.url, interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: events_shown(app) == 2 and app.state == "ready", "2 events")
            await settle(pilot)
            passes = app._warmer.passes
            assert passes >= 1 and app.pane("variables").results  # the hidden panes were precomputed once
            for n, name in ((3, "v2"), (4, "v3")):  # two syncs with new events: analysed, views follow
                post(s.url, [state_write(n, name, n)])
                await until(pilot, lambda n=n: events_shown(app) == n and app.state == "ready", f"{n} events")
                await settle(pilot)
            assert app._warmer.passes == passes
            await pilot.press("4")  # a hidden pane visited: its data is the new data all the same
            await settle(pilot)
            table = app.pane("variables").variables
            assert sorted(table.row(i)["variable"] for i in range(table.row_count)) == ["v1", "v2", "v3"]


async def test_a_put_off_precomputation_firing_while_the_app_closes_does_nothing():
    """Live mode puts the next precomputation off on an app timer; under load it fired while
    the app closed, after the panes were gone: NoMatches('#panes') made the exit a crash."""
    app = create_app([ROOT / "sample_traces" / "banking-unsafe.jsonl"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        warmer, passes = app._warmer, app._warmer.passes
        await app.query_one("#panes").remove()  # what closing the app does before its timers stop
        warmer._put_off_pass()
        assert warmer.passes == passes and not app.query("#panes")


async def test_the_detail_panel_shows_the_event_under_the_cursor_without_laying_out_the_screen(monkeypatch):
    from textual.widget import Widget

    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view, detail = app.pane("timeline").view, app.query_one(EventDetail)
        region = detail.region
        layouts: list[str] = []
        refresh = Widget.refresh

        def noting(self, *regions, **kw):
            if kw.get("layout") or kw.get("recompose"):
                layouts.append(f"{type(self).__name__}#{self.id}")
            return refresh(self, *regions, **kw)

        monkeypatch.setattr(Widget, "refresh", noting)
        for keys in (["j"], ["j", "j", "j", "k"], ["G"], ["k"]):
            await pilot.press(*keys)
            await settle(pilot)
            row = view.row()
            assert detail.record["id"] == row["id"]
            shown = "".join(detail.render_line(y).text for y in range(detail.content_size.height))
            assert row["id"] in shown  # drawn, not only fetched
        assert detail.region == region and layouts == []


async def test_a_chosen_trace_loads_the_shown_pane_before_the_hidden_panes_are_precomputed(monkeypatch):
    """The precomputation of the hidden panes for a new trace starts once the shown pane has its
    data: its queries no longer compete with the one the user waits for (both cores)."""
    from raceway_tui.panes.base import Pane

    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        order: list[tuple[str, str | None]] = []
        show, quietly = Pane._show, Pane.fetch_quietly

        def noting_show(self, key, data):
            order.append(("shown", self.id, key[0]))
            return show(self, key, data)

        def noting_fetch(self, session, key):
            order.append(("precomputed", self.id, key[0]))
            return quietly(self, session, key)

        monkeypatch.setattr(Pane, "_show", noting_show)
        monkeypatch.setattr(Pane, "fetch_quietly", noting_fetch)
        passes = app._warmer.passes
        await pilot.press("t", "j", "enter")
        await settle(pilot)
        trace = app.scope
        assert trace is not None and app.active_pane == "critical"
        mine = [o for o in order if o[2] == trace]
        assert mine[0] == ("shown", "pane-critical", trace)
        hidden = {o[1] for o in mine if o[0] == "precomputed"}
        assert app._warmer.passes == passes + 1 and "pane-variables" in hidden and "pane-critical" not in hidden
        assert all(app.pane(p).results.get(app.pane(p).current_key()) is not None
                   for p in ("variables", "races", "anomalies"))  # what a visit shows is there


async def test_a_pane_switch_relabels_no_tab_at_full_width_and_hides_the_detail_panel_where_a_pane_has_its_own():
    """A tab's label is set only when it changes (each set lays the tab bar out again); the
    detail panel follows the pane (hidden on panes with their own details, and with d)."""
    from textual.widgets import Tab

    from raceway_tui.widgets.detail import EventDetail

    app = create_app(SAMPLES)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        set_labels: list[str] = []
        original = Tab.label.fset
        Tab.label = Tab.label.setter(lambda self, v: (set_labels.append(str(v)), original(self, v)))
        try:
            detail = app.query_one(EventDetail)
            for key, pid, shown in (("1", "timeline", True), ("3", "races", False), ("2", "critical", True),
                                    ("0", "dashboard", False)):
                await pilot.press(key)
                await settle(pilot)
                assert app.active_pane == pid and detail.display == shown and bool(detail.region) == shown
            await pilot.press("1", "d")
            await settle(pilot)
            assert not detail.display
            await pilot.press("d")
            await settle(pilot)
            assert detail.display and detail.region.height > 0
        finally:
            Tab.label = Tab.label.setter(original)
        assert set_labels == []  # 200 columns: the full labels throughout


class StyledTableApp(App):
    """A table in a container whose background a class changes."""

    CSS = """
    #box { background: #102030; }
    #box.alert { background: #803010; }
    """

    def compose(self):
        from textual.containers import Vertical
        from textual.widgets import Input

        with Vertical(id="box"):
            yield VirtualTable([Column("n", "n", None)], id="t")
            yield Input(id="other")

    def on_mount(self) -> None:
        self.query_one(VirtualTable).set_rows([{"n": f"row {i}"} for i in range(20)])
        self.query_one(VirtualTable).focus()


def drawn_styles(widget, y: int):
    """The styles of line y as a pass over the widget's lines draws it (and a lone render_line)."""
    widget._styles_cache.clear()
    strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return {s.style for s in strips[y]}, {s.style for s in widget.render_line(y)}


async def test_the_style_kept_between_drawings_follows_theme_class_and_focus_changes():
    """The widget's base style is worked out once and kept (raceway_tui.widgets.basestyle):
    a theme, an ancestor's class and the focus changing must all show in the lines drawn."""
    app = StyledTableApp()
    async with app.run_test(size=(30, 10)) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)
        seen = []
        for change in (lambda: None, lambda: setattr(app, "theme", "textual-light"),
                       lambda: app.query_one("#box").add_class("alert"), lambda: setattr(app, "theme", "nord")):
            change()
            await pilot.pause()
            in_pass, alone = drawn_styles(table, 3)  # a row off the cursor: the base style only
            # what Textual works out afresh (a pass also draws the gutter: its background only)
            assert alone == {table.rich_style} and table.rich_style in in_pass
            seen.append(table.rich_style)
        assert len(set(seen)) == 4  # each change showed
        cursor_focused = drawn_styles(table, 1)[0]  # row 0, under the header: the cursor
        app.query_one("#other").focus()
        await pilot.pause()
        cursor_blurred = drawn_styles(table, 1)[0]
        assert cursor_focused != cursor_blurred and table.rich_style in {s for s in drawn_styles(table, 3)[0]}


async def test_the_timeline_s_first_rows_come_with_its_model_without_a_second_worker(monkeypatch):
    """Showing a timeline (a chosen trace, all traces) draws its top rows at once: they are
    read in the model's worker, not asked for by the first draw (a second round trip)."""
    from raceway_tui.widgets.timeline import TimelineView

    asked: list[list[int]] = []
    fetch = TimelineView._fetch

    def noting(self, model, pages):
        asked.append(list(pages))
        return fetch(self, model, pages)

    monkeypatch.setattr(TimelineView, "_fetch", noting)
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = app.pane("timeline").view
        assert view.count > 0 and view.row(0) is not None and asked == []
        await pilot.press("t", "j", "enter")  # one trace
        await settle(pilot)
        assert app.scope is not None and view.model.trace_id == app.scope
        got = [view.row(i)["id"] for i in range(min(view.count, 20))]
        want = app.session.sql("SELECT e.id FROM hb.ev o JOIN events e USING (seq) WHERE o.trace_id = $t "
                               "ORDER BY o.tord LIMIT 20", {"t": app.scope})["id"].to_pylist()
        assert got == want and asked == []
        assert view.render_line(0).text.strip() != ""


async def test_the_timeline_s_query_runs_beside_the_trace_list_s_at_start(monkeypatch):
    """First paint: the timeline's model (and first page) is read while the trace list is,
    not after it; the trace rows reach the UI thread as dicts, made in the worker."""
    from raceway_tui import app as app_module
    from raceway_tui.widgets.timeline import TimelineModel

    started = threading.Event()
    seen: dict = {}
    stored, build = app_module._stored_traces, TimelineModel.build.__func__

    def slow_list(session):
        seen["timeline_first"] = started.wait(timeout=5)  # the old order: the timeline waited for this
        seen["list_thread"] = threading.current_thread() is not threading.main_thread()
        return stored(session)

    def noting(cls, session, trace_id):
        started.set()
        return build(cls, session, trace_id)

    monkeypatch.setattr(app_module, "_stored_traces", slow_list)
    monkeypatch.setattr(TimelineModel, "build", classmethod(noting))
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert seen == {"timeline_first": True, "list_thread": True}
        n = app.session.traces().num_rows
        assert isinstance(app.trace_rows, list) and len(app.trace_rows) == n > 1
        assert app.query_one("#trace-table").row_count == n + 1  # "All" and the traces
