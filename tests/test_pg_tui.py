"""The explorer connected to one server of a shared database shows what was
posted to another (real server processes, the Textual pilot)."""

from __future__ import annotations

from server_proc import ServerProcess
from test_tui_live import FAST, ev, events_shown, post, trace_ids, until
from tui_support import SIZE, settle

from tui_support import create_app  # opens on the timeline, as these tests expect


async def test_explorer_on_server_1_shows_a_trace_posted_to_server_3(pg_url):
    servers = [ServerProcess(extra=("--store", pg_url), mode="one-process").start() for _ in range(3)]
    try:
        post(servers[0].url, [ev(1, "first", 1)])
        app = create_app(server=servers[0].url, interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: events_shown(app) == 1 and app.state == "ready", "the first event")
            post(servers[2].url, [ev(i, "from-three", 10 + i) for i in range(1, 6)])
            await until(pilot, lambda: events_shown(app) == 6 and app.state == "ready", "the 5 events of server 3")
            await settle(pilot)
            assert trace_ids(app) == ["first", "from-three"]
    finally:
        for s in servers:
            s.stop()


async def test_open_store_shows_the_shared_database_s_traces(pg_url):
    """`raceway-tui open --store URL`: the explorer the command builds, on what a server
    stored in the database (the server is stopped first: the database alone suffices)."""
    from tui_support import explorer

    with ServerProcess(extra=("--store", pg_url), mode="one-process") as s:
        post(s.url, [ev(i, "shared-a", i) for i in range(1, 4)] + [ev(i, "shared-b", 10 + i) for i in range(1, 3)])
    app = explorer(store=pg_url)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.state == "ready", "the analysis")
            await settle(pilot)
            assert trace_ids(app) == ["shared-a", "shared-b"]
            assert events_shown(app) == 5
    finally:
        app.session.close()
