"""The causal timeline: one line per event, one lane (column) per context.

Virtual rendering (toolong-style): only the rows on screen exist as data. A miss in
``render_line`` asks a worker for the missing pages (SQL through
``raceway_core.browse.Timeline``); pages live in an LRU cache and the lines are
drawn again when they arrive. Nothing here blocks on the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from itertools import count as _counter

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from raceway_tui import format as fmt
from raceway_tui.literal import visible
from raceway_tui.widgets.basestyle import BaseStyle
from raceway_tui.widgets.cursor import MOVE_BINDINGS, CursorKeys

PAGE = 128
FIRST_PAGES = 2  # read with the model (the first screen and the page _fetch_missing reads ahead)
LANE_W = 2
EDGE_STYLE = {"lock": "magenta", "call": "dodger_blue1", "return": "dodger_blue1", "parent": "cyan",
              "join": "cyan", "clock": "grey62"}
_generation = _counter(1)


@dataclass
class TimelineModel:
    """What the view draws: a browse.Timeline with its size and lanes (fetched in a worker)."""

    timeline: Timeline
    count: int
    lanes: list[dict]
    start_ns: int | None
    gen: int = field(default_factory=lambda: next(_generation))
    pages: dict[int, list[dict]] = field(default_factory=dict)  # read with the model: the first screen's rows

    @property
    def trace_id(self) -> str | None:
        return self.timeline.trace_id

    @property
    def causal(self) -> bool:
        return self.timeline.causal

    @classmethod
    def build(cls, session, trace_id: str | None) -> "TimelineModel":
        from raceway_core.browse import Timeline

        tl = Timeline(session, trace_id)
        model = cls(tl, tl.count(), tl.lanes().to_pylist(), tl.start_ns())
        # the top of the timeline (and the page read ahead) in the same worker: showing the
        # model then needs no second round trip to a worker before its rows can be drawn
        rows = tl.page(0, FIRST_PAGES * PAGE).to_pylist() if model.count else []
        model.pages = {p: rows[p * PAGE:(p + 1) * PAGE] for p in range(FIRST_PAGES) if p * PAGE < len(rows)}
        return model


def rel_time(ns: int | None, start: int | None) -> str:
    """Time since the first event; an hour or more later (old and new traces of a live
    server mixed), the wall-clock time (UTC) instead."""
    if ns is None or start is None:
        return ""
    d = (ns - start) / 1e6
    if abs(d) >= 3_600_000:
        t = dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc)
        return t.strftime("%H:%M:%S.%f")[:12] if abs(d) < 86_400_000 else t.strftime("%m-%d %H:%M")
    if d < 1000:
        return f"+{d:.3f}ms"
    return f"+{d / 1000:.3f}s"


class TimelineView(BaseStyle, CursorKeys, ScrollView, can_focus=True):
    BINDINGS = [
        *MOVE_BINDINGS,
        Binding("enter", "follow", "Follow edge back"),
    ]
    COMPONENT_CLASSES = {"timeline--cursor", "timeline--cursor-blur", "timeline--highlight", "timeline--dim"}
    DEFAULT_CSS = """
    TimelineView { height: 1fr; overflow-x: hidden; }
    TimelineView > .timeline--cursor { background: $accent 60%; }
    TimelineView > .timeline--cursor-blur { background: $accent 25%; }
    TimelineView > .timeline--highlight { background: #5a3300; }
    TimelineView > .timeline--dim { color: $text-muted; }
    """

    class Highlighted(Message):
        """The cursor is on an event (its row data)."""

        def __init__(self, row: dict) -> None:
            super().__init__()
            self.row = row

    class Follow(Message):
        """Enter on an event with an incoming edge from another context: go to its source."""

        def __init__(self, event_id: str) -> None:
            super().__init__()
            self.event_id = event_id

    class PagesLoaded(Message):
        def __init__(self, gen: int, pages: dict[int, list[dict]], error: str | None = None) -> None:
            super().__init__()
            self.gen, self.pages, self.error = gen, pages, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model: TimelineModel | None = None
        self.cursor = 0
        self.highlight: frozenset[str] = frozenset()
        self._pages: LRUCache[int, list[dict]] = LRUCache(64)
        self._pending: set[int] = set()
        self._missing: set[int] = set()
        self._fetch_scheduled = False
        self._announced: tuple[int, int] | None = None
        self.pages_fetched = 0  # for the benchmark and tests: how many pages came from the database

    # -- model -----------------------------------------------------------------------------
    def set_model(self, model: TimelineModel | None, cursor: int = 0, highlight=frozenset(),
                  top: int | None = None) -> None:
        """Show a model with the cursor on row ``cursor``: centred, or with the view's first
        line at ``top`` (a refresh of the same timeline keeps its scroll position)."""
        self.model = model
        self._pages.clear()
        for p, rows in (model.pages if model is not None else {}).items():
            self._pages[p] = rows
        self._pending.clear()
        self._missing.clear()
        self._announced = None
        self.highlight = frozenset(highlight)
        self.virtual_size = Size(self.size.width, model.count if model else 0)
        self.cursor = 0
        self.scroll_to(y=top or 0, animate=False, immediate=True)
        self.goto(cursor, highlight=highlight, center=top is None)
        self.refresh()
        if model is not None:
            self._prepare(model)

    @work(thread=True, group="timeline-prepare", exit_on_error=False)
    def _prepare(self, model: TimelineModel) -> None:
        model.timeline.prepare()  # a failure surfaces as a toast (the app's worker handler)

    def goto(self, row: int, highlight=None, center: bool = True) -> None:
        if highlight is not None:
            self.highlight = frozenset(highlight)
            self.refresh()
        self._set_cursor(row, center=center)

    @property
    def count(self) -> int:
        return self.model.count if self.model else 0

    def row(self, index: int | None = None) -> dict | None:
        """The row data at ``index`` (the cursor by default) if its page is loaded."""
        i = self.cursor if index is None else index
        if self.model is None or not 0 <= i < self.model.count:
            return None
        page = self._pages.get(i // PAGE)
        if page is None:
            return None
        j = i - (i // PAGE) * PAGE
        return page[j] if j < len(page) else None

    # -- cursor ----------------------------------------------------------------------------
    def _set_cursor(self, value: int, center: bool = False) -> None:
        n = self.count
        value = max(0, min(value, n - 1)) if n else 0
        old, self.cursor = self.cursor, value
        self._refresh_row(old)
        self._refresh_row(value)
        self._scroll_to_row(value, center)
        self._announce()

    def _announce(self) -> None:
        # Built in our own message loop: a message bubbles no further than the widget that
        # was running when it was created, and goto() is called by the pane.
        self.call_later(self._post_highlighted)

    def _post_highlighted(self) -> None:
        row = self.row()
        key = (self.model.gen if self.model else 0, self.cursor)
        if row is not None and key != self._announced:
            self._announced = key
            self.post_message(self.Highlighted(row))

    def _refresh_row(self, index: int) -> None:
        y = index - round(self.scroll_y)
        if 0 <= y < self.size.height:
            # a line on screen: ScrollView.refresh_line takes a line of the content (it subtracts
            # the scroll offset), so once scrolled it repainted another line, or none
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_to_row(self, index: int, center: bool) -> None:
        h = max(1, self.size.height)
        top = round(self.scroll_y)
        if center and not top <= index < top + h:
            self.scroll_to(y=max(0, index - h // 2), animate=False, immediate=True)
        elif index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + h:
            self.scroll_to(y=index - h + 1, animate=False, immediate=True)

    @property
    def rows_total(self) -> int:
        return self.count

    @property
    def page_rows(self) -> int:
        return self.size.height - 1

    def action_follow(self) -> None:
        row = self.row()
        if row and row.get("edges_in"):
            self.post_message(self.Follow(row["edges_in"][0]["src_id"]))
        elif row is not None:
            self.notify("No edge from another context ends at this event.", timeout=3)

    def on_click(self, event: events.Click) -> None:
        self._set_cursor(round(self.scroll_y) + event.y)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.count)

    def on_focus(self) -> None:
        self._refresh_row(self.cursor)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor)

    # -- pages -----------------------------------------------------------------------------
    def _want(self, page: int) -> None:
        if page in self._pending or page < 0 or page * PAGE >= self.count:
            return
        self._missing.add(page)
        if not self._fetch_scheduled:
            self._fetch_scheduled = True
            self.call_later(self._fetch_missing)

    def _fetch_missing(self) -> None:
        self._fetch_scheduled = False
        if self.model is None:
            return
        top = round(self.scroll_y)
        first, last = top // PAGE, (top + self.size.height) // PAGE
        for p in (first - 1, last + 1):  # read ahead one page each way
            if 0 <= p and p * PAGE < self.count and p not in self._pages and p not in self._pending:
                self._missing.add(p)
        pages = sorted(p for p in self._missing if p not in self._pending and p not in self._pages)
        self._missing.clear()
        if pages:
            self._pending.update(pages)
            self._fetch(self.model, pages)

    @work(thread=True, group="timeline-pages", exit_on_error=False)
    def _fetch(self, model: TimelineModel, pages: list[int]) -> None:
        out: dict[int, list[dict]] = {}
        try:
            runs: list[list[int]] = []
            for p in pages:  # contiguous pages in one query
                if runs and runs[-1][-1] == p - 1:
                    runs[-1].append(p)
                else:
                    runs.append([p])
            for run in runs:
                rows = model.timeline.page(run[0] * PAGE, len(run) * PAGE).to_pylist()
                for k, p in enumerate(run):
                    out[p] = rows[k * PAGE:(k + 1) * PAGE]
        except Exception as exc:  # shown as a toast; the pages are asked for again on the next draw
            self.post_message(self.PagesLoaded(model.gen, out, error=str(exc).strip() or type(exc).__name__))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.PagesLoaded(model.gen, out))

    def on_timeline_view_pages_loaded(self, msg: PagesLoaded) -> None:
        msg.stop()
        if self.model is None or msg.gen != self.model.gen:
            return
        for p, rows in msg.pages.items():
            self._pages[p] = rows
            self.pages_fetched += 1
        self._pending.difference_update(msg.pages)
        if msg.error:
            self._pending.clear()
            self.notify(f"Timeline query failed: {msg.error}", severity="error", timeout=6)
        self.refresh()
        self._announce()

    @property
    def loading_pages(self) -> bool:
        return bool(self._pending or self._missing or self._fetch_scheduled)

    # -- drawing ---------------------------------------------------------------------------
    def _lanes_shown(self, width: int) -> int:
        n = len(self.model.lanes) if self.model and self.model.lanes else 0
        if self.model and self.model.trace_id is None:
            n = max(n, 1)
        # narrow: the event's text matters more than lanes (one lane still shows edges' arrows)
        room = max(1, (width - (48 if width >= 90 else 66)) // LANE_W)
        return min(n, room)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width  # less the scrollbar
        base = self.base_style
        m = self.model
        index = round(self.scroll_y) + y
        if m is None or index >= m.count:
            if m is not None and m.count == 0 and y == 0:
                return Strip([Segment(" No events.", base + self.get_component_rich_style("timeline--dim"))]
                             ).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        style = base
        row = self.row(index)
        if index == self.cursor:
            style = base + self.get_component_rich_style("timeline--cursor" if self.has_focus else "timeline--cursor-blur")
        elif row is not None and row["id"] in self.highlight:
            style = base + self.get_component_rich_style("timeline--highlight")
        digits = len(str(max(0, m.count - 1)))
        if row is None:
            self._want(index // PAGE)
            dim = style + self.get_component_rich_style("timeline--dim")
            return Strip([Segment(f" {index:>{digits}} ⋯", dim)]).adjust_cell_length(width, style)
        return Strip(self._segments(row, index, digits, width, style)).adjust_cell_length(width, style)

    def _segments(self, row: dict, index: int, digits: int, width: int, style: Style) -> list[Segment]:
        m = self.model
        dim = style + self.get_component_rich_style("timeline--dim")
        marked = row["id"] in self.highlight
        segs = [Segment("▶" if marked else " ", style + Style.parse(fmt.RACING_STYLE) if marked else style),
                Segment(f"{index:>{digits}} ", dim)]
        if m.trace_id is None:
            segs.append(Segment(visible(fmt.short_id(row["trace_id"])) + " ", dim))
        segs.extend(self._lane_segments(row, index, width, style, dim))
        kind = row.get("kind") or "?"
        kstyle = style + Style.parse(fmt.event_style(row))
        segs.append(Segment(f" {rel_time(row.get('ts_ns'), m.start_ns):>12} ", dim))
        segs.append(Segment(f"{visible(fmt.KIND_SHORT.get(kind, kind)[:9]):<9} ", kstyle))
        text = fmt.summary(row)
        if row.get("racing"):
            segs.append(Segment("RACE ", style + Style.parse(fmt.RACING_STYLE)))
        failed = kind == "HttpResponse" and fmt.http_failed(row.get("http_status"))
        segs.append(Segment(visible(text), style + Style.parse(fmt.event_style(row)) if failed else style))
        loc = fmt.location(row.get("location"), 1)
        if loc:
            segs.append(Segment(f"  {visible(loc)}", dim))
        for e in row.get("edges_in") or ():
            segs.append(Segment(f"  ⇠ {visible(self._edge_note(e, row))}", style + Style.parse(EDGE_STYLE.get(e["kind"], "grey62"))))
        return segs

    def _edge_note(self, e: dict, row: dict) -> str:
        word = fmt.EDGE_WORDS.get(e["kind"], e["kind"])
        src = f"L{e['src_lane']}" if e["src_trace"] == row["trace_id"] else f"trace {fmt.short_id(e['src_trace'])}"
        detail = f" {e['detail']}" if e["kind"] in ("lock", "join") and e.get("detail") else ""
        return f"{word} {src}{detail}"

    def _lane_segments(self, row: dict, index: int, width: int, style: Style, dim: Style) -> list[Segment]:
        m = self.model
        n = self._lanes_shown(width)
        if n == 0:
            return []
        chars = [" "] * (n * LANE_W)
        styles: list[Style] = [dim] * (n * LANE_W)
        if m.trace_id is not None:
            for ln in m.lanes[:n]:
                if ln["first_row"] is not None and ln["first_row"] <= index <= ln["last_row"]:
                    chars[ln["lane"] * LANE_W] = "│"
        lane = row.get("lane")
        if lane is None:
            return [Segment("".join(chars), dim)]
        over = lane >= n
        d = min(lane, n - 1)
        for e in row.get("edges_in") or ():
            s = e.get("src_lane")
            if e.get("src_trace") != row["trace_id"] or s is None or s == lane or s >= n or over:
                continue
            estyle = style + Style.parse(EDGE_STYLE.get(e["kind"], "grey62"))
            alive = m.trace_id is not None and any(
                ln["lane"] == s and ln["first_row"] is not None and ln["first_row"] <= index <= ln["last_row"]
                for ln in m.lanes)
            lo, hi = (s, d) if s < d else (d, s)
            for x in range(lo * LANE_W + 1, hi * LANE_W):
                chars[x] = "┼" if chars[x] == "│" else "─"
                styles[x] = estyle
            if s < d:
                chars[s * LANE_W] = "├" if alive else "╰"
                chars[d * LANE_W - 1] = "▶"
                styles[d * LANE_W - 1] = estyle
            else:
                chars[s * LANE_W] = "┤" if alive else "╯"
                chars[d * LANE_W + 1] = "◀"
                styles[d * LANE_W + 1] = estyle
            styles[s * LANE_W] = estyle
            break  # one connector per row; the note lists every edge
        chars[d * LANE_W] = "◆" if row.get("racing") else ("+" if over else "●")
        styles[d * LANE_W] = style + Style.parse(fmt.event_style(row))
        out: list[Segment] = []
        for ch, st in zip(chars, styles):
            if out and out[-1].style == st:
                out[-1] = Segment(out[-1].text + ch, st)
            else:
                out.append(Segment(ch, st))
        return out


def short_label(label: str, n: int = 30) -> str:
    """service/thread, the thread cut in the middle when long (its tail tells contexts apart)."""
    if len(label) <= n:
        return label
    svc, _, thread = label.rpartition("/")
    keep = max(8, n - len(svc) - 2)
    if len(thread) > keep:
        thread = thread[: keep // 2 - 1] + "…" + thread[-(keep - keep // 2):]
    return f"{svc}/{thread}" if svc else thread


def legend(model: TimelineModel | None, width: int) -> Text:
    """The line above the timeline: order, size and the lanes' contexts."""
    if model is None:
        return Text("Loading…", style="dim")
    order = "causal order" if model.causal else "time order (causal order after the analysis)"
    t = Text()
    t.append(f"{fmt.count(model.count, 'event')} · {order}", style="bold")
    if model.trace_id is None:
        t.append(" · all traces (lanes: contexts within each trace)", style="dim")
        return t
    for ln in model.lanes:
        piece = f"  L{ln['lane']} {visible(short_label(ln['label']))} ({ln['events']})"
        if cell_len(t.plain) + cell_len(piece) > width * 2 - 12:
            t.append(f"  +{len(model.lanes) - ln['lane']} more lanes", style="dim")
            break
        t.append(piece, style="grey85")
    return t
