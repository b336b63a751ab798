"""The engine as a user runs it, A/B: `raceway-tui analyze --db STORE --json --max-pairs 0` on
a freshly loaded (never analysed) store, by this tree and by another one (e.g. a `git archive`
of main), alternating, beside DuckDB read_json of the same file (the baseline), each in a
fresh process; CPU time (user + system: the machine's load shifts wall time), wall time,
peak RSS, the output compared byte for byte, and the load average.

    python bench/engine_ab.py FILE.jsonl                       # this tree only
    python bench/engine_ab.py FILE.jsonl --base /tmp/main-tree --rounds 2

The store is loaded once with this tree (`raceway-tui load FILE --db`) into the output
directory and copied before each run (an analysed store is restored, not recomputed).
Target (issue 18 item 2): analysis of 1M events at most 1x read_json.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import OUT, child_run_cpu, read_json_code

HERE = Path(__file__).resolve().parent.parent


def run(tree: Path, args: list[str], out: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of `python -m raceway_tui.cli ARGS` with ``tree`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    wrap = ("import os, resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'wb')); w = time.perf_counter() - t; "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(w, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", wrap, str(out), sys.executable, "-m", "raceway_tui.cli", *args],
                       capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if r.returncode not in (0, 1):
        sys.stderr.write(r.stderr)
        raise SystemExit(f"{tree}: raceway-tui {' '.join(args)} failed ({r.returncode})")
    wall, cpu, rss = map(float, r.stdout.split())
    return wall, cpu, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=Path, help="an NDJSON trace file (e.g. from bench/load.py's generator)")
    ap.add_argument("--base", type=Path, help="another source tree to compare with (its raceway_core/raceway_tui)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT / "engine_ab", help=f"work directory (default {OUT / 'engine_ab'})")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fresh = args.out / "fresh.duckdb"
    if fresh.exists():
        fresh.unlink()
    run(HERE, ["load", str(args.file), "--db", str(fresh)], args.out / "load.txt")
    sides = [("this", HERE)] + ([("base", args.base.resolve())] if args.base else [])
    print(f"# engine A/B on {args.file} (python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f})", flush=True)
    totals: dict[str, list[float]] = {}
    for n in range(args.rounds):
        rj_wall, _, rj_cpu, _ = child_run_cpu([sys.executable, "-c", read_json_code(), str(args.file)])
        print(f"round {n + 1}: read_json {rj_wall:.2f} s (CPU {rj_cpu:.2f} s); load average {os.getloadavg()[0]:.2f}",
              flush=True)
        order = sides if n % 2 == 0 else sides[::-1]
        for name, tree in order:
            db = args.out / f"{name}.duckdb"
            shutil.copyfile(fresh, db)
            wall, cpu, rss = run(tree, ["analyze", "--db", str(db), "--json", "--max-pairs", "0"], args.out / f"{name}.json")
            totals.setdefault(name, []).append(cpu / max(rj_cpu, 1e-9))
            print(f"  {name:>4}: analyze --db --json {wall:6.2f} s (CPU {cpu:6.2f} s = {cpu / max(rj_cpu, 1e-9):.2f}x "
                  f"read_json), peak RSS {rss:5.0f} MB; load average {os.getloadavg()[0]:.2f}", flush=True)
            db.unlink()
        if args.base:
            same = filecmp.cmp(args.out / "this.json", args.out / "base.json", shallow=False)
            print(f"  documents {'identical' if same else 'DIFFER'}", flush=True)
    print("mean CPU ratio to read_json: " + ", ".join(f"{k} {sum(v) / len(v):.2f}x" for k, v in totals.items()))


if __name__ == "__main__":
    main()
