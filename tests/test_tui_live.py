"""Live mode: the explorer connected to a real server process (127.0.0.1, real sockets),
driven with the Textual pilot. Syncs every 0.2 s here (2 s by default)."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from helpers import event
from server_proc import ServerProcess
from test_server_client import FakeRaceway, serve_in_thread
from tui_support import SIZE, settle

from tui_support import create_app  # opens on the timeline, as these tests expect
from raceway_tui.live import LiveLink, backoff
from raceway_tui.widgets.status import status_text
from raceway_tui.widgets.traces import TraceList

FAST = 0.2


def ev(i: int, trace: str, second: float, thread: str = "main") -> dict:
    e = event(i, trace=trace, thread=thread, ts=f"2026-11-10T00:{int(second) // 60:02d}:{second % 60:09.6f}+00:00")
    e["id"] = f"{trace}-{i}"
    return e


def post(url: str, events: list[dict], key: str | None = None) -> None:
    headers = {"content-type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    r = httpx.post(url + "/events", content=orjson.dumps({"events": events}), headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def header(app) -> str:
    return status_text(app.status.info).plain


def trace_ids(app) -> list[str]:
    return sorted(r["trace_id"] for r in app.query_one(TraceList).rows)


async def until(pilot, cond, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; header: {header(pilot.app)}")
        await pilot.pause(0.05)


def events_shown(app) -> int:
    return app.status.info.counts.get("events", 0)


def toasts(app, text: str) -> int:
    return sum(text in str(n.message) or text in str(n.title) for n in app._notifications)


# -- the retry schedule, without a UI -----------------------------------------------------


def test_backoff_doubles_up_to_30_seconds():
    assert [backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_link_reports_transitions_once_and_backs_off(tmp_path):
    from raceway_core.store import Store

    store = Store()
    with ServerProcess() as s:
        post(s.url, [ev(1, "t", 1)])
        link = LiveLink(s.url, store, interval=FAST)
        first = link.sync()
        assert (first.change, first.result.loaded, link.connection_text()) == ("connected", 1, "connected")
        assert link.next_sync(100.0, auto=True) == 100.0 + FAST and link.next_sync(100.0, auto=False) is None
        assert link.sync().change is None  # still connected: nothing to announce
        url = s.url
    # the server is gone
    outs = [link.sync() for _ in range(3)]
    assert [o.change for o in outs] == ["disconnected", None, None]
    assert all("connection refused" in o.error for o in outs), outs
    assert link.failures == 3 and 3 < link.next_sync(0.0, auto=True) - time.monotonic() <= 4  # 1, 2, then 4 s
    assert link.connection_text().startswith("disconnected, retrying in 4 s")
    assert link.connection_text(auto=False) == "disconnected (r retries)"
    port = int(url.rsplit(":", 1)[1])
    with ServerProcess(port=port) as s2:
        post(s2.url, [ev(2, "t", 2)])
        back = link.sync()
        assert back.change == "reconnected" and back.result.loaded == 1 and link.failures == 0
    assert store.counts()["events"] == 2
    link.close()
    store.close()


# -- the explorer on our server -------------------------------------------------------------


@pytest.mark.slow
async def test_new_traces_appear_and_the_selection_survives_refreshes():
    with ServerProcess() as s:
        app = create_app(server=s.url, interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link is not None and app.link.connected, "the first sync")
            await settle(pilot)
            assert events_shown(app) == 0 and "connected │ Auto: ON │ synced " in header(app)

            # posted after the app started: the long trace has more rows than the view
            long = [ev(i, "long", 10 + i) for i in range(1, 81)]
            post(s.url, long + [ev(1, "short", 5), ev(2, "short", 6)])
            await until(pilot, lambda: events_shown(app) == 82 and app.state == "ready", "82 events")
            await settle(pilot)
            assert trace_ids(app) == ["long", "short"]
            assert app.status.info.counts["traces"] == 2

            # choose "long", go deep into its timeline
            tl = app.query_one(TraceList)
            tl.table.focus()
            tl.table.move_to(tl.table.find(lambda r: r["trace_id"] == "long"))
            await pilot.press("enter")
            await settle(pilot)
            view = app.pane("timeline").view
            assert app.scope == "long" and app.focused is view
            await pilot.press("G")  # the last row at the bottom line, then up to the third line
            await pilot.press(*["k"] * (view.size.height - 3))
            await settle(pilot)
            before_id, before_cursor, before_top = view.row()["id"], view.cursor, round(view.scroll_y)
            assert before_id == f"long-{before_cursor + 1}" and before_top > 0 and before_cursor == before_top + 2

            # an earlier event of the same trace (one row more above the cursor) and a new trace
            post(s.url, [ev(0, "long", 9), ev(1, "late", 200)])
            await until(pilot, lambda: events_shown(app) == 84 and app.state == "ready", "84 events")
            await settle(pilot)
            assert trace_ids(app) == ["late", "long", "short"]
            assert app.scope == "long" and app.active_pane == "timeline" and app.focused is view
            assert view.count == 81
            assert view.row()["id"] == before_id and view.cursor == before_cursor + 1
            assert round(view.scroll_y) - view.cursor == before_top - before_cursor  # same screen line
            assert tl.table.row()["trace_id"] == "long" and tl.chosen == "long"
            assert "trace long" in header(app)


def write(i: int, variable: str, second: float) -> dict:
    e = ev(i, "vars", second)
    e["kind"] = {"StateChange": {"variable": variable, "old_value": i, "new_value": i + 1,
                                 "location": "app.py:1", "access_type": "Write"}}
    return e


async def test_a_pane_keeps_its_cursor_row_when_new_events_reorder_it():
    with ServerProcess() as s:
        # variables are listed by races, then accesses (most first): v1 (3), v2 (2), v3 (1)
        post(s.url, [write(1, "v1", 1), write(2, "v1", 2), write(3, "v1", 3), write(4, "v2", 4), write(5, "v2", 5),
                     write(6, "v3", 6)])
        app = create_app(server=s.url, interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: events_shown(app) == 6 and app.state == "ready", "6 events")
            await pilot.press("4")
            await settle(pilot)
            table = app.pane("variables").variables
            assert [table.row(i)["variable"] for i in range(3)] == ["v1", "v2", "v3"]
            await pilot.press("j", "j")
            await settle(pilot)
            assert table.row()["variable"] == "v3"
            post(s.url, [write(10 + i, "hot", 10 + i) for i in range(5)])  # listed first from now on
            await until(pilot, lambda: events_shown(app) == 11 and app.state == "ready", "11 events")
            await settle(pilot)
            assert [table.row(i)["variable"] for i in range(4)] == ["hot", "v1", "v2", "v3"]
            assert table.row()["variable"] == "v3" and table.cursor == 3
            assert app.active_pane == "variables" and app.focused is table


@pytest.mark.slow
async def test_server_gone_shows_retry_countdown_then_reconnects(tmp_path):
    server_db = tmp_path / "server.duckdb"
    s = ServerProcess(db=server_db).start()
    port = int(s.url.rsplit(":", 1)[1])
    try:
        post(s.url, [ev(1, "a", 1), ev(2, "a", 2)])
        app = create_app(server=s.url, db=tmp_path / "local.duckdb", interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: events_shown(app) == 2 and app.state == "ready", "2 events")
            s.stop()
            await until(pilot, lambda: "disconnected, retrying in" in header(app), "the disconnected state")
            await until(pilot, lambda: app.link.failures >= 2, "a second failed sync")
            first_failed, second = app.link.attempts[-2], app.link.attempts[-1]
            assert second - first_failed >= 1.0  # backed off 1 s, not retried every 0.2 s
            assert "disconnected, retrying in 2 s" in header(app)  # then 2 s, counting down
            await until(pilot, lambda: "disconnected, retrying in 1 s" in header(app), "the countdown")
            assert toasts(app, "Disconnected") == 1  # once, not on every retry
            # the app still answers keys
            await pilot.press("3")
            await pilot.pause(0.1)
            assert app.active_pane == "races"
            await pilot.press("1")
            await pilot.pause(0.1)

            s = ServerProcess(db=server_db, port=port).start()  # the same port and database
            post(s.url, [ev(3, "b", 3)])
            await until(pilot, lambda: events_shown(app) == 3 and app.state == "ready", "the event after the restart",
                        timeout=25)
            assert "connected │" in header(app) and "disconnected" not in header(app)
            assert toasts(app, "Reconnected") == 1
            assert trace_ids(app) == ["a", "b"]
            assert app.link.events_pulled == 3  # from the cursor: nothing pulled twice
    finally:
        s.stop()


async def test_auto_refresh_toggle_and_sync_now():
    with ServerProcess() as s:
        app = create_app(server=s.url, interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link is not None and app.link.connected, "the first sync")
            await settle(pilot)
            assert "Auto: ON" in header(app)
            await pilot.press("a")
            assert "Auto: OFF" in header(app) and not app.live_refresh
            await until(pilot, lambda: not app.syncing, "a sync that started before the key")
            syncs = app.link.syncs
            post(s.url, [ev(1, "x", 1)])
            await pilot.pause(1.0)  # five intervals: nothing pulled while Auto is off
            assert app.link.syncs == syncs and events_shown(app) == 0
            await pilot.press("r")  # sync now
            await until(pilot, lambda: events_shown(app) == 1 and app.state == "ready", "the event after r")
            assert app.link.syncs == syncs + 1
            await pilot.press("a")
            assert "Auto: ON" in header(app)
            post(s.url, [ev(2, "x", 2)])
            await until(pilot, lambda: events_shown(app) == 2 and app.state == "ready", "the next event")


# -- the explorer on an original Raceway server -------------------------------------------


class CountingRaceway(FakeRaceway):
    def __init__(self, key: str | None = None) -> None:
        super().__init__(key)
        self.requests = 0

    def _guard(self, request):
        self.requests += 1
        return super()._guard(request)


async def test_original_raceway_server_pulled_through_its_traces_api(monkeypatch):
    monkeypatch.delenv("RACEWAY_API_KEY", raising=False)
    fake = CountingRaceway(key="sekret")
    fake.add([ev(i, f"o{t}", t * 10 + i) for t in range(3) for i in range(4)])
    with serve_in_thread(fake.app()) as url:
        app = create_app(server=url, api_key="sekret", interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: events_shown(app) == 12 and app.state == "ready", "12 events")
            assert app.link.client.mode == "traces"
            assert trace_ids(app) == ["o0", "o1", "o2"]
            fake.add([ev(9, "o1", 15), ev(0, "o9", 99)])
            await until(pilot, lambda: events_shown(app) == 14 and app.state == "ready", "14 events")
            assert trace_ids(app) == ["o0", "o1", "o2", "o9"]
            assert app.link.failures == 0


async def test_refused_key_is_explained_and_retried_slowly(monkeypatch):
    monkeypatch.delenv("RACEWAY_API_KEY", raising=False)
    fake = CountingRaceway(key="sekret")
    fake.add([ev(1, "k", 1)])
    with serve_in_thread(fake.app()) as url:
        app = create_app(server=url, interval=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link is not None and app.link.connected is False, "the first sync")
            await settle(pilot)
            assert "unauthorized: check RACEWAY_API_KEY, retrying in" in header(app)
            assert toasts(app, "set RACEWAY_API_KEY") == 1
            start = fake.requests
            await pilot.pause(2.0)  # at 0.2 s that would be 10 requests; backing off 1, 2 s it is 1 or 2
            assert fake.requests - start <= 2
            assert events_shown(app) == 0 and app.state == "ready"


# -- the command line -------------------------------------------------------------------------


def test_connect_help_and_bad_urls():
    from test_cli import cli

    r = cli("connect", "--help")
    assert r.returncode == 0 and "Usage: raceway-tui connect" in r.stdout and "--interval" in r.stdout
    for args in (["connect", "localhost:8080"], ["--server", "ftp://host:21"], ["--server=http://h:port"]):
        r = cli(*args)
        assert r.returncode == 2, args
        assert "invalid server URL" in r.stderr and "Traceback" not in r.stdout + r.stderr
