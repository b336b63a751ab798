"""`raceway-tui web` in a real browser: headless Chromium (the system's package) driven by
Playwright against the real command. What a page shows is read back with tests/web_support.Screen.
`make test` runs one page painting and quitting, and the checks without a browser; the longer
browser sessions (10-45 s each) are marked slow: `make test-slow` and CI run them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

import httpx
import pytest

from tests.web_support import ROOT, SAMPLES, Screen, WebProcess, alive, launch, missing_browser, wait_gone

BANKING = str(SAMPLES / "banking-unsafe.jsonl")
PAINTED = r"ready[\s\S]*banking"  # the status bar says ready; the trace list shows the banking service
KEY = "s3cret-web-key-\u00e9"


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def browser():
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 800})
    yield context.new_page()
    context.close()


def _elsewhere(urls: list[str]) -> list[str]:
    """Requests to anywhere but the server (127.0.0.1)."""
    return [u for u in urls if urlparse(u).hostname != "127.0.0.1"]


def test_explorer_paints_and_races_key_shows_the_critical_race(page, tmp_path):
    """The page loads, the explorer paints, `3` then `]` shows the critical alice.balance race,
    and nothing is fetched from anywhere but this server (textual-serve's own page asks
    Google for its font)."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    with WebProcess(BANKING) as web:
        screen = Screen(page)
        assert page.goto(web.url).status == 200
        screen.wait_for(PAINTED)
        screen.press("3")
        screen.wait_for(r"racing pairs")
        screen.press("]")
        shown = screen.wait_for(r"A · first access[\s\S]*Write alice\.balance")
        assert "critical write-write alice.balance" in " ".join(shown.split())
        shot = tmp_path / "races.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        # textual.js fetches a ?ping= URL it is given; the page's Content-Security-Policy stops it
        # (another loopback address: a different origin, and no traffic leaves the machine)
        blocked = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(web.url + "/?ping=http://127.0.0.2:9/")
        page.wait_for_load_state("load")
        page.wait_for_timeout(1000)
        assert any("127.0.0.2" in m for m in blocked), blocked
        if os.environ.get("RACEWAY_WEB_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["RACEWAY_WEB_SCREENSHOT"])
    assert requests and not _elsewhere(requests), _elsewhere(requests)
    assert any("/static/fonts/" in u for u in requests)  # the font, served here


@pytest.mark.slow  # tab-closing and server-stop lifecycle, ~20 s
def test_closing_the_tab_ends_its_app_process(page):
    with WebProcess(BANKING) as web:
        screen = Screen(page)
        page.goto(web.url)
        screen.wait_for(PAINTED)
        apps = web.children()
        assert len(apps) == 1 and alive(apps[0])
        page.close()
        assert wait_gone(apps[0], 40), "the app process outlived its tab"
        assert web.children() == []
        deadline = time.monotonic() + 20
        while "ended (exit code 0)" not in "".join(web.output) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "ended (exit code 0)" in "".join(web.output)

        # a tab still open when the server stops: its app ends with the server
        other = page.context.new_page()
        screen = Screen(other)
        other.goto(web.url)
        screen.wait_for(PAINTED)
        (app,) = web.children()
        web.stop()
        assert web.proc.returncode == 0 and wait_gone(app, 40)


def test_quitting_the_explorer_ends_the_session_and_the_page_says_so(page):
    with WebProcess(BANKING) as web:
        screen = Screen(page)
        page.goto(web.url)
        screen.wait_for(PAINTED)
        (app,) = web.children()
        screen.press("q")
        page.wait_for_selector("body.-closed")
        expect(page.locator("#ended")).to_have_text("The explorer was closed.", timeout=15_000)
        assert wait_gone(app, 40)


@pytest.mark.slow  # login page in a browser, ~12 s; the cookie/redirect checks need the browser
def test_api_key_login_page_then_cookie_wrong_key_refused(browser):
    with WebProcess(BANKING, env={"RACEWAY_API_KEY": KEY}) as web:
        # without the cookie: no explorer, no session
        r = httpx.get(web.url, follow_redirects=False, timeout=60)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert httpx.get(web.url + "/ws/anything", timeout=60).status_code == 403

        context = browser.new_context(viewport={"width": 1400, "height": 800})
        page = context.new_page()
        page.goto(web.url)
        assert page.url.endswith("/login")
        page.fill("#key", KEY + "x")
        with page.expect_navigation() as nav:
            page.click("#submit")
        assert nav.value.status == 401
        assert "not accepted" in page.inner_text("#error")
        assert context.cookies() == [] and web.children() == []

        screen = Screen(page)
        page.fill("#key", KEY)
        page.click("#submit")
        screen.wait_for(PAINTED)
        cookies = {c["name"]: c for c in context.cookies()}
        cookie = cookies["raceway_web"]  # (and raceway_client, which browser: both HttpOnly, Strict)
        assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies.values())
        assert KEY not in [c["value"] for c in cookies.values()] and len(cookie["value"]) >= 32
        assert KEY not in page.url and len(web.children()) == 1
        context.close()
    assert KEY not in "".join(web.output)  # never logged, not even a refused attempt's


