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

import numpy as np
import orjson
import pyarrow as pa

from raceway_core.loading.fields import ACCESS_TYPES, ID, INT, NUM, OBJ, STR, TOP_FIELDS, VARIANT_FIELDS
from raceway_core.schema import REC_BITS

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


# only the parts not cached below are captured
_TS_PARTS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")
_SECONDS: dict[str, int | None] = {}  # "YYYY-MM-DDTHH:MM:SS" + zone -> seconds since the epoch (None: invalid)
_FRAC_SCALE = [10 ** (9 - k) for k in range(10)]


def _ts_ns(s: str) -> int | None:
    m = _TS_PARTS.fullmatch(s)
    if m is None:
        return None
    frac, tz = m.groups()
    key = s[:19] + tz  # the regex fixes the width of the date and time
    seconds = _SECONDS.get(key, -1)
    if seconds == -1:  # events of a batch share their second and zone: compute each once
        seconds = _seconds(s, tz)
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        _SECONDS[key] = seconds
    if seconds is None:
        return None
    ns = seconds * 1_000_000_000 + (int(frac) * _FRAC_SCALE[len(frac)] if frac else 0)
    return ns if _MIN_NS <= ns < _MAX_NS else None  # else SQL rejects it: out of range


def _seconds(s: str, tz: str) -> int | None:
    y = int(s[0:4])
    try:
        base = datetime(y, int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19]),
                        tzinfo=timezone.utc)
    except ValueError:
        return None
    if not 1 <= y <= 9999:
        return None
    if tz != "Z" and (int(tz[1:3]) > 23 or int(tz[4:6]) > 59):
        return None  # not an offset: SQL rejects it
    off = 0 if tz == "Z" else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return (base - _EPOCH) // _SECOND - off


# the range of the store's ts_ns (a BIGINT), less the ns digits SQL adds apart
_MIN_NS, _MAX_NS = -(2**63 // 1000) * 1000, ((2**63 - 1) // 1000 - 1) * 1000
_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc) - _EPOCH


def _check_source(types) -> str:
    """A Python condition, true when ``v`` (not None) has one of ``types``: what _ok decides."""
    if types is STR:
        return "type(v) is str"
    if types is INT:
        return "(type(v) is int and -B < v < B)"
    if types is NUM:
        return "((type(v) is int and -B < v < B) or (type(v) is float and isfinite(v)))"
    if types is OBJ:
        return "type(v) is dict"
    if types is ID:
        return "(type(v) is str or (type(v) is int and -B < v < B))"
    raise ValueError(types)


def _compile_check(name: str, fields: list[tuple[str, tuple, bool]]):
    """One function checking every field of an object, unrolled: the loop over
    the field lists with a call per field cost more than the rest of ``values``."""
    lines = [f"def {name}(o):", "    get = o.get"]
    for field, types, required in fields:
        lines.append(f"    v = get({field!r})")
        if required:
            lines.append(f"    if v is None or not {_check_source(types)}: return False")
        else:
            lines.append(f"    if v is not None and not {_check_source(types)}: return False")
    lines.append("    return True")
    scope = {"B": 2**63, "isfinite": math.isfinite}
    exec("\n".join(lines), scope)  # noqa: S102 - source made here from the field lists
    return scope[name]


_meta_ok = _compile_check("_meta_ok", [(n, t, False) for n, t in _META])
_VARIANT_OK = {v: _compile_check(f"_{v}_ok", fs) for v, fs in _VARIANTS.items()}
_LOCATED = frozenset(("StateChange", "LockAcquire", "LockRelease", "MemoryFence"))

# the order of ``values``' tuple
COLUMNS = ("id", "trace_id", "parent_id", "ts_ns", "thread_id", "service", "instance_id", "span_id",
           "upstream_span_id", "duration_ns", "kind", "variable", "access", "old_value", "new_value", "location",
           "lock_id", "function_name", "task_id", "future_id", "http_method", "http_status", "clock", "lock_set")


