"""Server ingest benchmark: POST /events throughput and post-to-visible latency.

A `raceway-tui serve` process on a DuckDB file; client processes POST batches of
100 synthetic events (bodies serialised before the clock starts), each keeping
``inflight`` requests open (1 = strictly one after another, like a single SDK
flush thread; more = an SDK posting from several threads, or several processes).
Prints events/s, how many POSTs each commit coalesced, the CPU of the server's
processes (the store's and, by default, its ingest front) and of the clients,
and the latency from a POST to the event being in a connected client's local
store (its incremental sync running in a loop), on an idle server and under load.
RACEWAY_BENCH_SERVE_ARGS passes options to the server (A/B: "--ingest-workers 0"
for one process); RACEWAY_BENCH_THREADS=1 adds the CPU of each store thread.
Target (2 cores): >= 50,000 events/s.
With --store URL (or --store temp: a throwaway PostgreSQL from the test
extras' binaries), it instead compares a DuckDB server with 1, 2 and 3
`serve --store` servers on that one database, the clients spread over them:
events/s and CPU per event (servers' and PostgreSQL's processes).

    python bench/ingest.py [--events N] [--clients 4] [--inflight 1 8] [--samples 30] [--store URL|temp]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, env_line, fmt_int

BATCH = 100


def _bodies(n_events: int, seed: int) -> list[bytes]:
    import orjson

    from raceway_core.synth import config_for_events, generate

    events = []
    for e in generate(config_for_events(n_events, seed=seed)):
        events.append(e)
        if len(events) == n_events:
            break
    return [orjson.dumps({"events": events[i:i + BATCH]}) for i in range(0, len(events), BATCH)]


def _client(url: str, n_events: int, seed: int, inflight: int, ready, go, results) -> None:
    """One client process: ``inflight`` keep-alive connections posting prebuilt
    requests (a lean load generator, like wrk: the clients share the 2 cores with
    the server, and httpx would spend as much CPU as the server does)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    requests = [(f"POST /events HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in _bodies(n_events, seed)]
    ready.wait()  # every client has its bodies: start together

    async def connection(queue: list, acked: list) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while queue:
            writer.write(queue.pop())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            body = await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
            acked.append(int(re.search(rb'"ingested":(\d+)', body).group(1)))
        writer.close()

    async def run() -> tuple[int, float, float]:
        queue, acked = requests[::-1], []
        go.wait()
        cpu = time.process_time()
        await asyncio.gather(*(connection(queue, acked) for _ in range(inflight)))
        return sum(acked), time.perf_counter(), time.process_time() - cpu

    results.put(asyncio.run(run()))


def _stat(path: Path) -> tuple[str, int, float] | None:
    """(name, parent pid, CPU seconds) from a /proc stat file; None once it is gone."""
    try:
        name, rest = path.read_text().split(" (", 1)[1].rsplit(")", 1)
    except (OSError, ValueError):
        return None
    fields = rest.split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, db: Path | str, store: str | None = None) -> None:
        wrap = os.environ.get("RACEWAY_BENCH_WRAP", "").split()  # e.g. a profiler's command line
        extra = os.environ.get("RACEWAY_BENCH_SERVE_ARGS", "").split()  # e.g. options being compared
        extra += ["--store", store] if store else []
        self.wrapped = bool(wrap)
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "raceway_tui.cli", "serve", "--port", "0", "--db", str(db), *extra],
            cwd=ROOT.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=self.wrapped)
        for line in self.proc.stdout:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise RuntimeError("server did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used by the server process and by its children (its ingest
        fronts), by process name (Linux; empty elsewhere)."""
        out: dict[str, float] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            got = _stat(stat)
            if got and self.proc.pid in (int(stat.parent.name), got[1]):
                name = "store" if int(stat.parent.name) == self.proc.pid else "front"
                out[name] = out.get(name, 0.0) + got[2]
        return out

    def threads(self) -> dict[str, float]:
        """CPU seconds of the server process's threads: main (its event loop), the others by id."""
        out: dict[str, float] = {}
        for stat in Path(f"/proc/{self.proc.pid}/task").glob("*/stat"):
            got = _stat(stat)
            if got:
                tid = stat.parent.name
                out["main" if tid == str(self.proc.pid) else f"{got[0]}-{tid}"] = got[2]
        return out

    def status(self) -> dict:
        import httpx

        return httpx.get(self.url + "/status", timeout=30).json()["data"]

    def stop(self) -> None:
        if self.wrapped:  # Ctrl-C to the group: the server stops cleanly, a profiler writes its output
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.terminate()
        self.proc.wait(60)


