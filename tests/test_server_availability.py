"""Availability under load and abuse (issue 15, items 6-8), against real `raceway-tui
serve` processes in both modes: ingest never waits on an analysis; bodies are refused
before they are read; idle, slow and half-sent connections are closed."""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import pytest
from helpers import event
from server_proc import ServerProcess

from raceway_core.store import Store
from raceway_core.synth import config_for_events, write_ndjson

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def analysed_db(tmp_path_factory):
    """A store big enough that a global analysis takes about a second here."""
    d = tmp_path_factory.mktemp("avail")
    src = d / "events.jsonl"
    write_ndjson(src, config_for_events(60_000, seed=7), limit=60_000)
    db = d / "base.duckdb"
    with Store(db) as st:
        st.load([src])
    return db


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def _post_for(http, seconds: float, first: int, until=None) -> tuple[list[float], int]:
    """POST batches of 10 events one after another for ``seconds`` (or until
    ``until()``, at most 20 s); their latencies and the next batch number."""
    latencies, b = [], first
    started = time.monotonic()
    while time.monotonic() - started < seconds or (until is not None and not until()
                                                    and time.monotonic() - started < 20):
        body = orjson.dumps({"events": [event(f"p{b}-{i}", trace=f"live-{b % 5}") for i in range(10)]})
        t = time.perf_counter()
        r = http.post("/events", content=body, headers=JSON)
        latencies.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
        b += 1
        time.sleep(0.005)
    return latencies, b


@pytest.mark.slow  # a 60,000-event store analysed again and again, timing-sensitive: test-slow runs it with no other worker beside it
def test_posts_do_not_wait_on_a_looping_global_analysis(analysed_db, tmp_path, server_mode):
    db = tmp_path / "live.duckdb"
    db.write_bytes(analysed_db.read_bytes())
    with ServerProcess(db, mode=server_mode) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        idle, b = _post_for(http, 1.5, 0)  # the baseline: this machine, now, no analysis
        analyses: list[tuple[int, float]] = []
        stop = threading.Event()

        def analyse() -> None:
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                while not stop.is_set():
                    t = time.perf_counter()
                    r = c.get("/api/analyze/global")
                    analyses.append((r.status_code, time.perf_counter() - t))

        looper = threading.Thread(target=analyse)
        looper.start()
        try:
            time.sleep(0.3)  # the first analysis is under way
            busy, b = _post_for(http, 3, b, until=lambda: len(analyses) >= 2)
        finally:
            stop.set()
            looper.join()
        done = [d for status, d in analyses if status == 200]
        # analyses ran the whole time, each a while (0.4-0.7 s since the incremental engine)
        assert len(done) >= 2 and min(done) > 0.2, analyses
        # Under 250 ms, as asked; on a machine so loaded that an idle POST is slow
        # already, within twice the idle figure. Waiting on an analysis would cost
        # a whole analysis, so a POST must also take under half the shortest one.
        bound = max(0.25, 2 * p99(idle))
        assert p99(busy) < bound and p99(busy) < min(done) / 2, (p99(busy), p99(idle), max(busy), len(busy), analyses)
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            final = c.get("/api/analyze/global").json()["data"]
        assert final["total_events"] == 60_000 + 10 * b  # every acknowledged event is in the next analysis


@pytest.mark.slow  # a 60,000-event store analysed again and again, timing-sensitive: test-slow runs it with no other worker beside it
def test_analyses_past_the_cap_get_503_with_retry_after_and_results_are_cached(analysed_db, tmp_path,
                                                                               server_mode):
    db = tmp_path / "cap.duckdb"
    db.write_bytes(analysed_db.read_bytes())
    with ServerProcess(db, mode=server_mode) as srv:
        results: list[httpx.Response] = []

        def one(path: str) -> None:
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                results.append(c.get(path))

        threads = [threading.Thread(target=one, args=(p,)) for p in
                   ("/api/analyze/global", "/api/distributed/global-races", "/api/analyze/global",
                    "/api/distributed/global-races", "/api/analyze/global")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results)
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
        for r in results:
            if r.status_code == 503:
                assert int(r.headers["retry-after"]) >= 1 and r.json()["success"] is False
        # the store has not changed: the same answer again, from the cache, at once
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            first = c.get("/api/analyze/global")
            t = time.perf_counter()
            again = c.get("/api/analyze/global")
            assert time.perf_counter() - t < 0.5
        assert first.status_code == again.status_code == 200 and first.json() == again.json()


