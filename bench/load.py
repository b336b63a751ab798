"""Load benchmark: N synthetic events of realistic shape, NDJSON -> DuckDB store.

Prints load time, events/s and peak RSS. Run in a fresh process per size so the
RSS figure is this load's own. Target (2 cores): 1,000,000 events in <= 6 s and
<= 1.5 GB peak RSS.

    python bench/load.py [N ...]     (then the alternatives on the largest N)
"""

from __future__ import annotations

import subprocess
import sys
import time

from common import env_line, fmt_int, peak_rss_mb, synthetic_ndjson, usage


def run_one(n: int) -> None:
    from raceway_core.store import Store

    path = synthetic_ndjson(n)
    size_mb = path.stat().st_size / 1e6
    store = Store()
    started = time.perf_counter()
    [summary] = store.load([path])
    seconds = time.perf_counter() - started
    assert summary.loaded == n, summary.line()
    print(f"{fmt_int(n):>10} events  {size_mb:7.1f} MB  load {seconds:6.2f} s  "
          f"{n / seconds:>10,.0f} events/s  {size_mb / seconds:6.1f} MB/s  peak RSS {peak_rss_mb():7.0f} MB",
          flush=True)


def compare(n: int) -> None:
    """The alternatives measured on the same file: what the loader's design rests on."""
    import duckdb
    import orjson

    path = synthetic_ndjson(n)
    t = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
    orjson_s = time.perf_counter() - t
    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(f"CREATE TABLE j AS SELECT * FROM read_json('{path}', format='newline_delimited')").fetchall()
    duck_infer_s = time.perf_counter() - t
    print(f"   alternatives on the same {n:,} events: orjson parse only (1 core, no Arrow, no checks) "
          f"{orjson_s:.2f} s; DuckDB read_json with schema inference (no checks, no rejects) {duck_infer_s:.2f} s",
          flush=True)


def main() -> None:
    usage(__doc__)
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        run_one(int(sys.argv[2]))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--compare":
        compare(int(sys.argv[2]))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    print(f"# load benchmark ({env_line()})")
    for n in sizes:
        synthetic_ndjson(n)  # generate outside the timed process
        subprocess.run([sys.executable, __file__, "--one", str(n)], check=True)
    subprocess.run([sys.executable, __file__, "--compare", str(sizes[-1])], check=True)


if __name__ == "__main__":
    main()
