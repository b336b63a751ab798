"""raceway_core: load Raceway-style causality traces into DuckDB and analyse them.

No UI code lives here (no textual, no rich): this package is usable as a library.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "Store", "LoadSummary", "TraceSession"]


def __getattr__(name: str):
    # Lazy re-exports keep `import raceway_core` cheap.
    if name == "Store":
        from raceway_core.store import Store

        return Store
    if name == "LoadSummary":
        from raceway_core.loading.summary import LoadSummary

        return LoadSummary
    if name == "TraceSession":
        from raceway_core.session import TraceSession

        return TraceSession
    raise AttributeError(name)
