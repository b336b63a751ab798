"""`raceway-tui serve`: a Raceway-compatible HTTP server over a DuckDB store.

    from raceway_core.server import serve
    serve(host="127.0.0.1", port=8080, db="raceway.duckdb", api_keys=("secret",))
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from raceway_core.errors import RacewayError
from raceway_core.server.app import ServerConfig, create_app
from raceway_core.server.conns import ACCEPT_BURST, default_max_connections, guarded_protocol, limit_logs
from raceway_core.server.proc import lean_gc
from raceway_core.server.workers import Fronts, default_fronts

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
          announce: Callable[[str], None] | None = None, log_level: str = "warning",
          fronts: int | None = None, client_timeout: float = 10.0,
          max_connections: int | None = None, store_url: str | None = None, retain: float | None = None,
          retain_every: float = 60.0, **options) -> None:
    """Serve until SIGINT/SIGTERM; then answer what is in flight, commit and close the store.

    ``port`` 0 picks a free port; ``announce`` receives the URL once listening.
    ``fronts``: ingest front processes (see ``front.py``), which parse POST
    bodies on other cores; 0 serves everything from this process; None: one
    when the machine has a second core.
    ``client_timeout``: seconds a connection may wait on its client (for a
    request, or for more of a body) before it is closed; ``max_connections``
    per process (default: what the file descriptor limit allows), past which
    the longest-idle connection is closed (see ``conns.py``).
    ``options``: further ``ServerConfig`` fields: ``cors_origins`` (browser
    origins allowed to call the API; none by default: no CORS headers at all),
    and from a configuration file the rate limit and switches.
    ``store_url``: a PostgreSQL database that stores the events, shared with
    other servers (``db`` is then this server's analysis cache). ``retain``:
    seconds after which traces are removed whole (checked every
    ``retain_every`` seconds).
    """
    import uvicorn

    from raceway_core.store import Store

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_logs()
    max_connections = default_max_connections() if max_connections is None else max_connections
    fronts = default_fronts() if fronts is None else fronts
    if options.get("rate_limit_rpm"):
        fronts = 0  # one process sees every request and its peer: one limiter, real client addresses
    store = Store(None if db in (None, ":memory:") else db)  # StoreError when locked or unreadable
    shared = retention = None
    private = tempfile.TemporaryDirectory(prefix="raceway-serve-") if fronts else None  # mode 0700
    try:
        sock = _listen(host, port)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}"
        config = ServerConfig(api_keys=tuple(api_keys), max_body_bytes=max_body_bytes, url=url, **options)
        if store_url:
            from raceway_core.pgstore import SharedStore

            shared = SharedStore.open(store_url, store, server=url)
        group = None
        if private is not None:
            core_path, channel_path = (os.path.join(private.name, n) for n in ("store.sock", "ingest.sock"))
            group = Fronts(fronts, sock, core_path, channel_path, config.api_keys, max_body_bytes, log_level,
                           config.cors_origins, client_timeout, max_connections)
            # The fronts take the other cores. DuckDB's own threads would compete
            # with them, and for commits of a few hundred rows a second thread
            # costs more than it saves (measured: an insert 1.9 ms vs 2.9 ms).
            store.set_threads(max(1, (os.cpu_count() or 1) - fronts))
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # this process: behind the fronts
            sock.bind(core_path)
            sock.listen(1024)
        app = create_app(store, config, fronts=group, shared=shared)
        if retain:
            from raceway_core.retention import Retention

            retention = Retention(retain, store, shared, every=retain_every).start()
        server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level=log_level, access_log=False,
                                               timeout_graceful_shutdown=15, server_header=False,
                                               http=guarded_protocol(client_timeout, max_connections),
                                               backlog=ACCEPT_BURST,
                                               proxy_headers=False))  # X-Forwarded-For: ratelimit.py decides
        if group is not None:
            group.on_failure = lambda: setattr(server, "should_exit", True)
        with _signals_stop(server), lean_gc():
            if announce:
                announce(url)
            server.run(sockets=[sock])
        if group is not None and group.failure:
            raise RacewayError(group.failure)
    finally:
        if retention is not None:
            retention.stop()
        store.close()  # checkpoints: the WAL is folded into the file
        if private is not None:
            private.cleanup()
