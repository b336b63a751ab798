"""Encoding events for the wire: timestamps, JSON that never fails, caller locations."""

from __future__ import annotations

import contextlib
import os
import sys
import time

import orjson

_SDK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_CONTEXTLIB = os.path.abspath(contextlib.__file__)
_INT_RANGE = (-(2**63), 2**64 - 1)


_second: tuple[int, str] = (-1, "")


def iso_ns(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds: the loader keeps all nine digits."""
    global _second
    sec, frac = divmod(ns, 1_000_000_000)
    cached = _second  # strftime is slow (~10 µs): format each second once
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{cached[1]}.{frac:09d}+00:00"


def _safe(value, depth: int = 0):
    """A JSON-able copy of a user value (what orjson refused: huge ints, odd keys, objects)."""
    if depth > 32:
        return repr(value)
    if value is None or isinstance(value, (bool, float, str)):
        return value
    if isinstance(value, int):
        return value if _INT_RANGE[0] <= value <= _INT_RANGE[1] else str(value)
    if isinstance(value, dict):
        return {str(k): _safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_safe(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return orjson.loads(orjson.dumps(value))  # dataclasses, datetimes, UUIDs, numpy...
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)


def _default(value):
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return repr(value)


def encode(event: dict) -> bytes:
    """One event as compact JSON bytes; user values that JSON cannot hold become strings."""
    try:
        return orjson.dumps(event, default=_default)
    except (TypeError, orjson.JSONEncodeError):  # non-str keys, huge ints: the slow path
        return orjson.dumps(_safe(event))


_shown: dict[str, str] = {}


def _display(filename: str) -> str:
    shown = _shown.get(filename)
    if shown is None:
        path = os.path.abspath(filename) if not filename.startswith("<") else filename
        cwd = os.getcwd() + os.sep
        shown = path[len(cwd):] if path.startswith(cwd) else path
        _shown[filename] = shown
    return shown


def caller_frame():
    """The innermost frame outside this SDK (and contextlib)."""
    f = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if not (name.startswith(_SDK_DIR) or name == _CONTEXTLIB):
            return f
        f = f.f_back
    return None


def caller_location() -> str:
    f = caller_frame()
    return f"{_display(f.f_code.co_filename)}:{f.f_lineno}" if f is not None else "unknown:0"


def caller_site() -> tuple[str, int, str]:
    """(file, line, module) of the caller, for FunctionCall events."""
    f = caller_frame()
    if f is None:
        return "unknown", 0, "unknown"
    return _display(f.f_code.co_filename), f.f_lineno, f.f_globals.get("__name__", "unknown")
