"""Server hardening figures (issue 15, items 6-8), on real `raceway-tui serve` processes.

1. POST latency while a client loops GET /api/analyze/global over a store of N
   events, against the same server idle (the baseline, measured in this run).
2. RSS of each server process (the front's especially) while a client sends a
   600 MB body with a wrong key, and a 600 MB chunked body past the size limit.
3. Behaviour at the open-file limit: the server started with a low limit, then
   thousands of idle connections; is a new request answered, how fast, how many
   idle ones were shed, how many log lines it wrote.

Writes only to a temporary directory. Modes: --mode front (default) or one-process.

    python bench/hardening.py [--events 100000] [--mode front] [--body-mb 600] [--idle 3000]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, env_line, fmt_int, synthetic_ndjson

MODES = {"front": ["--ingest-workers", "1"], "one-process": ["--ingest-workers", "0"]}


class Server:
    def __init__(self, db: Path, mode: str, *extra: str, nofile: int | None = None) -> None:
        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "raceway_tui.cli", "serve", "--port", "0", "--db", str(db), *MODES[mode],
             *extra], cwd=ROOT.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=limit, env={k: v for k, v in os.environ.items() if k != "RACEWAY_API_KEY"})
        for line in self.proc.stdout:
            self.log.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise RuntimeError("server did not start:\n" + "".join(self.log))
        threading.Thread(target=lambda: self.log.extend(self.proc.stdout), daemon=True).start()
        import httpx

        for _ in range(200):
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)

    def pids(self) -> dict[str, int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True,
                             text=True).stdout.split()
        return {"store": self.proc.pid, **{f"front{i}": int(p) for i, p in enumerate(out)}}

    def rss_mb(self) -> dict[str, tuple[float, float]]:
        """(current RSS, peak RSS) in MB per process."""
        got = {}
        for name, pid in self.pids().items():
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
            got[name] = (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
        return got

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def post_latencies(url: str, seconds: float) -> list[float]:
    import httpx
    import orjson

    out = []
    with httpx.Client(base_url=url, timeout=60) as http:
        deadline = time.monotonic() + seconds
        b = 0
        while time.monotonic() < deadline:
            body = orjson.dumps({"events": [{
                "id": f"bench-{time.time_ns()}-{i}", "trace_id": f"bench-{b % 10}", "parent_id": None,
                "timestamp": "2026-11-01T12:00:00Z", "kind": {"StateChange": {
                    "variable": "v", "old_value": 0, "new_value": 1, "location": "b.py:1", "access_type": "Write"}},
                "metadata": {"thread_id": "t", "process_id": 1, "service_name": "bench", "environment": "b",
                             "tags": {}, "duration_ns": None}, "causality_vector": [], "lock_set": []}
                for i in range(10)]})
            t = time.perf_counter()
            r = http.post("/events", content=body, headers={"content-type": "application/json"})
            out.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"POST answered {r.status_code}: {r.text[:200]}")
            b += 1
            time.sleep(0.01)
    return out


def fmt_ms(values: list[float]) -> str:
    return (f"p50 {statistics.median(values) * 1000:7.1f} ms  p99 {pct(values, 0.99) * 1000:7.1f} ms  "
            f"max {max(values) * 1000:7.1f} ms  ({len(values)} posts)")


def analysis_latency(tmp: Path, n_events: int, mode: str, seconds: float) -> None:
    from raceway_core.store import Store

    src = synthetic_ndjson(n_events)
    db = tmp / "analysis.duckdb"
    with Store(db) as st:
        st.load([src])
    srv = Server(db, mode)
    try:
        idle = post_latencies(srv.url, seconds)
        import httpx

        stop = threading.Event()
        runs: list[tuple[int, float]] = []

        def loop() -> None:
            with httpx.Client(base_url=srv.url, timeout=600) as c:
                while not stop.is_set():
                    t = time.perf_counter()
                    r = c.get("/api/analyze/global")
                    runs.append((r.status_code, time.perf_counter() - t))

        th = threading.Thread(target=loop)
        th.start()
        time.sleep(0.5)
        busy = post_latencies(srv.url, seconds)
        stop.set()
        th.join()
        print(f"\n1. POST /events (10 events each) over {fmt_int(n_events)} stored events, mode {mode}")
        print(f"   idle server:               {fmt_ms(idle)}")
        print(f"   under a looping analysis:  {fmt_ms(busy)}")
        done = [d for s, d in runs if s == 200]
        print(f"   global analyses meanwhile: {len(done)} answered 200 (median {statistics.median(done):.2f} s), "
              f"{sum(s == 503 for s, _ in runs)} answered 503")
        print(f"   p99 ratio busy/idle: {pct(busy, 0.99) / pct(idle, 0.99):.1f}x")
    finally:
        srv.stop()


def big_body(tmp: Path, mode: str, body_mb: int) -> None:
    srv = Server(tmp / "body.duckdb", mode, "--api-key-file", str(_key_file(tmp)))
    try:
        base = srv.rss_mb()
        print(f"\n2. A {body_mb} MB body, mode {mode} (RSS MB now / peak, per process)")
        print("   before:                       " + _rss(base))
        host, port = srv.url.removeprefix("http://").rsplit(":", 1)
        for label, head, chunked in [
            ("wrong key, Content-Length", f"POST /events HTTP/1.1\r\nHost: x\r\nX-Raceway-Key: wrong\r\n"
             f"Content-Type: application/json\r\nContent-Length: {body_mb << 20}\r\n\r\n", False),
            ("wrong key, browser (Origin)", f"POST /events HTTP/1.1\r\nHost: x\r\nX-Raceway-Key: wrong\r\n"
             f"Origin: http://x\r\nContent-Type: application/json\r\nContent-Length: {body_mb << 20}\r\n\r\n",
             False),
            ("right key, chunked past limit", "POST /events HTTP/1.1\r\nHost: x\r\nX-Raceway-Key: bench-key\r\n"
             "Origin: http://x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", True),
        ]:
            t = time.perf_counter()
            sent, status = _send_big(host, int(port), head.encode(), body_mb << 20, chunked)
            took = time.perf_counter() - t
            print(f"   {label:30} answer {status!r:>5} after {sent / 2**20:7.1f} MB sent, {took:5.2f} s; "
                  + _rss(srv.rss_mb()))
    finally:
        srv.stop()


def _key_file(tmp: Path) -> Path:
    p = tmp / "key"
    p.write_text("bench-key\n")
    p.chmod(0o600)
    return p


def _rss(got: dict) -> str:
    return "  ".join(f"{k} {now:6.1f}/{peak:6.1f}" for k, (now, peak) in got.items())


def _send_big(host: str, port: int, head: bytes, size: int, chunked: bool) -> tuple[int, str | None]:
    """Send ``head`` then up to ``size`` body bytes, stopping at the server's answer or close."""
    s = socket.create_connection((host, port))
    s.sendall(head)
    block = b" " * (1 << 20)
    if chunked:
        block = b"%x\r\n" % len(block) + block + b"\r\n"
    sent, status = 0, None
    s.setblocking(False)
    pending = memoryview(block)
    try:
        while sent < size:
            try:
                data = s.recv(4096)
                status = data.split(b" ", 2)[1].decode() if data else "closed"
                break
            except BlockingIOError:
                pass
            try:
                n = s.send(pending)
                sent += n
                pending = pending[n:] or memoryview(block)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
        if status is None:
            s.setblocking(True)
            s.settimeout(10)
            try:
                data = s.recv(4096)
                status = data.split(b" ", 2)[1].decode() if data else "closed"
            except OSError as exc:
                status = type(exc).__name__
    finally:
        s.close()
    return sent, status


