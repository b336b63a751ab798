"""The Call tree pane (key c) driven like a user, on the distributed-orders sample; the
expectations are read in the file by hand (see test_core_calltree for the tree's rule)."""

from __future__ import annotations

import pytest
from textual.widgets import Static
from test_tui_app import plain, text_of
from tui_support import ROOT, SIZE, settle

from tui_support import create_app
from raceway_tui.widgets.detail import EventDetail

pytestmark = pytest.mark.asyncio
ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"
CHECKOUT = "3fd52b05-19b7-48c6-a63c-6b785db7f0c9"  # the first checkout: two orders, 62 events


async def open_tree(pilot):
    app = pilot.app
    await settle(pilot)
    await pilot.press("c")
    await settle(pilot)
    assert "Choose a trace (t)" in text_of(app, "#calltree-summary")  # All traces: no guessing
    assert app.pane("calltree").table.row_count == 0
    await pilot.press("t", "j", "enter")  # the first trace by start: the first checkout
    await settle(pilot)
    assert app.scope == CHECKOUT and app.active_pane == "calltree"
    return app.pane("calltree")


async def test_the_first_checkout_as_a_tree_with_durations_and_bars():
    app = create_app([ORDERS])
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tree(pilot)
        table = pane.table
        assert table.row_count == 62
        assert "62 events · 1 root · longest root span 419.16 ms" in text_of(app, "#calltree-summary")
        root = table.row(0)
        # POST /checkout at 04:22:56.516735237, its response at .935892258: 419.157 ms
        assert root["tree"] == "▾ HTTP req POST /checkout" and root["service"] == "frontend"
        assert f"{root['ms']:.3f}" == "419.157" and root["bar"] == "█" * 20
        tops = [table.row(i) for i in range(62) if table.row(i)["tree"][:1] in "├└"]
        assert [r["kind"] for r in tops] == ["AsyncSpawn", "AsyncSpawn", "AsyncAwait", "AsyncAwait", "HttpResponse"]
        # frontend -> gateway -> orders -> payments -> inventory: the /reserve request is 9 deep
        reserve = table.row(18)
        assert reserve["service"] == "inventory" and reserve["note"] == "/reserve"
        assert reserve["tree"] == "│   │ │   │   │ └▾ HTTP req POST /reserve"
        # payments' /charge: 323.614 ms from its request to its last response, bank.authorize inside it
        charge = table.row(14)
        assert (charge["service"], charge["note"], f"{charge['ms']:.3f}") == ("payments", "/charge", "323.614")
        auth = table.row(15)
        assert auth["function_name"] == "bank.authorize" and f"{auth['ms']:.3f}" == "300.688"
        assert auth["bar"].strip() and len(auth["bar"]) == 20  # drawn inside the root's span
        lines = [table.render_line(y).text for y in range(1, 6)]
        assert "POST /checkout" in lines[0] and "419.157" in lines[0]


async def test_collapse_expand_move_and_jump_to_the_timeline():
    app = create_app([ORDERS])
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tree(pilot)
        table = pane.table
        await pilot.press("j", "j")  # the first task's POST /orders (27 events below it)
        await settle(pilot)
        assert table.row()["tree"].endswith("▾ HTTP req POST http://127.0.0.1:57379/orders")
        assert app.query_one(EventDetail).record["id"] == table.row()["id"]  # the detail panel follows
        await pilot.press("left")
        await settle(pilot)
        assert table.row_count == 62 - 27 and "▸ HTTP req POST" in table.row()["tree"]
        assert table.row(3)["id"].startswith("a5ce")  # the second spawn now follows
        await pilot.press("right")
        await settle(pilot)
        assert table.row_count == 62
        await pilot.press("right")  # expanded: right goes to the first child
        await settle(pilot)
        assert table.row()["service"] == "gateway" and table.cursor == 3
        await pilot.press("left")  # collapse the gateway request, then left again: to its parent
        await pilot.press("left")
        await settle(pilot)
        assert table.cursor == 2 and table.row_count == 62 - 25
        await pilot.press("space")  # space folds the node under the cursor
        await settle(pilot)
        assert table.row_count == 62 - 27
        await pilot.press("space", "j")
        await settle(pilot)
        target = table.row()["id"]
        await pilot.press("enter")
        await settle(pilot)
        view = app.pane("timeline").view
        assert app.active_pane == "timeline" and view.row()["id"] == target
        await pilot.press("escape")
        await settle(pilot)
        assert app.active_pane == "calltree"


async def test_trace_strings_are_shown_literally(tmp_path):
    import json

    markup = "[bold red]x[/] :skull: \x1b[31m"
    events = [{"id": "a", "trace_id": "T", "parent_id": None, "timestamp": "2026-11-01T12:00:00.000010Z",
               "kind": {"FunctionCall": {"function_name": markup, "module": "m", "args": {}}},
               "metadata": {"thread_id": "t", "service_name": "[svc]", "duration_ns": 1000}}]
    p = tmp_path / "m.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    app = create_app([p])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t", "j", "enter", "c")
        await settle(pilot)
        line = app.pane("calltree").table.render_line(1).text
        assert "[bold red]x[/] :skull: \\x1b" in line and "[svc]" in line  # escape visible, no markup
        assert "Call tree T" in plain(app.query_one("#calltree-summary", Static).content)


async def test_new_events_keep_the_folded_nodes_and_the_cursor(tmp_path):
    import json

    path = tmp_path / "orders.jsonl"
    path.write_text(ORDERS.read_text())
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tree(pilot)
        table = pane.table
        await pilot.press("j", "j", "left")  # fold the first task's request (27 events below it)
        await pilot.press("j", "j")  # the second task's request
        await settle(pilot)
        folded, here = table.row(2)["id"], table.row()["id"]
        assert table.row_count == 62 - 27 and here.startswith("6ae0")
        # a new event of the checkout's own context, before everything else under the root:
        # every node after it moves one place down
        extra = json.loads(ORDERS.read_text().splitlines()[0])
        extra.update(id="late-1", parent_id=extra["id"], timestamp="2026-11-27T04:22:56.516800000+00:00")
        extra["kind"] = {"Custom": {"name": "late", "data": None}}
        with path.open("a") as f:
            f.write(json.dumps(extra) + "\n")
        await pilot.press("r")
        await settle(pilot)
        assert pane.call_tree.count == 63 and table.row(1)["id"] == "late-1"
        assert table.row_count == 63 - 27 and table.row(3)["id"] == folded and "▸" in table.row(3)["tree"]
        assert table.row()["id"] == here
