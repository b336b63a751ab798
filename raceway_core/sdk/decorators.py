"""Decorators of the original SDK: ``@track_function(client)``, ``@track_async(client)``, ``@track_method()``.

Each call becomes one FunctionCall event stamped at its start with the measured
duration (the original recorded an entry and a ``:return`` event instead).
"""

from __future__ import annotations

import functools
import inspect
import time

from raceway_core.sdk.context import get_context


def _args(fn, args, kwargs, capture: bool, skip_self: bool = False) -> dict:
    if not capture:
        return {}
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        items = list(bound.arguments.items())[1 if skip_self else 0:]
        return {"args": {k: repr(v) for k, v in items}}
    except TypeError:
        return {}


def _finish(cl, ctx, fname, meta, capture_result, box, site, start, t0) -> None:
    if capture_result and box.get("result") is not None:
        meta = {**meta, "result": repr(box["result"])}
    if "error" in box:
        meta = {**meta, "error": box["error"]}
    cl._function_event(get_context() or ctx, fname, meta, time.perf_counter_ns() - t0, start, site)


def _call(cl, fname, meta, capture_result, fn, args, kwargs):
    ctx = get_context()
    if ctx is None:
        return fn(*args, **kwargs)
    box, site, start, t0 = {}, cl._site(), time.time_ns(), time.perf_counter_ns()
    try:
        box["result"] = fn(*args, **kwargs)
        return box["result"]
    except BaseException as exc:
        box["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _finish(cl, ctx, fname, meta, capture_result, box, site, start, t0)


async def _acall(cl, fname, meta, capture_result, fn, args, kwargs):
    ctx = get_context()
    if ctx is None:
        return await fn(*args, **kwargs)
    box, site, start, t0 = {}, cl._site(), time.time_ns(), time.perf_counter_ns()
    try:
        box["result"] = await fn(*args, **kwargs)
        return box["result"]
    except BaseException as exc:
        box["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _finish(cl, ctx, fname, meta, capture_result, box, site, start, t0)


def _client(client, args):
    return client or (getattr(args[0], "_raceway_client", None) if args else None)


def track_function(client=None, *, name: str | None = None, capture_args: bool = False,
                   capture_result: bool = False):
    def decorator(fn):
        fname = name or f"{fn.__module__}.{fn.__qualname__}"

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            cl = _client(client, args)
            if cl is None:
                return fn(*args, **kwargs)
            return _call(cl, fname, _args(fn, args, kwargs, capture_args), capture_result, fn, args, kwargs)

        return wrapper

    return decorator


def track_async(client=None, *, name: str | None = None, capture_args: bool = False,
                capture_result: bool = False):
    def decorator(fn):
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__name__} is not an async function")
        fname = name or f"{fn.__module__}.{fn.__qualname__}"

        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            cl = _client(client, args)
            if cl is None:
                return await fn(*args, **kwargs)
            return await _acall(cl, fname, _args(fn, args, kwargs, capture_args), capture_result, fn, args, kwargs)

        return wrapper

    return decorator


def track_method(client_attr: str = "_raceway_client", *, name: str | None = None, capture_args: bool = False,
                 capture_result: bool = False):
    def decorator(fn):
        fname = name or fn.__qualname__

        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            cl = getattr(self, client_attr, None)
            if cl is None:
                return fn(self, *args, **kwargs)
            meta = {"class": type(self).__name__, **_args(fn, (self, *args), kwargs, capture_args, skip_self=True)}
            return _call(cl, fname, meta, capture_result, fn, (self, *args), kwargs)

        return wrapper

    return decorator
