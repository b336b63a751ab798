"""Write an Arrow table (a view of the analysis) to JSON or Parquet."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from raceway_core.errors import RacewayError

FORMATS = ("json", "parquet")


def json_default(value):
    """orjson's ``default`` for what DuckDB results hold beyond plain JSON types."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError


def write_table(table: pa.Table, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``table`` to ``path``: ``json`` (an array of row objects) or ``parquet``;
    the format defaults to the file's suffix. Returns the path written."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise RacewayError(f"cannot export to {path}: unknown format {fmt!r} (use .json or .parquet)")
    try:
        if fmt == "parquet":
            pq.write_table(table, path)
        else:
            path.write_bytes(orjson.dumps(table.to_pylist(), default=json_default,
                                          option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2))
    except OSError as exc:
        raise RacewayError(f"cannot export to {path}: {exc.strerror or exc}") from exc
    return path