def throughput(n_events: int, clients: int, inflight: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "bench.duckdb")
        try:
            ctx = mp.get_context("spawn")
            ready, go = ctx.Barrier(clients + 1), ctx.Event()
            results = ctx.Queue()
            per = n_events // clients
            procs = [ctx.Process(target=_client, args=(server.url, per, 100 + c, inflight, ready, go, results))
                     for c in range(clients)]
            for p in procs:
                p.start()
            ready.wait()
            before = server.status()["writer"]
            time.sleep(0.5)  # let the clients' event loops settle
            cpu, threads = server.cpu_seconds(), server.threads()
            started = time.perf_counter()
            go.set()
            done = [results.get() for _ in procs]
            cpu = {k: v - cpu.get(k, 0.0) for k, v in server.cpu_seconds().items()}
            threads = {k: v - threads.get(k, 0.0) for k, v in server.threads().items()}
            for p in procs:
                p.join()
            seconds = max(t for _, t, _ in done) - started
            acked = sum(n for n, _, _ in done)
            client_cpu = sum(c for _, _, c in done)
            after = server.status()
            w = after["writer"]
            commits, bodies = w["commits"] - before["commits"], w["bodies"] - before["bodies"]
            assert after["events_captured"] == acked, (after["events_captured"], acked)
            print(f"{clients} clients x {inflight} in flight: {fmt_int(acked):>9} events in {seconds:6.2f} s  "
                  f"{acked / seconds:>9,.0f} events/s  {commits} commits, {bodies / max(commits, 1):5.1f} "
                  f"POSTs/commit (max {w['largest_group']}), last commit {w['last_commit_ms']:.0f} ms; "
                  "CPU: " + ", ".join(f"{k} {v:.1f} s ({v / seconds:.0%})" for k, v in sorted(cpu.items(), reverse=True))
                  + f", clients {client_cpu:.1f} s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            if os.environ.get("RACEWAY_BENCH_THREADS"):
                print("   store threads (CPU s): " + ", ".join(
                    f"{k} {v:.2f}" for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v >= 0.01))
        finally:
            server.stop()


def latency(samples: int, load_inflight: int) -> None:
    """POST one event, then time until a connected client's sync loop has it locally."""
    import httpx
    import orjson

    sys.path.insert(0, str(ROOT.parent))
    from raceway_core.client import RacewayClient
    from raceway_core.store import Store
    from raceway_core.synth import config_for_events, generate

    template = next(iter(generate(config_for_events(10))))
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "lat.duckdb")
        store = Store(Path(tmp) / "local.duckdb")
        client = RacewayClient(server.url, store)
        client.sync()
        seen: dict[str, float] = {}
        stop = threading.Event()

        def sync_loop() -> None:  # what a connected TUI does, without its 2 s pause
            while not stop.is_set():
                client.sync()
                for i in store.sql("SELECT id FROM events WHERE id LIKE 'lat-%'").column("id").to_pylist():
                    seen.setdefault(i, time.perf_counter())

        # the client follows the server from the start, as a connected TUI does, so under
        # load it must keep up with the ingest rather than catch up with a backlog
        t = threading.Thread(target=sync_loop, daemon=True)
        t.start()
        load_procs = []
        if load_inflight:
            ctx = mp.get_context("spawn")
            ready, go, results = ctx.Barrier(3), ctx.Event(), ctx.Queue()
            load_procs = [ctx.Process(target=_client, args=(server.url, 200_000, 500 + c, load_inflight,
                                                            ready, go, results)) for c in range(2)]
            for p in load_procs:
                p.start()
            ready.wait()
            go.set()
            time.sleep(1)
        lat = []
        during = 0  # samples taken while the load was still posting
        try:
            with httpx.Client(base_url=server.url) as http:
                for k in range(samples):
                    ev = dict(template, id=f"lat-{k}")
                    sent = time.perf_counter()
                    r = http.post("/events", content=orjson.dumps({"events": [ev]}))
                    assert r.status_code == 200, r.text
                    acked = time.perf_counter()
                    while f"lat-{k}" not in seen:
                        time.sleep(0.001)
                    lat.append((acked - sent, seen[f"lat-{k}"] - sent))
                    during += any(p.is_alive() for p in load_procs)
                    time.sleep(0.05)
        finally:
            stop.set()
            t.join()
            for p in load_procs:
                p.terminate()
            client.close()
            store.close()
            server.stop()
    ack = sorted(a for a, _ in lat)
    vis = sorted(v for _, v in lat)
    label = f"under load (2 clients x {load_inflight} in flight)" if load_inflight else "idle server"
    print(f"post-to-visible, {label}: ack median {statistics.median(ack) * 1e3:.0f} ms, "
          f"visible in the client's store median {statistics.median(vis) * 1e3:.0f} ms, "
          f"p95 {vis[int(len(vis) * 0.95) - 1] * 1e3:.0f} ms, max {vis[-1] * 1e3:.0f} ms ({samples} samples"
          + (f", {during} while the load ran)" if load_inflight else ")"),
          flush=True)


