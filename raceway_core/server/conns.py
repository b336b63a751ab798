"""Connection hygiene for the server's HTTP processes (the store's and the fronts').

uvicorn closes a keep-alive connection some seconds after its last response,
but nothing else: a connection that never sends a request, a request head
trickled a byte at a time, or a body shorter than its Content-Length (or a
chunked one never terminated) each held a file descriptor forever; 20,000
of them exhausted the process. Here:
- ``client_timeout``: a connection waiting for a request head (new, or idle
  between requests), or for more of a request body, for longer is closed;
- ``max_connections``: past it, a new connection sheds the longest-idle one
  (or, with none idle, is itself closed);
- repeated log lines (accept errors) are rate-limited.
"""

from __future__ import annotations

import logging
import resource
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("raceway.server")

SWEEP_SECONDS = 0.5
RESERVED_FDS = 256  # the store's files, the channel, the front's pool, and one burst of accepts
ACCEPT_BURST = 128  # connections accepted per turn of the event loop (uvicorn's ``backlog``): a
                    # shed connection's descriptor is freed on the next turn, so a burst must fit the reserve


def default_max_connections() -> int:
    """As many as the file descriptors allow (the soft limit raised to the hard one), less a reserve."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65_536
    want = min(want, 65_536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return max(16, min(soft, 65_536) - RESERVED_FDS)


def guarded_protocol(client_timeout: float, max_connections: int) -> type[H11Protocol]:
    """An h11 protocol class for uvicorn's ``http=`` that applies the limits above."""

    class Guarded(_Guarded):
        pass

    Guarded.client_timeout = client_timeout
    Guarded.max_connections = max_connections
    return Guarded


class _Guarded(H11Protocol):
    client_timeout = 10.0
    max_connections = 10_000
    _sweeper = None  # per class: one timer over all its connections

    def connection_made(self, transport) -> None:
        self.waiting_since = time.monotonic()  # for a request head, or more of its body
        self.closing = False  # closed here; gone from ``connections`` once the loop says so
        super().connection_made(transport)
        if sum(not getattr(c, "closing", False) for c in self.connections) > self.max_connections:
            self._shed()
        cls = type(self)
        if cls._sweeper is None:
            cls._sweeper = self.loop.call_later(SWEEP_SECONDS, cls._sweep, self.loop, self.connections)

    def data_received(self, data: bytes) -> None:
        if self._reading_body():
            self.waiting_since = time.monotonic()  # a body only needs to keep arriving
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.waiting_since = time.monotonic()  # now idle, waiting for the next head

    def _waiting(self) -> bool:
        """Waiting on the client: for a request head, or for more of a body."""
        cycle = self.cycle
        return cycle is None or cycle.response_complete or self._reading_body()

    def _reading_body(self) -> bool:
        """Waiting for more of a body the application wants (not one it has
        paused: then the client is not the slow one)."""
        cycle = self.cycle
        return (cycle is not None and not cycle.response_complete and cycle.more_body
                and not self.flow.read_paused)

    def _idle(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle.response_complete

    def _shed(self) -> None:
        idle = [c for c in self.connections
                if c is not self and isinstance(c, _Guarded) and not c.closing and c._idle()]
        victim = min(idle, key=lambda c: c.waiting_since) if idle else self
        if idle:
            _limited("connection cap %d reached: closing the longest-idle connection", self.max_connections)
        else:
            _limited("connection cap %d reached and none idle: refusing a new connection", self.max_connections)
        victim.closing = True
        victim.transport.close()

    @classmethod
    def _sweep(cls, loop, connections) -> None:
        now = time.monotonic()
        for c in list(connections):
            if isinstance(c, _Guarded) and c._waiting() and now - c.waiting_since > c.client_timeout:
                c.closing = True
                c.transport.close()
        cls._sweeper = loop.call_later(SWEEP_SECONDS, cls._sweep, loop, connections) if connections else None


_last: dict[str, list] = {}


def _limited(msg: str, *args, every: float = 10.0) -> None:
    """Log ``msg`` at most once per ``every`` seconds, saying how many were held back."""
    now = time.monotonic()
    entry = _last.setdefault(msg, [0.0, 0])
    if now - entry[0] >= every:
        extra = f" ({entry[1]} more like it not logged)" if entry[1] else ""
        log.warning(msg + extra, *args)
        entry[0], entry[1] = now, 0
    else:
        entry[1] += 1


class RateLimit(logging.Filter):
    """Lets the same message through at most once per ``every`` seconds (asyncio
    logs every failed accept: 78 MB of "Too many open files" at the fd limit)."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._seen: dict[tuple, list] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.every:
            if entry is not None and entry[1]:
                record.msg = f"{record.msg} ({entry[1]} more like it in the last {self.every:.0f} s not logged)"
            self._seen[key] = [now, 0]
            if len(self._seen) > 1000:
                self._seen.clear()
            return True
        entry[1] += 1
        return False


def limit_logs() -> None:
    """Rate-limit the loggers that repeat per connection."""
    for name in ("asyncio", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimit) for f in logger.filters):
            logger.addFilter(RateLimit())
