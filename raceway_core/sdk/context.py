"""Execution contexts: one sequential line of events (a thread, an asyncio task, a request).

A context lives in a ContextVar. It is bound to the thread or asyncio task that
created it: when another thread or task inherits it (``asyncio.create_task``,
``asyncio.to_thread``, ``copy_context().run``), that one gets its own child
context on first use, so concurrent work never shares one sequence of events.

Vector clock state: ``clock`` is the context's current clock. It only ever
holds its own component's count of emitted events and values merged from
clocks that emitted events carried, so every clock sent anywhere is a join of
real event clocks (what makes the clocks valid for the engine).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass, field


def _owner() -> tuple[int, object]:
    """The current thread and asyncio task (None outside a running loop)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), task


def new_span_id() -> str:
    return secrets.token_hex(8)


def new_thread_id(prefix: str | None) -> str:
    return f"{prefix or 'python'}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(eq=False)
class RacewayContext:
    trace_id: str
    execution_id: str  # the wire's metadata.thread_id: unique per context
    parent_id: str | None = None  # id of this context's last event (or of the AsyncSpawn)
    root_id: str | None = None  # id of this context's first event
    span_id: str = field(default_factory=new_span_id)  # metadata.distributed_span_id
    parent_span_id: str | None = None  # metadata.upstream_span_id: the caller's span
    distributed: bool = False
    tracestate: str | None = None
    clock: dict[str, int] = field(default_factory=dict)  # replaced, never mutated in place
    events: int = 0  # events emitted so far: the own component's value
    component: str | None = None  # own vector clock component, fixed at the first event
    last_ts: int = 0  # ns; this context's timestamps strictly increase
    held_locks: list[str] = field(default_factory=list)
    owner: tuple[int, object] | None = None
    # (last event id, clock, last_ts) swapped as one object, so that a child
    # context forked from another thread reads a consistent triple.
    tip: tuple[str | None, dict[str, int], int] = (None, {}, 0)

    @property
    def thread_id(self) -> str:
        return self.execution_id

    @property
    def clock_vector(self) -> list[tuple[str, int]]:
        """The current clock as ``[(component, counter), ...]`` (the original SDK's field)."""
        return list(self.clock.items())

    def publish(self) -> None:
        self.tip = (self.parent_id, self.clock, self.last_ts)

    def child(self, *, parent_id: str | None = None, prefix: str | None = None) -> "RacewayContext":
        """A new context continuing from this one's last published state."""
        last_id, clock, last_ts = self.tip
        ctx = RacewayContext(
            trace_id=self.trace_id,
            execution_id=new_thread_id(prefix or self.execution_id.rsplit("-", 2)[0]),
            parent_id=parent_id if parent_id is not None else last_id,
            span_id=self.span_id,
            parent_span_id=self.parent_span_id,
            distributed=self.distributed,
            tracestate=self.tracestate,
            clock=clock,
            last_ts=last_ts,
        )
        ctx.publish()
        return ctx


_current: ContextVar[RacewayContext | None] = ContextVar("raceway_context", default=None)


def create_context(
    trace_id: str | None = None,
    *,
    span_id: str | None = None,
    parent_span_id: str | None = None,
    distributed: bool = False,
    clock_vector=None,
    tracestate: str | None = None,
    service_name: str | None = None,
) -> RacewayContext:
    """A new root context (a new trace unless ``trace_id`` is given)."""
    ctx = RacewayContext(
        trace_id=trace_id or str(uuid.uuid4()),
        execution_id=new_thread_id(service_name),
        span_id=span_id or new_span_id(),
        parent_span_id=parent_span_id,
        distributed=distributed,
        tracestate=tracestate,
        clock=dict(clock_vector or ()),
    )
    ctx.publish()
    return ctx


def set_context(ctx: RacewayContext | None) -> Token:
    """Make ``ctx`` the current context of this thread/task (bound to it)."""
    if ctx is not None and ctx.owner is None:
        ctx.owner = _owner()
    return _current.set(ctx)


def reset_context(token: Token) -> None:
    _current.reset(token)


def get_context() -> RacewayContext | None:
    """The current context, or None outside any trace.

    A context inherited from another thread or task is replaced here by a child
    of it, owned by the caller.
    """
    ctx = _current.get()
    if ctx is None:
        return None
    me = _owner()
    if ctx.owner is None:
        ctx.owner = me
    elif ctx.owner[0] != me[0] or ctx.owner[1] is not me[1]:
        ctx = ctx.child()
        ctx.owner = me
        _current.set(ctx)
    return ctx
