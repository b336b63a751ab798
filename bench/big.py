"""The 10M-event run (issue 18 item 3): does a file this size load and analyse on this machine?

Generates (once, cached beside the other inputs) a synthetic NDJSON file of N events
(`bench/load.py`'s generator, ~100 events per trace), then runs the user's path in a child:
`raceway-tui analyze FILE --db STORE --json --max-pairs 0` (a --db store, so DuckDB can
spill to its file rather than hold everything in memory). A watchdog stops the child when
its resident memory passes --max-rss-gb (the machine is shared: better a clear "stopped"
than the kernel's OOM killer picking a process). Prints wall time, the child's peak RSS
(bytes per event), racing pairs and the load average; --baseline also times DuckDB
read_json on the same file. Last step of `make bench` (BENCH_BIG= skips it; an hour on 2 loaded cores),
never of `make test`.

    python bench/big.py                      # 10,000,000 events
    python bench/big.py --events 3000000 --baseline
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from common import OUT, child_run, cli_exe, env_line, read_json_code, synthetic_ndjson


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_capped(args: list[str], cap: int) -> tuple[float, float, int, str, int, bool]:
    """(wall s, CPU s (user + system), peak RSS bytes, stdout, exit code, stopped by the watchdog)."""
    t = time.perf_counter()
    with open(OUT / "big-stdout.json", "w+b") as out:
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE)
        stopped = threading.Event()

        def watch() -> None:
            while p.poll() is None:
                if rss_bytes(p.pid) > cap:
                    stopped.set()
                    p.kill()
                    return
                time.sleep(0.25)

        threading.Thread(target=watch, daemon=True).start()
        err_chunks = []
        reader = threading.Thread(target=lambda: err_chunks.append(p.stderr.read()), daemon=True)
        reader.start()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
        wall = time.perf_counter() - t
        out.seek(0)
        text = out.read().decode()
    if p.returncode not in (0, 1) and not stopped.is_set():
        sys.stderr.write(b"".join(err_chunks).decode(errors="replace")[-4000:])
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, text, p.returncode, stopped.is_set()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--max-rss-gb", type=float, default=20.0, help="stop the child past this resident size")
    ap.add_argument("--baseline", action="store_true", help="also time DuckDB read_json on the file")
    args = ap.parse_args()
    n = args.events
    print(f"# {n:,}-event run ({env_line()}, load average {os.getloadavg()[0]:.2f})", flush=True)
    t = time.perf_counter()
    path = synthetic_ndjson(n, traces_hint=n // 100)
    print(f"input {path} ({path.stat().st_size / 2**30:.2f} GiB; ready in {time.perf_counter() - t:.0f} s)", flush=True)
    if args.baseline:
        rj, rj_rss, _ = child_run([sys.executable, "-c", read_json_code(), str(path)])
        print(f"read_json {rj:.1f} s, {rj_rss:,.0f} MB", flush=True)
    db = OUT / f"big-{n}.duckdb"
    for f in (db, db.with_name(db.name + ".wal")):
        f.unlink(missing_ok=True)
    wall, cpu, peak, out, code, stopped = run_capped(
        [cli_exe(), "analyze", str(path), "--db", str(db), "--json", "--max-pairs", "0"], int(args.max_rss_gb * 2**30))
    load = os.getloadavg()[0]
    if stopped:
        print(f"STOPPED after {wall:.0f} s: resident memory passed {args.max_rss_gb:.1f} GB "
              f"(peak {peak / 2**30:.2f} GB, {peak / n:,.0f} B/event) | load average {load:.2f}")
        raise SystemExit(1)
    if code not in (0, 1):
        print(f"FAILED (exit {code}) after {wall:.0f} s, peak RSS {peak / 2**30:.2f} GB | load average {load:.2f}")
        raise SystemExit(1)
    doc = json.loads(out)
    print(f"{doc['events']:,} events, {doc['traces']:,} traces: load + analysis {wall:.0f} s ({cpu:.0f} s CPU), peak RSS "
          f"{peak / 2**30:.2f} GB ({peak / n:,.0f} B/event), {doc['races']['pair_count']:,} racing pairs, "
          f"{len(doc['critical_paths']):,} critical paths | load average {load:.2f}")
    for f in (db, db.with_name(db.name + ".wal")):
        f.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
