"""Lazy raw (issue 18 items 1 and 3): an in-memory load that keeps each event's line offset
instead of its text, against the same load keeping the text (``Store(keep_raw=True)``, the
load as it was before), each in a fresh process, on the generated NDJSON of bench/load.py.
A bench of the mechanism (``Store.load`` in-process, both sides on one code base): the
CLI's own figures, against DuckDB's read_json, are bench/summary.py's.

Per side: load CPU (user + system, all threads), peak RSS, the events table's MB; then
what reads raw back: a free-text search (browse.Timeline.search, 3 texts: in every line,
in a tenth of them, in none), an export of every event (write_trace_json to /dev/null),
and 200 events' records (browse.event_record, what the detail panel reads).

    python bench/rawlazy.py [--sizes 300000,1000000] [--rounds 2]

Sides alternate (lazy, kept, lazy, kept ...) so that both see the same machine load; the
load average is printed before and after. Generated files go to $RACEWAY_BENCH_OUT
(default: $TMPDIR/raceway-bench), never the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from common import env_line, synthetic_ndjson

SEARCHES = ("sdk_language", "orders-2", "zzz-nowhere")


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def side(keep: bool, path: str) -> dict:
    import random
    import resource

    from raceway_core import browse, export
    from raceway_core.session import TraceSession
    from raceway_core.store import Store

    out: dict = {}
    c0 = _cpu()
    store = Store(keep_raw=keep)
    store.load([path])
    out["load"] = _cpu() - c0
    out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["mb"] = sum(r[0] for r in store.conn.execute(
        "SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'").fetchall()) / 1e6
    session = TraceSession(store)
    tl = browse.Timeline(session)
    for q in SEARCHES:
        c0 = _cpu()
        out[f"search {q}"] = (tl.search(q).matches, _cpu() - c0)
    with open(os.devnull, "wb") as sink:
        c0 = _cpu()
        export.write_trace_json(session, None, sink, summary=False)
        out["export"] = _cpu() - c0
    ids = store.sql("SELECT id FROM events USING SAMPLE 200 ROWS")["id"].to_pylist()
    random.shuffle(ids)
    c0 = _cpu()
    for i in ids:
        browse.event_record(store, i)
    out["event"] = (_cpu() - c0) / len(ids) * 1000
    store.close()
    return out


def _loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="300000,1000000", help="comma-separated event counts")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side, alternated")
    ap.add_argument("--side", nargs=2, metavar=("KEEP", "FILE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        print(json.dumps(side(a.side[0] == "kept", a.side[1])))
        return
    me = os.path.abspath(__file__)
    print(f"# lazy raw vs text kept ({env_line()}); CPU s (user + system), MB")
    print("| events | side | load CPU | peak RSS MB | table MB | search CPU (every / a tenth / no line) "
          "| export CPU | event_record ms | load average |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in a.sizes.split(",")):
        path = str(synthetic_ndjson(n))
        res: dict[str, list[dict]] = {"lazy": [], "kept": []}
        for _ in range(a.rounds):
            for name in ("lazy", "kept"):
                before = _loadavg()
                p = subprocess.run([sys.executable, me, "--side", name, path], capture_output=True, text=True)
                if p.returncode:
                    raise SystemExit(f"{name} failed: {p.stderr[-600:]}")
                r = json.loads(p.stdout.strip().splitlines()[-1])
                res[name].append(r)
                s = " / ".join(f"{r[f'search {q}'][1]:.2f} ({r[f'search {q}'][0]:,})" for q in SEARCHES)
                print(f"| {n:,} | {name} | {r['load']:.2f} | {r['rss']:.0f} | {r['mb']:.0f} | {s} | {r['export']:.2f} "
                      f"| {r['event']:.2f} | {before} -> {_loadavg()} |", flush=True)
        lz = min(r["load"] for r in res["lazy"])
        kp = min(r["load"] for r in res["kept"])
        rl = min(r["rss"] for r in res["lazy"])
        rk = min(r["rss"] for r in res["kept"])
        print(f"\n{n:,} events: load CPU lazy/kept = {lz:.2f}/{kp:.2f} = {lz / kp:.2f}x; "
              f"peak RSS {rl:.0f}/{rk:.0f} MB = {rl / rk:.2f}x (best of {a.rounds})\n", flush=True)


if __name__ == "__main__":
    main()
