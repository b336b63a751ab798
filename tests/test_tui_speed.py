"""What makes the explorer quick on big stores, checked for what it must not change:
panes precomputed in the background show what the session answers (the store closed
before the visit: a visit that still needed a query would fail), Critical's all-traces
view in one query has every path's figures, work that follows the cursor runs once the
keys stop. Speed itself is measured in bench/tui.py, never asserted here."""

from __future__ import annotations

import pytest
from textual.app import App
from tui_support import ROOT, SIZE, settle

from raceway_core import TraceSession
from raceway_core.browse import critical_overview
from raceway_core.report import deadlock_document
from tui_support import create_app
from raceway_tui.debounce import Debounce
from raceway_tui.widgets.detail import EventDetail


SAMPLES = [ROOT / "sample_traces" / f for f in ("banking-unsafe.jsonl", "distributed-orders.jsonl", "slow-api.jsonl")]


def test_critical_overview_has_the_figures_of_every_critical_path():
    with TraceSession.open(SAMPLES) as s:
        got = critical_overview(s).to_pylist()
        want = [{"trace_id": cp.trace_id, "duration_ms": cp.duration_ms, "trace_span_ms": cp.trace_span_ms,
                 "sum_ms": cp.sum_ms, "percentage": cp.percentage, "steps": cp.events.num_rows}
                for cp in s.critical_paths()]
    assert len(got) > 2 and got == want


def expected(s: TraceSession, trace_id: str | None) -> dict:
    """What each pane's main table should hold, from the session."""
    return {"critical": len(s.critical_paths()) if trace_id is None else s.critical_path(trace_id).events.num_rows,
            "races": s.races(trace_id, max_pairs=0).groups.num_rows,  # groups, collapsed
            "variables": s.variables(trace_id).num_rows, "anomalies": s.anomalies(trace_id).num_rows,
            "dependencies": s.dependencies(trace_id).num_rows,
            "service_races": s.service_races(trace_id)}


def shown_rows(app, pid: str) -> int:
    pane = app.pane(pid)
    return (pane.variables if pid == "variables" else pane.table).row_count


async def visit_every_pane_with_the_store_closed(app, pilot, want: dict, doc: dict) -> None:
    """Close the database, then visit each pane: it must show its data without a query."""
    app.session.store.close()
    for pid, _, key in app.PANES:
        if pid == "timeline":
            continue
        await pilot.press(key)
        await settle(pilot)
        pane = app.pane(pid)
        assert app.active_pane == pid and pane.ready, pid
        assert not pane.placeholder.display, f"{pid}: {pane.placeholder.content}"  # no 'Could not load'
        if pid in want:
            assert shown_rows(app, pid) == want[pid], pid
        if pid == "services":  # its races column too (a second query if it was not precomputed)
            rows = pane.table
            races = {rows.row(i)["service"]: rows.row(i)["races"] for i in range(rows.row_count)}
            assert races and races == {svc: want["service_races"].get(svc, 0) for svc in races}
    assert app.pane("deadlocks").data == doc


@pytest.mark.asyncio
async def test_panes_are_precomputed_after_the_analysis_with_the_sessions_results():
    with TraceSession.open(SAMPLES) as s:
        want, doc = expected(s, None), deadlock_document(s.deadlocks())
    assert want["races"] and want["anomalies"] and want["dependencies"]  # the samples exercise each pane
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # no pane but the timeline visited yet
        await visit_every_pane_with_the_store_closed(app, pilot, want, doc)


@pytest.mark.asyncio
async def test_a_chosen_trace_is_precomputed_with_the_sessions_results_for_it():
    with TraceSession.open(SAMPLES) as s:
        deps = s.sql("SELECT DISTINCT trace_id FROM events WHERE service = 'orders'")["trace_id"].to_pylist()
        trace_id = next(t for t in sorted(deps) if s.dependencies(t).num_rows)  # a trace that calls another service
        want, doc = expected(s, trace_id), deadlock_document(s.deadlocks())
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")  # a pane seen for all traces first: its all-traces rows must not stay
        await settle(pilot)
        app.choose_trace(trace_id)
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        await visit_every_pane_with_the_store_closed(app, pilot, want, doc)


@pytest.mark.asyncio
async def test_only_the_shown_pane_is_mounted_until_the_others_are_visited():
    """The first frame mounts one pane; a pane's first visit mounts it, and it then shows the
    data precomputed while it was not mounted, has the focus, and its keys work."""
    from raceway_tui.panes.base import Pane

    with TraceSession.open(SAMPLES) as s:
        want = expected(s, None)
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert [p.id for p in app.query(Pane)] == ["pane-timeline"]
        races = app.pane("races")
        assert not races.is_mounted and races.current_key() in races.results  # precomputed meanwhile
        await pilot.press("3")
        await settle(pilot)
        assert races.is_mounted and app.active_pane == "races" and races.ready
        assert shown_rows(app, "races") == want["races"]
        assert app.focused is races.table
        await pilot.press("j")
        assert races.table.cursor == 1
        assert {p.id for p in app.query(Pane)} == {"pane-timeline", "pane-races"}
        await pilot.press("tab")  # the next pane, through the key bindings
        await settle(pilot)
        assert app.active_pane == "variables" and app.pane("variables").is_mounted and app.pane("variables").ready


