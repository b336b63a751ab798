"""The raceway-tui command line: open the explorer, load, query and analyse headless."""

from __future__ import annotations

import os
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from raceway_core import __version__
from raceway_core.errors import RacewayError
from raceway_tui.literal import literal

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a crash is one line and a log file (see main)
    rich_markup_mode=None,
    help="raceway-tui: explore causality traces of concurrent and distributed programs.\n\n"
    "Run `raceway-tui FILE...` to open the explorer (same as `raceway-tui open FILE...`).",
)


def _console(stderr: bool = False) -> Console:
    """Data (file names, trace strings, error texts) is never markup: strings print as they
    are, styled lines are Text built with raceway_tui.literal. Piped, the full width of the
    lines (tables are not cut at 80 columns; COLUMNS still applies when set)."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, width=PIPE_WIDTH if piped else None)


PIPE_WIDTH = 10_000
DEFAULT_SERVE_DB = "raceway.duckdb"
out = _console()
err = _console(stderr=True)

FilesArg = Annotated[Optional[list[Path]], typer.Argument(help="Trace files (JSON, NDJSON, .gz).", show_default=False)]
DbOpt = Annotated[Optional[Path], typer.Option("--db", help="DuckDB file to keep the store in (reopens instantly).")]
StoreOpt = Annotated[Optional[str], typer.Option(
    "--store", show_default=False,
    help="Read the events a shared PostgreSQL database holds (postgresql://USER@HOST/DB) into the "
         "local store; with --db, later runs fetch only what is new.")]
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", help="Read the files as this format instead of detecting it: "
    "raceway, otlp, jaeger, zipkin, shiviz, shiviz-graph.", show_default=False)]
RegexOpt = Annotated[Optional[str], typer.Option(
    "--regex", help="ShiViz parser regex with named groups event, host, clock (JavaScript or Python syntax); "
    "implies --format shiviz. Default: ShiViz's own, or line 1 of an upload-form log.", show_default=False)]
DelimiterOpt = Annotated[Optional[str], typer.Option(
    "--delimiter", help="ShiViz multi-execution delimiter regex, e.g. '^=== (?<trace>.*) ===$' "
    "('' for none; default: that one when the log starts with such a line).", show_default=False)]
ImportOpt = Annotated[Optional[list[str]], typer.Option(
    "--import-option", metavar="KEY=VALUE", help="Importer setting, e.g. access_regex=... or lock_regex= "
    "(ShiViz: map event text to variable accesses / locks; empty disables).", show_default=False)]
MaxRecordOpt = Annotated[Optional[str], typer.Option(
    "--max-record-size", metavar="SIZE", help="Longest record (line) read from a file, e.g. 32M, 1G; "
    "longer ones are rejected with a reason. Default: 32M.", show_default=False)]


def _version(value: bool) -> None:
    if value:
        out.print(f"raceway-tui {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """raceway-tui: explore causality traces of concurrent and distributed programs."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(Text.assemble(("error:", "bold red"), " ", literal(message)), soft_wrap=True)
    return typer.Exit(code)


def _open_store(db: Path | None, keep_raw: bool = False):
    from raceway_core.store import Store

    try:
        return Store(db, keep_raw=keep_raw)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc


def _pull(store, url: str | None, console: Console) -> None:
    """The events of a shared database into ``store`` (``--store``)."""
    if not url:
        return
    from raceway_core.pgstore.pool import redact
    from raceway_core.pgstore.pull import pull

    _check_store_url(url)
    try:
        n = pull(url, store)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{redact(url)}: {n} new events", highlight=False, soft_wrap=True, markup=False)


def import_options(fmt: str | None = None, regex: str | None = None, delimiter: str | None = None,
                   settings: list[str] | None = None, max_record: str | None = None):
    """ImportOptions from the command line (None when nothing was given); bad values end the command."""
    if fmt is None and regex is None and delimiter is None and not settings and max_record is None:
        return None  # and the explorer starts without importing the loaders (DuckDB, Arrow)
    from raceway_core.formats import ImportOptions, names

    if fmt is not None and fmt not in names():
        raise _fail(f"unknown --format {fmt!r} (known: {', '.join(names())})")
    extra = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"--import-option needs KEY=VALUE, got {item!r}")
        extra[key.strip()] = value
    limit = None
    if max_record is not None:
        from raceway_core.loading.reading import parse_size

        try:
            limit = parse_size(max_record)
        except ValueError as exc:
            raise _fail(f"--max-record-size: {exc}") from exc
    if fmt is None and regex is None and delimiter is None and not extra and limit is None:
        return None
    return ImportOptions(format=fmt, regex=regex, delimiter=delimiter, extra=extra, max_record=limit)


