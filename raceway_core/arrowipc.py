"""Arrow tables as bytes (the IPC stream format): how rows travel between processes."""

from __future__ import annotations

import pyarrow as pa

MEDIA_TYPE = "application/vnd.apache.arrow.stream"


def to_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)
    return sink.getvalue().to_pybytes()


def from_bytes(data: bytes) -> pa.Table:
    """The table of a stream (pa.ArrowInvalid when it is not one); no copy of ``data``."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
