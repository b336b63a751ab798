"""The Raceway-compatible ASGI application: routes and handlers.

Writes go through the group committer (one writer thread); reads run in worker
threads, each on its own DuckDB cursor. Behind ingest fronts (``front.py``),
POST /events arrives parsed, over the channel, and this app serves the rest.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from raceway_core import __version__, arrowipc
from raceway_core.errors import AnalysisError
from raceway_core.server import parity_routes, queries, ratelimit
from raceway_core.server.analysis import Analyses, TraceNotFound
from raceway_core.server.channel import result_reply, serve_channel
from raceway_core.server.http import (
    OPEN_PATHS, ApiKeyAuth, HttpError, answer_ingest, fail, ingest_response, internal_error, internal_reply, ok,
    ok_with_raw, plain_ingest, refuse_early,
)
from raceway_core.server.openapi import document as openapi_document
from raceway_core.server.snapshots import Busy, Snapshots
from raceway_core.server.workers import Fronts
from raceway_core.server.writer import GroupCommitter, ShuttingDown
from raceway_core.store import Store

log = logging.getLogger("raceway.server")

SOURCE = "server"  # the events' source name


@dataclass(frozen=True)
class ServerConfig:
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 32 << 20
    max_events_per_commit: int = 50_000
    url: str | None = None  # recorded as the source's path
    distributed_tracing: bool = False  # GET /api/traces/{id} merges linked traces' events (the original's switch)
    race_detection: bool = True  # the original's switches: off, no races / anomalies are reported
    anomaly_detection: bool = True
    rate_limit_rpm: int = 0  # requests per minute per API key, else per client address (ratelimit.py); 0: none
    trusted_proxies: tuple[str, ...] = ()  # addresses/networks whose X-Forwarded-For is believed
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to read and post; none by default


class _Readers:
    """One DuckDB cursor per worker thread (cursors are not shared across threads)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._local = threading.local()

    def cursor(self):
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self.store.cursor()
        return cur


