"""Shared helpers for the benchmarks: synthetic inputs (cached), timers, peak RSS."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# Inputs and stores the benchmarks build (up to GBs) go outside the repository.
OUT = Path(os.environ.get("RACEWAY_BENCH_OUT") or Path(tempfile.gettempdir()) / "raceway-bench")
sys.path.insert(0, str(ROOT.parent))


def usage(doc: str | None) -> None:
    """-h / --help: print the script's docstring and stop (scripts that parse argv by hand)."""
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print((doc or "").strip() + f"\n\nInputs are cached in {OUT} (RACEWAY_BENCH_OUT overrides).")
        raise SystemExit(0)


def synthetic_ndjson(n_events: int, traces_hint: int | None = None, **kw) -> Path:
    """An NDJSON file of n_events synthetic events, generated once and cached in OUT.

    traces_hint: spread the events over about this many traces (default: ~110 events each).
    """
    from raceway_core.synth import SynthConfig, config_for_events, write_ndjson

    OUT.mkdir(parents=True, exist_ok=True)
    tag = "-".join(f"{k}{v}" for k, v in sorted(kw.items())) + (f"-t{traces_hint}" if traces_hint else "")
    path = OUT / f"synth-{n_events}{'-' + tag if tag else ''}.jsonl"
    if not path.exists():
        cfg = config_for_events(n_events, **kw)
        if traces_hint:
            per_trace = n_events / traces_hint
            scale = per_trace / (n_events / cfg.traces)
            lo, hi = cfg.events_per_context
            cfg = SynthConfig(**{**cfg.__dict__, "traces": traces_hint + traces_hint // 20,
                                 "events_per_context": (max(3, round(lo * scale)), max(4, round(hi * scale)))})
        tmp = path.with_suffix(".tmp")
        write_ndjson(tmp, cfg, limit=n_events)
        tmp.rename(path)
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(results: dict, name: str):
    t = time.perf_counter()
    yield
    results[name] = time.perf_counter() - t


def fmt_int(n: int) -> str:
    return f"{n:,}"


def env_line() -> str:
    import duckdb

    return f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, {os.cpu_count()} cpus"


_WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=sys.stdout); "
         "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
         "sys.stderr.write(f'\\nRSS_KB={u.ru_maxrss} CPU_S={u.ru_utime + u.ru_stime}\\n'); sys.exit(r.returncode)")


def child_run_cpu(args: list[str]) -> tuple[float, float, float, str]:
    """Run a command in a fresh child; (wall s, that command's peak RSS MB, its CPU s: user +
    system, all threads, stdout). Exit 1 (findings) is fine; anything else stops the
    benchmark with the child's stderr. Under a shifting load CPU seconds compare code,
    wall seconds compare experiences."""
    import subprocess

    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _WRAP, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode not in (0, 1):
        sys.stderr.write(r.stderr)
        raise SystemExit(f"{args[0]} failed with exit {r.returncode}")
    tail = r.stderr.rsplit("RSS_KB=", 1)[1].split()
    return wall, int(tail[0]) / 1024, float(tail[1].split("=", 1)[1]), r.stdout


def child_run(args: list[str]) -> tuple[float, float, str]:
    """child_run_cpu without the CPU time: (wall s, peak RSS MB, stdout)."""
    wall, rss, _, out = child_run_cpu(args)
    return wall, rss, out


def read_json_code() -> str:
    """`python -c` source: DuckDB read_json with schema inference of the file in argv[1] (the baseline)."""
    return ("import duckdb, sys; c = duckdb.connect(); "
            "c.execute(f\"CREATE TABLE j AS SELECT * FROM read_json('{sys.argv[1]}', format='newline_delimited')\")"
            ".fetchall()")


def cli_exe() -> str:
    return str(Path(sys.executable).with_name("raceway-tui"))
