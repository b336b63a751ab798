"""The command palette (ctrl+p): panes, traces, export and toggles."""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from raceway_tui import format as fmt
from raceway_tui.literal import visible

MAX_TRACES = 2000
# what the original's web UI exports, of the current scope (raceway_core.export)
EXPORTS = [
    ("Export trace as JSON", "trace", "its events in the wire format (raceway-tui load reads them back)"),
    ("Export events as CSV", "events", "one row per event of the current scope"),
    ("Export critical path as Markdown", "critical", "the chosen trace's critical path, step by step"),
    ("Export anomalies as Markdown", "anomalies", "the anomalies of the current scope, by severity"),
]
NOUN = {"trace": "event", "events": "event", "critical": "step", "anomalies": "anomaly"}


def export_data(app, what: str) -> None:
    """Write ``what`` of the current scope where the view exports go (app.export_dir), on a
    worker thread; a toast says where, or why not."""
    from raceway_core.export import DEFAULT_FORMAT, file_name

    scope = app.scope
    if app.session is None or not app.analysed:
        app.notify("Still loading or analysing; try again when ready.", timeout=3)
        return
    if what == "critical" and scope is None:
        app.notify("The critical path is a trace's: choose a trace (t), then export.", severity="warning")
        return
    fmt_ = DEFAULT_FORMAT[what]
    path = app.export_dir / file_name(what, fmt_, scope)
    session = app.session

    def write() -> None:
        from raceway_core.errors import RacewayError
        from raceway_core.export import export

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                n = export(session, what, fmt_, f, scope)
        except (RacewayError, OSError) as exc:
            path.unlink(missing_ok=True)
            app.call_from_thread(app.notify, f"Export failed: {exc}", severity="error")
            return
        app.call_from_thread(app.notify, f"Exported {fmt.count(n, NOUN[what])} to {path}", timeout=6)

    app.run_worker(write, thread=True, group="export", exit_on_error=False)


class RacewayCommands(Provider):
    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        cmds = [(f"Pane: {title}", partial(app.action_pane, pane_id), f"key {key}")
                for pane_id, title, key in app.PANES]
        cmds += [
            ("Export view as JSON", partial(app.action_export, "json"), "write the current view to a .json file"),
            ("Export view as Parquet", partial(app.action_export, "parquet"), "write the current view to a .parquet file"),
            ("All traces", partial(app.choose_trace, None), "cross-trace views"),
            ("Reload", app.action_reload, "re-read the files, or sync now (live mode); key r"),
            ("Toggle auto-refresh", app.action_toggle_auto, "key a"),
            ("Toggle detail panel", app.action_toggle_detail, "key d"),
            ("Search the timeline", app.action_search, "key /"),
            ("Help: keys and panes", app.action_help, "key ?"),
            *[(name, partial(export_data, app, what), help_text) for name, what, help_text in EXPORTS],
        ]
        for r in (app.trace_rows or [])[:MAX_TRACES]:
            services = ", ".join(r.get("services") or [])  # names made visible: offsets of matches hold
            cmds.append((visible(f"Trace {fmt.short_id(r['trace_id'], 12)} {services}"),
                         partial(app.choose_trace, r["trace_id"]), fmt.count(r['events'], 'event')))
        return cmds

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands()[:14]:
            yield DiscoveryHit(Text(name), callback, text=name, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, self._highlight(matcher, name), callback, text=name, help=help_text)

    @staticmethod
    def _highlight(matcher, name: str) -> Text:
        """The matched letters in bold; ``matcher.highlight`` would read the name as markup."""
        shown = Text(name)
        _, offsets = matcher.fuzzy_search.match(matcher.query, name)
        for i in offsets:
            shown.stylize("bold reverse", i, i + 1)
        return shown