@pytest.mark.slow  # three sessions in turn, ~45 s
def test_session_cap_page_then_a_slot_frees_when_a_tab_closes(browser):
    with WebProcess(BANKING, "--max-sessions", "1") as web:
        first = browser.new_page(viewport={"width": 1200, "height": 700})
        screen = Screen(first)
        first.goto(web.url)
        screen.wait_for(PAINTED)
        (app,) = web.children()

        second = browser.new_page(viewport={"width": 1200, "height": 700})
        response = second.goto(web.url)
        assert response.status == 503
        assert second.inner_text("#title") == "Too many sessions"
        assert len(web.children()) == 1

        first.close()
        assert wait_gone(app, 40)
        screen = Screen(second)
        second.goto(web.url)
        screen.wait_for(PAINTED)
        (app,) = web.children()

        # reloading the one tab: its old session ends as the new one starts, no cap page
        screen = Screen(second)
        assert second.reload().status == 200
        screen.wait_for(PAINTED)
        assert wait_gone(app, 40) and len(web.children()) == 1
        second.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a server started mid-test, ~30 s
def test_data_source_down_page_then_live_explorer_once_the_server_is_up(browser, tmp_path):
    """--server URL --api-key: the key signs the browser in and is sent to the server; while the
    server is down the page says so; once it is up the explorer follows it (live mode)."""
    from tests.server_proc import ServerProcess

    port = _free_port()
    key = "server-key-1"  # it goes in an HTTP header: ASCII
    with WebProcess("--server", f"http://127.0.0.1:{port}", "--api-key", key) as web:
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(web.url + "/login")
        page.fill("#key", key)
        with page.expect_navigation() as nav:
            page.click("#submit")
        assert nav.value.status == 503
        assert page.inner_text("#title") == "The data source is not reachable"
        assert f"cannot connect to http://127.0.0.1:{port}: nothing answers there (is the server running?)" in page.inner_text("#detail")
        assert web.children() == []

        server = ServerProcess(tmp_path / "s.duckdb", api_keys=(key,), port=port).start()
        try:
            events = [json.loads(line) for line in (SAMPLES / "banking-unsafe.jsonl").read_text().splitlines()]
            httpx.post(server.url + "/events", json={"events": events}, headers={"Authorization": f"Bearer {key}"},
                       timeout=20).raise_for_status()
            screen = Screen(page)
            page.wait_for_timeout(2100)  # past the cached probe
            page.reload()
            screen.wait_for(r"21 events[\s\S]*banking", timeout=40)
        finally:
            server.stop()
        page.close()


