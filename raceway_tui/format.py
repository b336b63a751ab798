"""How events and figures read on screen: colours by kind, short ids, one-line summaries."""

from __future__ import annotations

import datetime as dt

# Colour by kind: HTTP blue, DB green, state yellow, errors red; racing accesses orange.
KIND_STYLE = {
    "HttpRequest": "dodger_blue1", "HttpResponse": "dodger_blue1",
    "DatabaseQuery": "green3", "DatabaseResult": "green3",
    "StateChange": "yellow",
    "Error": "bold red",
    "LockAcquire": "magenta", "LockRelease": "magenta",
    "AsyncSpawn": "cyan", "AsyncAwait": "cyan",
    "FunctionCall": "grey85", "MemoryFence": "grey62", "Custom": "grey85",
}
RACING_STYLE = "bold dark_orange"
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "minor": "grey62"}
SEVERITY_RANK = {"critical": 3, "warning": 2, "minor": 1}
KIND_SHORT = {
    "HttpRequest": "HTTP req", "HttpResponse": "HTTP resp", "DatabaseQuery": "DB query",
    "DatabaseResult": "DB result", "StateChange": "state", "Error": "ERROR", "LockAcquire": "lock",
    "LockRelease": "unlock", "AsyncSpawn": "spawn", "AsyncAwait": "await", "FunctionCall": "call",
    "MemoryFence": "fence", "Custom": "custom",
}
WRITES = ("Write", "AtomicWrite", "AtomicRMW")
EDGE_WORDS = {"parent": "spawned by", "join": "joins", "lock": "lock from", "call": "called from",
              "return": "returns from", "clock": "clock from"}


PLURALS = {"anomaly": "anomalies", "match": "matches", "access": "accesses"}


def count(n: int, word: str) -> str:
    """``n`` and the word, singular or plural: 1 trace, 2 traces, 1,000 anomalies."""
    return f"{n:,} {word if n == 1 else PLURALS.get(word, word + 's')}"


def kind_style(kind: str | None, racing: bool = False) -> str:
    if racing:
        return RACING_STYLE
    return KIND_STYLE.get(kind or "", "white")


FAILED_STYLE = {4: "red", 5: "bold red"}  # HTTP 4xx, 5xx


def http_failed(status) -> bool:
    return status is not None and status >= 400


def event_style(row: dict) -> str:
    """An event's colour: its kind's, orange when racing, red for an HTTP 4xx / 5xx response."""
    status = row.get("http_status")
    if row.get("kind") == "HttpResponse" and http_failed(status):
        return FAILED_STYLE.get(status // 100, "bold red")
    return kind_style(row.get("kind"), bool(row.get("racing")))


def short_id(value: str | None, n: int = 8) -> str:
    return "-" if value is None else str(value)[:n]


def ms(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def value(v, limit: int = 24) -> str:
    """A JSON value as stored (JSON text): strings unquoted, long ones cut."""
    if v is None:
        return "∅"
    s = str(v)
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
    return s if len(s) <= limit else s[: limit - 1] + "…"


def access_letter(access: str | None) -> str:
    if access is None:
        return "?"
    return "W" if access in WRITES else "R"


def summary(row: dict) -> str:
    """One line saying what an event did."""
    k = row.get("kind") or "?"
    if k == "StateChange":
        acc = row.get("access") or "?"
        change = (f"{value(row.get('old_value'))} → {value(row.get('new_value'))}" if acc in WRITES
                  else f"= {value(row.get('new_value') if row.get('new_value') is not None else row.get('old_value'))}")
        return f"{acc} {row.get('variable') or '?'} {change}"
    if k == "FunctionCall":
        return f"{row.get('function_name') or '?'}()"
    if k == "HttpRequest":
        return f"{row.get('http_method') or '?'} {row.get('note') or ''}".strip()
    if k == "HttpResponse":
        return f"status {row.get('http_status') if row.get('http_status') is not None else '?'}"
    if k in ("LockAcquire", "LockRelease"):
        return str(row.get("lock_id") or "?")
    if k == "AsyncSpawn":
        return f"task {row.get('task_id') or '?'}"
    if k == "AsyncAwait":
        return f"future {row.get('future_id') or '?'}"
    note = row.get("note")
    return str(note) if note else ""


def context_label(service: str | None, thread: str | None) -> str:
    return f"{service}/{thread}" if service else (thread or "")


def location(loc: str | None, parts: int = 2) -> str:
    """The last path components of a location: enough to recognise it."""
    if not loc:
        return ""
    return "/".join(str(loc).replace("\\", "/").split("/")[-parts:])


def timestamp(v) -> str:
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    return "-" if v is None else str(v)


def bar(share: float, width: int) -> str:
    """A horizontal bar of ``share`` (0..1) in eighths of a cell."""
    share = min(max(share, 0.0), 1.0)
    eighths = round(share * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)


def clock_entries(clock: dict | None, focus: list[str] = (), limit: int = 8) -> tuple[list[tuple[str, int]], int]:
    """At most ``limit`` components of a vector clock to show, the ``focus`` contexts first
    (its own, a race partner's), then the largest; and how many were left out. Clocks of
    events late in a big store know tens of thousands of contexts through lock chains."""
    if not clock:
        return [], 0
    picked = [(k, clock[k]) for k in focus if k in clock]
    seen = {k for k, _ in picked}
    rest = sorted(((k, n) for k, n in clock.items() if k not in seen), key=lambda kv: -kv[1])
    picked += rest[: max(0, limit - len(picked))]
    return picked, len(clock) - len(picked)


def clock_text(clock: dict | None, focus: list[str] = (), limit: int = 8) -> str:
    entries, hidden = clock_entries(clock, focus, limit)
    text = ", ".join(f"{k}: {n}" for k, n in entries) or "∅"
    return text + (f"  (+{hidden:,} more components)" if hidden else "")
