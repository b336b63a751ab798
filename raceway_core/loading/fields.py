"""What a valid event looks like: the fields the loader checks and extracts.

Each field has a JSON path, the JSON types it may have, and whether it is
required. Variant fields are checked only for events of that variant. The SQL
that validates and extracts a chunk is generated from these lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

STR = ("VARCHAR",)
INT = ("UBIGINT", "BIGINT")
NUM = ("UBIGINT", "BIGINT", "DOUBLE")
OBJ = ("OBJECT",)
ARR = ("ARRAY",)
ID = ("VARCHAR", "UBIGINT", "BIGINT")  # task ids: some runtimes use numbers
KIND = ("OBJECT", "VARCHAR")

ACCESS_TYPES = ("Read", "Write", "AtomicRead", "AtomicWrite", "AtomicRMW")
WRITES = ("Write", "AtomicWrite", "AtomicRMW")
ATOMICS = ("AtomicRead", "AtomicWrite", "AtomicRMW")


@dataclass(frozen=True)
class Field:
    label: str  # as named in messages: 'metadata.thread_id'
    path: str
    types: tuple[str, ...]
    required: bool = False
    variant: str | None = None

    @property
    def name(self) -> str:
        return self.label.rsplit(".", 1)[-1]


def _top(label: str, types, required=False) -> Field:
    return Field(label, "$." + label, types, required)


TOP_FIELDS = [
    _top("id", STR, True),
    _top("trace_id", STR, True),
    _top("timestamp", STR, True),
    _top("kind", KIND, True),
    _top("parent_id", STR),
    _top("metadata", OBJ),
    _top("metadata.thread_id", STR),
    _top("metadata.process_id", INT),
    _top("metadata.service_name", STR),
    _top("metadata.environment", STR),
    _top("metadata.instance_id", STR),
    _top("metadata.distributed_span_id", STR),
    _top("metadata.upstream_span_id", STR),
    _top("metadata.tags", OBJ),
    _top("metadata.duration_ns", NUM),
    _top("causality_vector", ARR),
    _top("lock_set", ARR),
]

_VARIANTS: dict[str, list[tuple[str, tuple[str, ...], bool]]] = {
    "FunctionCall": [("function_name", STR, False), ("module", STR, False),
                     ("file", STR, False), ("line", INT, False)],
    "AsyncSpawn": [("task_id", ID, True), ("spawned_by", STR, False)],
    "AsyncAwait": [("future_id", ID, True), ("awaited_at", STR, False)],
    "StateChange": [("variable", STR, True), ("access_type", STR, True), ("location", STR, False)],
    "LockAcquire": [("lock_id", STR, True), ("lock_type", STR, False), ("location", STR, False)],
    "LockRelease": [("lock_id", STR, True), ("lock_type", STR, False), ("location", STR, False)],
    "MemoryFence": [("ordering", STR, False), ("location", STR, False)],
    "HttpRequest": [("method", STR, False), ("url", STR, False)],
    "HttpResponse": [("status", INT, False), ("duration_ms", NUM, False)],
    "DatabaseQuery": [("query", STR, False), ("database", STR, False), ("duration_ms", NUM, False)],
    "DatabaseResult": [("rows_affected", INT, False)],
    "Error": [("error_type", STR, False), ("message", STR, False)],
    "Custom": [("name", STR, False)],
}

KNOWN_VARIANTS = tuple(_VARIANTS)

VARIANT_FIELDS = [Field(f"kind.{v}", f"$.kind.{v}", OBJ, False, v) for v in _VARIANTS] + [
    Field(f"kind.{v}.{name}", f"$.kind.{v}.{name}", types, req, v)
    for v, fields in _VARIANTS.items()
    for name, types, req in fields
]

ALL_FIELDS = TOP_FIELDS + VARIANT_FIELDS
# Slow path (exact reasons): positions in json_type lists; slot 1 is '$' itself.
PATHS = ["$"] + [f.path for f in ALL_FIELDS]
INDEX = {f.label: i + 2 for i, f in enumerate(ALL_FIELDS)}

# Fast path: one json_transform per record into JSON fragments, whose first
# character tells the type. Nested objects become structs.
_KIND = {
    v: {name: "JSON" for name, _, _ in fs} | ({"old_value": "JSON", "new_value": "JSON"} if v == "StateChange" else {})
    for v, fs in _VARIANTS.items()
}
_TOP = {
    "id": "JSON", "trace_id": "JSON", "parent_id": "JSON", "timestamp": "JSON", "kind": _KIND,
    "metadata": {f.name: "JSON" for f in TOP_FIELDS if f.label.startswith("metadata.")},
    "causality_vector": "JSON", "lock_set": "JSON",
}


def _as_varchar(struct: dict) -> str:
    """The SQL type of a json_transform result with its JSON leaves read as text."""
    parts = []
    for k, v in struct.items():
        parts.append(f'"{k}" ' + (_as_varchar(v) if isinstance(v, dict) else "VARCHAR"))
    return "STRUCT(" + ", ".join(parts) + ")"


TOP_STRUCT, TOP_TYPE = json.dumps(_TOP), _as_varchar(_TOP)