def values(ev) -> tuple | None:
    """The events-table values of one parsed event (``COLUMNS``; ``clock`` as the
    pairs given), or None: let SQL decide."""
    if type(ev) is not dict:
        return None
    get = ev.get
    eid, tid, ts, kind, meta, parent = get("id"), get("trace_id"), get("timestamp"), get("kind"), get("metadata"), \
        get("parent_id")
    if type(eid) is not str or type(tid) is not str or type(ts) is not str or (parent is not None and type(parent) is not str):
        return None
    if type(kind) is not dict or len(kind) != 1 or type(meta) is not dict:
        return None
    (variant, payload), = kind.items()
    ok = _VARIANT_OK.get(variant)
    if ok is None or type(payload) is not dict:
        return None  # unknown variants, unit and null payloads: SQL
    if not _meta_ok(meta) or type(meta.get("thread_id")) is not str or not ok(payload):
        return None
    ns = _ts_ns(ts)
    if ns is None:
        return None
    cv, ls = get("causality_vector"), get("lock_set")
    if cv is not None:
        if type(cv) is not list:
            return None
        for pair in cv:
            if (type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str
                    or type(pair[1]) is not int or not 0 <= pair[1] < MAX_COUNTER):
                return None
    if ls is not None:
        if type(ls) is not list:
            return None
        for x in ls:
            if type(x) is not str:
                return None
    pget = payload.get
    dur = meta.get("duration_ns")
    if dur is None and (variant == "HttpResponse" or variant == "DatabaseQuery") and pget("duration_ms") is not None:
        dur = payload["duration_ms"] * 1e6
    if dur is not None:
        if not 0 <= dur < 2**53:  # SQL rounds through a double: exact below 2**53
            return None
        dur = int(math.floor(dur + 0.5))
    status = pget("status") if variant == "HttpResponse" else None
    if status is not None and not -2**31 <= status < 2**31:
        return None
    sc = variant == "StateChange"
    if sc and payload["access_type"] not in ACCESS_TYPES:
        return None
    if variant == "FunctionCall":
        file, line = pget("file"), pget("line")
        location = None if file is None else file + ("" if line is None else f":{line}")
    elif variant == "AsyncAwait":
        location = pget("awaited_at")
    elif variant in _LOCATED:
        location = pget("location")
    else:
        location = None
    if sc:
        try:  # values nested past orjson's depth limit: SQL stores them
            old, new = orjson.dumps(pget("old_value")).decode(), orjson.dumps(pget("new_value")).decode()
        except orjson.JSONEncodeError:
            return None
    else:
        old = new = None
    lock = variant == "LockAcquire" or variant == "LockRelease"
    task = pget("task_id") if variant == "AsyncSpawn" else None
    future = pget("future_id") if variant == "AsyncAwait" else None
    return (
        eid, tid, parent, ns, meta.get("thread_id"), meta.get("service_name"), meta.get("instance_id"),
        meta.get("distributed_span_id"), meta.get("upstream_span_id"), dur, variant,
        pget("variable") if sc else None, pget("access_type") if sc else None,
        old, new,
        location, pget("lock_id") if lock else None,
        pget("function_name") if variant == "FunctionCall" else None,
        None if task is None else str(task), None if future is None else str(future),
        pget("method") if variant == "HttpRequest" else None, status, cv, ls,
    )


def row(ev) -> dict | None:
    """``values`` by column name, the clock as the events table holds it."""
    v = values(ev)
    if v is None:
        return None
    r = dict(zip(COLUMNS, v))
    r["clock"] = None if r["clock"] is None else [{"c": c, "n": n} for c, n in r["clock"]]
    return r


