"""PostgreSQL as a shared store: several ``raceway-tui serve`` processes write
one database, and each keeps its DuckDB store as an analysis cache that
follows the database's feed.

    shared = SharedStore.open("postgresql://...", cache=Store())

``schema`` versions the tables, ``ingest`` stores POSTed batches, ``feed`` hands
out committed events in an order that never skips one, ``follower`` keeps the
local DuckDB in step.
"""

from __future__ import annotations

from raceway_core.pgstore.shared import SharedStore, is_database_url

__all__ = ["SharedStore", "is_database_url"]
