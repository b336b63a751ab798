"""The Services (8) and Hotspots (9) panes driven like a user, on the bundled samples,
with numbers read from the sample files by hand (see tests/test_core_services.py and
tests/test_core_hotspots.py for how)."""

from __future__ import annotations

import pytest
from textual.widgets import Static
from tui_support import ROOT, SIZE, settle

from tui_support import create_app

pytestmark = pytest.mark.asyncio
ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"
DEADLOCK = ROOT / "sample_traces" / "deadlock-transfers.jsonl"
T1 = "3fd52b05-19b7-48c6-a63c-6b785db7f0c9"  # two concurrent checkouts; 82ce583a... one


def plain(app, selector: str) -> str:
    from rich.console import Console

    console = Console(width=300, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(app.query_one(selector, Static).content)
    return " ".join(console.export_text().split())


async def until(pilot, cond, timeout: float = 60.0, state=lambda: "") -> None:
    """Wait (after settle) until what a test reads is on screen: a pane's rows arrive in a
    message. A deadline in wall time, generous: a loaded machine gives the app little CPU."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s; {state()}")
        await pilot.pause(0.05)


def pane_state(app, pid: str) -> str:
    """What a pane waits on, for a timeout's message."""
    pane = app.pane(pid)
    return (f"{pid}: key {pane._key} current {pane.current_key()} busy {pane.busy} warming {pane.warming} "
            f"results {list(pane.results.keys())}; "
            f"workers {[(w.name, w.group, w.state.name) for w in app.workers]}")


def screen_text(table) -> list[str]:
    return [table.render_line(y).text for y in range(min(table.size.height, table.row_count + 1))]


async def test_services_pane_on_distributed_orders():
    app = create_app([ORDERS])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("8")
        await settle(pilot)
        pane = app.pane("services")
        await until(pilot, lambda: pane.ready and pane.table.row_count and pane.table.row(0)["races"] is not None)
        assert app.active_pane == "services"
        table = pane.table
        assert table.row_count == 5
        top = table.row(0)  # slowest by self time: payments' ~300 ms bank.authorize
        assert top["service"] == "payments"
        assert (top["traces"], top["events"], top["spans"], top["failures"], top["races"]) == (2, 18, 3, 0, 0)
        assert round(top["p50_ms"], 2) == 323.61 and round(top["self_p50_ms"], 2) == 307.78
        header, first = screen_text(table)[:2]
        assert "p50 ms" in header and "self p50 ▼" in header
        assert first.startswith("payments") and "323.61" in first and "307.78" in first
        line = plain(app, "#service-line")
        assert "payments called by orders · calls inventory" in line
        assert "5 services" in plain(app, "#services-summary")

        # sort by p50 (s cycles the columns): frontend's spans hold whole requests
        table.sort_by("p50_ms")
        await pilot.pause()
        assert [table.row(i)["service"] for i in range(5)] == ["frontend", "gateway", "orders", "payments",
                                                               "inventory"]
        races = {table.row(i)["service"]: table.row(i)["races"] for i in range(5)}
        assert races == {"frontend": 0, "gateway": 0, "orders": 2, "payments": 0, "inventory": 5}

        # Enter on inventory: its traces, slowest span first; Enter on one chooses it
        table.move_to(next(i for i in range(5) if table.row(i)["service"] == "inventory"))
        await pilot.press("enter")
        await settle(pilot)
        traces = pane.traces
        await until(pilot, lambda: traces.row_count == 2)
        assert app.focused is traces
        assert [r["trace_id"][:8] for r in (traces.row(0), traces.row(1))] == ["82ce583a", "3fd52b05"]
        assert round(traces.row(0)["max_ms"], 3) == 21.723  # 57.301931024 -> 57.323654360
        assert "Traces of inventory 2 traces" in plain(app, "#service-traces-title")
        traces.move_to(1)
        await pilot.press("enter")
        await settle(pilot)
        assert app.scope == T1 and app.active_pane == "services"
        await settle(pilot)
        rows = {table.row(i)["service"]: table.row(i) for i in range(table.row_count)}
        assert rows["payments"]["spans"] == 2 and rows["inventory"]["races"] == 5  # all 5 races are in T1
        assert "5 services · trace 3fd52b05" in plain(app, "#services-summary")


async def test_hotspots_pane_tables_focus_and_jumps():
    app = create_app([DEADLOCK])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await settle(pilot)
        pane = app.pane("hotspots")
        await until(pilot, lambda: pane.ready and pane.table("locks").row_count)
        assert app.active_pane == "hotspots"
        assert app.focused is pane.table("variables")
        assert pane.table("variables").row_count == 4  # alice, bob, carol, dave: 12 writes each
        locks = pane.table("locks")
        assert locks.row(0)["lock_id"] == "account:bob" and locks.row(0)["handoffs"] == 10
        for name in ("functions", "services", "locks", "variables"):  # ] cycles the tables
            await pilot.press("right_square_bracket")
            assert app.focused is pane.table(name)
        await pilot.press("left_square_bracket")
        assert app.focused is locks
        locks.sort_by("max_hold_ms")
        await pilot.pause()
        assert locks.row(0)["lock_id"] == "account:alice" and round(locks.row(0)["max_hold_ms"], 3) == 37.654
        assert "37.654" in screen_text(locks)[1]

        # Enter on a lock: its 16 acquisitions (and releases) below, in time order
        locks.move_to(0)  # (the sort kept the cursor on account:bob)
        await pilot.press("enter")
        await settle(pilot)
        lst = pane.list_table
        await until(pilot, lambda: lst.row_count)
        assert lst.display and app.focused is lst
        rows = [lst.row(i) for i in range(lst.row_count)]
        assert sum(r["kind"] == "LockAcquire" for r in rows) == 16 and sum(r["handoff"] for r in rows) == 9
        assert max(r["hold_ms"] or 0 for r in rows) == pytest.approx(37.653725)
        assert "Acquisitions and releases of lock account:alice" in plain(app, "#hot-list-title")
        first = rows[0]["event_id"]
        await pilot.press("enter")  # to the timeline, at the event
        await settle(pilot)
        assert app.active_pane == "timeline" and app.pane("timeline").view.row()["id"] == first
        await pilot.press("escape")
        await settle(pilot)
        assert app.active_pane == "hotspots"

        # Enter on a variable: its audit trail in the Variables pane; Esc twice comes back
        pane.table("variables").focus()
        pane.table("variables").move_to(1)
        name = pane.table("variables").row()["variable"]
        await pilot.press("enter")
        await settle(pilot)
        variables = app.pane("variables")
        assert app.active_pane == "variables" and variables.variable == name
        assert app.focused is variables.trail and variables.trail.row_count == 12
        await pilot.press("escape", "escape")
        await settle(pilot)
        assert app.active_pane == "hotspots"


async def test_hotspot_service_opens_the_services_pane():
    app = create_app([ORDERS])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await settle(pilot)
        pane = app.pane("hotspots")
        services = pane.table("services")
        await until(pilot, lambda: pane.ready and services.row_count)
        assert [services.row(i)["service"] for i in range(5)] == ["gateway", "orders", "payments", "frontend",
                                                                  "inventory"]  # 27, 21, 18, 16, 12 events
        fn = pane.table("functions").row(0)
        assert fn["function"] == "bank.authorize" and round(fn["total_ms"], 1) == 903.0
        services.focus()
        services.move_to(2)
        await pilot.press("enter")
        await settle(pilot)
        sp = app.pane("services")
        await until(pilot, lambda: sp.traces.row_count == 2)  # its traces listed
        assert app.active_pane == "services" and sp.table.row()["service"] == "payments"


async def test_names_from_the_trace_are_shown_literally(tmp_path):
    """A service named like markup with a control character, calling another: the names
    read as typed (markup is text, ESC shown as \\x1b) in the tables and the lines."""
    import json

    from test_causality_rules import Trace, acq, rel, sc

    evil, lock = "[bold red]pay[/]\x1b[31m", "[link=x]L[/link]"
    t = Trace()
    t.ev("a1", "w1", {"HttpRequest": {"method": "GET", "url": "/"}}, svc="front", span="s1", parent=None)
    t.ev("b1", "w2", {"HttpRequest": {"method": "GET", "url": "/pay"}}, svc=evil, span="s2", upstream="s1")
    t.ev("b2", "w2", acq(lock), svc=evil, span="s2")
    t.ev("b3", "w2", sc("[i]x[/i]", "Write", "p.py:1"), svc=evil, span="s2")
    t.ev("b4", "w2", rel(lock), svc=evil, span="s2")
    path = tmp_path / "evil.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in t.events) + "\n")
    app = create_app([path])
    async with app.run_test(size=(220, 40)) as pilot:  # wide: the names are not cut
        await settle(pilot)
        await pilot.press("8")
        await settle(pilot)
        pane = app.pane("services")
        await until(pilot, lambda: pane.ready and pane.table.row_count == 2)
        shown = "\n".join(screen_text(pane.table))
        assert "[bold red]pay[/]\\x1b[31m" in shown
        pane.table.move_to(next(i for i in range(2) if pane.table.row(i)["service"] == "front"))
        await until(pilot, lambda: plain(app, "#service-line").startswith("front "))  # the highlight is a message
        assert "front called by no service · calls [bold red]pay[/]\\x1b[31m" in plain(app, "#service-line")
        await pilot.press("9")
        await settle(pilot)
        hot = app.pane("hotspots")
        await until(pilot, lambda: hot.ready and all(hot.table(t).row_count and hot.table(t).size.height > 2
                                                     for t in ("locks", "variables")),
                    state=lambda: pane_state(app, "hotspots") + f"; sizes {[(t, hot.table(t).row_count, hot.table(t).size.height) for t in ('locks', 'variables')]}")
        assert "[link=x]L[/link]" in screen_text(hot.table("locks"))[1]
        assert "[i]x[/i]" in screen_text(hot.table("variables"))[1]
