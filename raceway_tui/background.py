"""Run a long call (loading, the analysis) on a daemon thread and await it.

Thread workers run on asyncio's default executor, which the interpreter waits for
at exit: quitting during a minutes-long analysis would hang until it finished.
A daemon thread does not hold up the exit; the async worker that awaits it is
still an ordinary, cancellable Textual worker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _settle(fut: asyncio.Future, result=None, exc: BaseException | None = None) -> None:
    if fut.done():  # the awaiting worker was cancelled
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


async def in_background(fn: Callable[..., T], *args, name: str = "raceway-background") -> T:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting coroutine, which reports it
            outcome = (None, exc)
        else:
            outcome = (result, None)
        try:
            loop.call_soon_threadsafe(_settle, fut, *outcome)
        except RuntimeError:  # the app has exited and its loop is closed: nobody is waiting
            return

    threading.Thread(target=run, name=name, daemon=True).start()
    return await fut
