"""`raceway-tui web`: the explorer in a browser.

Each browser tab gets its own app process running the very command a terminal user runs
(`raceway-tui open ...`, through textual-serve's AppService and Textual's web driver), so
keys, panes and live mode are the explorer's own. Around it, what a web service needs:
an API key presented once (login page, then an HttpOnly SameSite=Strict cookie), a
Host/Origin check (another site's page, or a DNS-rebinding name, gets nothing), a cap on
sessions, a page saying so when the data source is down, and the app process ended when
its tab closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aiohttp import WSMsgType, web
from textual_serve.download_manager import DownloadManager

from raceway_tui import web_pages
from raceway_tui.web_session import AppProcess

log = logging.getLogger("raceway-tui.web")

STATIC = Path(__import__("textual_serve").__file__).parent / "static"
COOKIE = "raceway_web"
CLIENT = "raceway_client"  # which browser: its reloaded tab may replace its session at the cap
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
TICKET_TTL = 60.0  # seconds a loaded page may take to open its websocket
ENDED_TTL = 600.0  # how long why a session ended is kept for its page
# the browser itself keeps every request here (textual.js fetches a `?ping=` URL it is given)
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


@dataclass
class WebConfig:
    args: list[str]  # `raceway-tui open` arguments, without --db (see db)
    db: Path | None = None  # a DuckDB store: each session opens a copy (DuckDB locks a file to one process)
    server: str | None = None
    store: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_sessions: int = 8
    title: str = "raceway-tui"
    grace: float = 5.0  # seconds an app process has to quit when its tab closed, then SIGTERM
    python: str = sys.executable


@dataclass
class Session:
    ticket: str
    started: float
    client: str = ""  # the browser (its raceway_client cookie)
    process: AppProcess | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    workdir: str | None = None


class WebService:
    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.key = config.api_key.encode() if config.api_key else None
        self._tokens: set[bytes] = set()  # sha256 of the cookies handed out
        self._tickets: dict[str, tuple[float, str]] = {}  # pages served, not yet connected: ticket -> (deadline, client)
        self.sessions: dict[str, Session] = {}
        self._ended: dict[str, tuple[float, str, str]] = {}
        self._probe_at = 0.0
        self._probe_result: str | None = None
        self._probe_lock = asyncio.Lock()
        self.downloads = DownloadManager()
        self.served = 0
        self._analysis: asyncio.subprocess.Process | None = None
        self._analysis_task: asyncio.Task | None = None
        self._master: Path | None = None  # the analysed copy of --db, once it is
        self._master_dir: str | None = None
        self._master_stat: tuple | None = None

    # -- the aiohttp application ---------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.add_routes([
            web.get("/", self.index),
            web.get("/login", self.login_form),
            web.post("/login", self.login),
            web.get("/logout", self.logout),
            web.get("/ws/{ticket}", self.websocket),
            web.get("/ended/{ticket}", self.ended),
            web.get("/download/{key}", self.download),
            web.static("/static", STATIC, show_index=False),
        ])
        app.on_startup.append(self._start_analysis)
        app.on_shutdown.append(self._shutdown)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        """Only our own pages: a Host that is not loopback, when we listen on loopback, is a
        DNS-rebinding page; an Origin other than ours is another site's page (websockets
        and form posts are not held back by the same-origin policy)."""
        if self.config.host in LOOPBACK and _hostname(request.host) not in LOOPBACK:
            return _html(web_pages.message_page("Refused", "This server only answers to a loopback address "
                                                "(127.0.0.1, localhost, [::1])."), 403)
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return _html(web_pages.message_page("Refused", "A request from another site's page."), 403)
        response = await handler(request)
        if isinstance(response, web.Response):
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")  # no-referrer would make a form post's Origin "null"
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    def _authorised(self, request: web.Request) -> bool:
        if self.key is None:
            return True
        token = request.cookies.get(COOKIE)
        return bool(token) and hashlib.sha256(token.encode()).digest() in self._tokens

    # -- pages ---------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            raise web.HTTPSeeOther("/login")
        down = await self.source_problem()
        if down:
            return _html(web_pages.message_page(
                "The data source is not reachable",
                "The explorer cannot start until it is. This page tries again every 5 seconds.",
                down, refresh=5), 503)
        self._expire()
        client = request.cookies.get(CLIENT) or secrets.token_urlsafe(16)
        # At the cap, a browser that has a session may still load the page: a reloaded tab's
        # socket closes only once its new page arrived (the socket then waits for the slot).
        if (len(self.sessions) + len(self._tickets) >= self.config.max_sessions
                and not any(s.client == client for s in self.sessions.values())):
            return _html(web_pages.message_page(
                "Too many sessions",
                f"This server runs at most {self.config.max_sessions} explorer session(s) at once "
                "(--max-sessions). Close another tab of it, then reload this page.", refresh=10), 503)
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = (time.monotonic() + TICKET_TTL, client)
        font = _to_int(request.query.get("fontsize", "16"), 16)
        response = _html(web_pages.terminal_page(self.config.title, f"/ws/{ticket}", f"/ended/{ticket}", font))
        response.set_cookie(CLIENT, client, httponly=True, samesite="Strict", path="/",
                            secure=request.scheme == "https")
        return response

    async def login_form(self, request: web.Request) -> web.Response:
        if self.key is None or self._authorised(request):
            raise web.HTTPSeeOther("/")
        return _html(web_pages.login_page())

    async def login(self, request: web.Request) -> web.Response:
        if self.key is None:
            raise web.HTTPSeeOther("/")
        form = await request.post()
        given = form.get("key")
        given = given.encode() if isinstance(given, str) else b""
        if not hmac.compare_digest(given, self.key):
            await asyncio.sleep(0.3)  # slows guessing down; the key itself is never logged
            log.info("login refused from %s", request.remote)
            return _html(web_pages.login_page("That key was not accepted."), 401)
        token = secrets.token_urlsafe(32)
        self._tokens.add(hashlib.sha256(token.encode()).digest())
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                            secure=request.scheme == "https")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        token = request.cookies.get(COOKIE)
        if token:
            self._tokens.discard(hashlib.sha256(token.encode()).digest())
        response = web.HTTPSeeOther("/login" if self.key else "/")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def ended(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"title": "Not signed in."}, status=403)
        ticket = request.match_info["ticket"]
        session = self.sessions.get(ticket)
        if session is not None:  # the page saw its socket close before the app was reaped
            try:
                await asyncio.wait_for(session.done.wait(), self.config.grace + 5)
            except asyncio.TimeoutError:
                pass
        _, title, reason = self._ended.get(ticket, (0, "Session ended.", ""))
        return web.json_response({"title": title, "reason": reason})

    async def download(self, request: web.Request) -> web.StreamResponse:  # files the app delivers
        if not self._authorised(request):
            return _html(web_pages.message_page("Not signed in", "Sign in first."), 403)
        key = request.match_info["key"]
        try:
            meta = await self.downloads.get_download_metadata(key)
        except KeyError:
            raise web.HTTPNotFound(text="no such download") from None
        response = web.StreamResponse()
        response.headers["Content-Type"] = meta.mime_type + (f"; charset={meta.encoding}" if meta.encoding else "")
        disposition = "inline" if meta.open_method == "browser" else "attachment"
        response.headers["Content-Disposition"] = f'{disposition}; filename="{_header_safe(meta.file_name)}"'
        await response.prepare(request)
        async for chunk in self.downloads.download(key):
            await response.write(chunk)
        await response.write_eof()
        return response

    # -- sessions ------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if not self._authorised(request):
            return _html(web_pages.message_page("Not signed in", "Sign in first."), 403)
        deadline, client = self._tickets.pop(ticket, (0.0, ""))
        if deadline < time.monotonic():
            return _html(web_pages.message_page("Expired", "Reload the page to start a session."), 403)
        ws = web.WebSocketResponse(heartbeat=15)  # a vanished browser is noticed within ~30 s
        await ws.prepare(request)
        wait_until = time.monotonic() + self.config.grace + 5  # for the session a reloaded tab left
        while len(self.sessions) >= self.config.max_sessions and time.monotonic() < wait_until:
            await asyncio.sleep(0.1)
        if len(self.sessions) >= self.config.max_sessions:
            self._ended[ticket] = (time.monotonic(), "Too many sessions",
                                   f"This server runs at most {self.config.max_sessions} explorer session(s) at "
                                   "once (--max-sessions). Close another tab of it, then start a new session.")
            await ws.close()
            return ws
        width = _to_int(request.query.get("width", "80"), 80)
        height = _to_int(request.query.get("height", "24"), 24)
        session = Session(ticket, time.monotonic(), client)
        self.sessions[ticket] = session
        self.served += 1
        reader = None
        try:
            db = None
            if self.config.db is not None:
                session.workdir = tempfile.mkdtemp(prefix="raceway-web-")
                db = await asyncio.to_thread(_copy_store, self._store_to_copy(), Path(session.workdir))
            proc = session.process = AppProcess(
                self._command(db), self._environment(), write_bytes=ws.send_bytes, write_str=ws.send_str,
                close=ws.close, download_manager=self.downloads)
            await proc.start(width, height)
            log.info("session %d: app pid %s (%d running)", self.served, proc.pid, len(self.sessions))
            reader = asyncio.create_task(_relay(ws, proc))
            await asyncio.wait({reader, proc._task}, return_when=asyncio.FIRST_COMPLETED)
        except Exception as exc:  # noqa: BLE001 - the page says what happened
            log.exception("session failed")
            self._ended[ticket] = (time.monotonic(), "The session could not start.", f"{type(exc).__name__}: {exc}")
        finally:
            if reader is not None:
                reader.cancel()
            try:
                if session.process is not None:
                    await session.process.end(self.config.grace)
                    title, reason = session.process.reason()
                    self._ended[ticket] = (time.monotonic(), title, reason)
                    log.info("session app pid %s ended (exit code %s)", session.process.pid,
                             session.process.returncode)
                await ws.close()
            finally:
                if session.workdir:
                    shutil.rmtree(session.workdir, ignore_errors=True)
                del self.sessions[ticket]
                session.done.set()
        return ws

    def _command(self, db: Path | None) -> str:
        args = [self.config.python, "-m", "raceway_tui.cli", "open", *self.config.args]
        if db is not None:
            args += ["--db", str(db)]
        return "exec " + shlex.join(args)  # exec: the app is the shell's process (its pid, its RSS)

    def _environment(self) -> dict[str, str]:
        env = {}
        if self.config.server and self.config.api_key:
            env["RACEWAY_API_KEY"] = self.config.api_key  # to the server; never on a command line
        return env

    def _expire(self) -> None:
        now = time.monotonic()
        for t in [t for t, (deadline, _) in self._tickets.items() if deadline < now]:
            del self._tickets[t]
        for t in [t for t, (at, *_) in self._ended.items() if at + ENDED_TTL < now]:
            del self._ended[t]

    async def _shutdown(self, app: web.Application) -> None:
        if self._analysis is not None and self._analysis.returncode is None:
            self._analysis.kill()
            await self._analysis.wait()
        for session in list(self.sessions.values()):
            if session.process is not None:
                await session.process.end(self.config.grace)
        if self._master_dir:
            shutil.rmtree(self._master_dir, ignore_errors=True)

    # -- a --db store, analysed once for every session -------------------------------------
    async def _start_analysis(self, app: web.Application) -> None:
        """Sessions on a --db store copy it; a copy analysed once here (in the background: the
        first sessions copy the store as it is) opens analysed in every session after."""
        if self.config.db is None:
            return
        self._master_dir = tempfile.mkdtemp(prefix="raceway-web-store-")
        self._master_stat = _stat(self.config.db)
        master = await asyncio.to_thread(_copy_store, self.config.db, Path(self._master_dir))
        self._analysis = await asyncio.create_subprocess_exec(
            self.config.python, "-m", "raceway_tui.cli", "analyze", "--db", str(master), *self._scope_args(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self._analysis_task = asyncio.create_task(self._analysed(master))

    async def _analysed(self, master: Path) -> None:
        started = time.monotonic()
        _, stderr = await self._analysis.communicate()
        if self._analysis.returncode == 0:
            self._master = master
            log.info("the --db store is analysed once for the sessions (%.1f s)", time.monotonic() - started)
        else:
            log.warning("analysing a copy of the --db store failed (exit code %s): sessions analyse it themselves",
                        self._analysis.returncode)

    def _store_to_copy(self) -> Path:
        if self._master is not None and _stat(self.config.db) == self._master_stat:
            return self._master
        return self.config.db  # not analysed yet, or the store changed since

    def _scope_args(self) -> list[str]:
        args = self.config.args
        i = args.index("--scope-variables") if "--scope-variables" in args else -1
        return args[i:i + 2] if i >= 0 else []

    # -- the data source -------------------------------------------------------------------
    async def source_problem(self) -> str | None:
        """Why the data source cannot be read (None: it can), asked at most every 2 s."""
        async with self._probe_lock:
            if time.monotonic() - self._probe_at > 2.0:
                self._probe_result = await self._probe_source()
                self._probe_at = time.monotonic()
            return self._probe_result

    async def _probe_source(self) -> str | None:
        if self.config.server:
            return await probe_server(self.config.server, self.config.api_key)
        if self.config.store:
            return await asyncio.to_thread(probe_store, self.config.store)
        return None


async def _relay(ws: web.WebSocketResponse, proc: AppProcess) -> None:
    """The browser's keys, mouse and size to the app (textual-serve's protocol)."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            kind, data = json.loads(message.data)
        except (ValueError, TypeError):
            continue
        if kind == "stdin" and isinstance(data, str):
            await proc.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            await proc.set_terminal_size(_to_int(str(data.get("width")), 80), _to_int(str(data.get("height")), 24))
        elif kind == "ping":
            await ws.send_json(["pong", data])
        elif kind == "blur":
            await proc.blur()
        elif kind == "focus":
            await proc.focus()


