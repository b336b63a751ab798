"""Outgoing HTTP calls with httpx, recorded on the caller's side.

Per call: an HttpRequest event (the calling event: the callee's clock carries
its counter), the propagation headers, then an HttpResponse event, stamped on
arrival, that carries the callee's clock when the callee returned one. That
response event has duration 0 when the callee is instrumented (its time is in
the callee's events) and the call's duration otherwise (an uninstrumented
dependency; the interval before the response, see ``raceway_core.intervals``).
"""

from __future__ import annotations

import threading
import time

from raceway_core.sdk.context import get_context


def _before(client, method: str, url: str, kwargs: dict):
    ctx = get_context()
    if ctx is None:
        return None, kwargs
    client.track_http_request(method, str(url))
    headers = dict(kwargs.pop("headers", None) or {})
    kwargs["headers"] = {**client.propagation_headers(), **headers}
    return ctx, kwargs


def _after(client, ctx, response, t0: int) -> None:
    elapsed = time.perf_counter_ns() - t0
    instrumented = client._merge_response(ctx, response.headers)
    # Instrumented callee: a point event on arrival. Otherwise the call's time lies before the response.
    client._emit(ctx, "HttpResponse", {"status": response.status_code, "headers": {}, "body": None,
                                       "duration_ms": round(elapsed / 1e6, 3)},
                 duration_ns=0 if instrumented else elapsed)


_ssl: list = []
_ssl_lock = threading.Lock()


def _verify():
    """One SSL context for all calls: building one loads the CA bundle (tens of ms, blocking)."""
    with _ssl_lock:
        if not _ssl:
            import httpx

            _ssl.append(httpx.create_ssl_context())
        return _ssl[0]


def warm_up() -> None:
    """Pay httpx's one-time costs (imports, CA bundle) off the caller's thread or event loop."""
    try:
        import httpx

        httpx.AsyncClient(verify=_verify())
    except Exception:  # only an optimisation: the first call pays instead
        pass


def _failed(client, ctx, exc: BaseException) -> None:
    client._emit(ctx, "Error", {"error_type": type(exc).__name__, "message": str(exc), "stack_trace": []})


def request(client, method: str, url: str, *, http_client=None, **kwargs):
    import httpx

    ctx, kwargs = _before(client, method, url, kwargs)
    if http_client is None:
        if client._http is None:
            client._http = httpx.Client(verify=_verify())
        http_client = client._http
    if ctx is None:
        return http_client.request(method, url, **kwargs)
    t0 = time.perf_counter_ns()
    try:
        response = http_client.request(method, url, **kwargs)
    except Exception as exc:
        _failed(client, ctx, exc)
        raise
    _after(client, ctx, response, t0)
    return response


async def arequest(client, method: str, url: str, *, http_client=None, **kwargs):
    import httpx

    ctx, kwargs = _before(client, method, url, kwargs)
    own = http_client is None
    if own:
        http_client = httpx.AsyncClient(verify=_verify())
    try:
        if ctx is None:
            return await http_client.request(method, url, **kwargs)
        t0 = time.perf_counter_ns()
        try:
            response = await http_client.request(method, url, **kwargs)
        except Exception as exc:
            _failed(client, ctx, exc)
            raise
        _after(client, ctx, response, t0)
        return response
    finally:
        if own:
            await http_client.aclose()
