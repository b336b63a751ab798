"""Explorer benchmark on a 1M-event store: time to first paint, key-to-repaint latency.

    python bench/tui.py [N] [--analysed] [--analysis-timeout S]

The store (N synthetic events, default 1,000,000) is loaded once into a DuckDB file
in the temp folder (RACEWAY_BENCH_OUT overrides) and reopened by each run (``raceway-tui --db``). Each measurement runs in
a fresh process, headless (Textual's pilot), at 120x40:

- first paint: from creating the app to the first screen showing the trace list and
  a page of timeline rows (events in time order: the analysis runs in the background);
- key-to-repaint: from a key press to the first screen update that shows its effect
  (an update the terminal would be sent), for j/k moves (rows already fetched) and
  for jumps that need a new page from the database (G, g, PgDn);
- with --analysed: the same once the analysis is shown (causal order, racing marks,
  cross-lane edges), plus switching to the Races pane; then reopening the store,
  whose analysis is reused.

Targets: first paint <= 1.5 s, key-to-repaint p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, env_line, fmt_int, synthetic_ndjson

SIZE = (120, 40)


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


async def measure(db: Path, analysed: bool, analysis_timeout: float) -> dict:
    from raceway_tui.app import create_app

    out: dict = {}
    t0 = time.perf_counter()
    app = create_app(db=db)
    probe = Probe(app)
    def painted() -> bool:  # a page of the timeline and the trace list are on screen
        try:
            v, t = app.pane("timeline").view, app.query_one("#trace-table")
        except Exception:  # not mounted yet
            return False
        return v.row(0) is not None and t.row_count > 1

    probe.arm(painted)
    async with app.run_test(size=SIZE) as pilot:
        view = app.pane("timeline").view
        out["first_paint_s"] = await probe.wait(t0, timeout=120)
        out["events"] = view.count
        out["first_mode"] = "causal" if view.model.causal else "time"
        probe.arm(lambda: app.state == "ready")
        if analysed:  # how long until everything is there
            out["ready_s"] = await probe.wait(t0, timeout=analysis_timeout)
        if analysed:
            probe.arm(lambda: view.model is not None and view.model.causal and view.row(0) is not None)
            await pilot.press("1")
            await probe.wait(time.perf_counter(), timeout=120)
        out["mode"] = "causal" if view.model.causal else "time"

        async def key(k: str, ready) -> float | None:
            """Latency of one key; None when the analysis finished meanwhile (the view was rebuilt)."""
            gen = view.model.gen
            probe.arm(lambda: ready() or view.model.gen != gen)
            t = time.perf_counter()
            await pilot.press(k)
            latency = await probe.wait(t)
            return None if view.model.gen != gen else latency

        moves = []
        for i in range(300):
            k = "j" if (i // 50) % 2 == 0 else "k"
            target = view.cursor + (1 if k == "j" else -1)
            moves.append(await key(k, lambda tg=target: view.cursor == tg))
        jumps, jump_keys = [], ["G", "g", "pagedown", "pagedown", "G", "k", "g"] * 3
        for k in jump_keys:
            jumps.append(await key(k, lambda: view.row() is not None))  # the row under the cursor drawn
        out["jump_trace"] = [(k, None if x is None else round(1000 * x, 1)) for k, x in zip(jump_keys, jumps)]
        out["skipped"] = sum(1 for x in moves + jumps if x is None)
        moves = [x for x in moves if x is not None]
        jumps = [x for x in jumps if x is not None]
        out["move_ms"] = [1000 * x for x in moves]
        out["jump_ms"] = [1000 * x for x in jumps]
        if analysed:
            races = app.pane("races")
            probe.arm(lambda: races.ready and races.table.row_count > 0)
            t = time.perf_counter()
            await pilot.press("3")
            out["races_pane_s"] = await probe.wait(t, timeout=120)
            out["race_groups"] = races.table.row_count
            out["pages_fetched"] = view.pages_fetched
    return out


def run_one(n: int, analysed: bool, analysis_timeout: float) -> None:
    res = asyncio.run(measure(store_path(n), analysed, analysis_timeout))
    print(json.dumps(res))


def report(label: str, r: dict) -> None:
    print(f"{label}: first paint {r['first_paint_s']:.2f} s ({fmt_int(r['events'])} events, "
          f"{r['first_mode']} order)")
    if "ready_s" in r:
        print(f"  analysis shown {r['ready_s']:.1f} s after start; keys below in {r['mode']} order")
    for name, key in (("j/k move", "move_ms"), ("jump G/g/PgDn", "jump_ms")):
        v = r[key]
        print(f"  {name:14s} key-to-repaint p50 {statistics.median(v):6.1f} ms  p95 {pct(v, 95):6.1f} ms  "
              f"max {max(v):6.1f} ms  ({len(v)} keys)")
    if "races_pane_s" in r:
        print(f"  races pane (3) shown with {fmt_int(r['race_groups'])} groups in {1000 * r['races_pane_s']:.0f} ms")


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
    ap.add_argument("--analysed", action="store_true", help="also measure with the analysis shown")
    ap.add_argument("--analysis-timeout", type=float, default=1800.0, metavar="S",
                    help="give up waiting for the analysis after S seconds (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="first-paint runs (default: %(default)s)")
    ap.add_argument("--startup", action="store_true",
                    help="measure only the start of `raceway-tui` on the three samples of `make run`, "
                         "in a pseudo-terminal: first frame, trace list, ready")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="with --startup: also measure the source tree DIR (e.g. `git archive` of an earlier "
                         "commit), alternating runs")
    ap.add_argument("--one", nargs=3, metavar=("N", "ANALYSED", "TIMEOUT"), help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = arguments()
    if args.one:
        run_one(int(args.one[0]), args.one[1] == "1", float(args.one[2]))
        return
    if args.startup:
        startup(args.runs, args.baseline)
        return
    n, timeout = args.events, args.analysis_timeout
    print(f"# explorer benchmark ({env_line()}), terminal {SIZE[0]}x{SIZE[1]}, headless; "
          f"store in {OUT}; load average {os.getloadavg()[0]:.2f}")
    store_path(n)  # build the store outside the timed processes

    def one(with_analysis: bool) -> dict:
        return json.loads(subprocess.run([sys.executable, __file__, "--one", str(n), "1" if with_analysis else "0",
                                          str(timeout)], check=True, capture_output=True, text=True
                                         ).stdout.splitlines()[-1])

    firsts = []
    for i in range(args.runs):
        forget_analysis(store_path(n))
        r = one(False)
        firsts.append(r["first_paint_s"])
        report(f"run {i + 1} (store never analysed: the analysis runs meanwhile)", r)
    print(f"first paint: median {statistics.median(firsts):.2f} s over {args.runs} runs (target <= 1.5 s)")
    if args.analysed:
        forget_analysis(store_path(n))
        report("with the analysis (computed, then kept in the store)", one(True))
        report("reopened (the stored analysis reused)", one(True))


if __name__ == "__main__":
    main()
