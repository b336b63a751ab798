"""The small exception hierarchy every raceway_core error belongs to.

The CLI and the TUI catch RacewayError and show its message; anything else is a bug.
"""


class RacewayError(Exception):
    """Base class: a problem the user can act on, with a readable message."""


class SourceError(RacewayError):
    """A whole input could not be read (missing file, unreadable, unknown format)."""


class StoreError(RacewayError):
    """The DuckDB store could not be opened or written."""


class QueryError(RacewayError):
    """A user-supplied SQL query failed."""


class Interrupted(RacewayError):
    """A thread's queries were stopped (Store.interrupt): what it computed is incomplete."""


class AnalysisError(RacewayError):
    """An analysis was asked something it cannot answer (unknown event id, ...)."""


class RemoteError(RacewayError):
    """A server could not be reached or answered with an error."""
