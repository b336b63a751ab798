"""The Textual app. `create_app` is the one factory the CLI and the tests use."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from raceway_core.store import Store


class RacewayApp(App):
    TITLE = "raceway-tui"
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(self, files: list[Path], db: Path | None = None, server: str | None = None,
                 options=None) -> None:
        super().__init__()
        self.files = files
        self.options = options  # raceway_core.formats.ImportOptions for the files, or None
        self.db = db
        self.server = server
        self.store: Store | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading…", id="status")
        yield DataTable(id="traces", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#traces", DataTable)
        table.add_columns("trace", "events", "contexts", "services", "start")
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        store = Store(self.db)
        summaries = store.load(self.files, options=self.options) if self.files else []
        rows = store.sql("""
            SELECT trace_id, count(*) AS events, count(DISTINCT thread_id) AS contexts,
                   string_agg(DISTINCT service, ', ') AS services, min(timestamp) AS start
            FROM events GROUP BY trace_id ORDER BY start""").to_pylist()
        self.call_from_thread(self._show, store, summaries, rows)

    def _show(self, store: Store, summaries, rows) -> None:
        self.store = store
        status = self.query_one("#status", Static)
        status.update("\n".join(s.line() for s in summaries) or "No files loaded.")
        table = self.query_one("#traces", DataTable)
        for r in rows:
            table.add_row(r["trace_id"][:12], r["events"], r["contexts"], r["services"] or "", str(r["start"]))

    def on_unmount(self) -> None:
        if self.store is not None:
            self.store.close()


def create_app(files: list[Path] | None = None, db: Path | None = None, server: str | None = None,
               options=None) -> RacewayApp:
    return RacewayApp(list(files or []), db=db, server=server, options=options)
