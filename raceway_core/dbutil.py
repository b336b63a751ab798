"""Small DuckDB helpers shared by the store and the analyses."""

from __future__ import annotations

import duckdb
import pyarrow as pa


def query_arrow(cur: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    """Run ``sql`` on ``cur``; the rows as an Arrow table (empty for statements)."""
    rel = cur.sql(sql, params=params) if params else cur.sql(sql)
    if rel is None:  # a statement with no result set
        return pa.table({})
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # DuckDB 2.x / 1.x
    return fetch()
