"""A virtual table: rows drawn line by line (ScrollView line API), so ten rows or a
hundred thousand cost the same to show. Rows are an Arrow table or a list of dicts;
Arrow rows turn into dicts a chunk at a time, only when drawn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from raceway_tui.literal import visible
from raceway_tui.widgets.basestyle import BaseStyle
from raceway_tui.widgets.cursor import MOVE_BINDINGS, CursorKeys

if TYPE_CHECKING:  # pyarrow is imported where tables are made: the first frame does not wait for it
    import pyarrow as pa


CHUNK = 256


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # None: share the remaining width
    align: str = "left"
    text: Callable[[dict], str] | None = None  # default: str(row[key])
    style: Callable[[dict], str | None] | None = None
    sort_key: Callable[[dict], Any] | None = None  # default: row[key]
    sortable: bool = True
    keep_end: bool = False  # too long: cut the start, not the end (ids, paths, thread names)
    priority: int = 0  # when the table is too narrow, columns with the highest priority go first; 0 stays


MIN_FLEX = 10  # a shared-width column narrower than this makes droppable columns give way


@dataclass
class _Rows:
    table: pa.Table | None = None
    items: list[dict] | None = None
    chunks: LRUCache = field(default_factory=lambda: LRUCache(64))

    def __len__(self) -> int:
        if self.items is not None:
            return len(self.items)
        return self.table.num_rows if self.table is not None else 0

    def get(self, i: int) -> dict:
        if self.items is not None:
            return self.items[i]
        c = i // CHUNK
        chunk = self.chunks.get(c)
        if chunk is None:
            chunk = self.table.slice(c * CHUNK, CHUNK).to_pylist()
            self.chunks[c] = chunk
        return chunk[i - c * CHUNK]


class VirtualTable(BaseStyle, CursorKeys, ScrollView, can_focus=True):
    """A cursor-driven table; posts Highlighted when the cursor moves, Selected on Enter."""

    BINDINGS = [
        *MOVE_BINDINGS,
        Binding("enter", "select", "Open", show=True),
        Binding("s", "sort_next", "Sort", show=True),
        Binding("S", "sort_reverse", "Reverse sort", show=False),
    ]
    COMPONENT_CLASSES = {"vtable--header", "vtable--cursor", "vtable--cursor-blur", "vtable--empty"}
    DEFAULT_CSS = """
    VirtualTable { height: 1fr; overflow-x: hidden; }
    VirtualTable > .vtable--header { text-style: bold; background: $panel; }
    VirtualTable > .vtable--cursor { background: $accent 60%; }
    VirtualTable > .vtable--cursor-blur { background: $accent 25%; }
    VirtualTable > .vtable--empty { color: $text-muted; }
    """

    class Highlighted(Message):
        def __init__(self, table: "VirtualTable", index: int, row: dict | None) -> None:
            super().__init__()
            self.table, self.index, self.row = table, index, row

        @property
        def control(self) -> "VirtualTable":
            return self.table

    class Selected(Highlighted):
        pass

    def __init__(self, columns: list[Column], *, empty: str = "Nothing to show.", sortable: bool = False,
                 pinned: Callable[[dict], bool] | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = columns
        self.pinned = pinned  # rows kept on top, in their order, whatever the sort
        self.empty = empty
        self.sortable = sortable
        self.sort_column: str | None = None
        self.sort_reverse = False
        self._rows = _Rows()
        self._source: pa.Table | list[dict] | None = None
        self.cursor = 0
        self._layout_key: tuple | None = None
        self._layout_cached: list[tuple[Column, int]] = []

    # -- data ------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._rows)

    def set_rows(self, rows: pa.Table | list[dict] | None, *, cursor: int | None = 0, empty: str | None = None) -> None:
        """Show new rows; the cursor goes to ``cursor`` (clamped), or stays where it is when None."""
        if empty is not None:
            self.empty = empty
        self._source = rows
        self._apply_sort()
        keep = self.cursor if cursor is None else cursor
        self._set_cursor(max(0, min(keep, self.row_count - 1)), force=True)
        self.refresh()

    def _apply_sort(self) -> None:
        rows = self._source
        if rows is None:
            self._rows = _Rows(items=[])
            self._update_size()
            return
        if self.sort_column is None:
            self._rows = _Rows(items=rows) if isinstance(rows, list) else _Rows(table=rows)
        else:
            col = next((c for c in self.columns if c.key == self.sort_column), None)
            if col is None:  # the columns changed (e.g. another view in the same table)
                self.sort_column = None
                self._apply_sort()
                return
            items = rows if isinstance(rows, list) else rows.to_pylist()
            keyf = col.sort_key or (lambda r, k=col.key: r.get(k))
            top = [r for r in items if self.pinned and self.pinned(r)]
            rest = [r for r in items if not (self.pinned and self.pinned(r))]
            # None sorts last either way
            present = [r for r in rest if keyf(r) is not None]
            missing = [r for r in rest if keyf(r) is None]
            present.sort(key=keyf, reverse=self.sort_reverse)
            self._rows = _Rows(items=top + present + missing)
        self._update_size()

    def _update_size(self) -> None:
        new = Size(self.size.width, self.row_count + 1)
        if new == self.virtual_size:
            return
        if not self.size or not self.is_mounted:
            self.virtual_size = new
            return
        # Another row count (an audit trail, a service's traces following the cursor): setting
        # virtual_size lays out the whole screen. Only a scrollbar shown or hidden needs that;
        # otherwise the scrollbar's window and this widget's lines are repainted.
        bars = (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        self.set_reactive(ScrollView.virtual_size, new)
        self._scroll_update(new)
        if (self.show_vertical_scrollbar, self.show_horizontal_scrollbar) != bars:
            self.refresh(layout=True)
        else:
            self.refresh()

    def row(self, index: int | None = None) -> dict | None:
        i = self.cursor if index is None else index
        return self._rows.get(i) if 0 <= i < self.row_count else None

    def find(self, predicate: Callable[[dict], bool], start: int = 0, step: int = 1) -> int | None:
        i = start
        while 0 <= i < self.row_count:
            if predicate(self._rows.get(i)):
                return i
            i += step
        return None

    # -- cursor -------------------------------------------------------------------------
    def _set_cursor(self, value: int, force: bool = False) -> None:
        value = max(0, min(value, self.row_count - 1)) if self.row_count else 0
        old = self.cursor
        if value != old or force:
            self.cursor = value
            self._refresh_row(old)
            self._refresh_row(value)
            self.scroll_to_row(value)
            self.post_message(self.Highlighted(self, value, self.row(value)))

    def move_to(self, index: int) -> None:
        self._set_cursor(index, force=True)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("sort_next", "sort_reverse"):
            return self.sortable
        return True

    def _refresh_row(self, index: int) -> None:
        y = index + 1 - round(self.scroll_y)
        if 0 <= y < self.size.height:
            # a line on screen: ScrollView.refresh_line takes a line of the content (it subtracts
            # the scroll offset), so once scrolled it repainted another line, or none
            self.refresh(Region(0, y, self.size.width, 1))

    def scroll_to_row(self, index: int, center: bool = False) -> None:
        visible = max(1, self.size.height - 1)
        top = round(self.scroll_y)
        if center:
            self.scroll_to(y=max(0, index - visible // 2), animate=False, immediate=True)
        elif index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False, immediate=True)

    @property
    def rows_total(self) -> int:
        return self.row_count

    @property
    def page_rows(self) -> int:
        return self.size.height - 2  # less the header line

    def action_select(self) -> None:
        if self.row_count:
            self.post_message(self.Selected(self, self.cursor, self.row()))

    def action_sort_next(self) -> None:
        keys = [c.key for c in self.columns if c.sortable]
        if not keys:
            return
        i = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
        self.sort_by(keys[i] if i < len(keys) else None, reverse=False)

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def sort_by(self, key: str | None, reverse: bool | None = None) -> None:
        if key is not None and key not in {c.key for c in self.columns}:
            raise KeyError(f"no column {key!r} to sort by")
        self.sort_column = key
        if reverse is not None:
            self.sort_reverse = reverse
        self._resort()

    def _resort(self) -> None:
        current = self.row()
        self._apply_sort()
        index = 0
        if current is not None:
            found = self.find(lambda r: r == current)  # Arrow rows become new dicts: compare by value
            index = found if found is not None else 0
        self._set_cursor(index, force=True)
        self.refresh()

    # -- mouse -------------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            if self.sortable:
                col = self._column_at(event.x)
                if col is not None and col.sortable:
                    if self.sort_column == col.key:
                        self.sort_reverse = not self.sort_reverse
                        self._resort()
                    else:
                        self.sort_by(col.key, reverse=False)
            return
        index = event.y - 1 + round(self.scroll_y)
        if 0 <= index < self.row_count:
            self._set_cursor(index)
            if event.chain >= 2:
                self.action_select()

    def _column_at(self, x: int) -> Column | None:
        pos = 0
        for col, w in self._layout(self.text_width):
            if pos <= x < pos + w + 1:
                return col
            pos += w + 1
        return None

    # -- drawing --------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        self._update_size()

    def on_focus(self) -> None:
        self._refresh_row(self.cursor)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor)

    def shown_columns(self, width: int | None = None) -> list[Column]:
        return [c for c, _ in self._layout(self.text_width if width is None else width)]

    def _layout(self, width: int) -> list[tuple[Column, int]]:
        """The columns that fit in ``width`` and their widths: droppable columns give way,
        highest priority first, until the shared-width ones have MIN_FLEX cells each."""
        key = (width, id(self.columns))
        if self._layout_key == key:
            return self._layout_cached
        cols = list(self.columns)

        def need(cs: list[Column]) -> int:
            return sum(c.width if c.width is not None else MIN_FLEX for c in cs) + len(cs) - 1

        for drop in sorted((c for c in self.columns if c.priority), key=lambda c: -c.priority):
            if need(cols) <= width:
                break
            cols.remove(drop)
        fixed = sum(c.width for c in cols if c.width is not None) + len(cols) - 1
        flex = [c for c in cols if c.width is None]
        share = max(4, (width - fixed) // len(flex)) if flex else 0
        self._layout_key, self._layout_cached = key, [(c, c.width if c.width is not None else share) for c in cols]
        return self._layout_cached

    def _cells(self, row: dict | None, layout: list[tuple[Column, int]], base: Style, header: bool) -> list[Segment]:
        segs: list[Segment] = []
        for i, (col, w) in enumerate(layout):
            if header:
                txt = col.label + ((" ▲" if self.sort_reverse else " ▼") if col.key == self.sort_column else "")
                style = None
            else:
                raw = col.text(row) if col.text else row.get(col.key)
                txt = visible(raw)
                style = col.style(row) if col.style else None
            if cell_len(txt) > w:
                if col.keep_end and w > 1:
                    txt = "…" + txt[len(txt) - (w - 1):]
                else:
                    t = Text(txt)
                    t.truncate(w, overflow="ellipsis")
                    txt = t.plain
            pad = w - cell_len(txt)
            txt = (" " * pad + txt) if col.align == "right" else (txt + " " * pad)
            segs.append(Segment(txt, base + Style.parse(style) if style else base))
            if i < len(layout) - 1:
                segs.append(Segment(" ", base))
        return segs

    @property
    def text_width(self) -> int:
        """The width rows are drawn in: less the vertical scrollbar when there is one."""
        return self.scrollable_content_region.width

    def render_line(self, y: int) -> Strip:
        width = self.text_width
        base = self.base_style
        widths = self._layout(width)
        if y == 0:
            style = base + self.get_component_rich_style("vtable--header")
            return Strip(self._cells(None, widths, style, header=True)).adjust_cell_length(width, style)
        index = y - 1 + round(self.scroll_y)
        if self.row_count == 0:
            if y == 1:
                style = base + self.get_component_rich_style("vtable--empty")
                return Strip([Segment(" " + self.empty, style)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        if index >= self.row_count:
            return Strip.blank(width, base)
        style = base
        if index == self.cursor:
            style = base + self.get_component_rich_style("vtable--cursor" if self.has_focus else "vtable--cursor-blur")
        return self._row_strip(index, widths, style, width)

    def _row_strip(self, index: int, widths: list[tuple[Column, int]], style: Style, width: int) -> Strip:
        return Strip(self._cells(self._rows.get(index), widths, style, header=False)).adjust_cell_length(width, style)
