"""shutdown() against servers that never answer: a batch in flight when the wait
runs out is counted as dropped and reported, never lost silently."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from raceway_core.sdk import Config, RacewayClient


class Sinkhole:
    """A real loopback server that reads requests and never answers ("slow"), or
    accepts connections and never reads them ("black hole")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received = 0
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(conn)
            if self.kind == "slow":
                threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.received += len(data)

    def close(self) -> None:
        self._stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("kind", ["slow", "black-hole"])
def test_a_batch_in_flight_at_shutdown_timeout_is_counted_dropped_and_warned(kind, caplog):
    hole = Sinkhole(kind)
    try:
        client = RacewayClient(Config(endpoint=hole.url, service_name="t", warm_up_http=False, batch_size=50,
                                      flush_interval=0.01, request_timeout=30, max_retries=0))
        with client.trace():
            for i in range(21):
                client.track_state_change("x", i, i + 1)
        deadline = time.monotonic() + 5  # the sink has taken the batch and is waiting on the POST
        while client.stats().buffered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.stats().buffered == 0
        caplog.set_level(logging.WARNING, logger="raceway_core.sdk")
        started = time.monotonic()
        client.shutdown(timeout=0.5)
        assert time.monotonic() - started < 5
        s = client.stats()
        assert (s.accepted, s.sent, s.dropped, s.buffered) == (21, 0, 21, 0)
        assert client.dropped_events == 21
        assert any("21 events" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    finally:
        hole.close()
