"""The raceway-tui command line: open the explorer, load, query and analyse headless."""

from __future__ import annotations

import os
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


def _open_store(db: Path | None):
    from raceway_core.store import Store

    try:
        return Store(db)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc


def import_options(fmt: str | None = None, regex: str | None = None, delimiter: str | None = None,
                   settings: list[str] | None = None):
    """ImportOptions from the command line (None when nothing was given); bad values end the command."""
    if fmt is None and regex is None and delimiter is None and not settings:
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
    if fmt is None and regex is None and delimiter is None and not extra:
        return None
    return ImportOptions(format=fmt, regex=regex, delimiter=delimiter, extra=extra)


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


@app.command("open")
def open_(
    files: FilesArg = None,
    db: DbOpt = None,
    server: Annotated[Optional[str], typer.Option("--server", help="Pull traces from a Raceway server URL.")] = None,
    fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None, settings: ImportOpt = None,
) -> None:
    """Open the explorer on trace files, a --db store, or a --server."""
    from raceway_tui.app import create_app

    options = import_options(fmt, regex, delimiter, settings)
    missing = [str(f) for f in files or [] if not f.exists()]
    if files and len(missing) == len(files) and not db and not server:
        raise _fail("cannot read " + ", ".join(missing) + ": file not found")
    if server is not None:
        server = server_url(server)
    _run(create_app(files=list(files or []), db=db, server=server, options=options))


def _run(tui) -> None:
    """Run the explorer; a crash (see raceway_tui.crash) ends the command with exit code 1."""
    tui.run()
    if tui.crash_line:  # one line, not wrapped: the log file's path is to be copied whole
        err.print(Text(tui.crash_line, style="bold red"), soft_wrap=True)
    if tui.return_code:
        raise typer.Exit(tui.return_code)


@app.command()
def load(files: Annotated[list[Path], typer.Argument(help="Trace files to load.")], db: DbOpt = None,
         fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None,
         settings: ImportOpt = None) -> None:
    """Load trace files headless and print what each one held."""
    options = import_options(fmt, regex, delimiter, settings)
    store = _open_store(db)
    try:
        ok = _load(store, files, out, options)
    finally:
        store.close()
    if not ok:
        raise typer.Exit(2)


@app.command()
def sql(
    files: FilesArg = None,
    query: Annotated[str, typer.Option("--query", "-q", help="SQL to run against the store (tables: events, rejects, sources).")] = ...,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None, settings: ImportOpt = None,
) -> None:
    """Run SQL against the store and print the result."""
    from raceway_core.errors import QueryError
    from raceway_tui.render import arrow_to_json, arrow_to_rich

    options = import_options(fmt, regex, delimiter, settings)
    store = _open_store(db)
    try:
        if files and not _load(store, files, err, options):
            raise typer.Exit(2)
        try:
            table = store.sql(query)
        except QueryError as exc:
            raise _fail(f"query failed: {exc}") from exc
        if as_json:
            sys.stdout.write(arrow_to_json(table) + "\n")
        else:
            out.print(arrow_to_rich(table))
    finally:
        store.close()


class FailOn(str, Enum):
    races = "races"
    critical = "critical"
    anomalies = "anomalies"


class Scope(str, Enum):
    global_ = "global"
    service = "service"


@app.command()
def analyze(
    files: FilesArg = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raceway-tui/analysis/v1 document.")] = False,
    max_pairs: Annotated[int, typer.Option("--max-pairs", help="Racing pairs listed (all are counted).")] = 100_000,
    fail_on: Annotated[Optional[list[FailOn]], typer.Option(
        "--fail-on", help="Exit 1 when such findings exist (races: any race; critical: a write-write race).")] = None,
    scope: Annotated[Scope, typer.Option("--scope-variables",
                                         help="global: a name is one variable everywhere; service: per service.")] = Scope.global_,
    fmt: FormatOpt = None, regex: RegexOpt = None, delimiter: DelimiterOpt = None, settings: ImportOpt = None,
) -> None:
    """Analyse traces headless: races, critical paths, anomalies, dependencies."""
    import orjson

    from raceway_core.causality.engine import EngineOptions
    from raceway_core.session import TraceSession
    from raceway_tui.report_view import render, shown_paths

    options = import_options(fmt, regex, delimiter, settings)
    store = _open_store(db)
    session = TraceSession(store, EngineOptions(variable_scope=scope.value))
    try:
        if files and not _load(store, files, err, options):
            raise typer.Exit(2)
        doc = session.report(max_pairs=max_pairs)
        if as_json:
            sys.stdout.write(orjson.dumps(doc, default=str).decode() + "\n")
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
    }
    if any(failing[f] for f in fail_on or []):
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8080,
    db: Annotated[str, typer.Option("--db", help="DuckDB file to store events in (:memory: for none).")] = "raceway.duckdb",
    api_key: Annotated[Optional[list[str]], typer.Option("--api-key", help="Accept this API key (repeatable); without any, no key is needed.")] = None,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body accepted, in MB.")] = 32,
    ingest_workers: Annotated[Optional[int], typer.Option(
        "--ingest-workers", min=0, show_default=False,
        help="Processes that take HTTP and parse POSTed events beside the one that stores them "
             "(default: 1 with two or more cores, else 0: one process does everything).")] = None,
) -> None:
    """Run a Raceway-compatible server: SDKs POST /events, clients pull /api/events."""
    from raceway_core.server import serve as run_server

    where = "in memory, kept by nothing" if db == ":memory:" else str(Path(db).resolve())
    if db == DEFAULT_SERVE_DB:
        where += " (the default, in the current directory; --db chooses the file)"

    def announce(url: str) -> None:
        out.print(literal(f"raceway-tui serve: listening on {url} (db: {where}, "
                          f"{'API key required' if api_key else 'no API key required'})"), soft_wrap=True)
        if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
            err.print("warning: reachable from other machines without an API key (use --api-key)",
                      highlight=False, soft_wrap=True)

    try:
        run_server(host, port, db, tuple(api_key or ()), int(max_body_mb * 1e6), announce=announce,
                   fronts=ingest_workers)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    err.print("raceway-tui serve: stopped; every acknowledged event is committed and the database closed",
              highlight=False, soft_wrap=True)


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
) -> None:
    """Open the explorer on a live server: it pulls new events every few seconds.

    From a raceway-tui server it follows the incremental feed; from an original Raceway
    server it pages /api/traces. Same as `raceway-tui --server URL`."""
    from raceway_tui.app import create_app

    url = server_url(url)
    _run(create_app(db=db, server=url, api_key=api_key, interval=interval))


COMMANDS = {"open", "load", "sql", "analyze", "serve", "connect"}


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
