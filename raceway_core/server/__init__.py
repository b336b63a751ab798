"""`raceway-tui serve`: a Raceway-compatible HTTP server over a DuckDB store.

    from raceway_core.server import serve
    serve(host="127.0.0.1", port=8080, db="raceway.duckdb", api_keys=("secret",))
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from raceway_core.errors import RacewayError
from raceway_core.server.app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app", "serve"]


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio only turns Nagle off (TCP_NODELAY) on accepted
    # sockets that say they are TCP; with it on, a keep-alive client waits ~40 ms
    # for every response (delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise RacewayError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


@contextmanager
def _lean_gc():
    """Each POST allocates thousands of small containers (its parsed JSON): with
    the default thresholds the collector runs every few hundred of them and keeps
    walking the long-lived objects of the imports. Moving those out of its sight
    (freeze) and collecting less often cut the CPU per event by a third."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


@contextmanager
def _signals_stop(server):
    """SIGINT/SIGTERM stop the server. uvicorn installs its own handlers while it
    runs (graceful shutdown), then raises the signal again with the handlers it
    found: these, which ask it to stop (a signal before it took over is not lost)
    instead of killing the process, so the caller can close the store."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(*_) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(host: str = "127.0.0.1", port: int = 8080, db: str | Path | None = "raceway.duckdb",
          api_keys: tuple[str, ...] = (), max_body_bytes: int = 32 << 20,
          announce: Callable[[str], None] | None = None, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM; then answer what is in flight, commit and close the store.

    ``port`` 0 picks a free port; ``announce`` receives the URL once listening.
    """
    import uvicorn

    from raceway_core.store import Store

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(None if db in (None, ":memory:") else db)  # StoreError when locked or unreadable
    try:
        sock = _listen(host, port)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}"
        app = create_app(store, ServerConfig(api_keys=tuple(api_keys), max_body_bytes=max_body_bytes, url=url))
        config = uvicorn.Config(app, lifespan="on", log_level=log_level, access_log=False,
                                timeout_graceful_shutdown=15, server_header=False)
        server = uvicorn.Server(config)
        with _signals_stop(server), _lean_gc():
            if announce:
                announce(url)
            server.run(sockets=[sock])
    finally:
        store.close()  # checkpoints: the WAL is folded into the file
