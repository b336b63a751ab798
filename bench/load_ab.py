"""A/B of `raceway-tui load FILE` (to memory and with --db) between source trees (issue 18 item 1).

Each tree (a checkout, e.g. `git archive main | tar -x -C /tmp/a`) runs the CLI as
`python -m raceway_tui.cli` with PYTHONPATH on that tree, in this interpreter (same venv),
in a fresh process; trees alternate within each round, beside DuckDB `read_json` with
schema inference into a table (the baseline), so a load that shifts meanwhile hits all
alike. Prints wall, CPU (user + system, all threads: what other work on the machine
disturbs least), peak RSS, the ratio of CPU to read_json's in the same round, and the load
average; then per tree and mode the median CPU over the rounds.

    python bench/load_ab.py --trees /tmp/a /path/to/branch [--file F | --events N] [--rounds 2]

--db stores go to $RACEWAY_BENCH_OUT (default: $TMPDIR/raceway-bench) and are removed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from common import OUT, child_run_cpu, env_line, read_json_code, synthetic_ndjson


def _run(args: list[str], tree: str | None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one fresh process."""
    old = os.environ.get("PYTHONPATH")
    if tree:
        os.environ["PYTHONPATH"] = tree
    try:
        wall, rss, cpu, _ = child_run_cpu(args)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    return wall, cpu, rss


def _loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", nargs="+", required=True, help="source trees (holding raceway_core/, raceway_tui/)")
    ap.add_argument("--file", help="an NDJSON file (default: the generated one of --events)")
    ap.add_argument("--events", type=int, default=1_000_000, help="events of the generated file")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--modes", default="mem,db", help="mem, db or both (comma-separated)")
    a = ap.parse_args()
    path = str(Path(a.file).resolve()) if a.file else str(synthetic_ndjson(a.events))
    trees = [str(Path(t).resolve()) for t in a.trees]
    modes = a.modes.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    os.chdir(OUT)  # `python -m` puts the working directory first on sys.path: not a tree's
    db = OUT / f"load-ab-{os.getpid()}.duckdb"
    print(f"# load A/B on {path} ({env_line()}); wall s, CPU s (user + system), peak RSS MB")
    print("| round | run | wall | CPU | CPU / read_json | RSS | load average |")
    print("|---|---|---|---|---|---|---|")
    cpus: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    for r in range(1, a.rounds + 1):
        before = _loadavg()
        w, base, rss = _run([sys.executable, "-c", read_json_code(), path], None)
        print(f"| {r} | read_json | {w:.2f} | {base:.2f} | 1.00 | {rss:.0f} | {before} |", flush=True)
        for tree in trees:
            for mode in modes:
                extra = ["--db", str(db)] if mode == "db" else []
                for p in (db, Path(str(db) + ".wal")):
                    p.unlink(missing_ok=True)
                before = _loadavg()
                w, cpu, rss = _run([sys.executable, "-m", "raceway_tui.cli", "load", path, *extra], tree)
                for p in (db, Path(str(db) + ".wal")):
                    p.unlink(missing_ok=True)
                cpus.setdefault((tree, mode), []).append(cpu)
                ratios.setdefault((tree, mode), []).append(cpu / base)
                print(f"| {r} | {Path(tree).name} {mode} | {w:.2f} | {cpu:.2f} | {cpu / base:.2f}x | {rss:.0f} "
                      f"| {before} -> {_loadavg()} |", flush=True)
    print("\nmedian over rounds: " + "; ".join(
        f"{Path(t).name} {m}: CPU {statistics.median(v):.2f} s ({statistics.median(ratios[t, m]):.2f}x read_json)"
        for (t, m), v in cpus.items()))


if __name__ == "__main__":
    main()
