"""A VirtualTable over rows fetched a chunk at a time, when drawn: a million rows cost what
the screen shows (the call tree's nodes, the replay's steps).

Chunks are read in worker threads, never on the UI thread (a chunk is a query): a row not
read yet is drawn as a dim "…" line and the cursor's row is announced again when it comes."""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.message import Message
from textual.strip import Strip

from raceway_tui.widgets.table import VirtualTable

CHUNK = 256


class LazyRows:
    """``count`` rows; ``fetch(start, count)`` returns rows start .. start+count-1 as dicts
    (called in a worker thread); ``cached(start, count)``, if given, returns them without
    a query when it can (e.g. a fold redraws rows read before), else None (UI thread)."""

    def __init__(self, count: int, fetch: Callable[[int, int], list[dict]], first: list[dict] | None = None,
                 cached: Callable[[int, int], list[dict] | None] | None = None) -> None:
        self.count = count
        self.fetch = fetch
        self.cached = cached
        self.chunks: LRUCache = LRUCache(32)
        if first:  # the first chunk, fetched off the UI thread with the rest of the data
            self.chunks[0] = first

    def __len__(self) -> int:
        return self.count

    def span(self, c: int) -> tuple[int, int]:
        return c * CHUNK, min(CHUNK, self.count - c * CHUNK)

    def peek(self, i: int) -> dict | None:
        """Row i if read already (or readable without a query), else None."""
        c = i // CHUNK
        chunk = self.chunks.get(c)
        if chunk is None and self.cached is not None:
            chunk = self.cached(*self.span(c))
            if chunk is not None:
                self.chunks[c] = chunk
        return chunk[i - c * CHUNK] if chunk is not None else None

    def get(self, i: int) -> dict | None:
        return self.peek(i)


class LazyTable(VirtualTable):
    """A VirtualTable that also takes LazyRows (never sorted: the rows keep their order)."""

    class ChunkLoaded(Message):
        def __init__(self, rows: LazyRows, chunk: int, data: list[dict] | None, error: str | None) -> None:
            super().__init__()
            self.rows, self.chunk, self.data, self.error = rows, chunk, data, error

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._pending: set[tuple[int, int]] = set()  # (id of the LazyRows, chunk) being read
        self._failed = False  # one toast per failure, not per line

    @property
    def lazy(self) -> LazyRows | None:
        return self._rows if isinstance(self._rows, LazyRows) else None

    @property
    def loading(self) -> bool:
        """A chunk is being read (tests wait for it)."""
        return bool(self._pending)

    def _apply_sort(self) -> None:
        if isinstance(self._source, LazyRows):
            self._rows = self._source
            self._update_size()
            return
        super()._apply_sort()

    def row(self, index: int | None = None) -> dict | None:
        """The row, or None while its chunk is being read (asked for here)."""
        rows = self.lazy
        if rows is None:
            return super().row(index)
        i = self.cursor if index is None else index
        if not 0 <= i < rows.count:
            return None
        got = rows.peek(i)
        if got is None:
            self._request(rows, i // CHUNK)
        return got

    def find(self, predicate, start: int = 0, step: int = 1) -> int | None:
        rows = self.lazy
        if rows is None:
            return super().find(predicate, start, step)
        i = start  # among the rows read: the others are not known yet
        while 0 <= i < rows.count:
            r = rows.peek(i)
            if r is not None and predicate(r):
                return i
            i += step
        return None

    def _request(self, rows: LazyRows, c: int) -> None:
        tag = (id(rows), c)
        if tag in self._pending:
            return
        self._pending.add(tag)
        start, count = rows.span(c)

        def read() -> None:
            try:
                data, error = rows.fetch(start, count), None
            except Exception as exc:  # a database failure: said once, the lines stay "…"
                data, error = None, f"{type(exc).__name__}: {exc}"
            self.post_message(self.ChunkLoaded(rows, c, data, error))

        self.run_worker(read, thread=True, group="lazy-rows", exit_on_error=False, name="raceway-rows")

    def on_lazy_table_chunk_loaded(self, msg: ChunkLoaded) -> None:
        msg.stop()
        self._pending.discard((id(msg.rows), msg.chunk))
        if msg.rows is not self._rows:  # other rows are shown now (a fold, new data)
            return
        if msg.error is not None:
            if not self._failed:
                self._failed = True
                self.app.notify(f"Could not read rows: {msg.error}", severity="error", timeout=8)
            return
        msg.rows.chunks[msg.chunk] = msg.data
        self.refresh()
        start, count = msg.rows.span(msg.chunk)
        if start <= self.cursor < start + count:  # the cursor's row is known now: say it
            self.post_message(self.Highlighted(self, self.cursor, self.row()))

    def _row_strip(self, index: int, widths, style: Style, width: int) -> Strip:
        rows = self.lazy
        if rows is not None:
            row = rows.peek(index)
            if row is None:
                self._request(rows, index // CHUNK)
                dim = style + Style(dim=True)
                return Strip([Segment(" …", dim)]).adjust_cell_length(width, style)
            return Strip(self._cells(row, widths, style, header=False)).adjust_cell_length(width, style)
        return super()._row_strip(index, widths, style, width)
