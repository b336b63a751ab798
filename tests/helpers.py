"""Small builders for hand-written test events in the Raceway wire format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def event(i: int | str, trace: str = "trace-1", thread: str = "main", kind: dict | str | None = None,
          ts: str | None = None, parent: str | None = None, **overrides) -> dict:
    """One valid event; overrides replace top-level keys (use metadata=... for metadata)."""
    n = i if isinstance(i, int) else 0
    ev = {
        "id": f"ev-{i}",
        "trace_id": trace,
        "parent_id": parent,
        "timestamp": ts or f"2026-11-01T12:00:00.{n:06d}+00:00",
        "kind": kind if kind is not None else {"StateChange": {
            "variable": "x", "old_value": n, "new_value": n + 1, "location": "app.py:1", "access_type": "Write"}},
        "metadata": {"thread_id": thread, "process_id": 1, "service_name": "svc", "environment": "test",
                     "tags": {}, "duration_ns": None, "instance_id": "svc-1",
                     "distributed_span_id": None, "upstream_span_id": None},
        "causality_vector": [],
        "lock_set": [],
    }
    ev.update(overrides)
    return ev


def write_lines(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def ndjson(path: Path, events: list[dict], gz: bool = False) -> Path:
    return write_lines(path, [json.dumps(e) for e in events], gz)


def document(path: Path, doc, gz: bool = False, indent: int | None = 2) -> Path:
    data = json.dumps(doc, indent=indent).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def raw_texts(store) -> list[str]:
    """Every event's raw JSON text in seq order, as the store gives it back (kept or read lazily)."""
    from raceway_core import rawtext

    cur = store.cursor()
    try:
        return rawtext.all_texts(cur)
    finally:
        cur.close()