def _load(store, files: list[Path], console: Console, options=None) -> bool:
    """Load files, print one summary line each; False when nothing at all could be read."""
    if not files:
        return True
    try:
        summaries = store.load(files, options=options)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    for s in summaries:
        style = "red" if s.fatal else ("yellow" if s.rejected or s.notes else "green")
        console.print(literal(s.line(), style=style), soft_wrap=True)
    return any(s.loaded or s.duplicates for s in summaries)


class Scope(str, Enum):
    auto = "auto"
    global_ = "global"
    service = "service"
    instance = "instance"


PaneOpt = Annotated[str, typer.Option(
    "--pane", metavar="NAME", help="The pane shown first: dashboard, timeline, critical, races, variables, "
    "anomalies, dependencies, deadlocks, ... (a pane's id, title or key).")]


def pane_id(name: str) -> str:
    """A pane named by its id, title or key (e.g. races, Races, 3); unknown ends the command."""
    from raceway_tui.app import RacewayApp

    want = name.strip().lower()
    for pid, title, key in RacewayApp.PANES:
        if want in (pid, title.lower(), key):
            return pid
    raise _fail(f"unknown --pane {name!r} (one of {', '.join(p for p, _, _ in RacewayApp.PANES)})")


ScopeOpt = Annotated[Scope, typer.Option("--scope-variables", help=(
    "auto: as global, but process instances whose lifetimes do not overlap never race; global: a name is "
    "one variable everywhere; service: per service; instance: per service instance."))]


@app.command("open")
def open_(
    files: FilesArg = None,
    db: DbOpt = None,
    server: Annotated[Optional[str], typer.Option("--server", help="Pull traces from a Raceway server URL.")] = None,
    store: StoreOpt = None,
    fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None, settings: ImportOpt = None,
    max_record: MaxRecordOpt = None,
    scope: ScopeOpt = Scope.auto,
    pane: PaneOpt = "dashboard",
) -> None:
    """Open the explorer on trace files, a --db store, a --server, or a shared --store database."""
    pane = pane_id(pane)
    options = import_options(fmt, regex, delimiter, settings, max_record)
    missing = [str(f) for f in files or [] if not f.exists()]
    if files and len(missing) == len(files) and not db and not server and not store:
        raise _fail("cannot read " + ", ".join(missing) + ": file not found")
    if server is not None:
        server = server_url(server)
    tui = explorer(files=list(files or []), db=db, server=server, store=store, options=options,
                   variable_scope=scope.value, pane=pane)
    try:
        _run(tui)
    finally:
        if store:
            tui.session.close()


def explorer(store: str | None = None, db: Path | None = None, pane: str = "dashboard", **kw):
    """The explorer `open` runs (tests drive this same one): with ``store``, the shared
    database's events are first pulled into the local store (``db``, else memory); it
    opens on ``pane`` (an id of RacewayApp.PANES)."""
    from raceway_tui.app import create_app

    session = None
    if store:
        from raceway_core.session import TraceSession

        local = _open_store(db)
        _pull(local, store, err)
        session = TraceSession(local)
    return create_app(db=db, session=session, pane=pane, **kw)


def _run(tui) -> None:
    """Run the explorer; a crash (see raceway_tui.crash) ends the command with exit code 1."""
    tui.run()
    if tui.crash_line:  # one line, not wrapped: the log file's path is to be copied whole
        err.print(Text(tui.crash_line, style="bold red"), soft_wrap=True)
    if tui.return_code:
        raise typer.Exit(tui.return_code)


@app.command()
def load(files: Annotated[Optional[list[Path]], typer.Argument(help="Trace files to load.", show_default=False)] = None,
         db: DbOpt = None, store: StoreOpt = None,
         fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None,
         settings: ImportOpt = None, max_record: MaxRecordOpt = None) -> None:
    """Load trace files (or a shared --store database) headless and print what each one held."""
    options = import_options(fmt, regex, delimiter, settings, max_record)
    if not files and not store:
        raise _fail("nothing to load: name trace files or a --store database")
    local = _open_store(db)
    try:
        _pull(local, store, out)
        ok = _load(local, files or [], out, options)
    finally:
        local.close()
    if not ok:
        raise typer.Exit(2)


