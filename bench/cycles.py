"""Cycle breaking benchmark: the CLI on a synthetic workload, with and without cycles.

The same N synthetic events twice: as generated (every edge points forward in
time: no cycle, the fast path), and with backward parent links injected (a parent
stamped after its child in its own context, and links from a context's second
event to another context's last: a few small cycles and one large component).
Each file goes through `raceway-tui sql FILE -q "...hb.edges where dropped"`
(load, analysis, the query), timed from outside; the ratio is against the
cycle-free run in this same run.

    python bench/cycles.py [--events N] [--self-cycles K] [--links L] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import env_line

QUERY = "SELECT count(*) AS dropped FROM hb.edges WHERE dropped"


def _write(path: Path, events: list[dict]) -> None:
    with path.open("w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def _inject(events: list[dict], self_cycles: int, links: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    by_ctx: dict[tuple, list[int]] = {}
    for i, e in enumerate(events):
        by_ctx.setdefault((e["trace_id"], e["metadata"]["thread_id"]), []).append(i)
    ctxs = [c for c in by_ctx.values() if len(c) > 5]
    for _ in range(self_cycles):
        c = rng.choice(ctxs)
        k = rng.randrange(len(c) - 3)
        events[c[k]]["parent_id"] = events[c[k + 2]]["id"]
    for _ in range(links):
        a, b = rng.sample(ctxs, 2)
        events[a[1]]["parent_id"] = events[b[-1]]["id"]


def _run(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "sql", str(path), "--json", "-q", QUERY],
                       capture_output=True, text=True, check=True)
    return time.perf_counter() - t, json.loads(r.stdout)[0]["dropped"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--self-cycles", type=int, default=50, help="parents stamped after their child")
    ap.add_argument("--links", type=int, default=20, help="backward links between contexts")
    ap.add_argument("--out", type=Path, default=None, help="directory for the inputs (default: a temp dir)")
    args = ap.parse_args()
    from raceway_core.synth import config_for_events, generate

    out = args.out or Path(tempfile.mkdtemp(prefix="raceway-cycles-"))
    out.mkdir(parents=True, exist_ok=True)
    events = list(itertools.islice(generate(config_for_events(args.events)), args.events))
    plain, cyclic = out / "plain.jsonl", out / "cycles.jsonl"
    _write(plain, events)
    _inject(events, args.self_cycles, args.links)
    _write(cyclic, events)
    print(env_line(), f"load average {os.getloadavg()[0]:.1f}")
    base, d0 = _run(plain)
    t, d1 = _run(cyclic)
    print(f"{len(events):,} events: no cycles {base:.2f} s ({d0} dropped); "
          f"{args.self_cycles} + {args.links} backward links {t:.2f} s ({d1} dropped); ratio {t / base:.2f}x")
    print(f"load average {os.getloadavg()[0]:.1f}; inputs in {out}")


if __name__ == "__main__":
    main()
