"""Other tools' traces (../shared/corpus) in the explorer: every pane shows what the engine found."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_formats_corpus import TS
from test_tui_app import PANES, text_of
from tui_support import SIZE, settle

from raceway_core import TraceSession
from raceway_core.formats import ImportOptions
from raceway_tui.app import create_app
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


@pytest.mark.parametrize("name", list(CASES))
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
