"""Summary benchmark (issue 18's table): what a user runs, against baselines measured in the same run.

For each size N, on one generated NDJSON file (the generator of bench/load.py), each
command in a fresh process, timed wall-clock with that process's peak RSS:

* baselines: `wc -l FILE`; an orjson parse of every line; DuckDB `read_json` with schema
  inference into a table;
* load: `raceway-tui load FILE` (to memory);
* load --db: `raceway-tui load FILE --db STORE` (a new store file, removed afterwards);
* engine: `raceway-tui analyze --db STORE --json --max-pairs 0` on that store (analysis +
  document, no parsing); racing pairs from its document;
* peak RSS: of `raceway-tui analyze FILE --json --max-pairs 0`, load + analysis in one process.

Prints a Markdown table (events | load | engine | peak RSS | racing pairs | baselines |
ratios to read_json, in wall and in CPU time: user + system of each process, which
other work on the machine disturbs less), the load average before and after each row,
and the growth of the largest size over the one before (linear growth: 3M / 1M <= 3.3). Targets (issue 18):
load <= 1.5x read_json, engine <= 1x read_json, peak RSS <= 1 KB/event.

    python bench/summary.py [--sizes 100000,300000,1000000,3000000] [--repeat 1]

Generated files go to $RACEWAY_BENCH_OUT (default: $TMPDIR/raceway-bench), never the repo.
The 3M row needs ~7 GB free; --sizes leaves it out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import subprocess
import tempfile
import time
from pathlib import Path

from common import OUT, cli_exe, env_line, read_json_code, synthetic_ndjson

ORJSON = """
import orjson, sys
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
"""


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run(args: list[str]) -> tuple[float, float, str, float]:
    """(wall s, peak RSS MB, stdout, CPU s: user + system of all its threads) of one child
    process; raises with its stderr when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"{Path(args[0]).name} {args[1]} exited with {code}: "
                               f"{err.read().decode('utf-8', 'replace').strip()[-300:]}")
        return (seconds, usage.ru_maxrss / 1024, out.read().decode("utf-8", "replace"),
                usage.ru_utime + usage.ru_stime)