@pytest.mark.asyncio
async def test_a_search_or_jump_from_a_pane_mounts_the_timeline():
    """Opened on another pane, the timeline is not mounted: / and a jump still reach it."""
    app = create_app(SAMPLES, pane="races")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.pane("timeline").is_mounted
        await pilot.press("slash", *"kind:Write", "enter")
        await settle(pilot)
        timeline = app.pane("timeline")
        assert app.active_pane == "timeline" and timeline.is_mounted
        row = timeline.view.row()
        assert timeline.last_search == "kind:Write" and row is not None and row["access"] == "Write"


@pytest.mark.asyncio
async def test_a_visited_pane_interrupts_the_precomputation_which_then_resumes(monkeypatch):
    """The precomputation's fetch for Services is still running when Hotspots (queued after it)
    is visited: the fetch is interrupted, waits until Hotspots shows its own data, then runs
    again and Services gets its data."""
    import time

    from raceway_tui.panes.services import ServicesPane

    real = ServicesPane.fetch_ahead
    calls: list = []

    def slow_fetch(self, session, key):
        calls.append(app.pane("hotspots").data is not None)  # Hotspots shows its data (.ready: UI thread only)
        if len(calls) == 1:  # about 20 s of queries, unless interrupted (Interrupted from the store)
            for _ in range(400):
                session.store.sql("SELECT 1")
                time.sleep(0.05)
        return real(self, session, key)

    monkeypatch.setattr(ServicesPane, "fetch_ahead", slow_fetch)
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(1000):
            await pilot.pause(0.01)
            warmer = getattr(app, "_warmer", None)
            if calls and warmer is not None and warmer.current is not None \
                    and warmer.current[0] is app.pane("services"):
                break
        else:
            raise AssertionError(f"the precomputation never fetched Services: {calls} {app.state} {getattr(app, '_warmer', None) and app._warmer.current}")
        await pilot.press("9")
        await settle(pilot)
        services = app.pane("services")
        assert warmer.interrupts == 1 and app.pane("hotspots").ready
        assert calls == [False, True]  # fetched again once Hotspots had its data
        assert services.current_key() in services.results
        await pilot.press("8")
        await settle(pilot)
        assert services.ready and services.table.row_count > 0


@pytest.mark.asyncio
async def test_closing_the_app_releases_a_precomputation_waiting_for_a_pane():
    """A precomputation held for a shown pane's query must not hold up the exit (its thread
    is joined when the interpreter exits)."""
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        warmer = app._warmer
        warmer.yield_to(app.pane("races"))  # as when a visited pane starts its own query
        assert not warmer.hold.is_set()
    assert warmer.hold.is_set() and not warmer.queue


@pytest.mark.asyncio
async def test_switching_panes_animates_nothing(monkeypatch):
    """The tab underline jumps to the pane shown: its slide redrew the screen for 0.3 s."""
    from textual.widgets._tabs import Underline

    animated: list = []
    real = Underline.animate
    monkeypatch.setattr(Underline, "animate", lambda self, *a, **kw: (animated.append(a[0]), real(self, *a, **kw)))
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key in "3421":
            await pilot.press(key)
            await settle(pilot)
        assert app.active_pane == "timeline" and animated == []
        underline = app.query_one(Underline)
        tab = app.query_one("#panes").get_tab("timeline")
        assert underline.highlight_start == tab.virtual_region.shrink(tab.styles.gutter).x


class DebounceApp(App):
    def on_mount(self) -> None:
        self.calls: list[tuple] = []
        self.later = Debounce(self, lambda *a: self.calls.append(a), delay=0.05)


async def until_done(pilot, d: Debounce) -> None:
    for _ in range(500):
        if not d.pending:
            return
        await pilot.pause(0.01)
    raise AssertionError("the debounced call never ran")


@pytest.mark.asyncio
async def test_work_following_the_cursor_runs_once_with_the_last_call():
    app = DebounceApp()
    async with app.run_test() as pilot:
        app.later(1)
        app.later(2)
        app.later(3)
        assert app.later.pending and app.calls == []  # nothing while the keys come
        await until_done(pilot, app.later)
        assert app.calls == [(3,)]
        app.later(4)
        app.later.flush()  # Enter: now
        assert app.calls == [(3,), (4,)] and not app.later.pending
        app.later(5)
        app.later.cancel()
        await pilot.pause(0.2)
        assert app.calls == [(3,), (4,)]


@pytest.mark.asyncio
async def test_the_detail_panel_shows_the_event_under_the_cursor_once_the_keys_stop():
    app = create_app(SAMPLES)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"jjjjjjk")
        await settle(pilot)
        view = app.pane("timeline").view
        detail = app.query_one(EventDetail)
        assert view.cursor == 5 and detail.record is not None and detail.record["id"] == view.row()["id"]
