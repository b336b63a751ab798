"""Pane 0: the dashboard. Totals, a sparkline of events over time, a latency histogram of
requests, and one list of the worst races, the slowest traces (of a chosen trace: its
slowest operations) and the anomalies; Enter goes to the row's event or trace."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from raceway_tui import format as fmt
from raceway_tui.literal import literal
from raceway_tui.panes.base import Pane
from raceway_tui.widgets.table import Column, VirtualTable

SELECTABLE = ("race", "trace", "operation", "anomaly")


def duration(ns: float) -> str:
    """A bucket edge: 0, 500 µs, 20 ms, 2 s, 5 min."""
    if ns <= 0:
        return "0"
    for unit, size in (("min", 60e9), ("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= size:
            v = ns / size
            return f"{v:g} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{ns:g} ns"


def bucket_labels(edges: tuple[int, ...]) -> list[str]:
    """'10–20 ms', '500 ms–1 s': the unit once when both ends share it."""
    out = []
    for lo, hi in zip(edges, edges[1:]):
        if hi >= 2 ** 62:  # past the series (a garbage duration): open-ended
            out.append(f"≥ {duration(lo)}")
            continue
        a, b = duration(lo), duration(hi)
        ua, ub = a.rpartition(" ")[2], b.rpartition(" ")[2]
        out.append(f"{a.rpartition(' ')[0]}–{b}" if ua == ub and " " in a else f"{a}–{b}")
    return out


class LatencyHistogram(Widget):
    """A text bar chart of request latencies, one labelled line per bucket."""

    DEFAULT_CSS = "LatencyHistogram { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hist = None

    def show(self, hist) -> None:
        self.hist = hist
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return 2 + (len(self.hist.counts) if self.hist is not None and self.hist.requests else 0)

    def render(self) -> Text:
        h = self.hist
        if h is None:
            return Text("")
        if not h.requests:
            return Text.assemble(("Request latency", "bold"), "\n", ("no HTTP requests in this scope", "dim"))
        out = Text.assemble(("Request latency", "bold"), f" · {fmt.count(h.requests, 'request')}\n",
                            (f"p50 {fmt.ms(h.p50_ms, 1)} · p95 {fmt.ms(h.p95_ms, 1)} · max {fmt.ms(h.max_ms, 1)} ms",
                             "grey70"))
        labels = bucket_labels(h.edges)
        lw = max(len(s) for s in labels)
        cw = max(len(f"{c:,}") for c in h.counts)
        bar_w = max(4, self.size.width - lw - cw - 3)
        top = max(h.counts) or 1
        for label, c in zip(labels, h.counts):
            out.append("\n")
            out.append(label.rjust(lw), style="grey70")
            out.append(" ")
            out.append(fmt.bar(c / top, bar_w), style="dodger_blue1")
            out.append(f" {c:,}".rjust(cw + 1), style="bold" if c == top else "")
        return out


def _utc(ns: int) -> dt.datetime:
    return (dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc)
            + dt.timedelta(microseconds=ns % 1_000_000_000 // 1000))


def time_range(lo_ns: int, hi_ns: int) -> str:
    """'04:22:56.516 → 04:22:57.336 UTC' (the date is said apart); both dates when they differ."""
    a, b = _utc(lo_ns), _utc(hi_ns)
    ta, tb = a.strftime("%H:%M:%S.%f")[:-3], b.strftime("%H:%M:%S.%f")[:-3]
    if a.date() == b.date():
        return f"{ta} → {tb} UTC"
    return f"{a:%Y-%m-%d} {ta} → {b:%Y-%m-%d} {tb} UTC"


def _text(r: dict) -> str:
    t = r["type"]
    if t == "race":
        return (f"{r['variable']}   {fmt.location(r['first_location'], 1) or '?'} ↔ "
                f"{fmt.location(r['second_location'], 1) or '?'}")
    if t == "trace":
        return (f"{fmt.short_id(r['trace_id'])}  {', '.join(r['services'] or []) or '-'}"
                f"  ({fmt.count(r['events'], 'event')})")
    if t == "operation":
        return f"{fmt.KIND_SHORT.get(r['kind'], r['kind'])} {fmt.summary(r)}  {fmt.context_label(r['service'], r['thread_id'])}"
    if t == "anomaly":
        key = r["key"]
        if key.startswith("FunctionCall(") and key.endswith(")"):
            key = key[len("FunctionCall("):-1] + "()"
        z = "" if r["z"] is None else f"  z {r['z']:.1f}"
        return f"{key}  trace {fmt.short_id(r['trace_id'])}{z}  (median {fmt.ms(r['expected_ms'], 1)} ms)"
    return r["text"]


def _value(r: dict) -> str:
    t = r["type"]
    if t == "race":
        return fmt.count(r["count"], "pair")
    if t in ("trace", "operation"):
        return f"{fmt.ms(r['duration_ms'], 1)} ms"
    if t == "anomaly":
        ratio = f" ×{r['actual_ms'] / r['expected_ms']:.0f}" if r["expected_ms"] else ""
        return f"{fmt.ms(r['actual_ms'], 1)} ms{ratio}"
    return ""


def _mark(r: dict) -> str:
    return r.get("severity") or "" if r["type"] in ("race", "anomaly") else ""


def _style(r: dict) -> str | None:
    if r["type"] == "head":
        return "bold"
    if r["type"] == "none":
        return "dim"
    return None


COLUMNS = [
    Column("mark", "", 9, text=_mark, style=lambda r: fmt.SEVERITY_STYLE.get(r.get("severity")), sortable=False,
           priority=1),
    Column("what", "races · traces · anomalies (Enter: go there)", None, text=_text, style=_style, sortable=False),
    Column("value", "", 14, align="right", text=_value, sortable=False),
]


class DashboardPane(Pane):
    title = "Dashboard"
    needs_analysis = False  # totals and plots from the stored events at once; races and anomalies when analysed
    data_shown = None  # the Dashboard on screen

    def compose(self) -> ComposeResult:
        yield Static(classes="placeholder")
        yield Static(id="dash-totals")
        with Horizontal(id="dash-plots"):
            with Vertical(id="dash-activity"):
                yield Static(id="dash-activity-title")
                yield Sparkline([], summary_function=sum, id="dash-sparkline")
                yield Static(id="dash-activity-range")
            yield LatencyHistogram(id="dash-latency")
        yield VirtualTable(COLUMNS, empty="Nothing to show.", id="dash-table")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#dash-table", VirtualTable)

    def focus_main(self) -> None:
        self.table.focus()

    def main_table(self):
        return self.table

    def row_key(self, row: dict):
        t = row["type"]
        if t == "race":
            return t, row["variable"], row["kind"], row["first_location"], row["second_location"]
        ident = {"trace": "trace_id", "operation": "id", "anomaly": "event_id"}.get(t)
        return (t, row[ident]) if ident else None

    def _keep(self):
        """A refresh keeps the cursor's row, but when the analysis first arrives it starts on the worst race."""
        shown = self.data_shown
        return super()._keep() if shown is not None and shown.races is not None else None

    def fetch(self, session, key: tuple):
        return session.dashboard(key[0], analysed=key[2])

    def show_data(self, d) -> None:
        self.data_shown = d
        self._show_totals(d)
        a = d.activity
        spark = self.query_one("#dash-sparkline", Sparkline)
        spark.data = list(a.counts)
        n = len(a.counts)
        width = (a.end_ns - a.start_ns + 1) / n if n else 0
        self.query_one("#dash-activity-title", Static).update(Text.assemble(
            ("Events over time", "bold"), f" · {fmt.count(d.totals.events, 'event')}\n",
            (f"{_utc(a.start_ns):%Y-%m-%d} · peak {max(a.counts):,} in {duration(width)}" if n else "none",
             "grey70")))
        self.query_one("#dash-activity-range", Static).update(
            Text(time_range(a.start_ns, a.end_ns), style="dim") if n else Text(""))
        self.query_one("#dash-latency", LatencyHistogram).show(d.latency)
        self.table.set_rows(self._rows(d), cursor=None)
        first = self.table.find(lambda r: r["type"] in SELECTABLE)
        self.table.move_to(first if first is not None else 0)

    def _show_totals(self, d) -> None:
        t = d.totals
        scope = "all traces" if d.trace_id is None else f"trace {fmt.short_id(d.trace_id, 13)}"
        line = Text.assemble(("Scope: ", "bold"), literal(scope, "bold"), " · ",
                             fmt.count(t.traces, "trace"), " · ", fmt.count(t.events, "event"), " · ",
                             fmt.count(t.services, "service"), " · ", fmt.count(t.threads, "thread"))
        line.append("\n")
        if t.races is None:
            line.append("races: analysing…", style="dim")
        else:
            line.append(fmt.count(t.races, "racing pair"), style="bold dark_orange" if t.races else "bold green")
            line.append(f" ({t.critical_races:,} critical)", style="bold red" if t.critical_races else "")
        line.append(" · ")
        line.append(fmt.count(t.errors, "error"), style="bold red" if t.errors else "green")
        line.append(" · ")
        if t.anomalies is None:
            line.append("anomalies: analysing…", style="dim")
        else:
            line.append(fmt.count(t.anomalies, "anomaly"), style="bold yellow" if t.anomalies else "green")
        c = d.critical
        if c is not None:
            pct = "" if c.percentage is None else f" ({c.percentage:.0f}% of the trace's {fmt.ms(c.span_ms, 1)} ms)"
            line.append(f" · critical path {fmt.ms(c.path_ms, 1)} ms in {fmt.count(c.steps, 'step')}{pct}")
        self.query_one("#dash-totals", Static).update(line)

    def _rows(self, d) -> list[dict]:
        t = d.totals
        rows: list[dict] = []
        shown = d.races.num_rows if d.races is not None else 0
        rows.append({"type": "head", "text": f"Worst races ({shown} of {fmt.count(t.race_groups, 'group')}; "
                                             "3 lists them all)" if shown else "Worst races"})
        if d.races is None:
            rows.append({"type": "none", "text": "Waiting for the analysis…"})
        else:
            rows += [{"type": "race", **g} for g in d.races.to_pylist()]
            if not shown:
                rows.append({"type": "none", "text": "No races."})
        if d.trace_id is None:
            rows.append({"type": "head", "text": "Slowest traces (Enter: its timeline)"})
            rows += [{"type": "trace", **r} for r in d.slowest.to_pylist()]
        else:
            rows.append({"type": "head", "text": "Slowest operations of this trace"})
            rows += [{"type": "operation", **r} for r in d.slowest.to_pylist()]
        if not d.slowest.num_rows:
            rows.append({"type": "none", "text": "No durations recorded."})
        rows.append({"type": "head", "text": f"Anomalies ({d.anomalies.num_rows} of {t.anomalies:,}; 5 lists them all)"
                     if t.anomalies else "Anomalies"})
        if d.anomalies is None:
            rows.append({"type": "none", "text": "Waiting for the analysis…"})
        else:
            rows += [{"type": "anomaly", **a} for a in d.anomalies.to_pylist()]
            if not t.anomalies:
                rows.append({"type": "none", "text": "No anomalies."})
        return rows

    def current_event(self):
        r = self.table.row()
        return (_event_of(r), None) if r is not None and _event_of(r) else None

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        r = event.row
        if r is None or r["type"] not in SELECTABLE:
            return
        app = self.app
        if r["type"] == "race":
            app.jump_to(r["example_first"], partner=r["example_second"])
        elif r["type"] == "trace":
            app.jump_to(r["first_id"], trace_id=r["trace_id"])
        elif r["type"] == "operation":
            app.jump_to(r["id"], trace_id=self.app.scope)
        else:
            app.jump_to(r["event_id"], trace_id=r["trace_id"])


def _event_of(r: dict) -> str | None:
    return {"race": r.get("example_first"), "trace": r.get("first_id"), "operation": r.get("id"),
            "anomaly": r.get("event_id")}.get(r["type"])
