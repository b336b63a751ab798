"""Shared by the TUI tests: sample traces and a way to wait until the app is idle."""

from __future__ import annotations

import json
from pathlib import Path

from test_causality_rules import Trace, acq, banking_race, call, rel, sc

SIZE = (120, 36)
ROOT = Path(__file__).resolve().parent.parent


def create_app(*args, pane: str = "timeline", **kw):
    """The explorer as the tests before the dashboard saw it: open on the timeline
    (the dashboard's own tests pass pane="dashboard" or use raceway_tui.app's)."""
    from raceway_tui.app import create_app as make

    return make(*args, pane=pane, **kw)


def explorer(*args, pane: str = "timeline", **kw):
    """cli.explorer, opening on the timeline (see create_app)."""
    from raceway_tui.cli import explorer as make

    return make(*args, pane=pane, **kw)


def write(path: Path, t: Trace) -> Path:
    path.write_text("\n".join(json.dumps(e) for e in t.events) + "\n")
    return path


def banking(path: Path) -> Path:
    """Two concurrent transfers both read 1000 and write 900 and 800 (a lost update)."""
    return write(path, banking_race())


def no_races(path: Path) -> Path:
    """One trace, two workers handing a lock over: ordered accesses, no race."""
    t = Trace()
    t.ev("m1", "main", call("start"), dur=1_000_000)
    t.ev("a1", "A", acq("L"), parent="m1")
    t.ev("a2", "A", sc("x", "Write", "w.py:1", 0, 1))
    t.ev("a3", "A", rel("L"))
    t.ev("b1", "B", acq("L"), parent="m1")
    t.ev("b2", "B", sc("x", "Write", "w.py:2", 1, 2))
    t.ev("b3", "B", rel("L"))
    t.ev("m2", "main", call("end"), dur=2_000_000)
    return write(path, t)


def _idle(app) -> bool:
    from raceway_tui.panes.base import Pane
    from raceway_tui.widgets.detail import EventDetail
    from raceway_tui.widgets.timeline import TimelineView

    if app.state not in ("ready", "error"):
        return False
    # live mode's sync loop runs until the app exits: idle means no sync in flight
    if any((w.is_running or w.state.name == "PENDING") and w.group != "live" for w in app.workers):
        return False
    if getattr(app, "syncing", False):
        return False
    # panes mount on their first visit: a timeline not shown yet loads nothing
    if any(view.loading_pages for view in app.query(TimelineView)):
        return False
    if any(getattr(pane, "waiting", False) for pane in app.query(Pane)):  # work that follows the cursor, once keys stop
        return False
    return not app.query_one(EventDetail).waiting


async def settle(pilot, timeout: float = 20.0) -> None:
    """Wait until loading, the analysis and every worker are done and the screen is drawn."""
    app = pilot.app
    steps, quiet = int(timeout / 0.02), 0
    for _ in range(steps):
        await pilot.pause(0.02)
        quiet = quiet + 1 if _idle(app) else 0
        if quiet >= 4:
            break
    else:
        raise AssertionError(f"the app did not settle: state {app.state}, workers {list(app.workers)}")
    await pilot.pause()


def slow_calls(path: Path) -> Path:
    """Twelve calls of one function: nine of 10-12 ms, and 18, 22 and 60 ms. Median 11.5 ms,
    MAD 1 ms, so robust z = 0.6745 (x - 11.5): 4.4 (minor), 7.1 (warning), 32.7 (critical);
    all at least 1.5x the median."""
    t = Trace()
    for i, ms in enumerate([10, 11, 12] * 3 + [18, 22, 60]):
        t.ev(f"c{i}", f"worker-{i % 2}", call("work"), trace=f"req-{i}", dur=ms * 1_000_000)
    return write(path, t)
