"""Where events go: the Raceway server over HTTP, an NDJSON file, or memory.

A sink gets each event already encoded (one JSON object, bytes). ``submit``
never blocks on I/O and never raises: the HTTP and file sinks only append to a
bounded buffer that a background thread drains. What cannot be delivered is
counted in ``stats().dropped``, never silently lost.
"""

from __future__ import annotations

import collections
import http.client
import logging
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass

import orjson

log = logging.getLogger("raceway_core.sdk")


@dataclass(frozen=True)
class SinkStats:
    accepted: int = 0  # events taken into the buffer
    sent: int = 0  # events delivered (POST answered 2xx, or written)
    dropped: int = 0  # events lost: buffer full, delivery failed for good, or after shutdown
    buffered: int = 0  # events waiting
    attempts: int = 0  # POSTs (or writes) tried
    retries: int = 0  # attempts that were retries of a failed one
    failed_batches: int = 0  # batches given up
    last_error: str | None = None


class _BatchingSink:
    """A bounded buffer drained in batches by a daemon thread."""

    def __init__(self, *, batch_size: int = 50, flush_interval: float = 1.0, max_buffer: int = 10_000,
                 name: str = "raceway-sink") -> None:
        self.batch_size = max(1, int(batch_size))
        self.flush_interval = max(0.01, float(flush_interval))
        self.max_buffer = max(1, int(max_buffer))
        self._buf: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._closed = False
        self._accepted = self._finished = 0  # finished = sent or dropped after acceptance
        self._sent = self._dropped = self._attempts = self._retries = self._failed = 0
        self._inflight = 0  # events taken from the buffer whose delivery has not ended
        self._abandoned = False  # close() gave up waiting: the thread's late results no longer count
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- called from the application -------------------------------------------
    def submit(self, line: bytes) -> None:
        with self._cond:
            if self._closed or len(self._buf) >= self.max_buffer:
                self._dropped += 1
                return
            self._buf.append(line)
            self._accepted += 1
            full = len(self._buf) >= self.batch_size
        if full:
            self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is delivered or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._accepted
        self._wake.set()
        with self._cond:
            while self._finished < target and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
                self._wake.set()
            return self._finished >= target

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is buffered (bounded by ``timeout``), then stop; later events count as dropped."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)
        with self._cond:
            self._closed = True
            lost = len(self._buf)
            self._buf.clear()
            if self._thread.is_alive():  # a delivery still waits (a slow or silent server): its batch is lost too
                self._abandoned = True
                lost += self._inflight
                self._failed += bool(self._inflight)
                self._inflight = 0
            self._dropped += lost
            self._finished += lost
            self._cond.notify_all()
        if lost:
            log.warning("raceway: %d events not delivered at shutdown (%s)", lost,
                        "delivery still in progress after the shutdown timeout" if self._abandoned else "buffered")
        self._abort()
        self._release()

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(self._accepted, self._sent, self._dropped, len(self._buf), self._attempts,
                             self._retries, self._failed, self._last_error)

    @property
    def dropped(self) -> int:
        with self._cond:
            return self._dropped

    # -- background thread ----------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            closing = self._closing.is_set()
            while True:
                with self._cond:
                    n = min(self.batch_size, len(self._buf))
                    batch = [self._buf.popleft() for _ in range(n)]
                    self._inflight = n
                if not batch:
                    break
                try:
                    ok = self._deliver(batch)
                except Exception as exc:  # a bug here must not kill the thread: count and go on
                    ok = False
                    self._note_error(f"{type(exc).__name__}: {exc}")
                with self._cond:
                    if self._abandoned:  # close() has counted this batch as dropped
                        return
                    self._inflight = 0
                    if ok:
                        self._sent += len(batch)
                    else:
                        self._dropped += len(batch)
                        self._failed += 1
                    self._finished += len(batch)
                    self._cond.notify_all()
            if closing:
                return

    def _note_error(self, message: str) -> None:
        with self._cond:
            first = self._last_error is None
            self._last_error = message
        (log.warning if first else log.debug)("raceway: %s", message)

    def _count_attempt(self, retry: bool) -> None:
        with self._cond:
            self._attempts += 1
            self._retries += retry

    def _deliver(self, batch: list[bytes]) -> bool:
        raise NotImplementedError

    def _abort(self) -> None:
        """Interrupt a delivery that close() gave up waiting for."""

    def _release(self) -> None:
        pass