@app.command()
def sql(
    files: FilesArg = None,
    query: Annotated[str, typer.Option("--query", "-q", help="SQL to run against the store (tables: events, rejects, "
                                       "sources; and the analysis in hb.*, computed first when the query names hb.).")] = ...,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None, settings: ImportOpt = None,
    max_record: MaxRecordOpt = None,
) -> None:
    """Run SQL against the store and print the result."""
    from raceway_core.errors import QueryError
    from raceway_tui.render import arrow_to_json, arrow_to_rich

    options = import_options(fmt, regex, delimiter, settings, max_record)
    store = _open_store(db, keep_raw=bool(_RAW_NAMED.search(query)))  # the query reads events.raw itself
    try:
        if files and not _load(store, files, err, options):
            raise typer.Exit(2)
        try:
            if _HB_NAMED.search(query):  # the hb tables are the analysis: run (or reuse) it first
                from raceway_core.session import TraceSession

                TraceSession(store).analyze()
            table = store.sql(query)
        except QueryError as exc:
            raise _fail(f"query failed: {exc}") from exc
        if as_json:
            sys.stdout.write(arrow_to_json(table) + "\n")
        else:
            out.print(arrow_to_rich(table))
    finally:
        store.close()


_HB_NAMED = re.compile(r"\bhb\s*\.", re.IGNORECASE)
_RAW_NAMED = re.compile(r"\braw\b|\*", re.IGNORECASE)


class FailOn(str, Enum):
    races = "races"
    critical = "critical"
    anomalies = "anomalies"
    deadlocks = "deadlocks"


