"""The raceway-tui command line: open the explorer, load, query and analyse headless."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from raceway_core import __version__
from raceway_core.errors import RacewayError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="raceway-tui: explore causality traces of concurrent and distributed programs.\n\n"
    "Run `raceway-tui FILE...` to open the explorer (same as `raceway-tui open FILE...`).",
)
out = Console()
err = Console(stderr=True)

FilesArg = Annotated[Optional[list[Path]], typer.Argument(help="Trace files (JSON, NDJSON, .gz).", show_default=False)]
DbOpt = Annotated[Optional[Path], typer.Option("--db", help="DuckDB file to keep the store in (reopens instantly).")]


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
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _open_store(db: Path | None):
    from raceway_core.store import Store

    try:
        return Store(db)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc


def _load(store, files: list[Path], console: Console) -> bool:
    """Load files, print one summary line each; False when nothing at all could be read."""
    if not files:
        return True
    try:
        summaries = store.load(files)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    for s in summaries:
        style = "red" if s.fatal else ("yellow" if s.rejected or s.notes else "green")
        console.print(f"[{style}]{s.line()}[/]", highlight=False, soft_wrap=True)
    return any(s.loaded or s.duplicates for s in summaries)


@app.command("open")
def open_(
    files: FilesArg = None,
    db: DbOpt = None,
    server: Annotated[Optional[str], typer.Option("--server", help="Pull traces from a Raceway server URL.")] = None,
) -> None:
    """Open the explorer on trace files, a --db store, or a --server."""
    from raceway_tui.app import create_app

    missing = [str(f) for f in files or [] if not f.exists()]
    if files and len(missing) == len(files) and not db and not server:
        raise _fail("cannot read " + ", ".join(missing) + ": file not found")
    create_app(files=list(files or []), db=db, server=server).run()


@app.command()
def load(files: Annotated[list[Path], typer.Argument(help="Trace files to load.")], db: DbOpt = None) -> None:
    """Load trace files headless and print what each one held."""
    store = _open_store(db)
    try:
        ok = _load(store, files, out)
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
) -> None:
    """Run SQL against the store and print the result."""
    from raceway_core.errors import QueryError
    from raceway_tui.render import arrow_to_json, arrow_to_rich

    store = _open_store(db)
    try:
        if files and not _load(store, files, err):
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


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8080,
    db: Annotated[str, typer.Option("--db", help="DuckDB file to store events in (:memory: for none).")] = "raceway.duckdb",
    api_key: Annotated[Optional[list[str]], typer.Option("--api-key", help="Accept this API key (repeatable); without any, no key is needed.")] = None,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body accepted, in MB.")] = 32,
) -> None:
    """Run a Raceway-compatible server: SDKs POST /events, clients pull /api/events."""
    from raceway_core.server import serve as run_server

    def announce(url: str) -> None:
        out.print(f"raceway-tui serve: listening on {url} (db: {db}, "
                  f"{'API key required' if api_key else 'no API key required'})", highlight=False, soft_wrap=True)
        if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
            err.print("warning: reachable from other machines without an API key (use --api-key)",
                      highlight=False, soft_wrap=True)

    try:
        run_server(host, port, db, tuple(api_key or ()), int(max_body_mb * 1e6), announce=announce)
    except RacewayError as exc:
        raise _fail(str(exc)) from exc
    err.print("raceway-tui serve: stopped; every acknowledged event is committed and the database closed",
              highlight=False, soft_wrap=True)


COMMANDS = {"open", "load", "sql", "analyze", "serve", "connect"}


def main(argv: list[str] | None = None) -> None:
    """Entry point: `raceway-tui FILE...` means `raceway-tui open FILE...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version"):
        args = ["open", *args]
    app(args=args, prog_name="raceway-tui")


if __name__ == "__main__":
    main()
