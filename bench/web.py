"""Benchmark of `raceway-tui web` in headless Chromium: time from page request to the first
painted explorer, and memory per browser session.

    python bench/web.py [--sessions N] [--events N] [--samples-only]

Runs the real command (`raceway-tui web --port 0`) on two inputs: the bundled sample traces
(three files) and a DuckDB store of N synthetic events (default 100,000; built once in the
temp folder, RACEWAY_BENCH_OUT overrides; the server analyses a copy of it once, and the tabs
are opened after that, as they open the analysed copy). For each, N browser tabs (default 3) open one
after another in the system's Chromium (Playwright, /usr/bin/chromium); per tab:

- page: the HTML page answered (page request -> response);
- socket: the page opened its websocket (its script loaded; the server starts the app);
- first bytes: the tab received the app's first output (its process started, Textual loaded);
- first paint: the tab shows the explorer (its header, read back from the terminal bytes
  the page received);
- ready: the explorer's status says ready (loaded and analysed);
- RSS: the tab's app process (one `raceway-tui open` per tab), once ready, with all tabs open.

Baselines measured in the same run: for the sample traces, the same command in a terminal
(`raceway-tui FILES` in a pseudo-terminal, bench/tui.py's startup measure, one run before each
tab): first frame and `● ready`, and the web/terminal ratio; the web server's own RSS (no
session); the first tab's times (later tabs show what a running session costs the next one).
The load average is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from common import OUT, env_line, fmt_int

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIRST_PAINT = r"raceway-tui"  # the header: the app's first frame
READY = r"raceway-tui\s+● ready"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_db(n: int) -> Path:
    from common import synthetic_ndjson

    from raceway_core.store import Store

    path = OUT / f"web-{n}.duckdb"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        store = Store(tmp)
        store.load([synthetic_ndjson(n)])
        store.close()
        tmp.rename(path)
    return path


def run(label: str, args: list[str], sessions: int, browser, terminal: list[Path] | None = None) -> None:
    """``terminal``: these files are also opened in a pseudo-terminal before each tab (the baseline)."""
    from tests.web_support import Screen, WebProcess
    from tui import startup_once

    base_runs = []
    with WebProcess(*args, "--max-sessions", str(sessions)) as web:
        time.sleep(0.5)
        if "--db" in args:  # the server analyses a copy once; measure the sessions that copy it
            t = time.perf_counter()
            while "analysed once" not in "".join(web.output) and time.perf_counter() - t < 600:
                time.sleep(0.1)
            print(f"\n{label}: the server analysed its copy of the store in {time.perf_counter() - t + 0.5:.1f} s")
        base = rss_mb(web.proc.pid)
        pages, rows = [], []
        for i in range(sessions):
            if terminal:
                base_runs.append(startup_once(terminal))
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            screen = Screen(page)
            t0 = time.perf_counter()
            page.goto(web.url, wait_until="commit")
            t_page = time.perf_counter() - t0
            screen.wait_for(FIRST_PAINT, timeout=120)
            t_paint = time.perf_counter() - t0
            screen.wait_for(READY, timeout=600)
            t_ready = time.perf_counter() - t0
            pages.append(page)
            rows.append((t_page, screen.opened - t0, screen.first_frame - t0, t_paint, t_ready))
        apps = web.children()
        rss = [rss_mb(pid) for pid in apps]
        server = rss_mb(web.proc.pid)
        for page in pages:
            page.close()
    print(f"\n{label}: {sessions} tabs, one after another")
    print(f"  {'tab':>4} {'page ms':>9} {'socket ms':>10} {'first bytes ms':>15} {'first paint ms':>15} {'ready ms':>10}")
    for i, (a, b, c, d, e) in enumerate(rows, 1):
        print(f"  {i:>4} {a * 1000:>9.0f} {b * 1000:>10.0f} {c * 1000:>15.0f} {d * 1000:>15.0f} {e * 1000:>10.0f}")
    paint = [r[3] for r in rows]
    print(f"  first paint: first tab {paint[0] * 1000:.0f} ms, median {statistics.median(paint) * 1000:.0f} ms; "
          f"later tabs / first: {statistics.median(paint[1:] or paint) / paint[0]:.2f}x")
    if base_runs:
        frame = statistics.median(r["first_frame_s"] for r in base_runs)
        ready = statistics.median(r["ready_s"] for r in base_runs)
        print(f"  baseline, the same files in a terminal: first frame {frame * 1000:.0f} ms, ready {ready * 1000:.0f} ms "
              f"(median of {len(base_runs)}); web / terminal: first paint {statistics.median(paint) / frame:.2f}x, "
              f"ready {statistics.median(r[4] for r in rows) / ready:.2f}x")
    print(f"  RSS per session (app process): {', '.join(f'{r:.0f}' for r in rss)} MB "
          f"(median {statistics.median(rss):.0f} MB); web server {base:.0f} MB before, {server:.0f} MB with "
          f"{len(apps)} sessions")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=f"Inputs are cached in {OUT}.")
    ap.add_argument("--sessions", type=int, default=3, help="browser tabs per input (default 3)")
    ap.add_argument("--events", type=int, default=100_000, help="synthetic events in the --db input (default 100,000)")
    ap.add_argument("--samples-only", action="store_true", help="only the bundled sample traces")
    opts = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file

    from tests.web_support import SAMPLES, launch, missing_browser

    reason = missing_browser()
    if reason:
        print(f"bench/web.py: skipped: {reason}")
        return
    from playwright.sync_api import sync_playwright

    print(f"raceway-tui web benchmark ({env_line()}; load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f})")
    inputs = [("sample traces (3 files, " + fmt_int(sum(1 for f in SAMPLES.glob('*.jsonl') if f.name in SAMPLE_FILES
                                                        for _ in f.open())) + " events)",
               [str(SAMPLES / f) for f in SAMPLE_FILES])]
    if not opts.samples_only:
        inputs.append((f"--db with {fmt_int(opts.events)} synthetic events", ["--db", str(synthetic_db(opts.events))]))
    with sync_playwright() as p:
        browser = launch(p)
        try:
            for i, (label, args) in enumerate(inputs):
                run(label, args, opts.sessions, browser, [Path(a) for a in args] if i == 0 else None)
        finally:
            browser.close()
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


SAMPLE_FILES = ["banking-unsafe.jsonl", "distributed-orders.jsonl", "slow-api.jsonl"]

if __name__ == "__main__":
    main()