async def probe_server(url: str, api_key: str | None) -> str | None:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=3.0, headers=headers) as client:
            r = await client.get(url.rstrip("/") + "/status")
    except httpx.ConnectError as exc:
        return f"cannot connect to {url}: {_reason(exc)}"
    except httpx.TimeoutException:
        return f"{url} did not answer within 3 s"
    except (httpx.HTTPError, UnicodeError) as exc:  # UnicodeError: a key that is not ASCII
        return f"request to {url} failed: {_reason(exc)}"
    if r.status_code in (401, 403):
        return (f"{url} refused the API key (HTTP {r.status_code})" if api_key
                else f"{url} needs an API key (HTTP {r.status_code}): start `raceway-tui web` with --api-key")
    if r.status_code >= 500:
        return f"{url} answered HTTP {r.status_code}"
    return None


def probe_store(url: str) -> str | None:
    from raceway_core.pgstore.pool import redact

    try:
        import psycopg
    except ImportError:
        return "--store needs psycopg: pip install 'raceway-tui[pg]'"
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"cannot connect to {redact(url)}: {str(exc).strip().replace(url, redact(url))}"
    return None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    if any(s in text for s in ("Connection refused", "ConnectionRefused", "Errno 111", "All connection attempts")):
        return "nothing answers there (is the server running?)"
    return text or type(exc).__name__


def _copy_store(db: Path, workdir: Path) -> Path:
    """A private copy of a DuckDB store for one session (with its write-ahead log)."""
    target = workdir / db.name
    shutil.copyfile(db, target)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    return target


def _stat(path: Path) -> tuple:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _to_int(value: str, default: int) -> int:
    try:
        return max(1, min(int(value), 1000))
    except (TypeError, ValueError):
        return default


def _hostname(host: str | None) -> str:
    host = host or ""
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _header_safe(name: str) -> str:
    return "".join(c if c.isprintable() and c not in '"\\' else "_" for c in name)


async def _serve(service: WebService, announce: Callable[[str], None], stop: asyncio.Event) -> None:
    runner = web.AppRunner(service.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, service.config.host, service.config.port)
    await site.start()
    sock = site._server.sockets[0]  # the real port when --port 0
    host = service.config.host
    shown = f"[{host}]" if ":" in host else host
    announce(f"http://{shown}:{sock.getsockname()[1]}")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(config: WebConfig, announce: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM; the sessions' apps are ended on the way out."""
    import signal

    logging.basicConfig(level=logging.INFO, format="raceway-tui web: %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await _serve(WebService(config), announce, stop)

    asyncio.run(main())