def fd_limit(tmp: Path, mode: str, idle: int, nofile: int) -> None:
    import httpx

    srv = Server(tmp / "fd.duckdb", mode, "--client-timeout", "30", nofile=nofile)
    try:
        host, port = srv.url.removeprefix("http://").rsplit(":", 1)
        lines_before = len(srv.log)
        socks, refused = [], 0
        t = time.perf_counter()
        for _ in range(idle):
            try:
                socks.append(socket.create_connection((host, int(port)), timeout=2))
            except OSError:
                refused += 1
        opened = time.perf_counter() - t
        time.sleep(1)
        lat, errors = [], 0
        with httpx.Client(base_url=srv.url, timeout=10) as http:
            for _ in range(20):
                t = time.perf_counter()
                try:
                    ok = http.get("/api/traces").status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append(time.perf_counter() - t)
                errors += not ok
        closed = 0
        for s in socks:
            s.settimeout(0.01)
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                closed += 1
        for s in socks:
            s.close()
        time.sleep(0.5)
        log_lines = len(srv.log) - lines_before
        log_bytes = sum(len(x) for x in srv.log[lines_before:])
        print(f"\n3. {fmt_int(idle)} idle connections against open-file limit {nofile}, mode {mode}")
        print(f"   opened {len(socks)} ({refused} refused) in {opened:.1f} s; the server closed {closed} of them "
              "(longest idle first)")
        print(f"   then 20 GETs: {20 - errors} answered 200, {errors} failed; "
              f"p50 {statistics.median(lat) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms "
              f"(in order: {' '.join(f'{x * 1000:.0f}' for x in lat)} ms)")
        print(f"   server log meanwhile: {log_lines} lines, {log_bytes} bytes")
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="stored events for the analysis run")
    ap.add_argument("--seconds", type=float, default=6.0, help="posting time per latency run")
    ap.add_argument("--mode", choices=list(MODES), default="front")
    ap.add_argument("--body-mb", type=int, default=600)
    ap.add_argument("--idle", type=int, default=3000, help="idle connections opened in part 3")
    ap.add_argument("--nofile", type=int, default=1024, help="the server's open-file limit in part 3")
    ap.add_argument("--only", choices=["1", "2", "3"], action="append", help="run only these parts")
    args = ap.parse_args()
    parts = set(args.only or ["1", "2", "3"])
    print(f"{env_line()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="raceway-bench-hardening-") as d:
        tmp = Path(d)
        if "1" in parts:
            analysis_latency(tmp, args.events, args.mode, args.seconds)
        if "2" in parts:
            big_body(tmp, args.mode, args.body_mb)
        if "3" in parts:
            fd_limit(tmp, args.mode, args.idle, args.nofile)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
