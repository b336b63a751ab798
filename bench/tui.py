"""Explorer benchmark on a 1M-event store: first paint, first visit of every pane,
key-to-repaint latency in every pane.

    python bench/tui.py [N] [--analysed] [--think S,...] [--stress K] [--baseline DIR]
    python bench/tui.py --startup [--baseline DIR]

The store (N synthetic events, default 1,000,000; 100000 for a quick run) is loaded once
into a DuckDB file in the temp folder (RACEWAY_BENCH_OUT overrides) and reopened by each
run (what ``raceway-tui --db`` does). Each measurement runs in a fresh process, headless
(Textual's pilot), at 120x40:

- first paint: from creating the app to the first screen showing the trace list and a
  page of timeline rows (events in time order: the analysis runs in the background);
  j/k on the timeline meanwhile;
- with --analysed: once the analysis is shown (the store reopened: its analysis reused),
  after a pause of S seconds (--think, a person reading the screen; 0 = at once), every
  pane of the app's pane list (RacewayApp.PANES, whatever panes it has) is visited in tab
  order with its number key: first visit = key to the first screen update showing the
  pane's data; then j/k in the pane's main widget (the focused one): key to the first
  screen update with the cursor moved, keys 0.15 s apart (--pace; what follows the cursor,
  like the detail panel, is drawn in between); on the timeline also jumps (G, g, PgDn)
  that need a page from the database. Then, as a person goes on, the first trace of the
  trace list is chosen (t, j, Enter) and every pane is visited again in that scope (the
  call tree and replay are per trace: only then do they have rows).

Every figure is from key to screen update (what a terminal would be sent). --stress K runs
K busy processes meanwhile (load on top of the machine's own); the load average is printed.
--baseline DIR measures the source tree DIR too (e.g. `git archive` of an earlier commit),
alternating runs on the same store, for before/after ratios in one run.

Targets: first paint <= 1.5 s, first visit of every pane <= 0.5 s, key-to-repaint p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, env_line, fmt_int, synthetic_ndjson

SIZE = (120, 40)
MOVES = {"timeline": 200}  # j/k presses per pane (others: MOVES_OTHER)
MOVES_OTHER = 60
PACE = float(os.environ.get("RACEWAY_BENCH_PACE", "0.15"))  # s from a repaint to the next j/k: one press at a time


def store_path(n: int) -> Path:
    """A DuckDB file with n synthetic events (built once)."""
    from raceway_core.store import Store

    path = OUT / f"tui-{n}.duckdb"
    if not path.exists():
        src = synthetic_ndjson(n)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        store = Store(tmp)
        [summary] = store.load([src])
        store.close()
        assert summary.loaded == n, summary.line()
        tmp.rename(path)
    return path


def forget_analysis(path: Path) -> None:
    """Make the next open analyse again (a reopened store otherwise reuses its analysis)."""
    from raceway_core.store import Store

    store = Store(path)
    store.sql("DELETE FROM meta WHERE key IN ('hb_fingerprint', 'hb_races')")
    store.close()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


class Probe:
    """Times the screen updates the app produces (what a terminal would be sent): the first
    update made while ``ready()`` holds ends a measurement."""

    def __init__(self, app) -> None:
        self.ready = None
        self.hit: float | None = None
        original = app._display

        def display(screen, renderable):
            if renderable is not None and self.ready is not None and self.hit is None and self.ready():
                self.hit = time.perf_counter()
            return original(screen, renderable)

        app._display = display

    def arm(self, ready) -> None:
        self.ready, self.hit = ready, None

    async def wait(self, t0: float, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while self.hit is None:
            if time.perf_counter() > deadline:
                raise TimeoutError("no repaint")
            await asyncio.sleep(0.0005)
        return self.hit - t0


def _cursor(widget) -> int | None:
    """The row a cursor widget is on (ours: .cursor; Textual's DataTable / Tree: cursor_row / cursor_line)."""
    for attr in ("cursor", "cursor_row", "cursor_line"):
        v = getattr(widget, attr, None)
        if isinstance(v, int):
            return v
    return None


def _rows(widget) -> int:
    for attr in ("rows_total", "row_count", "last_line"):
        v = getattr(widget, attr, None)
        if isinstance(v, int):
            return v
    return 0


def _shown(app, pid: str) -> bool:
    """The pane's data is there: loaded for the current scope, its main widget filled."""
    pane = app.pane(pid)
    if not getattr(pane, "ready", True):
        return False
    if pid == "timeline":
        return pane.view.row() is not None or pane.view.count == 0
    return True


async def measure(db: Path, analysed: bool, think: float, timeout: float) -> dict:
    from raceway_tui.app import create_app

    out: dict = {"load_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    app = create_app(db=db, pane="timeline")  # its first paint is the timeline's page
    probe = Probe(app)

    def painted() -> bool:  # a page of the timeline and the trace list are on screen
        try:
            v, t = app.pane("timeline").view, app.query_one("#trace-table")
        except Exception:  # not mounted yet
            return False
        return v.row(0) is not None and t.row_count > 1

    probe.arm(painted)
    async with app.run_test(size=SIZE) as pilot:
        out["first_paint_s"] = await probe.wait(t0, timeout=120)
        out["events"] = app.pane("timeline").view.count
        out["first_mode"] = "causal" if app.pane("timeline").view.model.causal else "time"
        if analysed:
            probe.arm(lambda: app.state == "ready")
            out["ready_s"] = await probe.wait(t0, timeout=timeout)
            await asyncio.sleep(think)
            warmer = getattr(app, "_warmer", None)
            out["warm_busy_at_visits"] = bool(warmer and warmer.busy)
        keys = {pid: key for pid, _, key in app.PANES}
        pids = [pid for pid, _, _ in app.PANES] if analysed else ["timeline"]
        out["panes"] = await visit_panes(app, pilot, probe, pids, keys, analysed)
        if analysed:  # then as a person goes on: one trace chosen in the trace list, every pane again
            probe.arm(lambda: app.scope is not None and _shown(app, app.active_pane))
            t = time.perf_counter()
            await pilot.press("t", "j", "enter")
            out["trace_chosen_s"] = await probe.wait(t, timeout=120)
            out["trace"] = app.scope
            out["trace_events"] = app.pane("timeline").view.count if app.active_pane == "timeline" else None
            out["panes_trace"] = await visit_panes(app, pilot, probe, pids, keys, analysed)
    out["load_end"] = os.getloadavg()[0]
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


async def visit_panes(app, pilot, probe, pids: list[str], keys: dict, analysed: bool) -> dict:
    """Every pane in tab order: its first visit (with --analysed), then j/k in its focused widget."""
    panes: dict = {}
    for i, pid in enumerate(pids):
        res = panes[pid] = {}
        if analysed:
            probe.arm(lambda pid=pid: app.active_pane == pid and _shown(app, pid))
            t = time.perf_counter()
            await pilot.press(keys[pid])
            res["visit_s"] = await probe.wait(t, timeout=120)
        widget = app.focused
        res["widget"] = type(widget).__name__ if widget is not None else None
        if widget is None or _cursor(widget) is None or _rows(widget) < 3:
            res["moves_skipped"] = f"{_rows(widget) if widget is not None else 0} rows"
            continue
        gen_of = (lambda: app.pane("timeline").view.model.gen) if pid == "timeline" else (lambda: app.gen)

        async def key(k: str, ready) -> float | None:
            """Latency of one key; None when the data was rebuilt meanwhile (the analysis finished)."""
            gen = gen_of()
            probe.arm(lambda: ready() or gen_of() != gen)
            t = time.perf_counter()
            await pilot.press(k)
            try:
                latency = await probe.wait(t, timeout=10)
            except TimeoutError:  # said in the report: the key did not do what was expected
                res["no_repaint"] = res.get("no_repaint", 0) + 1
                print(f"{pid}: no repaint after {k} ({type(widget).__name__} cursor {_cursor(widget)} of "
                      f"{_rows(widget)}, focus {type(app.focused).__name__})", file=sys.stderr)
                return None
            return None if gen_of() != gen else latency

        moves, down, burst = [], True, 25
        for j in range(MOVES.get(pid, MOVES_OTHER)):
            c = _cursor(widget)
            if j % burst == 0 or not 0 < c < _rows(widget) - 1:  # bursts of j and k, within the rows
                down = c < _rows(widget) - 1 and (j // burst % 2 == 0 or c == 0)
            target = c + (1 if down else -1)
            moves.append(await key("j" if down else "k", lambda tg=target: _cursor(widget) == tg))
            await asyncio.sleep(PACE)
        res["move_ms"] = [1000 * x for x in moves if x is not None]
        res["skipped"] = sum(1 for x in moves if x is None)
        if pid == "timeline":
            view = app.pane("timeline").view
            jumps = [await key(k, lambda: view.row() is not None)
                     for k in ["G", "g", "pagedown", "pagedown", "G", "k", "g"] * 3]
            res["jump_ms"] = [1000 * x for x in jumps if x is not None]
    return panes


def run_one(n: int, analysed: bool, think: float, timeout: float) -> None:
    res = asyncio.run(measure(store_path(n), analysed, think, timeout))
    print(json.dumps(res))


def _lat(v: list[float]) -> str:
    if not v:
        return "-"
    return f"p50 {statistics.median(v):6.1f} ms  p95 {pct(v, 95):6.1f} ms  max {max(v):6.1f} ms  ({len(v)} keys)"


def report(label: str, r: dict) -> None:
    print(f"{label}: first paint {r['first_paint_s']:.2f} s ({fmt_int(r['events'])} events, {r['first_mode']} "
          f"order); load average {r['load_start']:.1f} -> {r['load_end']:.1f}; peak RSS {r['rss_mb']:.0f} MB")
    if "ready_s" in r:
        print(f"  analysis shown {r['ready_s']:.1f} s after start"
              + ("; precomputation still running at the first visit" if r.get("warm_busy_at_visits") else ""))
    _report_panes(r["panes"])
    if "panes_trace" in r:
        print(f"  trace {str(r['trace'])[:12]} chosen (t, j, Enter): shown in {1000 * r['trace_chosen_s']:.0f} ms; "
              "every pane again in its scope:")
        _report_panes(r["panes_trace"])


def _report_panes(panes: dict) -> None:
    for pid, p in panes.items():
        visit = f"first visit {1000 * p['visit_s']:7.0f} ms" if "visit_s" in p else " " * 21
        keys = _lat(p["move_ms"]) if "move_ms" in p else f"no j/k ({p.get('moves_skipped')})"
        if p.get("no_repaint"):
            keys += f"  ({p['no_repaint']} keys without the expected repaint)"
        print(f"  {pid:13s} {visit}   j/k {keys}")
        if p.get("jump_ms"):
            print(f"  {'':13s} {'':21s}   G/g/PgDn {_lat(p['jump_ms'])}")


def summary(label: str, runs: list[dict]) -> None:
    """Worst first visit and j/k p95 per pane over the runs, all traces and one trace chosen."""
    print(f"{label}:")
    for part, scope in (("panes", "all traces"), ("panes_trace", "one trace")):
        if part not in runs[0]:
            continue
        print(f"  scope: {scope}")
        for pid in runs[0][part]:
            visits = [r[part][pid]["visit_s"] for r in runs if "visit_s" in r[part].get(pid, {})]
            moves = [x for r in runs for x in r[part].get(pid, {}).get("move_ms", [])]
            v = f"first visit max {1000 * max(visits):6.0f} ms" if visits else " " * 24
            m = f"j/k p50 {statistics.median(moves):5.1f} ms p95 {pct(moves, 95):6.1f} ms" if moves else "no j/k"
            print(f"    {pid:13s} {v}   {m}")


# -- startup: the command a user types, in a terminal ---------------------------------------
SAMPLES = ["banking-unsafe.jsonl", "distributed-orders.jsonl", "slow-api.jsonl"]  # what `make run` opens


def startup_once(files: list[Path], size=SIZE, timeout: float = 60.0, source: Path | None = None) -> dict:
    """`raceway-tui FILES` in a pseudo-terminal: seconds from the command to the first
    frame (the header drawn), to the trace list filled (a trace id on screen) and to
    `● ready` (loaded and analysed), read from what the program writes to the terminal.
    ``source``: run the raceway_tui / raceway_core of that source tree instead (a baseline)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    from raceway_core.browse import trace_list
    from raceway_core.store import Store

    with Store() as store:
        store.load(files)
        first_trace = trace_list(store)["trace_id"][0].as_py()[:8]
    cli = Path(sys.executable).with_name("raceway-tui")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(size[0]), LINES=str(size[1]))
    if source is not None:
        env["PYTHONPATH"] = str(source)
    marks = {"first_frame_s": b" raceway-tui ", "trace_list_s": first_trace.encode(), "ready_s": "● ready".encode()}
    got: dict = {}
    seen = b""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(cli), *map(str, files)], stdin=slave, stdout=slave, stderr=slave, env=env,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    try:
        while len(got) < len(marks) and time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.01)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            now = time.perf_counter() - t0
            seen = seen[-4096:] + chunk
            for name, mark in marks.items():
                if name not in got and mark in seen:
                    got[name] = now
        os.write(master, b"q")
        deadline = time.perf_counter() + 10
        while proc.poll() is None and time.perf_counter() < deadline:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    got["exit_code"] = proc.returncode
    return got


def startup(runs: int, baseline: Path | None) -> None:
    files = [Path(__file__).resolve().parent.parent / "sample_traces" / f for f in SAMPLES]
    print(f"# startup: raceway-tui {' '.join(SAMPLES)} in a {SIZE[0]}x{SIZE[1]} pseudo-terminal ({env_line()}); "
          f"load average {os.getloadavg()[0]:.2f}")
    versions = {"this tree": None} | ({f"baseline {baseline}": baseline} if baseline else {})
    results: dict[str, list[dict]] = {v: [] for v in versions}
    for i in range(runs):  # alternate the versions: both see the same load
        for label, source in versions.items():
            r = startup_once(files, source=source)
            results[label].append(r)
            print(f"  {label} run {i + 1}: first frame {r.get('first_frame_s', float('nan')):.2f} s, trace list "
                  f"{r.get('trace_list_s', float('nan')):.2f} s, ready {r.get('ready_s', float('nan')):.2f} s "
                  f"(exit {r['exit_code']})", flush=True)
    medians: dict[str, dict[str, float]] = {}
    for label in versions:
        medians[label] = {}
        for key, target in (("first_frame_s", 1.0), ("trace_list_s", None), ("ready_s", 2.0)):
            values = [r[key] for r in results[label] if key in r]
            if values:
                medians[label][key] = statistics.median(values)
                print(f"{label}: {key[:-2].replace('_', ' ')} median {medians[label][key]:.2f} s over "
                      f"{len(values)} runs" + (f" (target <= {target:.0f} s)" if target else ""))
    if baseline:
        this, base = medians["this tree"], medians[f"baseline {baseline}"]
        print("ratio baseline / this tree: " + ", ".join(f"{k[:-2].replace('_', ' ')} {base[k] / this[k]:.2f}x"
                                                         for k in this if k in base))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("events", nargs="?", type=int, default=1_000_000, help="events in the store (default: %(default)s)")
    ap.add_argument("--analysed", action="store_true", help="also visit every pane once the analysis is shown")
    ap.add_argument("--think", default="0,3", metavar="S,...",
                    help="with --analysed: seconds between the analysis shown and the first pane visit, one run "
                         "each (default: %(default)s)")
    ap.add_argument("--analysis-timeout", type=float, default=1800.0, metavar="S",
                    help="give up waiting for the analysis after S seconds (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=2, help="first-paint runs (default: %(default)s)")
    ap.add_argument("--pace", type=float, default=PACE, metavar="S",
                    help="seconds from a repaint to the next j/k (default: %(default)s)")
    ap.add_argument("--stress", type=int, default=0, metavar="K",
                    help="run K busy processes during the measurements (default: %(default)s)")
    ap.add_argument("--startup", action="store_true",
                    help="measure only the start of `raceway-tui` on the three samples of `make run`, "
                         "in a pseudo-terminal: first frame, trace list, ready")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="also measure the source tree DIR (e.g. `git archive` of an earlier commit), "
                         "alternating runs")
    ap.add_argument("--one", nargs=4, metavar=("N", "ANALYSED", "THINK", "TIMEOUT"), help=argparse.SUPPRESS)
    return ap.parse_args()


def child(n: int, analysed: bool, think: float, timeout: float, source: Path | None) -> dict:
    env = dict(os.environ, RACEWAY_BENCH_PACE=str(PACE)) | ({"RACEWAY_BENCH_SOURCE": str(source)} if source else {})
    r = subprocess.run([sys.executable, __file__, "--one", str(n), "1" if analysed else "0", str(think), str(timeout)],
                       capture_output=True, text=True, env=env)
    sys.stderr.write(r.stderr[-3000:])
    if r.returncode != 0:
        raise SystemExit(f"the measured explorer failed with exit {r.returncode}")
    return json.loads(r.stdout.splitlines()[-1])


def main() -> None:
    args = arguments()
    if args.one:
        if os.environ.get("RACEWAY_BENCH_SOURCE"):  # a baseline tree's raceway_tui / raceway_core
            sys.path.insert(0, os.environ["RACEWAY_BENCH_SOURCE"])
        run_one(int(args.one[0]), args.one[1] == "1", float(args.one[2]), float(args.one[3]))
        return
    if args.startup:
        startup(args.runs, args.baseline)
        return
    global PACE
    n, timeout, PACE = args.events, args.analysis_timeout, args.pace
    print(f"# explorer benchmark ({env_line()}), terminal {SIZE[0]}x{SIZE[1]}, headless; "
          f"j/k {PACE:g} s apart; store in {OUT}; load average {os.getloadavg()[0]:.2f}" + (f"; {args.stress} busy processes" if args.stress else ""))
    store_path(n)  # build the store outside the timed processes
    versions = {"this tree": None} | ({f"baseline {args.baseline}": args.baseline.resolve()} if args.baseline else {})
    stress = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.stress)]
    try:
        for i in range(args.runs):
            forget_analysis(store_path(n))
            for label, source in versions.items():
                r = child(n, False, 0, timeout, source)
                report(f"{label}, run {i + 1} (store never analysed: the analysis runs meanwhile)", r)
        if args.analysed:
            forget_analysis(store_path(n))
            first = next(iter(versions.values()))
            r = child(n, True, 0, timeout, first)  # computes the analysis and keeps it in the store
            report(f"{next(iter(versions))}: the analysis computed (then kept in the store), panes at once", r)
            results: dict[str, list[dict]] = {label: [] for label in versions}
            for think in [float(x) for x in args.think.split(",")]:
                for label, source in versions.items():
                    r = child(n, True, think, timeout, source)
                    results[label].append(r)
                    report(f"{label}: reopened (analysis reused), panes visited {think:g} s after it is shown", r)
            for label, runs in results.items():
                summary(f"{label}, worst over the reopened runs (targets: visit <= 500 ms, p95 <= 50 ms)", runs)
    finally:
        for p in stress:
            p.kill()
            p.wait()
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a measured explorer: {rss:.0f} MB; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
