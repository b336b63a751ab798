"""`raceway-tui serve -c raceway.toml`: the configuration file and RACEWAY_* overrides
(``raceway_core.server.config_file``) merged under the command line's flags."""

from __future__ import annotations

from pathlib import Path

import typer
from click.core import ParameterSource
from rich.console import Console
from rich.text import Text

from raceway_core.server.config_file import ConfigError, load, serve_options

FLAG_PARAMS = {"host": "host", "port": "port", "db": "db", "api_keys": "api_key", "store_url": "store"}  # option -> serve's parameter


def file_options(ctx: typer.Context, path: Path | None, flags: dict, err: Console) -> tuple[dict, dict]:
    """(the flags' values, with the file's and environment's where no flag was given;
    the further ``serve`` options they set). A bad value ends the command (exit 2)."""
    try:
        settings = load(path)
    except ConfigError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        raise typer.Exit(2) from exc
    for note in settings.notes:
        err.print(Text.assemble(("config: ", "yellow"), note))
    options = serve_options(settings)
    merged = dict(flags)
    for name, param in FLAG_PARAMS.items():
        given = ctx.get_parameter_source(param) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if name in options:
            value = options.pop(name)
            if not given:
                merged[name] = value
    return merged, options
