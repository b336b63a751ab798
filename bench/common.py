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
