"""Two runs compared (raceway-tui diff): a readable report and a terminal view.

Every string from a trace (variables, locations, lock ids, operations) is shown
literally: Rich Text, control characters made visible."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from raceway_tui.widgets.table import Column, VirtualTable

STATUS_STYLE = {"appeared": "bold cyan", "disappeared": "bold magenta", "changed": "yellow", "same": "grey62"}
TITLES = {"races": "Races", "anomalies": "Anomalies", "critical_path": "Critical-path steps",
          "durations": "Durations", "orderings": "Orderings (happens-before between contexts)",
          "deadlocks": "Potential deadlocks"}


def visible(value) -> str:
    s = "" if value is None else str(value)
    return s if s.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def what(cat: str, r: dict) -> str:
    """The matched thing, in words."""
    if cat == "races":
        return f"{r['variable']} {r['kind']}  {r['location_1']} ↔ {r['location_2']}"
    if cat == "orderings":
        extra = f" {r['what']}" if r["what"] else ""
        return (f"{r['kind']}{extra}: {r['from_operation']} @ {r['from_location'] or '?'} → "
                f"{r['to_operation']} @ {r['to_location'] or '?'}")
    if cat == "deadlocks":
        return " → ".join(r["locks"] + r["locks"][:1])
    return f"{r['operation']} @ {r['location'] or '?'}"


def measure(cat: str, m: dict | None) -> str:
    if m is None:
        return "-"
    parts = [f"×{m['count']:,}"]
    if cat == "critical_path":
        parts.append(f"{m['ms']:,.3f} ms")
    elif cat == "durations":
        parts.append(f"median {m['median_ms']:,.3f} ms")
    elif cat == "anomalies":
        parts.append(f"max {m['max_ms']:,.3f} ms")
    if m.get("severity"):
        parts.append(m["severity"])
    return " ".join(parts)


def _sides(doc: dict) -> Text:
    def one(name: str, s: dict) -> str:
        scope = f"trace {s['trace_id']}" if s["trace_id"] else "all traces"
        cp = "-" if s["critical_path_ms"] is None else f"{s['critical_path_ms']:,.2f}"
        span = "-" if s["span_ms"] is None else f"{s['span_ms']:,.2f}"
        return (f"{name}: {s['label']} ({scope}): {s['events']:,} events, {s['traces']:,} traces, "
                f"critical paths {cp} ms of {span} ms")
    return Text(visible(one("A", doc["a"])) + "\n" + visible(one("B", doc["b"])))


def render_diff(doc: dict, show_same: bool = False) -> Group:
    parts = [_sides(doc)]
    for cat, title in TITLES.items():
        rows = [r for r in doc[cat] if show_same or r["status"] != "same"]
        sm = doc["summary"][cat]
        head = f"{title}: {sm['appeared']} appeared, {sm['disappeared']} disappeared, {sm['changed']} changed, " \
               f"{sm['same']} same"
        if not rows:
            parts.append(Text(head, style="grey62"))
            continue
        t = Table(title=head, title_justify="left", header_style="bold")
        t.add_column("status", no_wrap=True)
        t.add_column("what", overflow="fold", ratio=3)
        t.add_column("A", overflow="fold", ratio=1)
        t.add_column("B", overflow="fold", ratio=1)
        for r in rows:
            t.add_row(Text(r["status"], style=STATUS_STYLE[r["status"]]), Text(visible(what(cat, r))),
                      Text(visible(measure(cat, r["a"]))), Text(visible(measure(cat, r["b"]))))
        parts.append(t)
    return Group(*parts)


def diff_rows(doc: dict, show_same: bool) -> list[dict]:
    return [{"category": cat, "status": r["status"], "what": what(cat, r), "A": measure(cat, r["a"]),
             "B": measure(cat, r["b"])}
            for cat in TITLES for r in doc[cat] if show_same or r["status"] != "same"]


COLUMNS = [
    Column("status", "status", 12, style=lambda r: STATUS_STYLE.get(r["status"])),
    Column("category", "category", 14),
    Column("what", "operation · location", None, text=lambda r: visible(r["what"])),
    Column("A", "A", 22, text=lambda r: visible(r["A"])),
    Column("B", "B", 22, text=lambda r: visible(r["B"])),
]


class DiffApp(App):
    """The comparison as one table: what appeared, disappeared or changed (a: also the same)."""

    TITLE = "raceway-tui diff"
    BINDINGS = [Binding("a", "toggle_same", "Show unchanged"), Binding("q", "quit", "Quit")]
    CSS = "#diff-sides { height: auto; padding: 0 1; } #diff-summary { height: auto; padding: 0 1; }"

    def __init__(self, doc: dict) -> None:
        super().__init__()
        self.doc = doc
        self.show_same = False

    def compose(self) -> ComposeResult:
        yield Static(_sides(self.doc), id="diff-sides")
        yield Static(id="diff-summary")
        yield VirtualTable(COLUMNS, sortable=True, empty="Nothing changed.", id="diff-table")
        yield Footer()

    def on_mount(self) -> None:
        self._fill()
        self.query_one(VirtualTable).focus()

    def _fill(self) -> None:
        sm = self.doc["summary"]
        self.query_one("#diff-summary", Static).update(Text("  ".join(
            f"{TITLES[c].split(' (')[0]}: +{sm[c]['appeared']} -{sm[c]['disappeared']} ~{sm[c]['changed']}"
            for c in TITLES)))
        self.query_one(VirtualTable).set_rows(diff_rows(self.doc, self.show_same), cursor=0)

    def action_toggle_same(self) -> None:
        self.show_same = not self.show_same
        self._fill()
