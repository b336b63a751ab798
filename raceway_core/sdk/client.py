"""RacewayClient: records events of the current context, with valid vector clocks.

Clock rules (what makes the engine trust the clocks):
- each context owns one component ``<service>#<instance>#<thread_id>``; its
  value is the number of events the context has emitted (1, 2, ... N, never
  bumped without an event);
- merges (component-wise max) bring in only clocks that emitted events carried:
  the spawner's at a spawn, the child's last at an await, the last releaser's at
  a lock acquire, the caller's through ``raceway-clock`` and the callee's from
  its response;
- timestamps strictly increase along a context; a FunctionCall with a duration
  is stamped at its start, an HttpResponse when the response is done (its
  duration lies before it, as in the original SDKs: ``raceway_core.intervals``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from typing import Any, Callable

from raceway_core.sdk import propagation
from raceway_core.sdk.config import Config
from raceway_core.sdk.context import RacewayContext, create_context, get_context, reset_context, set_context
from raceway_core.sdk.sinks import FileSink, HttpSink, SinkStats
from raceway_core.sdk.wire import caller_location, caller_site, encode, iso_ns

log = logging.getLogger("raceway_core.sdk")

ACCESS_TYPES = {a.lower(): a for a in ("Read", "Write", "AtomicRead", "AtomicWrite", "AtomicRMW")}


def _at_exit(ref, sink, timeout: float) -> None:
    """Deliver what is buffered when the program ends without shutdown()."""
    client = ref()
    if client is not None:
        client.shutdown()
    else:
        sink.close(timeout)


def _hostname() -> str:
    try:
        return socket.gethostname() or "host"
    except OSError:
        return "host"


class RacewayClient:
    def __init__(self, config: Config | None = None, *, sink=None) -> None:
        self.config = config or Config()
        c = self.config
        self.instance_id = c.instance_id or os.getenv("RACEWAY_INSTANCE_ID") or f"{_hostname()}-{os.getpid()}"
        self.api_key = c.api_key or os.getenv("RACEWAY_API_KEY") or None
        if sink is None:
            common = dict(batch_size=c.batch_size, flush_interval=c.flush_interval, max_buffer=c.max_buffer)
            if c.output_file:
                sink = FileSink(c.output_file, **common)
            else:
                sink = HttpSink(c.endpoint, api_key=self.api_key, max_retries=c.max_retries,
                                retry_backoff=c.retry_backoff, request_timeout=c.request_timeout, **common)
        self.sink = sink
        self._lock_clocks: dict[str, tuple[dict[str, int], int]] = {}  # lock id -> last release
        self._registry = threading.Lock()
        self._errors = 0  # events that could not be built (counted as dropped)
        self._skipped_merges = 0  # merges skipped by max_clock_components
        self._closed = False
        self._http = None
        self._atexit = functools.partial(_at_exit, weakref.ref(self), sink, c.shutdown_timeout)
        atexit.register(self._atexit)
        if c.warm_up_http:
            from raceway_core.sdk.outgoing import warm_up

            threading.Thread(target=warm_up, name="raceway-warm-up", daemon=True).start()
        log.debug("raceway: client for %s (%s) -> %s", c.service_name, self.instance_id,
                  c.output_file or c.endpoint)

    # -- contexts ---------------------------------------------------------------------
    def context_from_headers(self, headers) -> RacewayContext:
        """A context for an incoming request: continues the caller's trace and clock if headers say so."""
        inc = propagation.parse_headers(headers)
        clock = inc.clock if len(inc.clock) < self.config.max_clock_components else ()  # + own component
        return create_context(inc.trace_id, parent_span_id=inc.upstream_span_id, distributed=inc.distributed,
                              clock_vector=clock, tracestate=inc.tracestate,
                              service_name=self.config.service_name)

    @contextlib.contextmanager
    def trace(self, trace_id: str | None = None, *, headers=None):
        """Run a block in a new context: a new trace, or the one the given request headers carry."""
        if headers is not None:
            ctx = self.context_from_headers(headers)
        else:
            ctx = create_context(trace_id, service_name=self.config.service_name)
        token = set_context(ctx)
        try:
            yield ctx
        finally:
            reset_context(token)

    # -- the core: one event ----------------------------------------------------------------
    def _emit(self, ctx: RacewayContext, variant: str, payload: dict, *, duration_ns: int | None = None,
              start_ns: int | None = None) -> str | None:
        """Build, encode and submit one event of ``ctx``; returns its id (None if it failed)."""
        try:
            ts = max(time.time_ns() if start_ns is None else start_ns, ctx.last_ts + 1)
            n = ctx.events + 1
            comp = ctx.component or f"{self.config.service_name}#{self.instance_id}#{ctx.execution_id}"
            inherited = ctx.clock
            if ctx.component is None and len(inherited) >= self.config.max_clock_components:
                inherited = {}  # no room for the own component: start empty (the parent_id link stays)
            clock = dict(inherited)
            clock[comp] = n
            ev_id = str(uuid.uuid4())
            event = {
                "id": ev_id,
                "trace_id": ctx.trace_id,
                "parent_id": ctx.parent_id,
                "timestamp": iso_ns(ts),
                "kind": {variant: payload},
                "metadata": {
                    "thread_id": ctx.execution_id,
                    "process_id": os.getpid(),
                    "service_name": self.config.service_name,
                    "environment": self.config.environment,
                    "tags": {"sdk_language": "python"},
                    "duration_ns": None if duration_ns is None else int(duration_ns),
                    "instance_id": self.instance_id,
                    "distributed_span_id": ctx.span_id,
                    "upstream_span_id": ctx.parent_span_id,
                },
                "causality_vector": [[c, v] for c, v in clock.items()],
                "lock_set": list(ctx.held_locks),
            }
            line = encode(event)
        except Exception as exc:  # never into the host program; counted as dropped
            self._errors += 1
            log.warning("raceway: could not record a %s event: %s: %s", variant, type(exc).__name__, exc)
            return None
        ctx.events, ctx.component, ctx.clock, ctx.last_ts, ctx.parent_id = n, comp, clock, ts, ev_id
        if ctx.root_id is None:
            ctx.root_id = ev_id
        ctx.publish()
        if self.config.debug:
            log.debug("raceway: %s %s %s", ctx.execution_id, variant, payload)
        self.sink.submit(line)
        return ev_id

    def _merge(self, ctx: RacewayContext, clock, ts: int = 0) -> bool:
        """Component-wise max into ``ctx`` (takes effect on its next event). Skipped if it would grow too big."""
        if not clock:
            return True
        merged = dict(ctx.clock)
        for c, v in (clock.items() if isinstance(clock, dict) else clock):
            if v > merged.get(c, 0):
                merged[c] = v
        if len(merged) + (ctx.component not in merged) > self.config.max_clock_components:
            self._skipped_merges += 1
            return False
        ctx.clock = merged
        ctx.last_ts = max(ctx.last_ts, ts)
        ctx.publish()
        return True

    def _context(self) -> RacewayContext | None:
        ctx = get_context()
        if ctx is None and self.config.debug:
            log.debug("raceway: event outside any context ignored (%s)", caller_location())
        return ctx

    # -- state and calls --------------------------------------------------------------------
    def track_state_change(self, variable: str, old_value: Any, new_value: Any, access_type: str = "Write") -> None:
        """A read or write of ``variable`` (``access_type``: Read, Write, AtomicRead, AtomicWrite, AtomicRMW)."""
        access = ACCESS_TYPES.get(str(access_type).lower())
        if access is None:
            raise ValueError(f"access_type must be one of {', '.join(ACCESS_TYPES.values())}, got {access_type!r}")
        ctx = self._context()
        if ctx is None:
            return
        loc = caller_location() if self.config.capture_location else "unknown:0"
        self._emit(ctx, "StateChange", {"variable": str(variable), "old_value": old_value, "new_value": new_value,
                                        "location": loc, "access_type": access})

    def _function_event(self, ctx, function_name, args, duration_ns, start_ns, site) -> None:
        file, line, module = site
        self._emit(ctx, "FunctionCall", {"function_name": str(function_name), "module": module,
                                         "args": {} if args is None else args, "file": file, "line": line},
                   duration_ns=duration_ns, start_ns=start_ns)

    def _site(self):
        return caller_site() if self.config.capture_location else ("unknown", 0, "unknown")

    def track_function_call(self, function_name: str, args: Any = None, duration_ns: int | None = None) -> None:
        """A function call; with ``duration_ns`` it is stamped at its start (now - duration)."""
        ctx = self._context()
        if ctx is None:
            return
        start = time.time_ns() - int(duration_ns) if duration_ns else None
        self._function_event(ctx, function_name, args, duration_ns, start, self._site())

    def track_function(self, function_name: str, args: Any, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` and record it as a FunctionCall with its measured duration (also if it raises)."""
        ctx = self._context()
        if ctx is None:
            return fn()
        site, start, t0 = self._site(), time.time_ns(), time.perf_counter_ns()
        try:
            return fn()
        finally:
            self._function_event(get_context() or ctx, function_name, args, time.perf_counter_ns() - t0, start, site)

    async def track_function_async(self, function_name: str, args: Any, fn) -> Any:
        """``await`` ``fn()`` (a coroutine function, or an awaitable) and record its duration."""
        ctx = self._context()
        awaitable = fn() if callable(fn) else fn
        if ctx is None:
            return await awaitable
        site, start, t0 = self._site(), time.time_ns(), time.perf_counter_ns()
        try:
            return await awaitable
        finally:
            self._function_event(get_context() or ctx, function_name, args, time.perf_counter_ns() - t0, start, site)

    def track_error(self, error: BaseException | str, message: str | None = None) -> None:
        """An Error event (from an exception, or a type name and message)."""
        ctx = self._context()
        if ctx is None:
            return
        if isinstance(error, BaseException):
            import traceback

            etype, msg = type(error).__name__, str(error)
            stack = traceback.format_exception(type(error), error, error.__traceback__)[-5:]
        else:
            etype, msg, stack = str(error), message or "", []
        self._emit(ctx, "Error", {"error_type": etype, "message": msg, "stack_trace": stack})

    # -- HTTP -----------------------------------------------------------------------------------
    def track_http_request(self, method: str, url: str, headers: dict | None = None, body: Any = None) -> None:
        ctx = self._context()
        if ctx is not None:
            self._emit(ctx, "HttpRequest", {"method": str(method).upper(), "url": str(url),
                                            "headers": headers or {}, "body": body})

    def track_http_response(self, status: int, headers: dict | None = None, body: Any = None,
                            duration_ms: int | float = 0) -> None:
        """An HTTP response, stamped now (when it is done); ``duration_ms`` is the time before it and
        also goes to metadata.duration_ns (as in the original SDK)."""
        ctx = self._context()
        if ctx is None:
            return
        dur = int(duration_ms * 1_000_000) if duration_ms else None
        self._emit(ctx, "HttpResponse", {"status": int(status), "headers": headers or {}, "body": body,
                                         "duration_ms": duration_ms}, duration_ns=dur)

    def propagation_headers(self, extra_headers: dict | None = None) -> dict[str, str]:
        """``traceparent`` and ``raceway-clock`` for an outgoing call (the clock is not bumped)."""
        ctx = get_context()
        if ctx is None:
            raise RuntimeError("Raceway propagation_headers() called outside of an active context")
        ctx.distributed = True
        headers = self._headers_for(ctx)
        if extra_headers:
            headers.update(extra_headers)
        return headers

    def _headers_for(self, ctx: RacewayContext) -> dict[str, str]:
        return propagation.build_headers(
            trace_id=ctx.trace_id, span_id=ctx.span_id, parent_span_id=ctx.parent_span_id,
            tracestate=ctx.tracestate, service=self.config.service_name, instance=self.instance_id,
            clock=ctx.clock.items())

    def merge_response_headers(self, headers) -> bool:
        """Merge the ``raceway-clock`` a called service returned; True if there was one."""
        ctx = get_context()
        return ctx is not None and self._merge_response(ctx, headers)

    def _merge_response(self, ctx: RacewayContext, headers) -> bool:
        inc = propagation.parse_headers(headers)
        if not inc.clock:
            return False
        self._merge(ctx, inc.clock)
        return True

    def request(self, method: str, url: str, *, http_client=None, **kwargs):
        """An HTTP call with httpx: HttpRequest, propagation headers, the callee's clock, HttpResponse."""
        from raceway_core.sdk import outgoing

        return outgoing.request(self, method, url, http_client=http_client, **kwargs)

    async def arequest(self, method: str, url: str, *, http_client=None, **kwargs):
        """``request`` for asyncio (httpx.AsyncClient)."""
        from raceway_core.sdk import outgoing

        return await outgoing.arequest(self, method, url, http_client=http_client, **kwargs)

    # -- server side (used by the middleware) ------------------------------------------------------
    def _server_begin(self, headers, method: str, path: str) -> RacewayContext:
        ctx = self.context_from_headers(headers)
        ctx.owner = None
        self._emit(ctx, "HttpRequest", {"method": str(method).upper(), "url": path, "headers": {}, "body": None})
        return ctx

    def _server_end(self, ctx: RacewayContext, status: int, started_ns: int) -> str:
        """The HttpResponse event; returns the ``raceway-clock`` to send back to the caller.

        The request's latency goes in ``duration_ms`` only: metadata.duration_ns is 0
        because the time is already in the events the request contains.
        """
        elapsed = time.perf_counter_ns() - started_ns
        self._emit(ctx, "HttpResponse", {"status": int(status), "headers": {}, "body": None,
                                         "duration_ms": round(elapsed / 1e6, 3)}, duration_ns=0)
        return self._headers_for(ctx)[propagation.RACEWAY_CLOCK]

    # -- locks --------------------------------------------------------------------------------------
    def track_lock_acquire(self, lock_id: str, lock_type: str = "Mutex") -> None:
        """After acquiring: merges the clock the last releaser of ``lock_id`` left in this process."""
        ctx = self._context()
        if ctx is None:
            return
        with self._registry:
            released = self._lock_clocks.get(lock_id)
        if released is not None:
            self._merge(ctx, *released)
        self._emit(ctx, "LockAcquire", {"lock_id": lock_id, "lock_type": lock_type, "location": caller_location()})
        ctx.held_locks.append(lock_id)

    def track_lock_release(self, lock_id: str, lock_type: str = "Mutex") -> None:
        """Before releasing: leaves this event's clock on the lock for the next acquirer."""
        ctx = self._context()
        if ctx is None:
            return
        if self._emit(ctx, "LockRelease", {"lock_id": lock_id, "lock_type": lock_type,
                                           "location": caller_location()}) is not None:
            with self._registry:
                self._lock_clocks[lock_id] = (ctx.clock, ctx.last_ts)
        if lock_id in ctx.held_locks:
            ctx.held_locks.remove(lock_id)

    def tracked_lock(self, lock, lock_id: str, lock_type: str = "Mutex"):
        """Wrap a real lock: ``with`` (threading) or ``async with`` (asyncio) records acquire/release."""
        from raceway_core.sdk.locks import TrackedLock

        return TrackedLock(self, lock, lock_id, lock_type)

    # -- tasks and threads ---------------------------------------------------------------------------
    def _spawn(self) -> tuple[str | None, RacewayContext | None]:
        """AsyncSpawn in the current context and the child context that starts from it."""
        parent = get_context()
        if parent is None:
            return None, None
        task_id = str(uuid.uuid4())
        ev = self._emit(parent, "AsyncSpawn", {"task_id": task_id, "spawned_by": parent.execution_id})
        if ev is None:
            return None, None
        return task_id, parent.child(parent_id=ev, prefix=self.config.service_name)

    def _joined(self, task_id: str, final: tuple[dict, int] | None) -> None:
        """AsyncAwait in the current context, after merging the child's final clock."""
        ctx = get_context()
        if ctx is None or task_id is None:
            return
        if final is not None:
            self._merge(ctx, *final)
        self._emit(ctx, "AsyncAwait", {"future_id": task_id, "awaited_at": caller_location()})

    def spawn_thread(self, target: Callable, *args, name: str | None = None, daemon: bool | None = None,
                     **kwargs):
        """Start ``target`` in a thread with its own context; ``join()`` it to record the await."""
        from raceway_core.sdk.tasks import TrackedThread

        t = TrackedThread(self, target, args, kwargs, name=name, daemon=daemon)
        t.start()
        return t

    def join_thread(self, thread, timeout: float | None = None) -> None:
        thread.join(timeout)

    def spawn_task(self, coro, *, name: str | None = None):
        """``asyncio.create_task`` with its own context; ``await`` the result to record the await."""
        from raceway_core.sdk.tasks import TrackedTask

        return TrackedTask(self, coro, name=name)

    async def await_task(self, task):
        return await task

    async def gather(self, *aws, return_exceptions: bool = False) -> list:
        """Run awaitables as tracked tasks concurrently; await them all, in order."""
        from raceway_core.sdk.tasks import gather

        return await gather(self, aws, return_exceptions=return_exceptions)

    # -- delivery -----------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything recorded so far (waits at most ``timeout`` seconds)."""
        return self.sink.flush(self.config.shutdown_timeout if timeout is None else timeout)

    def shutdown(self, timeout: float | None = None) -> None:
        """Deliver what is buffered (bounded wait) and stop. Safe to call twice; also runs at exit."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        self.sink.close(self.config.shutdown_timeout if timeout is None else timeout)
        if self._http is not None:
            self._http.close()
        s = self.stats()
        if s.dropped:
            log.warning("raceway: %d events were dropped (%s)", s.dropped, s.last_error or "buffer full")

    def stats(self) -> SinkStats:
        s = self.sink.stats()
        if not self._errors:
            return s
        return SinkStats(s.accepted, s.sent, s.dropped + self._errors, s.buffered, s.attempts, s.retries,
                         s.failed_batches, s.last_error)

    @property
    def dropped_events(self) -> int:
        """Events recorded but never delivered (buffer full, server unreachable, unencodable)."""
        return self.sink.dropped + self._errors

    @property
    def skipped_merges(self) -> int:
        return self._skipped_merges
