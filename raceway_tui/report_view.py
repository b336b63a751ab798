"""The analysis document as a readable Rich report (raceway-tui analyze)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from raceway_tui.format import count
from raceway_tui.literal import literal

MAX_ROWS = 20


def short_location(loc) -> str:
    """The last two path components of a location: enough to recognise it in a table."""
    if not loc:
        return "-"
    parts = str(loc).replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.2f}"


def shown_paths(doc: dict) -> list[dict]:
    """The critical paths the report lists: longest first."""
    return sorted(doc["critical_paths"], key=lambda p: -p["duration_ms"])[:MAX_ROWS]


def render(doc: dict, jaeger_ms: dict[str, float] | None = None) -> Group:
    """``jaeger_ms``: Jaeger's critical path length of the listed traces imported from spans."""
    parts = [Text(f"{count(doc['events'], 'event')} in {count(doc['traces'], 'trace')}, {doc['rejected']:,} rejected",
                  style="bold")]
    races = doc["races"]
    t = Table(title=f"Races: {count(races['pair_count'], 'racing pair')} in {count(len(races['groups']), 'group')}",
              title_justify="left", header_style="bold")
    t.add_column("severity", no_wrap=True)
    t.add_column("kind", no_wrap=True)
    for col in ("variable", "first location", "second location"):
        t.add_column(col, overflow="fold", ratio=1)
    t.add_column("count", justify="right", no_wrap=True)
    t.add_column("example", no_wrap=True, max_width=19)
    for g in races["groups"][:MAX_ROWS]:
        style = "red" if g["severity"] == "critical" else "yellow"
        t.add_row(literal(g["severity"], style=style), literal(g["kind"]), literal(g["variable"]),
                  literal(short_location(g["locations"][0])), literal(short_location(g["locations"][1])),
                  f"{g['count']:,}", literal(" / ".join(x[:8] for x in g["example"])))
    if len(races["groups"]) > MAX_ROWS:
        t.caption = f"... {count(len(races['groups']) - MAX_ROWS, 'more group')} (use --json for all)"
    parts.append(t if races["groups"] else Text("Races: none found", style="green"))

    jaeger_ms = jaeger_ms or {}
    t = Table(title=f"Critical paths ({count(len(doc['critical_paths']), 'trace')}, longest first)", title_justify="left",
              header_style="bold")
    cols = ["trace", "path ms", "span ms", "sum ms", "path/span", "events"] + (["Jaeger path ms"] if jaeger_ms else [])
    for col in cols:
        t.add_column(col, justify="right" if col != "trace" else "left")
    for p in shown_paths(doc):
        pct = "-" if p["percentage"] is None else f"{p['percentage']:.0f}%"
        extra = [_ms(jaeger_ms.get(p["trace_id"]))] if jaeger_ms else []
        t.add_row(literal(p["trace_id"][:16]), _ms(p["duration_ms"]), _ms(p["trace_span_ms"]), _ms(p["sum_ms"]), pct,
                  f"{len(p['event_ids']):,}", *extra)
    if jaeger_ms:
        t.caption = ("path ms: longest happens-before path by durations (nested spans add up); "
                     "Jaeger path ms: last-finishing-child walk over the span tree")
    parts.append(t)

    an = doc["anomalies"]
    t = Table(title=f"Anomalies: {len(an):,}", title_justify="left", header_style="bold")
    for col in ("severity", "key", "actual ms", "expected ms", "z", "trace", "event"):
        t.add_column(col)
    for a in an[:MAX_ROWS]:
        style = {"critical": "red", "warning": "yellow"}.get(a["severity"], "")
        z = "-" if a["z"] is None else f"{a['z']:.1f}"
        t.add_row(literal(a["severity"], style=style), literal(a["key"]), _ms(a["actual_ms"]), _ms(a["expected_ms"]),
                  z, literal(a["trace_id"][:12]), literal(a["event_id"][:12]))
    parts.append(t if an else Text("Anomalies: none", style="green"))

    if "deadlocks" in doc:
        parts.append(deadlock_table(doc["deadlocks"]))

    deps = doc["dependencies"]
    t = Table(title="Service dependencies", title_justify="left", header_style="bold")
    for col in ("from", "to", "calls", "mean ms", "p95 ms"):
        t.add_column(col)
    for d in deps:
        t.add_row(literal(d["from"]), literal(d["to"]), f"{d['calls']:,}", _ms(d["mean_ms"]), _ms(d["p95_ms"]))
    parts.append(t if deps else Text("Service dependencies: none"))
    return Group(*parts)


def deadlock_table(dl: dict):
    """Potential deadlocks: per lock cycle, each context's held lock, wanted lock and sites."""
    if not dl["groups"]:
        return Text(f"Potential deadlocks: none ({len(dl['suppressed']):,} lock cycles ruled out)", style="green")
    t = Table(title=f"Potential deadlocks: {count(dl['count'], 'lock cycle')}", title_justify="left", header_style="bold")
    for col in ("severity", "locks", "context", "holds", "at", "wants", "at "):
        t.add_column(col, overflow="fold")
    for g in dl["groups"][:MAX_ROWS]:
        style = "red" if g["severity"] == "critical" else "yellow"
        for i, e in enumerate(g["example"]):
            t.add_row(literal(g["severity"] if i == 0 else "", style=style),
                      literal(" -> ".join(g["locks"]) if i == 0 else ""), literal(e["context"]), literal(e["holding"]),
                      literal(short_location(e["holding_location"])), literal(e["acquiring"]),
                      literal(short_location(e["acquiring_location"])))
    if len(dl["groups"]) > MAX_ROWS:
        t.caption = f"... {len(dl['groups']) - MAX_ROWS:,} more (use --json for all)"
    return t