# -- item 7: refused before the body is read ----------------------------------------


def raw_request(url: str, head: bytes, body: bytes = b"", wait: float = 5.0) -> tuple[bytes, float]:
    """Send a request's head and a little of its body on a raw socket, never the
    rest; the answer the server gives meanwhile and how long it took (b"" if none)."""
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        t = time.perf_counter()
        s.sendall(head + body)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        return data, time.perf_counter() - t


def head(method: str, path: str, *headers: str) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


PATHS = [("/events", ()), ("/events", ("Origin: http://ui.example",)), ("/api/traces", ())]


def test_a_wrong_key_is_refused_before_the_body_is_sent(server_mode):
    with ServerProcess(mode=server_mode, api_keys=("right",)) as srv:
        big = 600 * 1024 * 1024
        for path, extra in PATHS:
            for key in ("X-Raceway-Key: wrong", None):
                lines = [f"Content-Length: {big}", "Content-Type: application/json", *extra] + ([key] if key else [])
                answer, took = raw_request(srv.url, head("POST" if path == "/events" else "GET", path, *lines),
                                           b'{"events": [')
                assert answer.startswith(b"HTTP/1.1 401"), (path, extra, answer[:200])
                assert took < 2


def test_a_declared_size_past_the_limit_is_refused_before_the_body_is_sent(server_mode):
    with ServerProcess(mode=server_mode, api_keys=("right",), extra=("--max-body-mb", "1")) as srv:
        for path, extra in PATHS:
            lines = ["Content-Length: 600000000", "Content-Type: application/json", "X-Raceway-Key: right", *extra]
            answer, took = raw_request(srv.url, head("POST" if path == "/events" else "GET", path, *lines), b"[")
            assert answer.startswith(b"HTTP/1.1 413"), (path, extra, answer[:200])
            assert took < 2


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_a_chunked_body_past_the_limit_is_cut_off_streaming(server_mode):
    import subprocess

    with ServerProcess(mode=server_mode, extra=("--max-body-mb", "1")) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as http:
        pids = [srv.proc.pid] + [int(p) for p in subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(srv.proc.pid)], capture_output=True, text=True).stdout.split()]
        before = {p: _rss_kb(p) for p in pids}

        def chunks():  # 64 MB, chunked: no size to refuse up front
            for _ in range(1024):
                yield b" " * 65536

        for headers in (JSON, {**JSON, "Origin": "http://ui.example"}):
            try:
                r = http.post("/events", content=chunks(), headers=headers)
                status = r.status_code
            except httpx.HTTPError:  # the server answered and closed before all was sent
                status = 413
            assert status == 413
        grown = {p: (_rss_kb(p) - before[p]) / 1024 for p in pids}
        assert max(grown.values()) < 40, grown  # MB: never the 64 MB body, nor a copy of it
        assert http.get("/health").status_code == 200


# -- item 8: connections that keep the server waiting are closed --------------------


def closed_within(url: str, send: bytes, limit: float, trickle: bytes = b"") -> float | None:
    """Open a connection, send ``send`` (then ``trickle`` a byte every 0.2 s); the
    seconds until the server closed it, or None if it was still open after ``limit``."""
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        t = time.perf_counter()
        s.sendall(send)
        s.settimeout(0.2)
        i = 0
        while time.perf_counter() - t < limit:
            try:
                data = s.recv(65536)
                if not data:
                    return time.perf_counter() - t
                continue  # an answer (e.g. 408): keep reading until the close
            except TimeoutError:
                pass
            except ConnectionResetError:
                return time.perf_counter() - t
            if i < len(trickle):
                try:
                    s.sendall(trickle[i:i + 1])
                except OSError:
                    return time.perf_counter() - t
                i += 1
        return None


