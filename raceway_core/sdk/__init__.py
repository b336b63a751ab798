"""The raceway-tui Python SDK: instrument a program, record Raceway events with valid vector clocks.

API-compatible with the original Raceway Python SDK: code ports by changing
``from raceway import ...`` to ``from raceway_core.sdk import ...``.

    from raceway_core.sdk import RacewayClient, Config

    client = RacewayClient(Config(endpoint="http://localhost:8080", service_name="banking"))
    with client.trace():
        client.track_state_change("alice.balance", 1000, 900, "Write")
    client.shutdown()
"""

from raceway_core.sdk.client import RacewayClient
from raceway_core.sdk.config import Config
from raceway_core.sdk.context import RacewayContext, create_context, get_context, reset_context, set_context
from raceway_core.sdk.decorators import track_async, track_function, track_method
from raceway_core.sdk.locks import TrackedLock, track_lock_acquire, track_lock_release, tracked_lock
from raceway_core.sdk.middleware import (FastAPIMiddleware, RacewayASGIMiddleware, RacewayWSGIMiddleware,
                                         flask_middleware, raceway_context)
from raceway_core.sdk.sinks import FileSink, HttpSink, MemorySink, SinkStats
from raceway_core.sdk.tasks import TrackedTask, TrackedThread

__all__ = [
    "RacewayClient", "Config", "RacewayContext", "create_context", "get_context", "set_context", "reset_context",
    "track_function", "track_async", "track_method", "TrackedLock", "tracked_lock", "track_lock_acquire",
    "track_lock_release", "RacewayWSGIMiddleware", "RacewayASGIMiddleware", "FastAPIMiddleware",
    "flask_middleware", "raceway_context", "HttpSink", "FileSink", "MemorySink", "SinkStats", "TrackedTask",
    "TrackedThread",
]
