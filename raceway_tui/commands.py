"""The command palette (ctrl+p): panes, traces, export and toggles."""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from raceway_tui import format as fmt
from raceway_tui.literal import visible

MAX_TRACES = 2000


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
