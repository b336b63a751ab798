"""The one place the server asks the causality engine for analyses.

Every analysis endpoint calls a function here, which shapes the engine's answer
like the original server's JSON. Until the engine (``raceway_core.session.
TraceSession``) is wired in, each raises ``AnalysisUnavailable`` and the server
answers HTTP 501 saying so: no made-up results.
"""

from __future__ import annotations

from raceway_core.store import Store

NOT_YET = ("analysis is not available in this build yet: the causality engine "
           "(raceway_core.session.TraceSession) is not wired into the server")


class AnalysisUnavailable(Exception):
    """The analysis cannot be computed by this server (HTTP 501)."""


class Analyses:
    """Analyses over the server's store (one instance per server)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def trace(self, trace_id: str) -> dict:
        """The analysis fields of GET /api/traces/{id}: audit_trails, analysis,
        critical_path, anomalies, dependencies."""
        raise AnalysisUnavailable(NOT_YET)

    def critical_path(self, trace_id: str) -> dict:
        raise AnalysisUnavailable(NOT_YET)

    def anomalies(self, trace_id: str) -> dict:
        raise AnalysisUnavailable(NOT_YET)

    def dependencies(self, trace_id: str) -> dict:
        raise AnalysisUnavailable(NOT_YET)

    def audit_trail(self, trace_id: str, variable: str) -> dict:
        raise AnalysisUnavailable(NOT_YET)

    def global_analysis(self) -> dict:
        raise AnalysisUnavailable(NOT_YET)

    def global_races(self) -> dict:
        raise AnalysisUnavailable(NOT_YET)
