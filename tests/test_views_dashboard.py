"""The Dashboard pane (key 0): the pane the explorer opens on, its figures on the samples
(checked by reading the files, see test_core_dashboard), Enter on its rows, and the
exports of the command palette."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tui_support import SIZE, settle

from raceway_core.store import Store

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"
SLOW = ROOT / "sample_traces" / "slow-api.jsonl"
T1 = "3fd52b05-19b7-48c6-a63c-6b785db7f0c9"  # distributed-orders: the slowest (419 ms), with all 5 races
SLOW_T = "4e139a2f-03d8-402a-8bec-f86beb3d7de4"  # slow-api: recommendations.fetch took 400.8 ms


def screen(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def explorer(files, **kw):
    from raceway_tui.cli import explorer as make  # what `raceway-tui open` builds, with its defaults

    return make(files=[Path(f) for f in files], **kw)


async def test_the_explorer_opens_on_the_dashboard():
    from raceway_tui.app import create_app

    for app in (explorer([ORDERS]), create_app([ORDERS])):
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.active_pane == "dashboard" and app.scope is None
            assert app.focused is app.pane("dashboard").table
            tabs = screen(app).splitlines()[1]
            start = tabs.index("0 Dash")  # the first tab; the others follow in order (names or keys only)
            keys = [key for pid, _, key in app.PANES if pid != "dashboard"]
            at = [tabs.index(key, start + 6) for key in keys]
            assert at == sorted(at), tabs


async def test_open_pane_option_opens_elsewhere():
    app = explorer([ORDERS], pane="races")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.active_pane == "races" and app.pane("races").table.row()["variable"] == "stock.widget"
        await pilot.press("0")
        await settle(pilot)
        assert app.active_pane == "dashboard"


async def test_dashboard_of_distributed_orders():
    """By hand from the file: 2 traces, 94 events, 5 services, 17 thread ids, no error; five
    racing pairs on stock.widget, the write-write one critical; 14 HTTP spans: the three of
    inventory in 10-20 ms (12.2, 12.6) and 20-50 ms (21.7), the other eleven (payments'
    ~320 ms among them) in 200-500 ms; trace 3fd52b05 is the slowest, 419.2 ms."""
    app = explorer([ORDERS])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen(app)
        assert "2 traces · 94 events · 5 services · 17 threads" in text
        assert "5 racing pairs (1 critical) · 0 errors · 0 anomalies" in text
        assert "Request latency · 14 requests" in text
        for label, n in {"10–20 ms": 2, "20–50 ms": 1, "50–100 ms": 0, "100–200 ms": 0, "200–500 ms": 11}.items():
            [line] = [x for x in text.splitlines() if f" {label} " in x]
            assert line.split()[-1] == str(n), line
            assert ("█" in line.split(label)[1]) == (n > 0)  # a bar for each non-empty bucket
        table = app.pane("dashboard").table
        rows = [table.row(i) for i in range(table.row_count)]
        races = [r for r in rows if r["type"] == "race"]
        assert [(r["variable"], r["severity"], r["count"]) for r in races][0] == ("stock.widget", "critical", 1)
        assert sum(r["count"] for r in races) == 5
        traces = [r for r in rows if r["type"] == "trace"]
        assert [r["trace_id"] for r in traces] == [T1, "82ce583a-f867-4a0a-b372-150871aa1642"]
        assert round(traces[0]["duration_ms"], 1) == 419.2
        assert "No anomalies." in text and "3fd52b05  frontend, gateway" in text
        assert table.row()["type"] == "race"  # the cursor starts on the worst race


async def test_enter_on_a_race_a_trace_and_an_anomaly_goes_there():
    app = explorer([ORDERS])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        race = app.pane("dashboard").table.row()
        await pilot.press("enter")
        await settle(pilot)
        view = app.pane("timeline").view
        assert app.active_pane == "timeline" and view.row()["id"] == race["example_first"]
        assert view.highlight == {race["example_first"], race["example_second"]}
        await pilot.press("escape")  # back to the dashboard, all traces
        await settle(pilot)
        assert app.active_pane == "dashboard" and app.scope is None
        table = app.pane("dashboard").table
        table.move_to(table.find(lambda r: r["type"] == "trace"))
        await pilot.press("enter")
        await settle(pilot)
        assert app.active_pane == "timeline" and app.scope == T1 and view.row()["id"] == "3e49be63-9d34-4078-bb1c-adf35fc05e35"

    app = explorer([SLOW])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.pane("dashboard").table
        table.move_to(table.find(lambda r: r["type"] == "anomaly"))
        anomaly = table.row()
        assert anomaly["severity"] == "critical" and anomaly["key"] == "FunctionCall(recommendations.fetch)"
        await pilot.press("enter")
        await settle(pilot)
        assert app.active_pane == "timeline" and app.scope == anomaly["trace_id"]
        assert app.pane("timeline").view.row()["id"] == anomaly["event_id"]


async def test_a_chosen_trace_is_summarised():
    """slow-api's trace 4e139a2f (read from the file): 17 events on 4 threads of home-api, one
    request of 422.6 ms (first event 04:22:58.707, last end 04:22:59.129), whose
    recommendations.fetch call took 400.8 ms: its slowest operation and its one anomaly."""
    app = explorer([SLOW])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.choose_trace(SLOW_T)
        await settle(pilot)
        text = screen(app)
        assert "Scope: trace 4e139a2f-03d8 · 1 trace · 17 events · 1 service · 4 threads" in text
        assert "0 racing pairs (0 critical) · 0 errors · 1 anomaly · critical path" in text
        assert "Request latency · 1 request" in text and "max 422.6 ms" in text
        assert "04:22:58.707 → 04:22:59.129 UTC" in text
        table = app.pane("dashboard").table
        ops = [table.row(i) for i in range(table.row_count) if table.row(i)["type"] == "operation"]
        assert ops[0]["function_name"] == "recommendations.fetch" and round(ops[0]["duration_ms"], 1) == 400.8
        assert "Slowest operations of this trace" in text and "No races." in text
        table.move_to(table.find(lambda r: r["type"] == "operation"))
        await pilot.press("enter")
        await settle(pilot)
        assert app.active_pane == "timeline" and app.pane("timeline").view.row()["id"] == ops[0]["id"]


async def palette(pilot, text: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*text)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await settle(pilot)


async def test_palette_exports_the_current_scope(tmp_path):
    app = explorer([ORDERS])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.export_dir = tmp_path
        await palette(pilot, "export critical path")
        assert not list(tmp_path.iterdir())  # all traces: no critical path to export (a toast says why)
        await palette(pilot, "export anomalies as markdown")
        [md] = tmp_path.glob("raceway-anomalies-all-*.md")
        assert "- **Total anomalies:** 0" in md.read_text()
        app.choose_trace(T1)
        await settle(pilot)
        await palette(pilot, "export trace as json")
        [js] = tmp_path.glob("raceway-trace-3fd52b05-*.json")
        with Store() as store:
            [summary] = store.load([js])
            assert summary.loaded == 62 and summary.rejected == 0
        assert json.loads(js.read_text())["summary"]["race_conditions"] == 5
        await palette(pilot, "export critical path")
        [cp] = tmp_path.glob("raceway-critical-3fd52b05-*.md")
        assert cp.read_text().startswith(f"# Critical path of trace {T1}")
        await palette(pilot, "export events as csv")
        [ev] = tmp_path.glob("raceway-events-3fd52b05-*.csv")
        assert len(ev.read_text().splitlines()) == 63  # a header and the trace's 62 events


async def test_the_readme_overview_of_make_run():
    """README, "Finding them in the explorer": what `make run` opens on."""
    files = [ROOT / "sample_traces" / n for n in ("banking-unsafe.jsonl", "distributed-orders.jsonl", "slow-api.jsonl")]
    app = explorer(files)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen(app)
        assert "15 traces · 319 events" in text and "8 racing pairs (2 critical) · 0 errors · 2 anomalies" in text
        assert "Request latency · 26 requests" in text
        [line] = [x for x in text.splitlines() if " 200–500 ms " in x]
        assert line.split()[-1] == "13"
        table = app.pane("dashboard").table
        rows = [table.row(i) for i in range(table.row_count)]
        races = [r for r in rows if r["type"] == "race"]
        assert [(r["variable"], r["severity"]) for r in races[:2]] == [("alice.balance", "critical"),
                                                                      ("stock.widget", "critical")]
        slowest = [(r["trace_id"][:8], round(r["duration_ms"])) for r in rows if r["type"] == "trace"][:3]
        assert slowest == [("4e139a2f", 423), ("3fd52b05", 419), ("650d9ebf", 417)]
        assert [r["key"] for r in rows if r["type"] == "anomaly"] == ["FunctionCall(recommendations.fetch)"] * 2