class RacewayServer:
    def __init__(self, store: Store, config: ServerConfig, behind_fronts: bool = False, shared=None) -> None:
        self.store = store
        # a pgstore.SharedStore: events are stored there and ``store`` is a cache that follows it
        self.shared = shared
        self.config = config
        self.readers = _Readers(store)
        self.snapshots = Snapshots(store, races=config.race_detection, anomalies=config.anomaly_detection)
        self.store_id = shared.store_id if shared is not None else self._store_id()
        self.load_id = store.open_live(SOURCE, "http", config.url)
        store.known_ids()  # read the stored ids now, not in the first commit
        # Behind ingest fronts a small commit group does not wait for more POSTs:
        # parsing the next batches already overlaps the commit, in the fronts'
        # processes, so waiting would only idle the writer.
        self.writer = GroupCommitter(store if shared is None else shared.ingest, self.load_id, SOURCE, max_events=config.max_events_per_commit,
                                     **({"linger": 0.0} if behind_fronts else {}))
        self.started = time.time()
        self.started_at = datetime.now(timezone.utc).isoformat()

    def _store_id(self) -> str:
        """Identifies this database, so a client notices when its cursor belongs to another one."""
        sid = self.store.meta("store_id")
        if sid is None:
            sid = str(uuid.uuid4())
            self.store.set_meta("store_id", sid)
        return sid

    async def read(self, fn, *args):
        await self._caught_up()
        return await run_in_threadpool(lambda: fn(self.readers.cursor(), *args))

    async def _caught_up(self) -> None:
        """With a shared store: the cache holds every event committed before this read."""
        if self.shared is not None:
            await run_in_threadpool(self.shared.catch_up)

    # -- ingest --------------------------------------------------------------------
    async def post_events(self, request: Request) -> Response:
        return await ingest_response(request, self.config.max_body_bytes, self.commit)

    async def commit(self, payload, n: int) -> dict:
        """Hand one parsed batch to the group committer; once committed, what
        ``ingest_response`` answers from (the same reply an ingest front gets)."""
        try:
            future = self.writer.submit(payload, n)
        except ShuttingDown as exc:
            return {"error": 503, "message": str(exc)}
        try:
            return result_reply(await asyncio.wrap_future(future))
        except Exception as exc:  # nothing of this batch was committed
            return internal_reply(f"could not store a batch of {n} events", exc)

    # -- reads ---------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        c = await self.read(queries.counts)
        return ok(self._warmup(c))

    def _warmup(self, c: dict) -> dict:
        # The original replays stored traces into its engine at start; ours reads them in place.
        return {"phase": "completed", "ready": True, "total_traces": c["traces"],
                "processed_traces": c["traces"], "last_trace": None, "started_at": self.started_at,
                "completed_at": self.started_at, "last_error": None}

    async def status(self, request: Request) -> Response:
        c = await self.read(queries.counts)
        if self.shared is not None:  # rejects are kept in the shared database
            c["rejected"] = await run_in_threadpool(self.shared.rejected)
        w = self.writer.stats
        return ok({
            "version": __version__, "uptime_seconds": int(time.time() - self.started),
            "events_captured": c["events"], "traces_active": c["traces"], "warmup": self._warmup(c),
            "implementation": "raceway-tui", "store_id": self.store_id, "feed": "/api/events",
            "feed_formats": ["json", "arrow"] if self.shared is None else ["json"],
            "events_rejected": c["rejected"], "auth_required": bool(self.config.api_keys),
            "writer": {"commits": w.commits, "bodies": w.bodies, "events": w.events,
                       "largest_group": w.largest_group, "last_commit_ms": round(w.last_commit_ms, 2),
                       "busy_seconds": round(w.busy_seconds, 3), "failures": w.failures},
            "analysis": self._analysis_status(),
        })

    def _analysis_status(self) -> dict:
        """How the analysis snapshots were taken: a copy and a whole engine run, or grown by
        the appended events (incremental analysis), and the last one's time."""
        from raceway_core.causality import incremental

        s = self.snapshots
        return {"snapshots": s.builds, "grown": s.grown, "last_build_seconds": round(s.last_build_seconds, 3),
                "last_incremental_fallback": incremental.last_reason}

    async def list_traces(self, request: Request) -> Response:
        page = _int_param(request, "page", 1, 1, MAX_PAGE)
        page_size = _int_param(request, "page_size", 20, 1, queries.MAX_PAGE_SIZE)
        min_events = parity_routes.optional_uint(request, "min_events")
        traces, total = await self.read(lambda cur: queries.trace_page(cur, page, page_size, min_events=min_events))
        return ok({"total_traces": total, "page": page, "page_size": page_size,
                   "total_pages": -(-total // page_size), "traces": [t.as_json() for t in traces]})

    async def get_trace(self, request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        merged = self.config.distributed_tracing
        events = await self.read(queries.linked_trace_events if merged else queries.trace_events, trace_id)
        if not events:
            status, message = parity_routes.missing_trace_status(trace_id)
            raise HttpError(status, message or f"Failed to fetch trace: no trace with id {trace_id!r}")
        if request.query_params.get("analysis", "1").lower() in ("0", "false", "no"):
            analysis = {}  # just the events: no engine run
        else:
            analysis = await self._run_analysis("trace", trace_id)
        return ok_with_raw({"trace_id": trace_id}, "events", events, analysis)

    async def feed(self, request: Request) -> Response:
        try:
            after = None if self.shared is not None else queries.parse_cursor(request.query_params.get("after"))
        except ValueError as exc:
            raise HttpError(400, str(exc)) from exc
        limit = _int_param(request, "limit", 1000, 1, queries.MAX_FEED_LIMIT)
        if self.shared is not None:
            return await self._shared_feed(request.query_params.get("after"), limit)
        if request.query_params.get("format") == "arrow":
            return await self._feed_arrow(after, limit)
        page = await self.read(queries.feed, after, limit)
        return ok_with_raw({}, "events", page.events, {
            "next_cursor": str(page.next_cursor), "has_more": page.has_more, "store_id": self.store_id})

    async def _shared_feed(self, after: str | None, limit: int) -> Response:
        """The shared database's feed (cursors valid on every server of it)."""
        try:
            page = await run_in_threadpool(self.shared.feed, after, limit)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from exc
        return ok_with_raw({}, "events", page.events, {
            "next_cursor": page.next_cursor, "has_more": page.has_more, "store_id": self.store_id})

    async def _feed_arrow(self, after: int, limit: int) -> Response:
        """The feed as an Arrow IPC stream of stored rows (``?format=arrow``): a
        client stores them without parsing a JSON text per event; the cursor
        and the rest of the envelope travel in headers."""
        def page(cur):
            table, nxt, more = queries.feed_rows(cur, after, limit)
            return arrowipc.to_bytes(table), nxt, more

        body, nxt, more = await self.read(page)
        return Response(body, 200, media_type=arrowipc.MEDIA_TYPE, headers={
            "X-Raceway-Next-Cursor": str(nxt), "X-Raceway-Has-More": "true" if more else "false",
            "X-Raceway-Store-Id": self.store_id})

    # -- analyses (through the adapter) ---------------------------------------------
    async def _run_analysis(self, name: str, *args):
        """``Analyses.<name>(*args)`` over a snapshot (see ``snapshots.py``)."""
        return await self.analysis_call((name, *args), getattr(Analyses, name), *args)

    async def analysis_call(self, key: tuple, fn, *args):
        """``fn(analyses, *args)`` over a snapshot, its result cached under ``key``."""
        await self._caught_up()
        try:
            return await asyncio.wrap_future(self.snapshots.submit(key, fn, *args))
        except Busy as exc:
            raise HttpError(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
        except TraceNotFound as exc:  # args[0]: the trace id (the global analyses raise no TraceNotFound)
            status, message = parity_routes.missing_trace_status(args[0])
            raise HttpError(status, message or str(exc)) from exc
        except AnalysisError as exc:
            raise HttpError(400, str(exc)) from exc

    async def _analysis(self, name: str, *args) -> Response:
        return ok(await self._run_analysis(name, *args))

    async def critical_path(self, request: Request) -> Response:
        return await self._analysis("critical_path", request.path_params["trace_id"])

    async def anomalies(self, request: Request) -> Response:
        return await self._analysis("anomalies", request.path_params["trace_id"])

    async def dependencies(self, request: Request) -> Response:
        return await self._analysis("dependencies", request.path_params["trace_id"])

    async def audit_trail(self, request: Request) -> Response:
        p = request.path_params
        return await self._analysis("audit_trail", p["trace_id"], p["variable"])

    async def analyze_global(self, request: Request) -> Response:
        return await self._analysis("global_analysis")

    async def deadlocks(self, request: Request) -> Response:
        return await self._analysis("deadlocks")

    async def global_races(self, request: Request) -> Response:
        return await self._analysis("global_races")

    async def openapi(self, request: Request) -> Response:
        return Response(openapi_document(__version__), media_type="application/json")


MAX_PAGE = 1_000_000_000  # (page - 1) * page_size stays far inside 64 bits


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    """A whole-number query parameter clamped to [lo, hi]; like the original,
    a value that does not parse means the default."""
    text = request.query_params.get(name)
    if text is None:
        return default
    text = text.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        return default
    if len(digits) > 18:  # past any bound, and int() of thousands of digits is slow or refused
        return lo if text[0] == "-" else hi
    return min(max(int(text), lo), hi)


def _guard(handler):
    """Every answer leaves here: an unexpected error becomes a 500 envelope
    (logged, with a request id) rather than an exception that Starlette would
    raise again into the server, which then drops the keep-alive connection."""
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except HttpError as exc:
            return fail(exc.status, exc.message, exc.headers, **exc.extra)
        except Exception as exc:
            return internal_error(f"{request.method} {request.url.path}", exc)
    return run


async def _http_exception(request: Request, exc: HTTPException) -> Response:
    return fail(exc.status_code, exc.detail or "error", getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return internal_error(f"{request.method} {request.url.path}", exc)


class _IngestFirst:
    """POST /events straight to its handler, around Starlette's middleware and
    routing, which cost about as much CPU as the handler's own HTTP work. Only
    plain requests: a browser's (Origin header: CORS) or one the key check
    refuses takes the full stack, which answers it as for any route."""

    def __init__(self, app, srv: RacewayServer, auth: ApiKeyAuth) -> None:
        self.app = app
        self.srv = srv
        self.auth = auth

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            refusal = refuse_early(scope, self.auth, self.srv.config.max_body_bytes)
            if refusal is not None and refusal.status_code != 401:  # a declared body past the limit, any path
                await refusal(scope, receive, send)  # (a 401 comes from the full stack: CORS headers and all)
                return
        if not plain_ingest(scope, self.auth):
            await self.app(scope, receive, send)
            return
        await answer_ingest(scope, receive, send, self.srv.config.max_body_bytes, self.srv.commit)


def create_app(store: Store, config: ServerConfig = ServerConfig(), fronts: Fronts | None = None,
               shared=None) -> Starlette:
    """The application; with ``fronts``, it also opens their ingest channel and runs them;
    with ``shared`` (a ``pgstore.SharedStore``), events are stored there."""
    srv = RacewayServer(store, config, behind_fronts=fronts is not None, shared=shared)

    @asynccontextmanager
    async def lifespan(app):
        if shared is not None:
            await run_in_threadpool(shared.start)
        srv.writer.start()
        channel = None
        try:
            if fronts is not None:
                channel = await asyncio.start_unix_server(
                    lambda r, w: serve_channel(r, w, srv.commit), path=fronts.channel_socket)
                fronts.start()
            yield
        finally:
            if fronts is not None:
                await run_in_threadpool(fronts.stop)  # they answer their POSTs in flight first
            if channel is not None:
                channel.close()
            await run_in_threadpool(srv.writer.stop)  # commit what is queued
            srv.snapshots.close()
            if shared is not None:
                await run_in_threadpool(shared.stop)

    g = _guard
    routes = [
        Route("/events", g(srv.post_events), methods=["POST"]),
        Route("/health", g(srv.health), methods=["GET"]),
        Route("/status", g(srv.status), methods=["GET"]),
        Route("/openapi.json", g(srv.openapi), methods=["GET"]),
        Route("/api/events", g(srv.feed), methods=["GET"]),
        Route("/api/traces", g(srv.list_traces), methods=["GET"]),
        Route("/api/traces/{trace_id}", g(srv.get_trace), methods=["GET"]),
        Route("/api/traces/{trace_id}/critical-path", g(srv.critical_path), methods=["GET"]),
        Route("/api/traces/{trace_id}/anomalies", g(srv.anomalies), methods=["GET"]),
        Route("/api/traces/{trace_id}/dependencies", g(srv.dependencies), methods=["GET"]),
        Route("/api/traces/{trace_id}/audit-trail/{variable:path}", g(srv.audit_trail), methods=["GET"]),
        Route("/api/analyze/global", g(srv.analyze_global), methods=["GET"]),
        Route("/api/analyze/deadlocks", g(srv.deadlocks), methods=["GET"]),
        Route("/api/distributed/global-races", g(srv.global_races), methods=["GET"]),
        *parity_routes.routes(srv, g),
    ]
    middleware = [Middleware(ApiKeyAuth, keys=config.api_keys, open_paths=OPEN_PATHS)]
    if config.cors_origins:  # only origins named on purpose: any page may not read traces or post
        middleware.insert(0, Middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                                        allow_methods=["GET", "POST", "OPTIONS"],
                                        allow_headers=["Authorization", "X-Raceway-Key", "Content-Type",
                                                       "Content-Encoding"]))
    app = _App(routes=routes, middleware=middleware, lifespan=lifespan,
               exception_handlers={HTTPException: _http_exception, Exception: _unexpected})
    app.state.raceway = srv
    return app


class _App(Starlette):
    def build_middleware_stack(self):
        srv = self.state.raceway
        auth = ApiKeyAuth(None, srv.config.api_keys, OPEN_PATHS)
        return ratelimit.wrap(_IngestFirst(super().build_middleware_stack(), srv, auth), srv.config.rate_limit_rpm,
                              auth, srv.config.trusted_proxies)
