"""Importers for traces from other tools, converted to Raceway events on load.

An importer turns a whole input (decoded text) into Raceway wire-format event
dicts, which then go through the same validation and store as native input.
Records the importer cannot convert are ``Problem``s (rejects with a reason).

The native Raceway format has no importer here; ``detect`` returns None for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from raceway_core.loading.reading import Problem


@dataclass
class ImportOptions:
    """Settings a user may give for an input (CLI: --format, --regex, --delimiter, ...)."""

    format: str | None = None  # force an importer by name; None = detect from content
    regex: str | None = None  # ShiViz parser regex (JS or Python named groups)
    delimiter: str | None = None  # ShiViz multi-execution delimiter regex
    extra: dict[str, str] = field(default_factory=dict)  # importer-specific settings
    max_record: int | None = None  # longest record (line) in bytes; None: loading.reading.MAX_RECORD
    source: str = ""  # the input's file name, set by the reader (ShiViz names traces after it)


@dataclass
class Converted:
    events: list[dict]  # Raceway wire-format events, in input order
    lines: list[int | None]  # the input line each event came from (None when unknown)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    format: str = ""  # the name to show as the source's mode, e.g. "shiviz", "zipkin"


class Importer(Protocol):
    name: str

    def sniff(self, head: str) -> bool:
        """True when ``head`` (the first 64 KB of the decoded input) is this importer's format."""

    def convert(self, text: str, options: ImportOptions) -> Converted:
        """The events of the whole input ``text``."""


IMPORTERS: list[Importer] = []  # tried in order by detect()


def register(importer: Importer) -> Importer:
    IMPORTERS.append(importer)
    return importer


def by_name(name: str) -> Importer | None:
    _load_builtin()
    return next((i for i in IMPORTERS if i.name == name), None)


def detect(head: str) -> Importer | None:
    """The importer for this content, or None for native Raceway input."""
    _load_builtin()
    return next((i for i in IMPORTERS if i.sniff(head)), None)


def names() -> list[str]:
    _load_builtin()
    return ["raceway"] + [i.name for i in IMPORTERS]


_loaded = False


def _load_builtin() -> None:
    """Import the built-in importer modules once (each registers itself)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
