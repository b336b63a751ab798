"""The command-line client of a Raceway server, as the original's CLI:
`raceway-tui traces|trace|services|service|races|hotspots|health|performance|edges|export
[--server URL]` (and `raceway-tui analyze --server URL`). Rich tables by default, --json
for scripts; exit codes: 0 ok, 2 bad usage, 3 server unreachable, 4 API key refused,
5 no such trace / malformed id, 6 another error answer. Every string from the server
is shown literally (never read as markup), control characters made visible.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from raceway_core.remote_api import ApiError, RemoteApi, segment

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

COMMANDS = {"traces", "trace", "services", "service", "races", "hotspots", "health", "performance", "edges"}
# `export` is cli.export_: without --what and local data, it runs ``export`` below

ServerOpt = Annotated[Optional[str], typer.Option(
    "--server", help="Server URL (default: RACEWAY_SERVER, else http://127.0.0.1:8080).", show_default=False)]
KeyOpt = Annotated[Optional[str], typer.Option(
    "--api-key", help="API key to send (default: RACEWAY_API_KEY).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's data as JSON.")]


def lit(value) -> Text:
    """A value as literal text: no markup, control characters shown as escapes."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, float):
        value = f"{value:,.2f}"
    s = str(value)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in s):
        s = "".join(c if not (ord(c) < 32 or 127 <= ord(c) < 160) else repr(c)[1:-1] for c in s)
    return Text(s)


