"""Modal screens: the key help and error messages."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from raceway_tui.literal import literal

KEYS = [
    ("Everywhere", [
        ("0", "Dashboard: totals, worst races, slowest traces, anomalies, latency and activity plots"),
        ("1 … 7", "Timeline, Critical path, Races, Variables, Anomalies, Dependencies, Deadlocks"),
        ("8 / 9", "Services, Hotspots"),
        ("c / p", "Call tree, Replay (of the chosen trace)"),
        ("Tab / Shift+Tab", "next / previous pane"),
        ("j k ↑ ↓", "move; g / G first / last; PgUp / PgDn a page"),
        ("Enter", "open: go to the event in the timeline, expand, choose"),
        ("Esc", "back: close the search, return from a jump, then to the trace list"),
        ("/", "search the timeline: an event id prefix, or kind, variable, location, any text"),
        ("", "prefixes id: kind: var: loc: restrict the search to one field"),
        ("n / N", "next / previous match"),
        ("t", "trace list (f: filter it; Enter chooses a trace or All traces)"),
        ("d", "show / hide the event detail panel"),
        ("r", "reload the files, or sync now in live mode (the analysis reruns)"),
        ("a", "auto-refresh on / off: follow new events as they arrive (live mode)"),
        ("ctrl+p", "command palette: panes, traces, export JSON / Parquet; the scope's trace (JSON),"),
        ("", "events (CSV), critical path and anomalies (Markdown)"),
        ("? / q", "this help / quit"),
    ]),
    ("Dashboard", [
        ("Enter", "a race: its first event in the timeline; a trace: its timeline; an anomaly: its event"),
        ("", "with a trace chosen: that trace's totals, critical path and slowest operations"),
    ]),
    ("Timeline", [
        ("lanes", "one column per context; ● event, ◆ racing access, ▶ / ◀ an edge from another lane"),
        ("colours", "HTTP blue, DB green, state yellow, error red, locks magenta, async cyan, races orange"),
        ("Enter", "follow the incoming edge back to the event it comes from (Esc returns)"),
    ]),
    ("Critical path", [
        ("m", "the happens-before path, or Jaeger's span path (traces from OTLP, Jaeger, Zipkin)"),
        ("Enter", "go to the event (or the span's start) in the timeline"),
    ]),
    ("Races", [
        ("] / [", "next / previous racing pair (expands its group)"),
        ("space / l", "expand or collapse a group; h collapses"),
        ("Enter", "timeline at the first event, its partner highlighted"),
        ("s", "scope: the chosen trace or all traces"),
    ]),
    ("Services", [
        ("Enter", "list the service's traces; Enter on one chooses that trace; Esc back to the services"),
    ]),
    ("Hotspots", [
        ("] / [", "next / previous table (variables, functions, services, locks)"),
        ("Enter", "variable: its audit trail; service: Services; function / lock: its calls / events below"),
    ]),
    ("Call tree (c)", [
        ("← / → / space", "collapse / expand a node (← on a leaf: to its parent)"),
        ("Enter", "go to the event in the timeline"),
    ]),
    ("Replay (p)", [
        ("space", "play / pause; ← / → step; + / - speed; Home / End first / last step"),
        ("Enter", "go to the current event in the timeline"),
    ]),
    ("Tables", [
        ("s / S", "sort by the next column / reverse (or click a header)"),
        ("Variables", "Enter on a variable opens its audit trail; Esc returns"),
    ]),
]


def keys_table() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    for section, rows in KEYS:
        t.add_row(Text(section, style="bold underline"), "")
        for k, what in rows:
            t.add_row(k, what)
        t.add_row("", "")
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(Text("raceway-tui: keys and panes", style="bold"), id="help-title")
            with VerticalScroll():
                yield Static(keys_table())
            yield Static(Text("Esc closes", style="dim"))


class ErrorScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Static(literal(self.title_text, style="bold red"))
            with VerticalScroll():
                yield Static(literal(self.message, multiline=True))
            yield Button("OK", variant="error", id="error-ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss()