@app.command()
def analyze(
    files: FilesArg = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raceway-tui/analysis/v1 document.")] = False,
    max_pairs: Annotated[int, typer.Option("--max-pairs", help="Racing pairs listed (all are counted).")] = 100_000,
    fail_on: Annotated[Optional[list[FailOn]], typer.Option(
        "--fail-on", help="Exit 1 when such findings exist (races: any race; critical: a write-write race; "
        "deadlocks: a potential deadlock).")] = None,
    scope: ScopeOpt = Scope.auto,
    store_url: StoreOpt = None,
    fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None, settings: ImportOpt = None,
    server: Annotated[Optional[str], typer.Option(
        "--server", help="Ask this server instead of reading files: as the original's `analyze`, a trace's "
        "analysis as JSON (--trace-id), else the global analysis.", show_default=False)] = None,
    trace_id: Annotated[Optional[str], typer.Option("--trace-id", "-t", help="With --server: the trace.",
                                                    show_default=False)] = None,
    max_record: MaxRecordOpt = None,
) -> None:
    """Analyse traces headless: races, critical paths, anomalies, dependencies, potential deadlocks
    (or ask a --server)."""
    if server is not None:
        from raceway_tui.remote_cli import analyze_remote

        if files or db:
            raise _fail("--server asks the server: give no trace files or --db with it")
        return analyze_remote(server, trace_id)

    from raceway_core.causality.engine import EngineOptions
    from raceway_core.session import TraceSession
    from raceway_tui.report_view import render, shown_paths

    options = import_options(fmt, regex, delimiter, settings, max_record)
    store = _open_store(db)
    session = TraceSession(store, EngineOptions(variable_scope=scope.value))
    try:
        _pull(store, store_url, err)
        if files and not _load(store, files, err, options):
            raise typer.Exit(2)
        doc = session.report(max_pairs=max_pairs, lazy_pairs=as_json)
        if as_json:
            from raceway_core.report import write_json

            sys.stdout.flush()
            write_json(doc, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            jaeger = {}
            for p in shown_paths(doc):
                if session.has_spans(p["trace_id"]):
                    jaeger[p["trace_id"]] = session.span_critical_path(p["trace_id"]).duration_ns / 1e6
            out.print(render(doc, jaeger))
    finally:
        store.close()
    failing = {
        FailOn.races: doc["races"]["pair_count"] > 0,
        FailOn.critical: any(g["severity"] == "critical" for g in doc["races"]["groups"]),
        FailOn.anomalies: bool(doc["anomalies"]),
        FailOn.deadlocks: doc["deadlocks"]["count"] > 0,
    }
    if any(failing[f] for f in fail_on or []):
        raise typer.Exit(1)


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="Side A: a trace file, or a trace id (with --db or --load).",
                                     metavar="A", show_default=False)],
    b: Annotated[str, typer.Argument(help="Side B: a trace file, or a trace id (with --db or --load).",
                                     metavar="B", show_default=False)],
    db: DbOpt = None,
    load_files: Annotated[Optional[list[Path]], typer.Option(
        "--load", help="Load this file into the store first; A and B are then trace ids in it (repeatable).",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raceway-tui/diff/v1 document.")] = False,
    tui: Annotated[bool, typer.Option("--tui", help="Open the comparison in the terminal UI.")] = False,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0,
                                             help="A time changed when it moved by more than this share.")] = 0.2,
    show_same: Annotated[bool, typer.Option("--all", help="Also list what did not change.")] = False,
) -> None:
    """Compare two runs (two files, or two traces of one store): which races, anomalies,
    critical-path steps, durations, orderings and deadlocks appear, disappear or change.
    Matched by operation and location, never by ids."""
    import orjson

    from raceway_core.analysis.diff import Side, compare
    from raceway_core.session import TraceSession
    from raceway_tui.diff_view import render_diff

    sessions = []
    try:
        if db is None and not load_files:
            for f in (a, b):
                if not Path(f).is_file():
                    raise _fail(f"cannot read {f}: file not found (to compare two traces of one store, "
                                "give --db or --load and their trace ids)")
            sides = []
            for f in (a, b):
                store = _open_store(None)
                sessions.append(TraceSession(store))
                if not _load(store, [Path(f)], err):
                    raise typer.Exit(2)
                sides.append(Side(sessions[-1], None, f))
        else:
            store = _open_store(db)
            sessions.append(TraceSession(store))
            if load_files and not _load(store, load_files, err):
                raise typer.Exit(2)
            known = set(store.sql("SELECT DISTINCT trace_id FROM events WHERE list_contains($ids, trace_id)",
                                  {"ids": [a, b]})["trace_id"].to_pylist())
            for t in (a, b):
                if t not in known:
                    raise _fail(f"no trace with id {t!r} in the store")
            sides = [Side(sessions[0], a, a), Side(sessions[0], b, b)]
        try:
            doc = compare(*sides, threshold=threshold)
        except RacewayError as exc:
            raise _fail(str(exc)) from exc
    finally:
        for s in sessions:
            s.close()
    if as_json:
        sys.stdout.write(orjson.dumps(doc, default=str).decode() + "\n")
    elif tui:
        from raceway_tui.diff_view import DiffApp

        DiffApp(doc).run()
    else:
        out.print(render_diff(doc, show_same))


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8080,
    db: Annotated[Optional[str], typer.Option("--db", show_default=False, help="DuckDB file to store events in (:memory: for none; default raceway.duckdb, or in memory with --store, where it is only an analysis cache).")] = None,
    store: Annotated[Optional[str], typer.Option("--store", envvar="RACEWAY_DATABASE_URL", show_default=False, help="PostgreSQL database to store events in, shared by several servers: postgresql://USER@HOST/DB (also RACEWAY_DATABASE_URL).")] = None,
    api_key: Annotated[Optional[list[str]], typer.Option("--api-key", help="Accept this API key (repeatable); without any, no key is needed. Visible to other users in the process list (/proc/PID/cmdline): prefer RACEWAY_API_KEY or --api-key-file.")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option("--api-key-file", help="Accept the keys in this file (one per line). The RACEWAY_API_KEY environment variable, when set, is accepted too.", show_default=False)] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option("--cors-origin", help="Let web pages from this origin (e.g. http://localhost:3000) call the API; repeatable. Default: none (no CORS headers).", show_default=False)] = None,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body accepted, in MB.")] = 32,
    client_timeout: Annotated[float, typer.Option("--client-timeout", min=0.1, help="Seconds a connection may keep the server waiting (for a request, or for more of its body) before it is closed.")] = 10.0,
    max_connections: Annotated[Optional[int], typer.Option("--max-connections", min=1, show_default=False, help="Open connections per server process; past it the longest-idle one is closed (default: what the open-file limit allows).")] = None,
    ingest_workers: Annotated[Optional[int], typer.Option(
        "--ingest-workers", min=0, show_default=False,
        help="Processes that take HTTP and parse POSTed events beside the one that stores them "
             "(default: 1 with two or more cores, else 0: one process does everything).")] = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", "-c", help="The original Raceway's raceway.toml (keys: see README); RACEWAY_* environment "
        "variables override it, flags override both.", show_default=False)] = None,
    retain: Annotated[Optional[str], typer.Option(
        "--retain", show_default=False, help="Remove traces whose newest event is older than this "
        "(e.g. 7d, 12h, 30m), whole, from the store (and the --store database).")] = None,
    retain_check: Annotated[float, typer.Option(
        "--retain-check", min=0.1, help="Seconds between retention passes.")] = 60.0,
) -> None:
    """Run a Raceway-compatible server: SDKs POST /events, clients pull /api/events."""
    from raceway_core.server import serve as run_server
    from raceway_core.server.http import configured_keys
    from raceway_tui.serve_config import file_options

    flags = {"host": host, "port": port, "db": db, "api_keys": tuple(api_key or ()), "store_url": store}
    flags, options = file_options(ctx, config, flags, err)
    host, port, db, api_key = flags["host"], flags["port"], flags["db"], list(flags["api_keys"])
    store = flags["store_url"]
    try:
        keys = configured_keys(tuple(api_key or ()), None if api_key_file is None else str(api_key_file))
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    if cors_origin:  # the flag overrides the file's origins
        options["cors_origins"] = tuple(cors_origin)

    if store:
        _check_store_url(store)
    db = db or (":memory:" if store else DEFAULT_SERVE_DB)
    keep = None
    if retain is not None:
        from raceway_core.retention import parse_duration

        try:
            keep = parse_duration(retain)
        except ValueError as exc:
            raise _fail(f"--retain: {exc}") from exc
    where = "in memory, kept by nothing" if db == ":memory:" else str(Path(db).resolve())
    if db == DEFAULT_SERVE_DB:
        where += " (the default, in the current directory; --db chooses the file)"
    where = f"store: {_redact(store)}, cache: {where}" if store else f"db: {where}"

    def announce(url: str) -> None:
        out.print(literal(f"raceway-tui serve: listening on {url} ({where}, "
                          f"{'API key required' if keys else 'no API key required'})"), soft_wrap=True)
        if not keys and host not in ("127.0.0.1", "localhost", "::1"):
            err.print("warning: reachable from other machines without an API key (use --api-key)",
                      highlight=False, soft_wrap=True)

    try:
        run_server(host, port, db, keys, int(max_body_mb * 1e6), announce=announce,
                   fronts=ingest_workers, client_timeout=client_timeout, max_connections=max_connections,
                   store_url=store, retain=keep, retain_every=retain_check, **options)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    err.print("raceway-tui serve: stopped; every acknowledged event is committed and the database closed",
              highlight=False, soft_wrap=True)