# arrow.json: DuckDB takes it as JSON without parsing every text again to check
# it (these are orjson's output); pyarrow before 19 has no such type
_JSON = pa.json_() if hasattr(pa, "json_") else pa.string()
_TYPES = {
    "seq": pa.int64(), "id": pa.string(), "trace_id": pa.string(), "parent_id": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"), "ts_ns": pa.int64(), "thread_id": pa.string(),
    "service": pa.string(), "instance_id": pa.string(), "span_id": pa.string(), "upstream_span_id": pa.string(),
    "duration_ns": pa.int64(), "kind": pa.string(), "variable": pa.string(), "access": pa.string(),
    "old_value": _JSON, "new_value": _JSON, "location": pa.string(), "lock_id": pa.string(),
    "function_name": pa.string(), "task_id": pa.string(), "future_id": pa.string(), "http_method": pa.string(),
    "http_status": pa.int32(), "clock": pa.list_(pa.struct([("c", pa.string()), ("n", pa.int64())])),
    "lock_set": pa.list_(pa.string()), "raw": _JSON, "source": pa.string(), "line": pa.int32(),
    "rec": pa.int32(),
}
_NUMBERING = ("seq", "source", "line", "rec")  # given when the rows are committed
ROW_COLUMNS = tuple(n for n in _TYPES if n not in _NUMBERING)  # what ``row_columns`` makes


def row_columns(rows: list[tuple], texts: list[str]) -> pa.Table:
    """The Arrow table of accepted rows (``values`` tuples) and their texts: every
    events column but the numbering, which ``numbered`` adds."""
    n = len(rows)
    cols = dict(zip(COLUMNS, map(list, zip(*rows)))) if rows else {c: [] for c in COLUMNS}
    arrays = {name: pa.array(cols[name], type=_TYPES[name]) for name in COLUMNS if name != "clock"}
    ts_ns = np.array(cols["ts_ns"], np.int64)
    arrays["timestamp"] = pa.array(ts_ns // 1000, _TYPES["timestamp"])
    clocks = cols["clock"]
    # list<struct> from flat arrays: building it from nested Python objects costs 10x more
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum([0 if c is None else len(c) for c in clocks], out=offsets[1:])
    pairs = [p for c in clocks if c for p in c]
    members = pa.StructArray.from_arrays([pa.array([p[0] for p in pairs], pa.string()),
                                          pa.array([p[1] for p in pairs], pa.int64())], names=["c", "n"])
    mask = pa.array([c is None for c in clocks], pa.bool_()) if None in clocks else None
    arrays["clock"] = pa.ListArray.from_arrays(pa.array(offsets), members, type=_TYPES["clock"], mask=mask)
    arrays["raw"] = pa.array(texts, _TYPES["raw"])
    return pa.table({name: arrays[name] for name in ROW_COLUMNS})


def as_json_columns(table: pa.Table) -> pa.Table:
    """``table`` with its JSON columns (raw, old_value, new_value) typed as ``_JSON``."""
    if _JSON == pa.string():
        return table
    for name in ("raw", "old_value", "new_value"):
        col = table.column(name)
        if col.type != _JSON:
            chunks = [pa.ExtensionArray.from_storage(_JSON, c.cast(pa.string())) for c in col.chunks]
            table = table.set_column(table.schema.get_field_index(name), pa.field(name, _JSON),
                                     pa.chunked_array(chunks, _JSON))
    return table


def numbered(table: pa.Table, seqs, source: str) -> pa.Table:
    """``row_columns``' table with its rows' seq (and so line, rec) and source."""
    seq = np.asarray(seqs, np.int64)
    arrays = {
        "seq": pa.array(seq),
        "source": pa.array([source] * table.num_rows, pa.string()),
        "line": pa.array((seq >> REC_BITS).astype(np.int32)),
        "rec": pa.array((seq & ((1 << REC_BITS) - 1)).astype(np.int32)),
    }
    return pa.table({name: arrays[name] if name in arrays else table.column(name) for name in _TYPES})


def rows_table(rows: list[tuple], texts: list[str], seqs: list[int], source: str) -> pa.Table:
    """The Arrow table of accepted rows (``values`` tuples), columns as in the events table."""
    return numbered(row_columns(rows, texts), seqs, source)
