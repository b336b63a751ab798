"""Server-side middleware: each incoming request runs in a new context.

The context continues the caller's trace, span and clock when the request
carries ``traceparent``/``raceway-clock``, else starts a new trace. The request
is recorded as HttpRequest (on arrival) and HttpResponse (when the status is
sent); the response carries ``raceway-clock`` back so the caller's next event
is ordered after everything the request did.

- WSGI (any framework): ``app = RacewayWSGIMiddleware(app, client)``
  (Flask: ``app.wsgi_app = RacewayWSGIMiddleware(app.wsgi_app, client)``).
- ASGI (Starlette, FastAPI, ...): ``app = RacewayASGIMiddleware(app, client)``
  or ``app.add_middleware(RacewayASGIMiddleware, client=client)``.
"""

from __future__ import annotations

import functools
import time
import uuid

from raceway_core.sdk.context import create_context, reset_context, set_context


def _end(token) -> None:
    try:
        reset_context(token)
    except ValueError:  # closed from another thread than the request's (a nonconforming server)
        pass


def _wsgi_headers(environ) -> dict[str, str]:
    return {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}


class _ClosingIterable:
    """The WSGI body, run in the request's context; the context ends when the server closes it."""

    def __init__(self, body, done) -> None:
        self._body, self._done = body, done

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._done()


class RacewayWSGIMiddleware:
    def __init__(self, app, client) -> None:
        self.app, self.client = app, client

    def __call__(self, environ, start_response):
        client = self.client
        ctx = client._server_begin(_wsgi_headers(environ), environ.get("REQUEST_METHOD", "GET"),
                                   environ.get("PATH_INFO") or "/")
        token = set_context(ctx)
        started = time.perf_counter_ns()
        answered = []

        def start(status, headers, exc_info=None):
            if not answered:
                answered.append(True)
                clock = client._server_end(ctx, int(str(status).split()[0]), started)
                headers = list(headers) + [("raceway-clock", clock)]
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, start)
        except BaseException:
            if not answered:
                client._server_end(ctx, 500, started)
            _end(token)
            raise
        return _ClosingIterable(body, functools.partial(_end, token))


class RacewayASGIMiddleware:
    def __init__(self, app, client) -> None:
        self.app, self.client = app, client

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        client = self.client
        ctx = client._server_begin(scope.get("headers") or [], scope.get("method", "GET"), scope.get("path", "/"))
        token = set_context(ctx)
        started = time.perf_counter_ns()
        answered = []

        async def send_wrapper(message):
            if message.get("type") == "http.response.start" and not answered:
                answered.append(True)
                clock = client._server_end(ctx, message.get("status", 200), started)
                message = dict(message)
                message["headers"] = list(message.get("headers") or []) + [
                    (b"raceway-clock", clock.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not answered:
                client._server_end(ctx, 500, started)
            raise
        finally:
            reset_context(token)


FastAPIMiddleware = RacewayASGIMiddleware  # the original SDK's name (app.add_middleware(..., client=client))


def flask_middleware(client):
    """The original SDK's Flask hooks: ``before_request()`` / ``after_request(response)``."""

    class FlaskMiddleware:
        def before_request(self):
            from flask import g, request

            ctx = client._server_begin(dict(request.headers), request.method, request.path)
            g._raceway = (ctx, set_context(ctx), time.perf_counter_ns())

        def after_request(self, response):
            from flask import g

            state = getattr(g, "_raceway", None)
            if state is not None:
                ctx, token, started = state
                response.headers["raceway-clock"] = client._server_end(ctx, response.status_code, started)
                g._raceway = None
                reset_context(token)
            return response

    return FlaskMiddleware()


def raceway_context(trace_id: str | None = None, *, service_name: str | None = None):
    """Decorator: run the function in a new context (a new trace unless ``trace_id`` is given)."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            token = set_context(create_context(trace_id or str(uuid.uuid4()), service_name=service_name))
            try:
                return fn(*args, **kwargs)
            finally:
                reset_context(token)

        return wrapper

    return decorator
