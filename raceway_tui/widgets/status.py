"""The header line: source, counts, load / analysis state, auto-refresh; in live mode
Auto: ON/OFF, the last sync and the connection state."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Static

from raceway_tui.format import count
from raceway_tui.literal import visible


@dataclass
class StatusInfo:
    source: str = ""
    state: str = "starting"  # starting, loading, analysing, ready, error
    detail: str = ""  # e.g. "clocks (6/10)"
    counts: dict = field(default_factory=dict)
    scope: str | None = None
    auto_refresh: bool = False
    live: bool = False  # connected to a server: show Auto, the last sync and the connection
    synced: str = ""  # "synced 12:03:04"
    connection: str = ""  # "connected", "disconnected, retrying in 4 s"
    connected: bool | None = None


STATE_STYLE = {"ready": "bold green", "error": "bold red", "loading": "bold yellow", "analysing": "bold yellow",
               "starting": "bold yellow"}


def status_text(s: StatusInfo) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(" raceway-tui ", style="bold reverse")
    t.append(f" ● {s.state}" + (f": {visible(s.detail)}" if s.detail else "") + " ", style=STATE_STYLE.get(s.state, ""))
    if s.live:  # first: the connection matters most and the line is cut at the right
        t.append("│ ")
        t.append(visible(s.connection), style={True: "green", False: "bold red"}.get(s.connected, "yellow"))
        t.append(" │ ")
        t.append("Auto: " + ("ON" if s.auto_refresh else "OFF"), style="bold green" if s.auto_refresh else "dim")
        t.append(f" │ {visible(s.synced)} ")
    t.append("│ ")
    t.append("trace " + visible(s.scope[:8]) if s.scope else "all traces", style="bold cyan")
    c = s.counts
    if c:
        races, anomalies = c.get("races"), c.get("anomalies")
        t.append(f" │ {count(c.get('traces', 0), 'trace')} · {count(c.get('events', 0), 'event')} · ")
        t.append(count(races, "race") if races is not None else "… races", style="bold dark_orange" if races else "")
        t.append(" · ")
        t.append(count(anomalies, "anomaly") if anomalies is not None else "… anomalies",
                 style="bold yellow" if anomalies else "")
        t.append(f" · {c.get('rejected', 0):,} rejected", style="red" if c.get("rejected") else "")
    if not s.live and s.auto_refresh:  # off is the normal state with files: no need to say so
        t.append(" │ auto-refresh on", style="green")
    t.append(f" │ {visible(s.source)}", style="dim")
    return t


class StatusBar(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info = StatusInfo()

    def set(self, **changes) -> None:
        for k, v in changes.items():
            setattr(self.info, k, v)
        self.update(status_text(self.info))
