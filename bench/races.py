"""Pair explosion: many requests on a few hot shared variables, partly under locks.

Generates an NDJSON workload (each request a trace: a main context spawning workers
that each update random shared accounts, read then write, some updates under the
account's lock, then joins them) and runs the user's path on it in a child process:
`raceway-tui analyze FILE --json --max-pairs N` (load + analysis + the document).
Prints wall and CPU time, peak RSS (the child's), racing pairs, and in the same run DuckDB
read_json on the same file (the baseline) and the load average.

    python bench/races.py                      # the two cases of issue 18 item 5
    python bench/races.py --requests 1000 --workers 6 --accounts 4 --updates 20
    python bench/races.py --only-generate --out /tmp/x.jsonl ...

Targets (issue 18 item 5): ~50k events / ~4.6M pairs <= 5 s and <= 500 MB; 250k events
within 2.5x read_json and <= 1 KB/event. The third case puts ~10M racing pairs inside
four traces of 400 workers (counted inside a trace, not listed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import child_run_cpu, cli_exe, read_json_code

EPOCH = datetime(2026, 11, 1, tzinfo=timezone.utc)


def generate(path: Path, requests: int, workers: int, accounts: int, updates: int, locked_ratio: float,
             arrival_us: int, seed: int = 11) -> int:
    """Write the workload; returns the number of events."""
    rng = random.Random(seed)
    events = []
    free_at: dict[str, int] = {}  # a lock is a mutex: one holder at a time (sections in generation order)

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    for r in range(requests):
        trace = uid()
        t = r * arrival_us
        seq = [0]

        def emit(thread: str, t_us: int, kind: dict, parent: str | None) -> str:
            seq[0] += 1
            eid = uid()
            events.append((t_us, len(events), {
                "id": eid, "trace_id": trace, "parent_id": parent, "timestamp": "", "kind": kind,
                "metadata": {"thread_id": thread, "process_id": 1, "service_name": "bank", "environment": "bench",
                             "tags": {}, "duration_ns": None, "instance_id": "bank-1"},
                "causality_vector": [], "lock_set": []}))
            return eid

        main = f"req-{r}"
        last = emit(main, t, {"HttpRequest": {"method": "POST", "url": "/transfer", "headers": {}, "body": None}}, None)
        ends = []
        for w in range(workers):
            t += 1
            task = f"task-{r}-{w}"
            spawn = emit(main, t, {"AsyncSpawn": {"task_id": task, "spawned_by": main}}, last)
            last = spawn
            thread, tw, prev = f"req-{r}-w{w}", t + rng.randint(1, 20), spawn
            for _ in range(updates):
                acct = f"account.{rng.randrange(accounts)}.balance"
                locked = rng.random() < locked_ratio
                lock = f"lock:{acct}"
                if locked:
                    tw = max(tw, free_at.get(lock, 0)) + rng.randint(1, 30)
                    prev = emit(thread, tw, {"LockAcquire": {"lock_id": lock, "lock_type": "Mutex",
                                                             "location": "bank.py:40"}}, prev)
                for access, line in (("Read", 41), ("Write", 42)):
                    tw += rng.randint(1, 30)
                    prev = emit(thread, tw, {"StateChange": {"variable": acct, "old_value": 100, "new_value": 90,
                                                             "location": f"bank.py:{line + (10 if locked else 0)}",
                                                             "access_type": access}}, prev)
                if locked:
                    tw += rng.randint(1, 30)
                    prev = emit(thread, tw, {"LockRelease": {"lock_id": lock, "lock_type": "Mutex",
                                                             "location": "bank.py:43"}}, prev)
                    free_at[lock] = tw
            ends.append((task, tw))
        for task, tw in ends:
            t = max(t, tw) + 1
            last = emit(main, t, {"AsyncAwait": {"future_id": task, "awaited_at": "bank.py:60"}}, last)
        emit(main, t + 1, {"HttpResponse": {"status": 200, "headers": {}, "body": None, "duration_ms": None}}, last)
    events.sort(key=lambda e: (e[0], e[1]))
    with open(path, "w") as f:
        for t_us, _, ev in events:
            ev["timestamp"] = (EPOCH + timedelta(microseconds=t_us)).isoformat(timespec="microseconds")
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")
    return len(events)


def measure(path: Path, n: int, max_pairs: int) -> None:
    exe = cli_exe()
    rj_wall, rj_rss, rj_cpu, _ = child_run_cpu([sys.executable, "-c", read_json_code(), str(path)])
    wall, rss, cpu, out = child_run_cpu([exe, "analyze", str(path), "--json", "--max-pairs", str(max_pairs)])
    doc = json.loads(out)
    r = doc["races"]
    cross = sum(g.get("cross_trace_count", 0) for g in r["groups"])
    print(f"{n:>9,} events: analyze --json {wall:6.2f} s (CPU {cpu:.2f} s), peak RSS {rss:7.0f} MB "
          f"({rss * 1024 * 1024 / n:6.0f} B/event); "
          f"{r['pair_count']:,} racing pairs ({cross:,} across traces) in {len(r['groups'])} groups, "
          f"{len(r['pairs']):,} listed; read_json {rj_wall:.2f} s (CPU {rj_cpu:.2f} s, {rj_rss:.0f} MB) -> "
          f"{wall / rj_wall:.2f}x (CPU {cpu / max(rj_cpu, 1e-9):.2f}x); "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)


CASES = {  # name: (requests, workers, accounts, updates, locked ratio, arrival us)
    "explosion-50k": (700, 4, 2, 4, 0.9, 100),  # ~49.5k events, ~5.4M racing pairs
    "requests-250k": (1000, 6, 4, 13, 0.5, 200),
    "wide-28k": (4, 400, 2, 6, 0.3, 2000),  # ~28k events: 4 requests of 400 workers (pairs inside traces)
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--accounts", type=int, default=2)
    ap.add_argument("--updates", type=int, default=6)
    ap.add_argument("--locked-ratio", type=float, default=0.3)
    ap.add_argument("--arrival-us", type=int, default=40, help="time between request arrivals")
    ap.add_argument("--max-pairs", type=int, default=1000, help="pairs listed in the document")
    ap.add_argument("--out", type=Path, help="where to write the workload (default: a temporary file)")
    ap.add_argument("--only-generate", action="store_true")
    args = ap.parse_args()
    cases = ({"custom": (args.requests, args.workers, args.accounts, args.updates, args.locked_ratio, args.arrival_us)}
             if args.requests else CASES)
    print(f"# pair explosion (python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f})", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="raceway-bench-races-"))
    for name, params in cases.items():
        path = args.out or tmp / f"{name}.jsonl"
        n = generate(path, *params)
        print(f"{name}: {n:,} events, requests/workers/accounts/updates/locked/arrival = {params} -> {path}", flush=True)
        if not args.only_generate:
            measure(path, n, args.max_pairs)


if __name__ == "__main__":
    main()
