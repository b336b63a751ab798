"""What loading one input did, as a frozen record and as one readable line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadSummary:
    source: str  # the name shown to the user (path as given)
    mode: str  # ndjson, json, ndjson.gz, ..., or "" when unreadable
    records: int  # records read: loaded + rejected + duplicates
    loaded: int
    rejected: int
    duplicates: int
    examples: tuple[str, ...] = ()  # first reject reasons, "line 17: missing 'trace_id'"
    notes: tuple[str, ...] = ()  # file-level findings (truncated gzip, empty file, ...)
    fatal: str | None = None  # the file could not be read at all
    seconds: float = 0.0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.fatal is None

    def line(self) -> str:
        """`orders.jsonl: loaded 1,204 events, 4 rejected (line 17: missing 'trace_id'; ...)`"""
        if self.fatal:
            return f"{self.source}: cannot read: {self.fatal}"
        parts = [f"loaded {self.loaded:,} event{'s' if self.loaded != 1 else ''}"]
        if self.rejected:
            shown = "; ".join(self.examples[:3])
            more = "; ..." if self.rejected > len(self.examples[:3]) else ""
            parts.append(f"{self.rejected:,} rejected ({shown}{more})")
        if self.duplicates:
            parts.append(f"{self.duplicates:,} duplicate{'s' if self.duplicates != 1 else ''} skipped")
        text = f"{self.source}: " + ", ".join(parts)
        if self.notes:
            text += " [" + "; ".join(self.notes) + "]"
        return text


def reject_label(line: int | None, rec: int | None, reason: str) -> str:
    where = []
    if line is not None:
        where.append(f"line {line}")
    if rec is not None:
        where.append(f"event {rec}")
    return (", ".join(where) + ": " if where else "") + reason
