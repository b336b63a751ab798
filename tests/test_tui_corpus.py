"""Other tools' traces (../shared/corpus) in the explorer: every pane shows what the engine found."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_formats_corpus import TS
from test_tui_app import PANES, text_of
from tui_support import SIZE, settle

from raceway_core import TraceSession
from raceway_core.formats import ImportOptions
from tui_support import create_app  # opens on the timeline, as these tests expect
from raceway_tui.screens import ErrorScreen
from raceway_tui.widgets.status import StatusBar

CORPUS = Path("/work/shared/corpus")
pytestmark = [pytest.mark.asyncio, pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")]

CASES = {  # one file per importer, with the options its SOURCE.md gives
    "otel/jaeger/testTrace.json": None,
    "otel/otlp/otlp2jaeger-multi-in-combined.json": None,
    "otel/zipkin/skew.json": None,
    "otel/zipkin/messaging-kafka.json": None,
    "shiviz/tsviz_shared_var_4_threads.log": ImportOptions(regex=TS),
    "shiviz/RpcClientServer.json": None,
    "raceway-sdk/distributed-example.raceway.jsonl": None,
}


# one file per importer in `make test`; Zipkin's second file (~20 s on a loaded machine) in test-slow
SECOND = {"otel/zipkin/messaging-kafka.json"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SECOND else n for n in CASES])
async def test_corpus_file_in_every_pane(name):
    path, options = CORPUS / name, CASES[name]
    with TraceSession.open([]) as s:  # what the core finds, for the panes to agree with
        s.load([path], options)
        counts = s.counts()
        groups = s.races().groups.num_rows
        deps = s.dependencies().num_rows
        anomalies = s.anomalies().num_rows
    assert counts["events"] > 0 and counts["rejected"] == 0
    app = create_app([path], options=options)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, timeout=40)
        assert app.state == "ready", app.status.info.detail
        shown = app.query_one(StatusBar).info.counts
        assert (shown["events"], shown["traces"], shown["races"]) == (counts["events"], counts["traces"],
                                                                     counts["races"])
        for key in PANES:
            await pilot.press(key)
            await settle(pilot, timeout=40)
            assert app.pane().ready, key
            assert not isinstance(app.screen, ErrorScreen), key
        assert app.pane("timeline").view.count == counts["events"]
        races = app.pane("races")
        assert sum(races.table.row(i)["type"] == "group" for i in range(races.table.row_count)) == groups
        assert f"in {groups} group" in text_of(app, "#races-summary")
        assert app.pane("anomalies").table.row_count == anomalies
        assert app.pane("dependencies").table.row_count == deps


async def test_critical_pane_offers_jaegers_path_for_span_traces():
    app = create_app([CORPUS / "otel/zipkin/skew.json"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.choose_trace("1e223ff1f80f1c69")
        await pilot.press("2")
        await settle(pilot)
        crit = app.pane("critical")
        assert "happens-before path" in text_of(app, "#critical-summary")
        await pilot.press("m")
        await settle(pilot)
        rows = [crit.table.row(i) for i in range(crit.table.row_count)]
        # hand-checked in test_formats_span_critical_path: µs after the root's start
        assert [(r["service"], round(r["offset_ms"] * 1000), round(r["duration_ms"] * 1000)) for r in rows] == [
            ("servicea", 0, 3134), ("serviceb", 3134, 28136), ("servicea", 31270, 66403), ("servicea", 97673, 1738)]
        summary = text_of(app, "#critical-summary")
        assert "Jaeger's path 99.41 ms" in summary and "1 clipped" in summary and "1 outside their parent" in summary
        await pilot.press("j", "enter")  # the server half, opened in the timeline
        await settle(pilot)
        assert app.active_pane == "timeline"
        assert app.pane("timeline").view.row()["id"] == rows[1]["id"]
        await pilot.press("2", "m")
        await settle(pilot)
        assert "happens-before path" in text_of(app, "#critical-summary")
