"""The original Raceway server's system-wide routes: services, service health,
a service's traces and dependencies, performance metrics, distributed edges
and hotspots (paths, parameters, JSON shapes and status codes as in its
cli/src/server.rs). The handlers only read parameters; the answers are
computed in ``raceway_core.analysis.services`` and ``queries``.
"""

from __future__ import annotations

import time
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from raceway_core.analysis import services as _services
from raceway_core.server import queries
from raceway_core.server.http import ok

INVALID_TRACE_ID = "Invalid trace ID format"  # the original's 400 message
BIG = 10**8  # numbers past this are clamped (pages, minutes, counts): none overflows a query's INT64


def is_uuid(text: str) -> bool:
    """Whether the original would accept ``text`` as a trace id (it parses a UUID:
    hyphenated, 32 hex digits, braced or urn:uuid:)."""
    try:
        uuid.UUID(text)
    except (ValueError, TypeError):
        return False
    return True


def missing_trace_status(trace_id: str) -> tuple[int, str | None]:
    """The status for a trace id with no events: 400 when the original would refuse
    its format (our store also keeps traces with other ids, e.g. Jaeger's hex ids,
    which are answered as usual when stored), else 404."""
    return (404, None) if is_uuid(trace_id) else (400, INVALID_TRACE_ID)


def _uint(request: Request, name: str, default: int) -> int:
    # as the original's `.parse::<usize>().ok().unwrap_or(default)`: no value, a bad or negative one -> default
    text = request.query_params.get(name)
    return min(int(text), BIG) if text is not None and text.isascii() and text.isdigit() else default


def optional_uint(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    return min(int(text), BIG) if text is not None and text.isascii() and text.isdigit() else None


class ParityRoutes:
    def __init__(self, srv) -> None:
        self.srv = srv  # the RacewayServer: its store, read cursors and analysis session

    async def _analysis(self, fn, *args):
        """``fn(session, *args)`` over an analysis snapshot (``snapshots.py``): ingest never waits on it."""
        return await self.srv.analysis_call((fn.__module__, fn.__qualname__, *args),
                                            lambda analyses, *a: fn(analyses.session, *a), *args)

    async def services(self, request: Request) -> Response:
        return ok(await self._analysis(_services.services))

    async def service_health(self, request: Request) -> Response:
        window = _uint(request, "time_window_minutes", 60)
        return ok(await self._analysis(_services.service_health, window, time.time_ns()))

    async def service_traces(self, request: Request) -> Response:
        name = request.path_params["service_name"]
        page = max(_uint(request, "page", 1), 1)
        page_size = min(max(_uint(request, "page_size", 100), 1), queries.MAX_PAGE_SIZE)
        traces, total = await self.srv.read(lambda cur: queries.trace_page(cur, page, page_size, service=name))
        return ok({"service_name": name, "total_traces": total, "page": page, "page_size": page_size,
                   "total_pages": -(-total // page_size), "traces": [t.as_stored_json() for t in traces]})

    async def service_dependencies(self, request: Request) -> Response:
        return ok(await self._analysis(_services.service_dependencies, request.path_params["service_name"]))

    async def performance(self, request: Request) -> Response:
        return ok(await self._analysis(_services.performance_metrics, _uint(request, "limit", 50)))

    async def edges(self, request: Request) -> Response:
        return ok(await self._analysis(_services.distributed_edges))

    async def hotspots(self, request: Request) -> Response:
        return ok(await self._analysis(_services.hotspots))


def routes(srv, guard) -> list[Route]:
    """The routes, each handler wrapped by ``guard`` (the app's error envelope)."""
    p = ParityRoutes(srv)
    table = [
        ("/api/services", p.services),
        ("/api/services/health", p.service_health),
        ("/api/services/{service_name:path}/traces", p.service_traces),
        ("/api/services/{service_name:path}/dependencies", p.service_dependencies),
        ("/api/performance/metrics", p.performance),
        ("/api/distributed/edges", p.edges),
        ("/api/distributed/hotspots", p.hotspots),
    ]
    return [Route(path, guard(fn), methods=["GET"]) for path, fn in table]
