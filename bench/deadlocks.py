"""Deadlock analysis benchmark: nested locks on ~1M events, through `raceway-tui analyze --json`.

Each trace's main context spawns workers; each worker takes two locks of a small
pool, nested, in a random order (so the lock-order graph is dense: every pair both
ways, hundreds of 3- and 4-lock cycles). Shapes:

- concurrent: workers run together (deadlocks found at once);
- joined:     main awaits each worker before spawning the next (every inversion inside
              a trace is ordered by a join: the witness search has to rule each one out;
              traces are independent, so cross-trace witnesses exist);
- gated:      as concurrent, every nested pair under one gate lock (all suppressed).

Printed per shape: the deadlock stage measured in-process against the causality
engine's own run on the same store (the baseline: what every analysis already costs),
the CLI's wall time (`analyze --json`, which includes both), groups found, and the peak
RSS of the in-process run. Inputs are generated once into --out.

    python bench/deadlocks.py [--events N] [--shape concurrent,joined,gated] [--out DIR]
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
from pathlib import Path

from common import env_line, peak_rss_mb

LOCKS = [f"lock-{i}" for i in range(8)]


def generate(path: Path, n_events: int, shape: str, seed: int = 1) -> int:
    rnd = random.Random(seed)
    n = 0
    us = 0

    def ev(i, trace, thread, kind, parent):
        nonlocal n, us
        us += 1
        n += 1
        s, u = divmod(us, 1_000_000)
        return json.dumps({"id": f"e{i}", "trace_id": trace, "parent_id": parent,
                           "timestamp": f"2026-11-01T12:{s // 60 % 60:02d}:{s % 60:02d}.{u:06d}Z", "kind": kind,
                           "metadata": {"thread_id": thread, "service_name": "bench", "duration_ns": None}})

    ids = iter(range(1 << 62))
    with open(path, "w") as f:
        t = 0
        while n < n_events:
            trace, t = f"t{t}", t + 1
            last = {"main": None}

            def put(thread, kind, parent="auto"):
                i = next(ids)
                f.write(ev(i, trace, thread, kind, last.get(thread) if parent == "auto" else parent) + "\n")
                last[thread] = f"e{i}"
                return f"e{i}"

            workers = []
            for w in range(4):
                task = f"{trace}-w{w}"
                sp = put("main", {"AsyncSpawn": {"task_id": task, "spawned_by": "main"}})
                th = f"w{w}"
                first = True
                if shape == "gated":
                    put(th, {"LockAcquire": {"lock_id": "gate", "location": "g.py:1"}}, parent=sp)
                    first = False
                for r in range(5):
                    a, b = rnd.sample(LOCKS, 2)
                    put(th, {"LockAcquire": {"lock_id": a, "location": f"w.py:{10 + r}"}},
                        parent=sp if first else "auto")
                    first = False
                    put(th, {"LockAcquire": {"lock_id": b, "location": f"w.py:{20 + r}"}})
                    put(th, {"StateChange": {"variable": f"v{a}{b}", "old_value": 0, "new_value": 1,
                                             "location": "w.py:2", "access_type": "Write"}})
                    put(th, {"LockRelease": {"lock_id": b, "location": "w.py:4"}})
                    put(th, {"LockRelease": {"lock_id": a, "location": "w.py:3"}})
                if shape == "gated":
                    put(th, {"LockRelease": {"lock_id": "gate", "location": "g.py:2"}})
                if shape == "joined":
                    put("main", {"AsyncAwait": {"future_id": task, "awaited_at": "m.py:1"}})
                else:
                    workers.append(task)
            for task in workers:
                put("main", {"AsyncAwait": {"future_id": task, "awaited_at": "m.py:1"}})
    return n


def cli_run(path: Path) -> tuple[float, dict]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "analyze", str(path), "--json", "--max-pairs", "0"],
                       capture_output=True, text=True, check=True)
    return time.perf_counter() - t, json.loads(r.stdout)


def in_process(path: Path) -> tuple[float, float, object]:
    from raceway_core import TraceSession

    with TraceSession.open([path]) as s:
        t = time.perf_counter()
        s.engine
        eng_s = time.perf_counter() - t
        t = time.perf_counter()
        rep = s.deadlocks()
        return eng_s, time.perf_counter() - t, rep


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--shape", default="concurrent,joined,gated")
    p.add_argument("--out", type=Path, default=None, help="directory for the generated files (default: a temp dir)")
    a = p.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="raceway-bench-deadlocks-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"# {env_line()}; load average {os.getloadavg()[0]:.2f}")
    for shape in a.shape.split(","):
        path = out / f"nested-{shape}-{a.events}.jsonl"
        if not path.exists():  # generated once per --out (written aside, then renamed: never half a file)
            generate(path.with_suffix(".tmp"), a.events, shape)
            path.with_suffix(".tmp").rename(path)
        eng_s, dl_s, rep = in_process(path)
        cli_s, doc = cli_run(path)
        d = doc["deadlocks"]
        print(f"{shape:10s} {doc['events']:,} events: deadlocks {dl_s:.2f} s = {100 * dl_s / eng_s:.0f}% of the "
              f"engine's {eng_s:.2f} s (in-process); analyze --json {cli_s:.2f} s; "
              f"{len(rep.lock_edges):,} lock-order edges, {d['count']:,} cycles reported, "
              f"{len(d['suppressed']):,} ruled out, {rep.checks:,} hb checks; load {os.getloadavg()[0]:.2f}; "
              f"peak RSS (this process) {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
