"""The feed of a shared database: every committed event exactly once, in a
stable order, although several servers commit out of order.

Sequence numbers are taken when rows are inserted, not when they commit: a
reader could see seq 11 committed while seq 10 is still in flight, move its
cursor past 10 and never see it. So the feed orders by (xid, seq), the writing
transaction's id first, and hands out only rows of transactions older than
the oldest one still running (``pg_snapshot_xmin``): those have all finished,
and every transaction that commits later has an xid at or above that horizon,
so it sorts after any cursor handed out before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CURSOR = re.compile(r"(\d{1,20})-(\d{1,19})")


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[str]  # raw JSON texts, in feed order
    next_cursor: str
    has_more: bool


def parse_cursor(text: str | None) -> tuple[int, int]:
    """A cursor ``XID-SEQ`` as handed out in ``next_cursor``; '' or None: the start."""
    if text in (None, ""):
        return 0, 0
    m = _CURSOR.fullmatch(text)
    if m is None or int(m.group(1)) >= 1 << 64 or int(m.group(2)) >= 1 << 63:
        raise ValueError(f"invalid cursor {text!r}: expected the next_cursor of a previous page")
    return int(m.group(1)), int(m.group(2))


_PAGE = """
    SELECT xid::text, seq, raw FROM raceway_events
    WHERE (xid, seq) > (%s::text::xid8, %s) AND xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY xid, seq LIMIT %s"""


def page(conn, after: str | None, limit: int) -> FeedPage:
    xid, seq = parse_cursor(after)
    rows = conn.execute(_PAGE, [str(xid), seq, limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return FeedPage([], after or "", False)
    last = rows[-1]
    return FeedPage([r[2] for r in rows], f"{last[0]}-{last[1]}", more)
