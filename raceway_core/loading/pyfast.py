"""A Python fast path for small batches (server POSTs): events to rows without SQL.

Planning the loader's validation SQL costs ~15 ms per statement whatever the
batch size, which caps a server taking batches of 100 events from sequential
clients at ~10k events/s. Here each event of a small batch is parsed with orjson
and, when it plainly passes every rule (the same lists in fields.py), turned
into the same row the SQL would make. Anything less plain - an unknown variant,
an unusual timestamp form, a wrong type, a huge number - goes to the SQL path,
which decides and gives exact reasons. So this path may only ever be stricter.
tests/test_pyfast.py checks both paths store identical rows.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import orjson
import pyarrow as pa

from raceway_core.loading.fields import ACCESS_TYPES, ID, INT, NUM, OBJ, STR, TOP_FIELDS, VARIANT_FIELDS
from raceway_core.schema import REC_BITS

_TS = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")
MAX_COUNTER = 10**18
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ok(value, types) -> bool:
    if value is None:
        return True  # every field checked here allows null (required ones are checked apart)
    t = type(value)
    if types is STR:
        return t is str
    if types is INT:
        return t is int and abs(value) < 2**63
    if types is NUM:
        return (t is int and abs(value) < 2**63) or (t is float and math.isfinite(value))
    if types is OBJ:
        return t is dict
    if types is ID:
        return t is str or (t is int and abs(value) < 2**63)
    return False


_META = [(f.name, f.types) for f in TOP_FIELDS if f.label.startswith("metadata.")]
_VARIANTS: dict[str, list[tuple[str, tuple, bool]]] = {}
for _f in VARIANT_FIELDS:
    if _f.label.count(".") == 2:
        _VARIANTS.setdefault(_f.variant, []).append((_f.name, _f.types, _f.required))


def _ts_ns(s: str) -> int | None:
    m = _TS.fullmatch(s)
    if m is None:
        return None
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    try:
        base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), tzinfo=timezone.utc)
    except ValueError:
        return None
    if not 1 <= int(y) <= 9999:
        return None
    off = 0 if tz == "Z" else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    seconds = (base - _EPOCH) // _SECOND - off
    return seconds * 1_000_000_000 + int((frac or "").ljust(9, "0"))


_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc) - _EPOCH


def row(ev) -> dict | None:
    """The events-table values of one parsed event, or None: let SQL decide."""
    if type(ev) is not dict:
        return None
    eid, tid, ts, kind, meta = ev.get("id"), ev.get("trace_id"), ev.get("timestamp"), ev.get("kind"), ev.get("metadata")
    parent = ev.get("parent_id")
    if type(eid) is not str or type(tid) is not str or type(ts) is not str or not _ok(parent, STR):
        return None
    if type(kind) is not dict or len(kind) != 1 or type(meta) is not dict:
        return None
    (variant, payload), = kind.items()
    fields = _VARIANTS.get(variant)
    if fields is None or type(payload) is not dict:
        return None  # unknown variants, unit and null payloads: SQL
    for name, types in _META:
        if not _ok(meta.get(name), types):
            return None
    if type(meta.get("thread_id")) is not str:
        return None
    for name, types, required in fields:
        v = payload.get(name)
        if (required and v is None) or not _ok(v, types):
            return None
    ns = _ts_ns(ts)
    if ns is None:
        return None
    cv, ls = ev.get("causality_vector"), ev.get("lock_set")
    if cv is not None:
        if type(cv) is not list:
            return None
        for pair in cv:
            if (type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str
                    or type(pair[1]) is not int or not 0 <= pair[1] < MAX_COUNTER):
                return None
    if ls is not None and (type(ls) is not list or any(type(x) is not str for x in ls)):
        return None
    dur = meta.get("duration_ns")
    if dur is None and variant in ("HttpResponse", "DatabaseQuery") and payload.get("duration_ms") is not None:
        dur = payload["duration_ms"] * 1e6
    if dur is not None:
        if not 0 <= dur < 2**53:  # SQL rounds through a double: exact below 2**53
            return None
        dur = int(math.floor(dur + 0.5))
    status = payload.get("status") if variant == "HttpResponse" else None
    if status is not None and not -2**31 <= status < 2**31:
        return None
    if variant == "StateChange" and payload["access_type"] not in ACCESS_TYPES:
        return None
    if variant == "FunctionCall":
        file, line = payload.get("file"), payload.get("line")
        location = None if file is None else file + ("" if line is None else f":{line}")
    elif variant == "AsyncAwait":
        location = payload.get("awaited_at")
    elif variant in ("StateChange", "LockAcquire", "LockRelease", "MemoryFence"):
        location = payload.get("location")
    else:
        location = None
    sc = variant == "StateChange"
    lock = variant in ("LockAcquire", "LockRelease")
    task, future = payload.get("task_id") if variant == "AsyncSpawn" else None, \
        payload.get("future_id") if variant == "AsyncAwait" else None
    return {
        "id": eid, "trace_id": tid, "parent_id": parent, "ts_ns": ns,
        "thread_id": meta.get("thread_id"), "service": meta.get("service_name"),
        "instance_id": meta.get("instance_id"), "span_id": meta.get("distributed_span_id"),
        "upstream_span_id": meta.get("upstream_span_id"), "duration_ns": dur, "kind": variant,
        "variable": payload.get("variable") if sc else None,
        "access": payload.get("access_type") if sc else None,
        "old_value": orjson.dumps(payload.get("old_value")).decode() if sc else None,
        "new_value": orjson.dumps(payload.get("new_value")).decode() if sc else None,
        "location": location,
        "lock_id": payload.get("lock_id") if lock else None,
        "function_name": payload.get("function_name") if variant == "FunctionCall" else None,
        "task_id": None if task is None else str(task),
        "future_id": None if future is None else str(future),
        "http_method": payload.get("method") if variant == "HttpRequest" else None,
        "http_status": status,
        "clock": None if cv is None else [{"c": c, "n": n} for c, n in cv],
        "lock_set": ls,
    }


_TYPES = {
    "seq": pa.int64(), "id": pa.string(), "trace_id": pa.string(), "parent_id": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"), "ts_ns": pa.int64(), "thread_id": pa.string(),
    "service": pa.string(), "instance_id": pa.string(), "span_id": pa.string(), "upstream_span_id": pa.string(),
    "duration_ns": pa.int64(), "kind": pa.string(), "variable": pa.string(), "access": pa.string(),
    "old_value": pa.string(), "new_value": pa.string(), "location": pa.string(), "lock_id": pa.string(),
    "function_name": pa.string(), "task_id": pa.string(), "future_id": pa.string(), "http_method": pa.string(),
    "http_status": pa.int32(), "clock": pa.list_(pa.struct([("c", pa.string()), ("n", pa.int64())])),
    "lock_set": pa.list_(pa.string()), "raw": pa.string(), "source": pa.string(), "line": pa.int32(),
    "rec": pa.int32(),
}


def rows_table(rows: list[dict], texts: list[str], lines: list[int], recs: list[int], source: str) -> pa.Table:
    """The Arrow table of accepted rows, columns as in the events table."""
    cols = {name: [r[name] for r in rows] for name in _TYPES if name in rows[0]} if rows else {}
    cols["timestamp"] = [r["ts_ns"] // 1000 for r in rows]
    cols["seq"] = [(ln << REC_BITS) + rc for ln, rc in zip(lines, recs)]
    cols["raw"] = texts
    cols["source"] = [source] * len(rows)
    cols["line"] = lines
    cols["rec"] = recs
    return pa.table({name: pa.array(cols[name], type=t) for name, t in _TYPES.items()})
