"""Where the explorer writes: exports and crash logs go to per-user folders, never into the
current directory (often a source tree)."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, *default: str) -> Path:
    return Path(os.environ.get(var) or os.path.join(os.path.expanduser("~"), *default))


def export_dir() -> Path:
    """Exported views: $RACEWAY_EXPORT_DIR, else $XDG_DATA_HOME/raceway-tui/exports."""
    given = os.environ.get("RACEWAY_EXPORT_DIR")
    return Path(given) if given else _xdg("XDG_DATA_HOME", ".local", "share") / "raceway-tui" / "exports"


def log_dir() -> Path:
    """Crash logs: $XDG_STATE_HOME/raceway-tui."""
    return _xdg("XDG_STATE_HOME", ".local", "state") / "raceway-tui"