class ExportWhat(str, Enum):
    trace = "trace"
    events = "events"
    critical = "critical"
    anomalies = "anomalies"


@app.command("export")
def export_(
    files: FilesArg = None,
    what: Annotated[Optional[ExportWhat], typer.Option(
        "--what", "-w", help="trace: its events as wire-format JSON (raceway-tui load reads it back); events: "
        "as CSV or JSON; critical: the critical path; anomalies: as Markdown, CSV or JSON. Default: trace; "
        "with only --server (or none), the server's whole answer for the trace, as the original's export.",
        show_default=False)] = None,
    output: Annotated[str, typer.Option("--output", "-o", metavar="PATH",
                                        help="The file to write ('-': standard output).")] = ...,
    trace_id: Annotated[Optional[str], typer.Option(
        "--trace", "--trace-id", "-t", help="The trace (an id or an unambiguous prefix); default: every trace "
        "(the critical path needs one).", show_default=False)] = None,
    out_fmt: Annotated[Optional[str], typer.Option(
        "--format", "-f", help="json, csv or md (Markdown). Default: trace json, events csv, critical and "
        "anomalies md.", show_default=False)] = None,
    db: DbOpt = None,
    server: Annotated[Optional[str], typer.Option(
        "--server", help="Pull the events of a Raceway server first (http://HOST:PORT).", show_default=False)] = None,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", help="With --server: the API key (default: RACEWAY_API_KEY when set).", show_default=False)] = None,
    store: StoreOpt = None,
    in_fmt: Annotated[Optional[str], typer.Option(
        "--input-format", help="Read the files as this format instead of detecting it.", show_default=False)] = None,
    scope: ScopeOpt = Scope.auto,
) -> None:
    """Export what the web UI of the original exports: a trace as JSON, events as CSV, the
    critical path or the anomalies as Markdown (of one trace, or of all).

    Without --what and without local data (files, --db, --store), as the original's
    `raceway export`: the server's answer for the trace (GET /api/traces/ID), unchanged."""
    from raceway_core.causality.engine import EngineOptions
    from raceway_core.export import check_export, export, resolve_trace
    from raceway_core.session import TraceSession

    if what is None and not files and db is None and not store:
        from raceway_tui import remote_cli

        if trace_id is None:
            raise _fail("name the trace to export (--trace ID), or choose what to export (--what)")
        return remote_cli.export(trace_id, Path(output), server, api_key)
    what = what or ExportWhat.trace

    try:
        fmt = check_export(what.value, out_fmt)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    if what is ExportWhat.critical and trace_id is None:
        raise _fail("the critical path is a trace's: name it with --trace ID")
    options = import_options(in_fmt)
    local = _open_store(db)
    session = TraceSession(local, EngineOptions(variable_scope=scope.value))
    try:
        _pull(local, store, err)
        if server is not None:
            from raceway_core.client import RacewayClient

            try:
                with RacewayClient(server_url(server), local, api_key=api_key) as client:
                    got = client.sync()
            except RacewayError as exc:
                raise _fail(str(exc)) from exc
            err.print(f"{server}: {got.loaded} new events", highlight=False, soft_wrap=True, markup=False)
        if files and not _load(local, files, err, options):
            raise typer.Exit(2)
        try:
            trace = resolve_trace(session, trace_id) if trace_id is not None else None
            if output == "-":
                sys.stdout.flush()
                n = export(session, what.value, fmt, sys.stdout.buffer, trace)
                sys.stdout.buffer.flush()
            else:
                path = Path(output)
                try:
                    with open(path, "wb") as f:
                        n = export(session, what.value, fmt, f, trace)
                except RacewayError:
                    path.unlink(missing_ok=True)  # no half-written file
                    raise
        except OSError as exc:
            raise _fail(f"cannot write {output}: {exc.strerror or exc}") from exc
        except RacewayError as exc:
            raise _fail(str(exc)) from exc
    finally:
        local.close()
    if output != "-":
        from raceway_tui.format import count

        noun = {"trace": "event", "events": "event", "critical": "step", "anomalies": "anomaly"}[what.value]
        err.print(literal(f"wrote {count(n, noun)} to {output}"), soft_wrap=True)


