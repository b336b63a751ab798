"""Arrow tables as Rich tables or JSON text, for the command line."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa
from rich.table import Table
from rich.text import Text

from raceway_core.export import json_default
from raceway_tui.literal import literal


def arrow_to_json(table: pa.Table) -> str:
    return orjson.dumps(table.to_pylist(), default=json_default,
                        option=orjson.OPT_NON_STR_KEYS).decode()


def _cell(value) -> Text:
    if value is None:
        return Text("∅")
    if isinstance(value, dt.datetime):
        return literal(value.isoformat())
    if isinstance(value, (list, dict)):
        return literal(orjson.dumps(value, default=json_default).decode())
    return literal(value)


def arrow_to_rich(table: pa.Table, limit: int = 10_000) -> Table:
    out = Table(show_lines=False, header_style="bold", caption=f"{table.num_rows:,} row{'' if table.num_rows == 1 else 's'}")
    for name in table.column_names:
        out.add_column(name, overflow="fold")
    for row in table.slice(0, limit).to_pylist():
        out.add_row(*(_cell(row[c]) for c in table.column_names))
    if table.num_rows > limit:
        out.caption = f"{table.num_rows:,} rows (first {limit:,} shown)"
    return out
