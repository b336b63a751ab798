"""A crash of the explorer: one clear line on stderr, the traceback in a log file, exit 1.

Textual's default prints a traceback with every local variable (thousands of lines, the
trace data in them) and the command still exited 0."""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import traceback
from pathlib import Path

from raceway_tui.literal import visible
from raceway_tui.paths import log_dir


def write_log(exc: BaseException) -> Path | None:
    """The traceback in a new file under log_dir() (or the temp folder); None if neither is writable."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    name = f"crash-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(f"raceway-tui crash, {dt.datetime.now().isoformat()}\nargv: {sys.argv!r}\n\n{text}")
            return path
        except OSError:
            continue
    return None


def one_line(exc: BaseException, log: Path | None, what_stopped: str = "the explorer", limit: int = 300) -> str:
    what = visible(f"{type(exc).__name__}: {exc}")
    if len(what) > limit:
        what = what[: limit - 1] + "…"
    where = f"; the traceback is in {log}" if log else "; the traceback could not be written to a file"
    return f"raceway-tui: internal error, {what_stopped} stopped ({what}){where}"