def test_store_down_page_names_the_database_without_its_password():
    port = _free_port()
    with WebProcess("--store", f"postgresql://raceway:hunter2@127.0.0.1:{port}/traces") as web:
        r = httpx.get(web.url, timeout=30)
        assert r.status_code == 503 and "The data source is not reachable" in r.text
        assert f"cannot connect to postgresql://raceway:***@127.0.0.1:{port}/traces" in r.text
        assert "hunter2" not in r.text and web.children() == []


def test_host_and_origin_of_another_site_refused():
    """Pages of other sites (a DNS-rebinding name, a cross-site websocket) get nothing."""
    with WebProcess(BANKING) as web:
        port = urlparse(web.url).port
        assert httpx.get(web.url, timeout=60).status_code == 200
        assert httpx.get(web.url, headers={"Host": f"evil.example:{port}"}, timeout=60).status_code == 403
        assert httpx.get(f"http://localhost:{port}/", timeout=60).status_code == 200
        r = httpx.get(web.url + "/ws/x", headers={"Origin": "http://evil.example"}, timeout=60)
        assert r.status_code == 403 and "another site" in r.text
        assert web.children() == []


@pytest.mark.slow  # two sessions on one store, ~40 s
def test_every_tab_on_one_db_gets_its_own_copy(browser, tmp_path):
    """DuckDB lets one process open a file: each session reads a copy, so two tabs both paint."""
    db = tmp_path / "store.duckdb"
    subprocess.run([sys.executable, "-m", "raceway_tui.cli", "load", BANKING, "--db", str(db)], cwd=ROOT,
                   check=True, capture_output=True)
    before = db.read_bytes()
    with WebProcess("--db", str(db)) as web:
        deadline = time.monotonic() + 60  # a copy is analysed once; sessions then copy that copy
        while "analysed once" not in "".join(web.output) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "the --db store is analysed once for the sessions" in "".join(web.output)
        pages = [browser.new_page(viewport={"width": 1200, "height": 700}) for _ in range(2)]
        screens = [Screen(p) for p in pages]
        for p in pages:
            p.goto(web.url)
        for s in screens:
            s.wait_for(PAINTED, timeout=40)
        assert len(web.children()) == 2
        for p in pages:
            p.close()
    assert db.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/trace.jsonl"], "file not found"),
    ([], "nothing to serve"),
    (["--db", "/nonexistent.duckdb"], "file not found"),
    (["--server", "localhost:80"], "invalid server URL"),
])
def test_web_command_errors(args, message):
    r = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "web", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and message in r.stderr


def test_an_app_that_fails_to_start_reports_its_error_output():
    """What the page shows when a session's explorer stops on its own: its exit code and the
    end of its error output, escape sequences removed (the page shows it as text). (Its own
    event loop in a thread: Playwright's sync API holds this thread's while the browser is open.)"""
    import asyncio
    import threading

    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(r=asyncio.run(_failing_app())))
    thread.start()
    thread.join(120)
    proc = outcome["r"]
    assert proc.returncode == 2 and not proc.started.is_set() and proc.sent == []
    assert proc.reason() == ("The explorer stopped (exit code 2).", "error: cannot open <store> & more")


async def _failing_app():
    import asyncio

    from textual_serve.download_manager import DownloadManager

    from raceway_tui.web_session import AppProcess

    sent: list[bytes] = []

    async def write(data) -> None:
        sent.append(data)

    script = "import sys; sys.stderr.write('\\x1b[31merror:\\x1b[0m cannot open <store> & more\\n'); sys.exit(2)"
    proc = AppProcess(f"exec {sys.executable} -c \"{script}\"", {}, write_bytes=write, write_str=write,
                      close=lambda: asyncio.sleep(0), download_manager=DownloadManager())
    await proc.start(80, 24)
    await asyncio.wait_for(proc._task, 90)
    await proc.end(grace=1)
    proc.sent = sent
    return proc