STALLS = {
    "idle, never a request": (b"", b""),
    "a head trickled a byte at a time": (b"GET /api/traces HTTP/1.1\r\n", b"X-Slow: " + b"a" * 100),
    "a body shorter than its Content-Length": (head("POST", "/events", "Content-Type: application/json",
                                                    "Content-Length: 100") + b'{"events": [', b""),
    "a chunked body never terminated": (head("POST", "/events", "Content-Type: application/json",
                                             "Transfer-Encoding: chunked") + b"5\r\n[1,2]\r\n", b""),
}


def test_connections_that_keep_the_server_waiting_are_closed(server_mode):
    with ServerProcess(mode=server_mode, extra=("--client-timeout", "1")) as srv:
        for stall, (send, trickle) in STALLS.items():
            took = closed_within(srv.url, send, 6, trickle)
            assert took is not None and took < 4, (stall, took)
            with httpx.Client(base_url=srv.url, timeout=60) as http:  # the server is fine
                assert http.get("/api/traces").status_code == 200
        time.sleep(0.3)
        log = "".join(srv.output)
        assert "Traceback" not in log and "internal error" not in log, log  # a client leaving is no error


@pytest.mark.slow  # a 60,000-event store analysed again and again, timing-sensitive: test-slow runs it with no other worker beside it
def test_a_slow_analysis_is_not_cut_off_by_the_client_timeout(analysed_db, tmp_path, server_mode):
    db = tmp_path / "slow.duckdb"
    db.write_bytes(analysed_db.read_bytes())
    with ServerProcess(db, mode=server_mode, extra=("--client-timeout", "0.2")) as srv, \
            httpx.Client(base_url=srv.url, timeout=120) as http:
        t = time.perf_counter()
        assert http.get("/api/analyze/global").status_code == 200
        assert time.perf_counter() - t > 0.5  # it took longer than the client timeout


def test_past_the_connection_cap_the_longest_idle_connection_is_shed(server_mode):
    import socket

    with ServerProcess(mode=server_mode, extra=("--max-connections", "40")) as srv:
        host, port = srv.url.removeprefix("http://").rsplit(":", 1)
        idle = [socket.create_connection((host, int(port))) for _ in range(60)]
        try:
            with httpx.Client(base_url=srv.url, timeout=5) as http:
                for _ in range(5):
                    assert http.get("/api/traces").status_code == 200
            time.sleep(0.3)
            closed = 0
            for s in idle:
                s.settimeout(0.05)
                try:
                    closed += s.recv(1) == b""
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed += 1
            assert closed >= 20  # the oldest went; the rest, up to the cap, stay
            assert closed < 60
        finally:
            for s in idle:
                s.close()


def test_a_repeated_log_line_is_let_through_once_per_interval_with_a_count():
    import logging

    from raceway_core.server.conns import RateLimit

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("raceway.test.ratelimit")
    logger.propagate = False
    logger.addHandler(Keep())
    # an interval far longer than the 5,000 calls take even on a loaded machine (0.3 s was not)
    limit = RateLimit(every=2.0)
    logger.addFilter(limit)
    start = time.monotonic()
    for _ in range(5000):  # what asyncio logs per failed accept at the fd limit
        logger.error("socket.accept() out of system resource: %s", "Too many open files")
    logger.error("another message")
    time.sleep(max(0.0, start + 2.05 - time.monotonic()))  # the interval is over
    logger.error("socket.accept() out of system resource: %s", "Too many open files")
    assert seen[:2] == ["socket.accept() out of system resource: Too many open files", "another message"]
    assert len(seen) == 3 and "4999 more like it" in seen[2]
