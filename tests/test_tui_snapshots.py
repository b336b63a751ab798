"""What the explorer looks like, at a fixed terminal size (pytest-textual-snapshot).

Built through create_app on the bundled samples; regenerate after an intended change
with `pytest tests/test_tui_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

import pytest
from tui_support import ROOT, SIZE, settle

from tui_support import create_app  # opens on the timeline, as these tests expect


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    # the detail panel shows the file as given: a relative path keeps the pictures machine-independent
    monkeypatch.chdir(ROOT)


def _app(name: str):
    return create_app([f"sample_traces/{name}"])


async def _keys(pilot, *keys: str) -> None:
    await settle(pilot)
    for k in keys:
        await pilot.press(k)
        await settle(pilot)


def test_timeline_of_one_trace(snap_compare):
    # the distributed sample's first trace: three services, cross-service calls and lock hand-offs
    async def run(pilot):
        await _keys(pilot, "t", "j", "enter")
        pilot.app.pane("timeline").view.goto(52)
        await settle(pilot)

    assert snap_compare(_app("original-sdk-distributed.jsonl"), terminal_size=SIZE, run_before=run)


def test_races_pair_with_explanation(snap_compare):
    async def run(pilot):
        await _keys(pilot, "3", "right_square_bracket")

    assert snap_compare(_app("banking-unsafe.jsonl"), terminal_size=SIZE, run_before=run)


def test_variable_audit_trail(snap_compare):
    async def run(pilot):
        await _keys(pilot, "4", "enter")

    assert snap_compare(_app("banking-unsafe.jsonl"), terminal_size=SIZE, run_before=run)


def test_critical_path_and_dependencies(snap_compare):
    async def run(pilot):
        await _keys(pilot, "t", "j", "enter", "2")

    assert snap_compare(_app("original-sdk-distributed.jsonl"), terminal_size=SIZE, run_before=run)


def test_help_screen(snap_compare):
    async def run(pilot):
        await _keys(pilot, "question_mark")

    assert snap_compare(_app("banking-unsafe.jsonl"), terminal_size=SIZE, run_before=run)
