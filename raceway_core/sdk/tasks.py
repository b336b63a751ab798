"""Threads and asyncio tasks that record AsyncSpawn when started and AsyncAwait when joined.

The child runs in its own context, which starts from the spawner's clock and
whose first event has the AsyncSpawn as parent. Joining merges the child's
final clock into the joiner before its AsyncAwait (``future_id`` = the spawn's
``task_id``).
"""

from __future__ import annotations

import asyncio
import threading

from raceway_core.sdk.context import RacewayContext, set_context


class TrackedThread(threading.Thread):
    def __init__(self, client, target, args=(), kwargs=None, *, name=None, daemon=None) -> None:
        super().__init__(name=name, daemon=daemon)
        self._client, self._fn, self._fn_args, self._fn_kwargs = client, target, args, kwargs or {}
        self.task_id, self._child = client._spawn()
        self._final: tuple[dict, int] | None = None
        self._recorded = False
        self._record_lock = threading.Lock()

    def run(self) -> None:
        child: RacewayContext | None = self._child
        if child is not None:
            set_context(child)
        try:
            self._fn(*self._fn_args, **self._fn_kwargs)
        finally:
            if child is not None:
                self._final = (child.clock, child.last_ts)

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.is_alive() or self.task_id is None:
            return
        with self._record_lock:
            if self._recorded:
                return
            self._recorded = True
        self._client._joined(self.task_id, self._final)


class TrackedTask:
    """An asyncio task in its own context. ``await`` it (once or more) to get its result."""

    def __init__(self, client, coro, *, name: str | None = None) -> None:
        self._client = client
        self.task_id, self._child = client._spawn()
        self._final: tuple[dict, int] | None = None
        self._recorded = False
        self.task: asyncio.Task = asyncio.get_running_loop().create_task(self._run(coro), name=name)

    async def _run(self, coro):
        child = self._child
        if child is not None:
            set_context(child)  # in the task's own copy of the contextvars
        try:
            return await coro
        finally:
            if child is not None:
                self._final = (child.clock, child.last_ts)

    def record_await(self) -> None:
        if self.task.done() and not self._recorded and self.task_id is not None:
            self._recorded = True
            self._client._joined(self.task_id, self._final)

    async def _wait(self):
        try:
            return await self.task
        finally:
            self.record_await()

    def __await__(self):
        return self._wait().__await__()

    def done(self) -> bool:
        return self.task.done()

    def cancel(self, msg=None) -> bool:
        return self.task.cancel(msg)

    def result(self):
        return self.task.result()


async def gather(client, aws, *, return_exceptions: bool = False) -> list:
    handles = [a if isinstance(a, TrackedTask) else TrackedTask(client, a) for a in aws]
    if not handles:
        return []
    await asyncio.wait([h.task for h in handles])
    results, failures = [], []
    for h in handles:
        h.record_await()
        exc = h.task.exception() if not h.task.cancelled() else asyncio.CancelledError()
        if exc is not None:
            failures.append(exc)
        results.append(exc if exc is not None else h.task.result())
    if failures and not return_exceptions:
        raise failures[0]
    return results