def _tree_cpu(root_pid: int) -> float:
    """CPU seconds of a process and its direct children (a PostgreSQL server's backends)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        got = _stat(stat)
        if got and root_pid in (int(stat.parent.name), got[1]):
            total += got[2]
    return total


def scale_out(store: str, pg_pid: int | None, n_servers: int, n_events: int, clients: int, inflight: int) -> None:
    """``clients`` posting to ``n_servers`` servers on one database (0: one DuckDB server)."""
    import psycopg

    if n_servers:
        with psycopg.connect(store, autocommit=True) as conn:  # every run from an empty table
            if conn.execute("SELECT to_regclass('raceway_events') IS NOT NULL").fetchone()[0]:
                conn.execute("TRUNCATE raceway_events, raceway_rejects")
    with tempfile.TemporaryDirectory() as tmp:
        servers = ([Server(":memory:", store) for _ in range(n_servers)] if n_servers
                   else [Server(Path(tmp) / "bench.duckdb")])
        try:
            ctx = mp.get_context("spawn")
            ready, go, results = ctx.Barrier(clients + 1), ctx.Event(), ctx.Queue()
            per = n_events // clients
            procs = [ctx.Process(target=_client, args=(servers[c % len(servers)].url, per, 100 + c, inflight,
                                                       ready, go, results)) for c in range(clients)]
            for p in procs:
                p.start()
            ready.wait()
            time.sleep(0.5)
            cpu = sum(sum(s.cpu_seconds().values()) for s in servers)
            pg_cpu = _tree_cpu(pg_pid) if pg_pid and n_servers else 0.0
            started = time.perf_counter()
            go.set()
            done = [results.get() for _ in procs]
            cpu = sum(sum(s.cpu_seconds().values()) for s in servers) - cpu
            pg_cpu = (_tree_cpu(pg_pid) if pg_pid and n_servers else 0.0) - pg_cpu
            for p in procs:
                p.join()
            seconds = max(t for _, t, _ in done) - started
            acked = sum(n for n, _, _ in done)
            label = f"{n_servers} server{'s' if n_servers > 1 else ''} on PostgreSQL" if n_servers else "DuckDB server"
            print(f"{label:>26}, {clients} clients x {inflight} in flight: {fmt_int(acked):>9} events "
                  f"in {seconds:6.2f} s  {acked / seconds:>9,.0f} events/s; CPU per event: servers "
                  f"{cpu / acked * 1e6:5.1f} us" + (f", PostgreSQL {pg_cpu / acked * 1e6:5.1f} us" if n_servers else "")
                  + f"; load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            for s in servers:
                s.stop()


def main_store(args) -> None:
    pg = None
    store, pg_pid = args.store, None
    if store == "temp":
        sys.path.insert(0, str(ROOT.parent / "tests"))
        from pgserver import PgServer, find_binaries

        bin_dir, where = find_binaries()
        if bin_dir is None:
            sys.exit(where)
        pg = PgServer(bin_dir).start()
        store = pg.new_database()
        pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        print(f"# a throwaway PostgreSQL from {where}, fsync off")
    try:
        for k in args.inflight:
            for n in (0, 1, 2, 3):
                scale_out(store, pg_pid, n, args.events, args.clients, k)
    finally:
        if pg is not None:
            pg.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--inflight", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--samples", type=int, default=30, help="0 skips the latency runs")
    ap.add_argument("--store", help="PostgreSQL URL, or 'temp' for a throwaway one: "
                    "compare 1, 2, 3 servers on it with a DuckDB server")
    args = ap.parse_args()
    if args.store:
        print(f"# shared-store ingest benchmark ({env_line()}), batches of {BATCH} events; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        return main_store(args)
    print(f"# ingest benchmark ({env_line()}), batches of {BATCH} events; "
          f"load average before: {os.getloadavg()[0]:.2f} (above ~0.3, other processes share the cores)")
    for k in args.inflight:
        throughput(args.events if k > 1 else min(args.events, 60_000), args.clients, k)
    if args.samples:
        latency(args.samples, 0)
        latency(args.samples, 4)


if __name__ == "__main__":
    main()