def _check_store_url(url: str) -> None:
    """--store takes a PostgreSQL URL; the error shows it without its password."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise _fail(f"invalid --store {_redact(url)!r}: expected a PostgreSQL URL, postgresql://USER@HOST/DB")


def _redact(url: str) -> str:
    from raceway_core.pgstore.pool import redact

    return redact(url)


def server_url(url: str) -> str:
    """A server URL checked before the explorer starts: http(s)://HOST[:PORT][/path]."""
    import httpx

    bad = f"invalid server URL {url!r}: expected http://HOST:PORT, e.g. http://127.0.0.1:8080"
    try:
        parsed = httpx.URL(url)
        parsed.port  # noqa: B018 - a port that is not a number raises here
    except (httpx.InvalidURL, ValueError) as exc:
        raise _fail(bad) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _fail(bad)
    return url


@app.command()
def connect(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://127.0.0.1:8080 (raceway-tui serve, "
                                            "or an original Raceway server).", show_default=False)],
    db: Annotated[Optional[Path], typer.Option(
        "--db", help="DuckDB file for the local copy: the next run continues from where this one stopped "
        "(default: in memory).")] = None,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", help="API key to send (default: RACEWAY_API_KEY when set).", show_default=False)] = None,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.1, help="Seconds between syncs while auto-refresh is on (key a).")] = 2.0,
    pane: PaneOpt = "dashboard",
) -> None:
    """Open the explorer on a live server: it pulls new events every few seconds.

    From a raceway-tui server it follows the incremental feed; from an original Raceway
    server it pages /api/traces. Same as `raceway-tui --server URL`."""
    from raceway_tui.app import create_app

    url = server_url(url)
    _run(create_app(db=db, server=url, api_key=api_key, interval=interval, pane=pane_id(pane)))


