"""Where a file load's CPU and memory go (issue 18 items 1 and 3), beside DuckDB read_json.

For each size N, on the generated NDJSON file of bench/load.py, each part in a fresh
process (CPU: user + system seconds of the work itself, all threads; MB: DuckDB's
in-memory table after it; peak RSS: the whole process):

* read_json: DuckDB `read_json` with schema inference into a table (the baseline);
* reader: the loader's reading of the file into Arrow chunks (line split, UTF-8, guard);
* insert: reader + the validating SQL insert of every chunk, each committed, raw kept;
* insert, no raw: the same with the raw column left NULL (what the typed columns cost);
* insert, rest only: a sizing prototype of storing, instead of raw, the event less the
  fields the typed columns hold (``json_merge_patch`` removing ids, clock, lock set and
  metadata strings; not exact: it drops null-vs-absent), to size that redesign;
* checkpoint: one CHECKPOINT after each insert (what compressing the rows costs), and
  the table's size after it;
* Store.load: the store's in-memory load (its checkpoints at each row group), which keeps
  each event's line offset instead of its text (rawtext); and the same keeping the text
  (``Store(keep_raw=True)``, what ``sql -q`` naming raw does, and the load before lazy raw).

    python bench/loadparts.py [--sizes 300000,1000000]

Prints a Markdown table with the load average before and after each size. Generated
files go to $RACEWAY_BENCH_OUT (default: $TMPDIR/raceway-bench), never the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from common import env_line, read_json_code, synthetic_ndjson

PARTS = ("reader", "insert", "insert_noraw", "insert_rest", "store_load", "store_load_raw")
_REST_PATCH = ('{"id":null,"trace_id":null,"parent_id":null,"causality_vector":null,"lock_set":null,'
               '"metadata":{"thread_id":null,"service_name":null,"instance_id":null,"distributed_span_id":null}}')


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _table_mb(conn) -> float:
    rows = conn.execute("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'").fetchall()
    return sum(r[0] for r in rows) / 1e6


def part(name: str, path: str) -> dict:
    """Run one part in this process; its figures."""
    from pathlib import Path

    import duckdb

    from raceway_core import schema
    from raceway_core.loading import _prefetch, ingest, reading
    from raceway_core.store import Store

    out: dict = {}
    if name in ("store_load", "store_load_raw"):
        c0 = _cpu()
        with Store(keep_raw=name == "store_load_raw") as store:
            store.load([Path(path)])
            out["cpu"] = _cpu() - c0
            out["mb"] = _table_mb(store.conn)
        return out
    src = reading.Source(Path(path), "f")
    if name == "reader":
        c0 = _cpu()
        for _ in _prefetch(src.chunks(), depth=1):
            pass
        out["cpu"] = _cpu() - c0
        return out
    conn = duckdb.connect()
    schema.session_setup(conn)
    conn.execute("SET checkpoint_threshold = '64GB'").fetchall()  # as the Store: no automatic checkpoints
    ddl, sql = schema.EVENTS, ingest.FAST_INSERT
    if name == "insert_noraw":
        sql = sql.replace("__RAW__", "NULL")
    if name == "insert_rest":
        sql = sql.replace("__RAW__", f"json_merge_patch(text, '{_REST_PATCH}')")
    conn.execute(ddl).fetchall()
    c0 = _cpu()
    for chunk in _prefetch(src.chunks(), depth=1):
        json_text = chunk.table.schema.field("text").type == reading.JSON_TEXT
        conn.register("_chunk", chunk.table)
        conn.execute(ingest.with_recs(sql, chunk.expand, json_text), [0, "f"]).fetchall()
        conn.unregister("_chunk")
    out["cpu"] = _cpu() - c0
    out["mb"] = _table_mb(conn)
    c0 = _cpu()
    conn.execute("CHECKPOINT").fetchall()
    out["ckpt_cpu"] = _cpu() - c0
    out["ckpt_mb"] = _table_mb(conn)
    return out


def _child(args: list[str]) -> tuple[dict, float]:
    """(the part's figures, the child's peak RSS MB)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[1:3])} failed: {stderr.decode()[-400:]}")
    res = json.loads(stdout.decode().strip().splitlines()[-1])
    return res, res.pop("rss_mb")


def _loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="300000,1000000", help="comma-separated event counts")
    ap.add_argument("--part", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.part:
        import resource

        res = part(*a.part)
        res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return
    me = os.path.abspath(__file__)
    print(f"# load parts ({env_line()}); CPU s (user + system of the work), table MB, peak RSS MB")
    print("| events | read_json CPU | reader CPU | insert CPU (raw / no raw) | checkpoint CPU (raw / no raw) "
          "| table MB before / after checkpoint (raw; no raw; rest) | insert CPU, checkpoint CPU (rest) "
          "| Store.load CPU, peak RSS, table MB | same, text kept | load average |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in a.sizes.split(",")):
        path = str(synthetic_ndjson(n))
        before = _loadavg()
        code = "import os; t = os.times(); " + read_json_code() + "; u = os.times(); print(u.user + u.system - t.user - t.system)"
        rj = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True)
        rj_cpu = float(rj.stdout.strip().splitlines()[-1])
        r = {p: _child([sys.executable, me, "--part", p, path]) for p in PARTS}
        (ins, _), (nor, _), (rest, _) = r["insert"], r["insert_noraw"], r["insert_rest"]
        sl, sl_rss = r["store_load"]
        sk, sk_rss = r["store_load_raw"]
        print(f"| {n:,} | {rj_cpu:.2f} | {r['reader'][0]['cpu']:.2f} | {ins['cpu']:.2f} / {nor['cpu']:.2f} "
              f"| {ins['ckpt_cpu']:.2f} / {nor['ckpt_cpu']:.2f} "
              f"| {ins['mb']:.0f} / {ins['ckpt_mb']:.0f}; {nor['mb']:.0f} / {nor['ckpt_mb']:.0f}; "
              f"{rest['mb']:.0f} / {rest['ckpt_mb']:.0f} | {rest['cpu']:.2f}, {rest['ckpt_cpu']:.2f} "
              f"| {sl['cpu']:.2f} ({sl['cpu'] / rj_cpu:.2f}x read_json), {sl_rss:.0f} MB ({sl_rss * 1024 / n:.2f} KB/event), "
              f"{sl['mb']:.0f} MB | {sk['cpu']:.2f} ({sk['cpu'] / rj_cpu:.2f}x), {sk_rss:.0f} MB, {sk['mb']:.0f} MB "
              f"| {before} -> {_loadavg()} |", flush=True)


if __name__ == "__main__":
    main()