def best(args: list[str], repeat: int) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of the fastest of ``repeat`` runs."""
    return min((run(args) for _ in range(repeat)), key=lambda r: r[0])[:3]


def best_cpu(args: list[str], repeat: int) -> tuple[float, float, str, float]:
    """``best`` and the least CPU time of the same runs (what compares code on a busy machine)."""
    runs = [run(args) for _ in range(repeat)]
    return (*min(runs, key=lambda r: r[0])[:3], min(r[3] for r in runs))


def measure(n: int, repeat: int) -> dict:
    path = synthetic_ndjson(n)
    py = sys.executable
    row = {"n": n, "mb": path.stat().st_size / 1e6, "before": loadavg()}
    row["wc"], _, _ = best(["wc", "-l", str(path)], repeat)
    row["orjson"], _, _ = best([py, "-c", ORJSON, str(path)], repeat)
    row["rj"], row["rj_rss"], _, row["rj_cpu"] = best_cpu([py, "-c", read_json_code(), str(path)], repeat)
    row["load"], row["load_rss"], out, row["load_cpu"] = best_cpu([cli_exe(), "load", str(path)], repeat)
    if f"loaded {n:,} events" not in out:
        raise SystemExit(f"unexpected load result: {out}")
    db = OUT / f"summary-{n}.duckdb"
    for p in OUT.glob(db.name + "*"):
        p.unlink()
    row["load_db"], _, _, row["load_db_cpu"] = run([cli_exe(), "load", str(path), "--db", str(db)])
    try:
        # the engine on its own (a store that reopens without parsing), then load + analysis
        # in one process for the peak RSS: a difference of two runs went negative when the
        # load average fell between them
        row["engine"], row["engine_rss"], out, row["engine_cpu"] = best_cpu(
            [cli_exe(), "analyze", "--db", str(db), "--json", "--max-pairs", "0"], repeat)
        row["pairs"] = json.loads(out)["races"]["pair_count"]
        _, row["rss"], _, _ = run([cli_exe(), "analyze", str(path), "--json", "--max-pairs", "0"])
    except RuntimeError as exc:  # shown in the table: the other rows still count
        row["engine"] = row["rss"] = row["pairs"] = row["engine_cpu"] = row["engine_rss"] = None
        row["error"] = str(exc)
    finally:
        for p in OUT.glob(db.name + "*"):
            p.unlink()
    row["after"] = loadavg()
    return row


def _events(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,300000,1000000,3000000",
                    help="comma-separated event counts (default: 100000,300000,1000000,3000000)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest counts")
    a = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()]
    print(f"# raceway-tui CLI vs baselines ({env_line()}; best of {a.repeat}; inputs in {OUT})", flush=True)
    print("| events | MB | load | engine | peak RSS | racing pairs | read_json | orjson parse | wc -l | load --db "
          "| load / read_json | engine / read_json | KB/event | CPU: load, --db, engine / read_json "
          "| load average (1/5/15 min, before -> after) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for n in sizes:
        r = measure(n, a.repeat)
        rows.append(r)
        ok = r["engine"] is not None
        print(f"| {_events(n)} | {r['mb']:.0f} | {r['load']:.1f} s | "
              + (f"{r['engine']:.1f} s | {r['rss'] / 1024:.2f} GB | {r['pairs']:,}" if ok else "failed | - | -")
              + f" | {r['rj']:.1f} s | {r['orjson']:.1f} s | {r['wc']:.2f} s | {r['load_db']:.1f} s "
              f"| {r['load'] / r['rj']:.2f}x | "
              + (f"{r['engine'] / r['rj']:.2f}x | {r['rss'] * 1024 / n:.2f}" if ok else "- | -")
              + f" | {r['load_cpu'] / r['rj_cpu']:.2f}x, {r['load_db_cpu'] / r['rj_cpu']:.2f}x, "
              + (f"{r['engine_cpu'] / r['rj_cpu']:.2f}x " if ok else "- ")
              + f"({r['load_cpu']:.1f}, {r['load_db_cpu']:.1f}, "
              + (f"{r['engine_cpu']:.1f}" if ok else "-") + f" / {r['rj_cpu']:.1f} s)"
              + f" | {r['before']} -> {r['after']} |", flush=True)
    for r in rows:
        if r.get("error"):
            print(f"{_events(r['n'])}: analyze failed: {r['error']}")
    print("(wall seconds; load: `raceway-tui load FILE` (to memory); load --db: into a new store file; engine: "
          "`raceway-tui analyze --db STORE --json --max-pairs 0` on that store; peak RSS and KB/event: of "
          "`raceway-tui analyze FILE --json --max-pairs 0`, load + analysis in one process; read_json: DuckDB "
          "with schema inference into a table; CPU: user + system seconds of the load and engine processes over "
          "read_json's (the engine's peak RSS alone, on the store: " + ", ".join(
              f"{_events(r['n'])} {r['engine_rss'] / 1024:.2f} GB" for r in rows if r.get("engine_rss")) + "), "
          "which a busy machine disturbs less than wall time)")
    print("targets: load <= 1.5x read_json (never > 2x), engine <= 1x read_json, <= 1 KB/event, growth 3M/1M <= 3.3")
    for x, y in zip(rows, rows[1:]):
        engine = f"x{y['engine'] / x['engine']:.2f}" if x["engine"] and y["engine"] else "-"
        print(f"growth {_events(y['n'])}/{_events(x['n'])} (x{y['n'] / x['n']:.1f} events): "
              f"load x{y['load'] / x['load']:.2f}, engine {engine}, read_json x{y['rj'] / x['rj']:.2f}")


if __name__ == "__main__":
    main()