@app.command()
def web(
    files: FilesArg = None,
    db: Annotated[Optional[Path], typer.Option("--db", show_default=False, help=(
        "A DuckDB store (e.g. made by `raceway-tui load --db`); each session opens its own copy."))] = None,
    server: Annotated[Optional[str], typer.Option("--server", help="Follow a Raceway server (live mode).",
                                                  show_default=False)] = None,
    store: StoreOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8000,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", envvar="RACEWAY_API_KEY", show_default=False,
        help="Browsers must sign in with this key (once: then a cookie); with --server it is also the "
             "server's key. Also RACEWAY_API_KEY (not visible in the process list).")] = None,
    max_sessions: Annotated[int, typer.Option("--max-sessions", min=1,
                                              help="Explorer sessions (browser tabs) at once.")] = 8,
    fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None, settings: ImportOpt = None,
    max_record: MaxRecordOpt = None,
    scope: ScopeOpt = Scope.auto,
) -> None:
    """Serve the explorer to browsers: each tab runs its own `raceway-tui open` with the same
    files, --db, --server or --store (same keys, panes and live mode)."""
    from raceway_tui.web import WebConfig, run

    import_options(fmt, regex, delimiter, settings, max_record)  # bad values fail here, not per tab
    missing = [str(f) for f in files or [] if not f.exists()]
    if missing:
        raise _fail("cannot read " + ", ".join(missing) + ": file not found")
    if db is not None and not db.is_file():
        raise _fail(f"cannot read --db {db}: file not found (each session opens a copy of an existing store)")
    if not files and db is None and not server and not store:
        raise _fail("nothing to serve: name trace files, --db, --server or --store")
    if server is not None:
        server = server_url(server)
    if store:
        _check_store_url(store)
    args = [str(f.resolve()) for f in files or []]
    for flag, value in (("--server", server), ("--store", store), ("--format", fmt), ("--regex", regex),
                        ("--delimiter", delimiter), ("--max-record-size", max_record)):
        if value is not None:
            args += [flag, value]
    for item in settings or []:
        args += ["--import-option", item]
    args += ["--scope-variables", scope.value]
    config = WebConfig(args=args, db=db.resolve() if db else None, server=server, store=store, host=host,
                       port=port, api_key=api_key or None, max_sessions=max_sessions)

    def announce(url: str) -> None:
        out.print(literal(f"raceway-tui web: serving the explorer on {url} ("
                          f"{'API key required' if api_key else 'no API key required'}, "
                          f"at most {max_sessions} sessions)"), soft_wrap=True)
        if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
            err.print("warning: reachable from other machines without an API key (use --api-key)",
                      highlight=False, soft_wrap=True)

    try:
        run(config, announce)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _remote_commands() -> set[str]:
    from raceway_tui import remote_cli

    remote_cli.register(app)  # traces, trace, services, service, races, ... --server URL
    return remote_cli.COMMANDS


COMMANDS = {"open", "load", "sql", "analyze", "diff", "serve", "connect", "web", "export"} | _remote_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: `raceway-tui FILE...` means `raceway-tui open FILE...`;
    `raceway-tui --server URL ...` means `raceway-tui connect URL ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] == "--server" or args[0].startswith("--server=")):
        url = args[0].partition("=")[2] if "=" in args[0] else (args[1] if len(args) > 1 else "")
        rest = args[1:] if "=" in args[0] else args[2:]
        args = ["connect", url, *rest] if url else ["connect"]
    elif args and args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version"):
        args = ["open", *args]
    try:
        app(args=args, prog_name="raceway-tui")
    except Exception as exc:  # a bug: one clear line, the traceback in a log file, exit 1
        from raceway_tui import crash

        err.print(Text(crash.one_line(exc, crash.write_log(exc), "the command"), style="bold red"), soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
