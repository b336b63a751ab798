"""Load benchmark: `raceway-tui load FILE` as a user runs it, against baselines measured in the same run.

For each size N, on one generated NDJSON file (raceway_core.synth, realistic shapes):

* baselines: `wc -l`; an orjson parse of every line; DuckDB `read_json` with schema
  inference into a table (no checks, no rejects) - each in its own process;
* the user's path: `raceway-tui load FILE` (in memory) and `raceway-tui load FILE --db X`,
  each a subprocess of the CLI, timed wall-clock with its own peak RSS (wait4).

Prints one row per size with the ratios to read_json, KB of peak RSS per event, the
load average before and after, and the time ratio of the largest size to the one
before (linear growth: 3M/1M <= 3.3).

    python bench/load.py [--sizes 100000,300000,1000000] [--out DIR] [--repeat 1]

Generated files and stores go to --out (default: $TMPDIR/raceway-bench), never the repo.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

READ_JSON = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE j AS SELECT * FROM read_json(?, format='newline_delimited')", [sys.argv[1]]).fetchall()
"""
ORJSON = """
import orjson, sys
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
"""


def generate(n: int, out: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from raceway_core.synth import config_for_events, write_ndjson

    path = out / f"synth-{n}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        write_ndjson(tmp, config_for_events(n), limit=n)
        tmp.rename(path)
    return path


def run(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, output) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    out = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{out}")
    return seconds, usage.ru_maxrss / 1024, out


def best(args: list[str], repeat: int) -> tuple[float, float, str]:
    runs = [run(args) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def measure(n: int, out: Path, repeat: int) -> dict:
    path = generate(n, out)
    py = sys.executable
    cli = [py, "-m", "raceway_tui.cli", "load", str(path)]
    row = {"n": n, "mb": path.stat().st_size / 1e6, "load_before": loadavg()}
    row["wc"], _, _ = best(["wc", "-l", str(path)], repeat)
    row["orjson"], _, _ = best([py, "-c", ORJSON, str(path)], repeat)
    row["read_json"], row["read_json_rss"], _ = best([py, "-c", READ_JSON, str(path)], repeat)
    row["mem"], row["mem_rss"], text = best(cli, repeat)
    if f"loaded {n:,} events" not in text:
        raise SystemExit(f"unexpected load result: {text}")
    db = out / f"store-{n}.duckdb"
    times = []
    for _ in range(repeat):
        for p in out.glob(db.name + "*"):
            p.unlink()
        times.append(run(cli + ["--db", str(db)]))
    row["db"], row["db_rss"], _ = min(times, key=lambda r: r[0])
    row["db_mb"] = sum(p.stat().st_size for p in out.glob(db.name + "*")) / 1e6
    for p in out.glob(db.name + "*"):
        p.unlink()
    row["load_after"] = loadavg()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,300000,1000000",
                    help="comma-separated event counts (default: 100000,300000,1000000; add 3000000 with ~8 GB free)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "raceway-bench",
                    help="where generated files and stores go (default: $TMPDIR/raceway-bench)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest counts")
    ap.add_argument("--clean", action="store_true", help="remove the generated files afterwards")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()]

    import duckdb
    import orjson
    print(f"# raceway-tui load vs baselines; python {sys.version.split()[0]}, duckdb {duckdb.__version__}, "
          f"orjson {orjson.__version__}, {os.cpu_count()} cpus; best of {a.repeat}", flush=True)
    head = (f"{'events':>10} {'MB':>6} | {'wc -l':>6} {'orjson':>7} {'read_json':>9} {'RSS':>6} | "
            f"{'load':>6} {'x rj':>5} {'RSS':>6} {'KB/ev':>6} | {'--db':>6} {'x rj':>5} {'RSS':>6} {'file':>6} | load avg")
    print(head)
    print("-" * len(head))
    rows = []
    for n in sizes:
        r = measure(n, a.out, a.repeat)
        rows.append(r)
        print(f"{n:>10,} {r['mb']:>6.0f} | {r['wc']:>6.2f} {r['orjson']:>7.2f} {r['read_json']:>9.2f} "
              f"{r['read_json_rss']:>6.0f} | {r['mem']:>6.2f} {r['mem'] / r['read_json']:>5.2f} {r['mem_rss']:>6.0f} "
              f"{r['mem_rss'] * 1024 / n:>6.2f} | {r['db']:>6.2f} {r['db'] / r['read_json']:>5.2f} {r['db_rss']:>6.0f} "
              f"{r['db_mb']:>6.0f} | {r['load_before']} -> {r['load_after']}", flush=True)
    print("(seconds wall; RSS: peak MB of that process; x rj: time / read_json's; file: MB of the --db store)")
    for a_, b_ in zip(rows, rows[1:]):
        print(f"growth {b_['n']:,}/{a_['n']:,} events (x{b_['n'] / a_['n']:.1f}): load x{b_['mem'] / a_['mem']:.2f}, "
              f"--db x{b_['db'] / a_['db']:.2f}, read_json x{b_['read_json'] / a_['read_json']:.2f}")
    if a.clean:
        shutil.rmtree(a.out, ignore_errors=True)


if __name__ == "__main__":
    main()
