"""Analysis benchmark: the causality engine on 1M events, and races on a hot variable.

1. 1,000,000 events over ~10,000 traces (3-8 contexts each): time of each stage
   of the engine after loading. Target: full analysis <= 6 s.
2. One variable, 20,000 accesses from 200 contexts (under one lock; then with 1%
   of updates skipping it): the races stage (fetch, sweep, group, store) vs
   comparing every pair of accesses with the same happens-before, and vs the
   brute-force reference of the tests (transitive closure + all pairs), each
   measured in this run on sizes they can finish. Target: >= 100x faster.

3. --cli N...: the user's path on N synthetic events, each in a fresh process: DuckDB
   read_json (baseline), `raceway-tui load FILE`, `raceway-tui analyze FILE --json
   --max-pairs 0` (load + analysis + document); wall time, CPU time (user + system), peak
   RSS, ratios, load average.
   Targets (issue 18): analysis of 1M within 1x read_json, load + analysis <= 1 KB/event.

    python bench/analyze.py [--events N] [--skip-big]
    python bench/analyze.py --cli 100000 300000 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, env_line, peak_rss_mb, synthetic_ndjson

sys.path.insert(0, str(ROOT.parent / "tests"))


def big(n: int) -> None:
    from raceway_core import TraceSession

    path = synthetic_ndjson(n, traces_hint=n // 100)
    s = TraceSession.open([])
    t = time.perf_counter()
    [summary] = s.load([path])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    eng = s.engine
    total = time.perf_counter() - t
    c = s.store.counts()
    print(f"1) {c['events']:,} events, {c['traces']:,} traces, {eng.n_ctx:,} contexts; load {load_s:.2f} s "
          f"(not counted); analysis {total:.2f} s; races {eng.race_count:,} pairs; peak RSS {peak_rss_mb():,.0f} MB")
    print("   stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in eng.timings.items())
          + " (locks and tables run in a thread beside clocks and critical)")
    s.close()


def _session(events):
    from raceway_core import TraceSession

    d = Path(tempfile.mkdtemp())
    p = d / "hot.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return TraceSession.open([p])


def all_pairs(eng, s) -> tuple[int, float]:
    """Every pair of accesses compared with the engine's own happens-before."""
    from raceway_core.causality.races import CLASS_OF, conflicts

    t = s.sql("""SELECT e.seq, e.access, o.ctx, l.locks FROM events e JOIN hb.ev o USING (seq)
                 LEFT JOIN hb.locksets l USING (seq) WHERE e.kind = 'StateChange'""")
    rows = eng.row_of(t["seq"].to_numpy()).tolist()
    cls = [CLASS_OF[a] for a in t["access"].to_pylist()]
    ctx = t["ctx"].to_pylist()
    locks = [set(x or ()) for x in t["locks"].to_pylist()]
    start = time.perf_counter()
    n = 0
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if ctx[i] == ctx[j] or not conflicts(cls[i], cls[j]) or locks[i] & locks[j]:
                continue
            if not eng.before(rows[i], rows[j]) and not eng.before(rows[j], rows[i]):
                n += 1
    return n, time.perf_counter() - start


def sweep_time(s) -> tuple[int, float]:
    eng = s.engine
    return eng.race_count, eng.timings["races"]


def hot(accesses: int, contexts: int, brute_sizes: list[int], ref_size: int) -> None:
    from raceway_core.synth import hot_variable
    from reference import Reference

    s = _session(hot_variable(accesses, contexts, unlocked_ratio=0.0))
    p0, t0 = sweep_time(s)
    p2, t2 = all_pairs(s.engine, s)
    assert p0 == p2 == 0
    print(f"2) hot variable, every update under the lock: {accesses:,} accesses from {contexts} contexts: "
          f"races stage {t0 * 1000:.0f} ms vs all pairs {t2 * 1000:.0f} ms -> {t2 / t0:.0f}x (no races, both)")
    s.close()
    s = _session(hot_variable(accesses, contexts))
    pairs, secs = sweep_time(s)
    eng = s.engine
    print(f"   hot variable, 1% of updates skip the lock: {accesses:,} accesses from {contexts} contexts: "
          f"races stage {secs * 1000:.0f} ms, "
          f"{pairs:,} racing pairs, {eng.race_visited:,} nodes examined; whole engine {eng.wall:.2f} s")
    s.close()
    for size in brute_sizes:
        s = _session(hot_variable(size, contexts))
        p1, t1 = sweep_time(s)
        p2, t2 = all_pairs(s.engine, s)
        assert p1 == p2, (p1, p2)
        print(f"   {size:>6,} accesses: races stage {t1 * 1000:8.1f} ms vs all pairs {t2 * 1000:9.1f} ms "
              f"-> {t2 / t1:6.0f}x  ({p1:,} pairs, both)")
        s.close()
    events = hot_variable(ref_size, min(contexts, ref_size // 4))
    s = _session(events)
    p1, t1 = sweep_time(s)
    start = time.perf_counter()
    ref = Reference(events, trust_clocks=False)
    p3 = len(ref.races())
    t3 = time.perf_counter() - start
    assert p1 == p3, (p1, p3)
    print(f"   {ref_size:>6,} accesses: races stage {t1 * 1000:8.1f} ms vs brute-force reference (closure + all pairs) "
          f"{t3 * 1000:9.1f} ms -> {t3 / t1:6.0f}x  ({p1:,} pairs, both)")
    s.close()


def cli(sizes: list[int]) -> None:
    import os

    from common import child_run_cpu, cli_exe, read_json_code

    for n in sizes:
        path = synthetic_ndjson(n, traces_hint=n // 100)
        rj, rj_rss, rj_cpu, _ = child_run_cpu([sys.executable, "-c", read_json_code(), str(path)])
        load, load_rss, load_cpu, _ = child_run_cpu([cli_exe(), "load", str(path)])
        full, rss, cpu, out = child_run_cpu([cli_exe(), "analyze", str(path), "--json", "--max-pairs", "0"])
        pairs = json.loads(out)["races"]["pair_count"]
        print(f"{n:>10,} events: read_json {rj:6.2f} s ({rj_cpu:6.2f} s CPU, {rj_rss:5.0f} MB) | load {load:6.2f} s "
              f"({load / rj:4.2f}x; {load_cpu:6.2f} s CPU, {load_rss:5.0f} MB) | analyze --json {full:6.2f} s "
              f"({cpu:6.2f} s CPU), minus load {full - load:6.2f} s ({(full - load) / rj:4.2f}x read_json; "
              f"{cpu - load_cpu:6.2f} s CPU, {(cpu - load_cpu) / rj_cpu:4.2f}x read_json's CPU), peak RSS {rss:6.0f} MB "
              f"({rss * 2**20 / n:5.0f} B/event) | {pairs:,} racing pairs | load average {os.getloadavg()[0]:.2f}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--cli", type=int, nargs="+", metavar="N", help="measure the CLI path on these sizes only")
    args = ap.parse_args()
    print(f"# analysis benchmark ({env_line()})")
    if args.cli:
        cli(args.cli)
        return
    if not args.skip_big:
        big(args.events)
    hot(20_000, 200, brute_sizes=[2_000, 6_000, 20_000], ref_size=1_500)


if __name__ == "__main__":
    main()