def _table(title: str, columns: list[str], rows: list[list], numeric: set[str] = frozenset()) -> Table:
    t = Table(title=Text(title), title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(Text(c), justify="right" if c in numeric else "left", overflow="fold")
    for r in rows:
        t.add_row(*(lit(v) for v in r))
    return t


def _fetch(server, api_key, path, params=None):
    """The data of GET path; a failure ends the command with its exit code."""
    try:
        with RemoteApi(server, api_key) as api:
            return api.get(path, params)
    except ApiError as exc:
        _fail(exc)


def _fail(exc: ApiError):
    err.print(Text.assemble(("error: ", "bold red"), str(exc)))
    raise typer.Exit(exc.exit_code)


def _json(data) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _join(items) -> str:
    return ", ".join(items) if items else "-"


# -- commands --------------------------------------------------------------------------


def traces(page: Annotated[int, typer.Option("--page", min=1)] = 1,
           page_size: Annotated[int, typer.Option("--page-size", min=1)] = 20,
           min_events: Annotated[Optional[int], typer.Option("--min-events", min=0, show_default=False,
                                                             help="Only traces with at least N events.")] = None,
           as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """List traces, newest first (GET /api/traces)."""
    d = _fetch(server, api_key, "/api/traces", {"page": page, "page_size": page_size, "min_events": min_events})
    if as_json:
        return _json(d)
    out.print(_table(f"Traces (page {d['page']} of {d['total_pages']}, {d['total_traces']} in all)",
                     ["trace", "events", "services", "last event", "service names"],
                     [[t["trace_id"], t["event_count"], t["service_count"], t["last_timestamp"], _join(t["services"])]
                      for t in d["traces"]], {"events", "services"}))


def trace(trace_id: Annotated[Optional[str], typer.Argument(help="The trace id.", show_default=False)] = None,
          id_: Annotated[Optional[str], typer.Option("--id", "-i", help="The trace id (as the original's CLI).",
                                                     show_default=False)] = None,
          events: Annotated[int, typer.Option("--events", min=0, help="Also list the first N events.")] = 0,
          as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Show a trace with its analysis (GET /api/traces/{id})."""
    tid = trace_id or id_
    if not tid:
        err.print("error: give a trace id (TRACE_ID or --id)")
        raise typer.Exit(2)
    d = _fetch(server, api_key, f"/api/traces/{segment(tid)}")
    if as_json:
        return _json(d)
    a = d.get("analysis") or {}
    out.print(Text.assemble(("Trace ", "bold"), lit(d["trace_id"])))
    out.print(lit(f"events {len(d.get('events') or [])}, racing pairs {a.get('potential_races', 0)}, "
                  f"anomalies {len(d.get('anomalies') or [])}"))
    cp = d.get("critical_path")
    if cp:
        out.print(lit(f"critical path {cp['total_duration_ms']:.2f} ms, {cp['percentage_of_total']:.1f}% of "
                      f"{cp['trace_total_duration_ms']:.2f} ms, {cp['path_events']} events"))
    deps = d.get("dependencies") or {}
    if deps.get("dependencies"):
        out.print(_table("Calls", ["from", "to", "calls"],
                         [[x["from"], x["to"], x["call_count"]] for x in deps["dependencies"]], {"calls"}))
    if a.get("race_details"):
        out.print(_table("Races", ["severity", "variable", "first", "second"],
                         [[r["severity"], r["variable"], f"{r['event1_location']} [{r['event1_thread']}]",
                           f"{r['event2_location']} [{r['event2_thread']}]"] for r in a["race_details"]]))
    if d.get("anomalies"):
        out.print(_table("Anomalies", ["severity", "operation", "description"],
                         [[x["severity"], x["event_kind"], x["description"]] for x in d["anomalies"]]))
    if events:
        out.print(_table(f"Events (first {events})", ["timestamp", "id", "service", "kind"],
                         [[e.get("timestamp"), e.get("id"), (e.get("metadata") or {}).get("service_name"),
                           next(iter(e["kind"]), "?") if isinstance(e.get("kind"), dict) else e.get("kind")]
                          for e in (d.get("events") or [])[:events]]))


def services(as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """List services with their event and trace counts (GET /api/services)."""
    d = _fetch(server, api_key, "/api/services")
    if as_json:
        return _json(d)
    out.print(_table(f"Services ({d['total_services']})", ["service", "events", "traces"],
                     [[s["name"], s["event_count"], s["trace_count"]] for s in d["services"]], {"events", "traces"}))


service_app = typer.Typer(help="Inspect one service: overview, traces, dependencies.", no_args_is_help=True,
                          rich_markup_mode=None)


@service_app.command("overview")
def service_overview(name: str, as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """A service's event and trace counts (from GET /api/services)."""
    d = _fetch(server, api_key, "/api/services")
    found = next((s for s in d["services"] if s["name"] == name), None)
    if found is None:
        err.print(Text.assemble(("error: ", "bold red"), "no service named ", lit(name)))
        raise typer.Exit(5)
    if as_json:
        return _json(found)
    per = found["event_count"] / found["trace_count"] if found["trace_count"] else 0.0
    out.print(_table(f"Service {name}", ["events", "traces", "events per trace"],
                     [[found["event_count"], found["trace_count"], per]], {"events", "traces", "events per trace"}))


@service_app.command("traces")
def service_traces(name: str, page: Annotated[int, typer.Option("--page", min=1)] = 1,
                   page_size: Annotated[int, typer.Option("--page-size", min=1)] = 100,
                   as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Traces with an event of the service (GET /api/services/{name}/traces)."""
    d = _fetch(server, api_key, f"/api/services/{segment(name)}/traces", {"page": page, "page_size": page_size})
    if as_json:
        return _json(d)
    out.print(_table(f"Traces of {d['service_name']} (page {d['page']} of {d['total_pages']}, {d['total_traces']} in all)",
                     ["trace", "events", "services", "last event"],
                     [[t["trace_id"], t["event_count"], t["service_count"], t["last_timestamp"]] for t in d["traces"]],
                     {"events", "services"}))


@service_app.command("dependencies")
def service_dependencies(name: str, as_json: JsonOpt = False, server: ServerOpt = None,
                         api_key: KeyOpt = None) -> None:
    """Who the service calls and who calls it (GET /api/services/{name}/dependencies)."""
    d = _fetch(server, api_key, f"/api/services/{segment(name)}/dependencies")
    if as_json:
        return _json(d)
    rows = [["calls", x["to"], x["total_calls"], x["trace_count"]] for x in d["calls_to"]]
    rows += [["called by", x["to"], x["total_calls"], x["trace_count"]] for x in d["called_by"]]
    out.print(_table(f"Dependencies of {d['service_name']}", ["direction", "service", "calls", "traces"], rows,
                     {"calls", "traces"}))


def races(as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Variables with races across all traces (GET /api/distributed/global-races)."""
    d = _fetch(server, api_key, "/api/distributed/global-races")
    if as_json:
        return _json(d)
    out.print(_table(f"Racing variables ({d['total_races']})",
                     ["variable", "severity", "traces", "accesses", "threads", "racing pairs"],
                     [[r["variable"], r["severity"], r["trace_count"], r["access_count"], r["thread_count"],
                       r.get("race_pairs")] for r in d["races"]], {"traces", "accesses", "threads", "racing pairs"}))


def hotspots(as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """The most accessed variables and the busiest calls (GET /api/distributed/hotspots)."""
    d = _fetch(server, api_key, "/api/distributed/hotspots")
    if as_json:
        return _json(d)
    out.print(_table("Variables", ["variable", "accesses", "traces", "services"],
                     [[v["variable"], v["access_count"], v["trace_count"], _join(v["services"])]
                      for v in d["top_variables"]], {"accesses", "traces"}))
    out.print(_table("Calls", ["from", "to", "calls"],
                     [[c["from_service"], c["to_service"], c["call_count"]] for c in d["top_service_calls"]],
                     {"calls"}))


def health(window: Annotated[int, typer.Option("--window", min=0, help="Time window in minutes.")] = 60,
           as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Service health over a time window (GET /api/services/health)."""
    d = _fetch(server, api_key, "/api/services/health", {"time_window_minutes": window})
    if as_json:
        return _json(d)
    out.print(_table(f"Service health (last {window} minutes)",
                     ["service", "status", "traces", "minutes since last", "events per trace"],
                     [[s["name"], s["status"], s["trace_count"], s["minutes_since_last_activity"],
                       s["avg_events_per_trace"]] for s in d],
                     {"traces", "minutes since last", "events per trace"}))


def performance(limit: Annotated[int, typer.Option("--limit", min=0, help="Slowest traces listed.")] = 50,
                as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Trace latency, event durations, throughput (GET /api/performance/metrics)."""
    d = _fetch(server, api_key, "/api/performance/metrics", {"limit": limit})
    if as_json:
        return _json(d)
    lat, thr = d["trace_latency"], d["throughput"]
    out.print(lit(f"trace latency: mean {lat['avg_ms']:.2f} ms, p50 {lat['p50_ms']:.2f}, p95 {lat['p95_ms']:.2f}, "
                  f"p99 {lat['p99_ms']:.2f}"))
    out.print(lit(f"throughput: {thr['events_per_second']:.2f} events/s, {thr['traces_per_second']:.2f} traces/s "
                  f"over {thr['time_range_seconds']:.1f} s"))
    out.print(_table("Slowest traces", ["trace", "ms", "services"],
                     [[t["trace_id"], t["duration_ms"], _join(t["services"])] for t in lat["slowest_traces"]], {"ms"}))
    out.print(_table("Durations by kind", ["kind", "events", "mean ms"],
                     [[t["type"], t["count"], t["avg_duration_ms"]] for t in d["event_performance"]["by_type"]],
                     {"events", "mean ms"}))


def edges(as_json: JsonOpt = False, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Cross-service calls (GET /api/distributed/edges)."""
    d = _fetch(server, api_key, "/api/distributed/edges")
    if as_json:
        return _json(d)
    out.print(_table(f"Calls between services ({d['total_edges']})", ["from", "to", "type", "calls", "mean ms"],
                     [[e["from_service"], e["to_service"], e["link_type"], e["call_count"], e.get("mean_ms")]
                      for e in d["edges"]], {"calls", "mean ms"}))


def export(trace_id: Annotated[str, typer.Option("--trace-id", "-t", help="The trace to export.")],
           output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
           server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Write a trace's full answer (GET /api/traces/{id}, as the server sent it) to a file."""
    try:
        with RemoteApi(server, api_key) as api:
            body = api.raw(f"/api/traces/{segment(trace_id)}").content
    except ApiError as exc:
        _fail(exc)
    try:
        output.write_bytes(body)
    except OSError as exc:
        err.print(Text.assemble(("error: ", "bold red"), f"cannot write {output}: {exc.strerror or exc}"))
        raise typer.Exit(2) from exc
    err.print(lit(f"wrote {len(body):,} bytes to {output}"))


def analyze_remote(server: str | None, trace_id: str | None, api_key: str | None = None) -> None:
    """`raceway-tui analyze --server URL [-t ID]`: the original's `analyze` (a trace's
    answer as JSON); without a trace id, the global analysis (GET /api/analyze/global)."""
    path = f"/api/traces/{segment(trace_id)}" if trace_id else "/api/analyze/global"
    _json(_fetch(server, api_key, path))


def register(app: typer.Typer) -> None:
    for fn in (traces, trace, services, races, hotspots, health, performance, edges):
        app.command(fn.__name__)(fn)
    app.add_typer(service_app, name="service")