class HttpSink(_BatchingSink):
    """POSTs ``{"events": [...]}`` to ``<endpoint>/events``; retries with exponential backoff.

    Retried: connection errors, timeouts, 408, 429 and 5xx. Other statuses (a
    bad API key, a rejected body) drop the batch at once.
    """

    def __init__(self, endpoint: str, *, api_key: str | None = None, max_retries: int = 3,
                 retry_backoff: float = 0.2, request_timeout: float = 5.0, **kw) -> None:
        url = urllib.parse.urlsplit(endpoint.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"raceway endpoint must be an http(s) URL, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname, url.port
        self._path = (url.path or "") + "/events"
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff = max(0.0, float(retry_backoff))
        self.request_timeout = request_timeout
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            token = api_key.strip()
            self._headers.update({"Authorization": f"Bearer {token}", "X-Raceway-Key": token})
        self._conn: http.client.HTTPConnection | None = None
        super().__init__(name="raceway-http-sink", **kw)

    def _deliver(self, batch: list[bytes]) -> bool:
        body = b'{"events":[' + b",".join(batch) + b"]}"
        delay = self.retry_backoff
        for attempt in range(self.max_retries + 1):
            if self._abandoned:  # shutdown gave up on this batch (counted there)
                return False
            if attempt:
                # Backoff, cut short at shutdown (the remaining tries then go at once).
                self._closing.wait(delay)
                delay *= 2
            self._count_attempt(retry=attempt > 0)
            ok, retryable, error = self._post(body)
            if ok:
                return True
            self._note_error(f"POST {self.endpoint}/events: {error}")
            if not retryable:
                break
        log.warning("raceway: dropped a batch of %d events (%s)", len(batch), self._last_error)
        return False

    def _post(self, body: bytes) -> tuple[bool, bool, str]:
        for fresh in (False, True):
            reused = self._conn is not None
            try:
                if self._conn is None:
                    cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                    self._conn = cls(self._host, self._port, timeout=self.request_timeout)
                self._conn.request("POST", self._path, body=body, headers=self._headers)
                resp = self._conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self._close_conn()
            except (OSError, http.client.HTTPException) as exc:
                self._close_conn()
                if reused and not fresh:
                    continue  # a kept-alive connection the server had closed: try a new one
                return False, True, f"{type(exc).__name__}: {exc}"
            if 200 <= resp.status < 300:
                return True, False, ""
            retryable = resp.status in (408, 429) or resp.status >= 500
            return False, retryable, f"HTTP {resp.status} {data[:200].decode('utf-8', 'replace')}"
        return False, True, "connection lost"

    def _close_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def _abort(self) -> None:
        conn = self._conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None and self._abandoned:
            try:  # wakes the sink thread's blocked send/recv; it then ends
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _release(self) -> None:
        if not self._abandoned:  # else the sink thread may still use the connection
            self._close_conn()


class FileSink(_BatchingSink):
    """Appends NDJSON (one event per line) to a file.

    Each batch is one ``write`` of whole lines to a file opened with O_APPEND, so
    several processes can record into the same file without mixing lines.
    """

    def __init__(self, path: str | os.PathLike, **kw) -> None:
        self.path = os.fspath(path)
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        super().__init__(name="raceway-file-sink", **kw)

    def _deliver(self, batch: list[bytes]) -> bool:
        self._count_attempt(retry=False)
        data = memoryview(b"\n".join(batch) + b"\n")
        try:
            while data:
                data = data[os.write(self._fd, data):]
            return True
        except OSError as exc:
            self._note_error(f"write {self.path}: {exc}")
            return False

    def _release(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass


class MemorySink:
    """Keeps events in memory (tests, notebooks). ``events`` decodes them."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._lock = threading.Lock()
        self.closed = False

    def submit(self, line: bytes) -> None:
        with self._lock:
            self.lines.append(line)

    @property
    def events(self) -> list[dict]:
        with self._lock:
            return [orjson.loads(b) for b in self.lines]

    def flush(self, timeout: float = 5.0) -> bool:
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.closed = True

    def stats(self) -> SinkStats:
        n = len(self.lines)
        return SinkStats(accepted=n, sent=n)

    @property
    def dropped(self) -> int:
        return 0
