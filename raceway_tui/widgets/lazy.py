"""A VirtualTable over rows fetched a chunk at a time, when drawn: a million rows cost what
the screen shows (the call tree's nodes, the replay's steps)."""

from __future__ import annotations

from collections.abc import Callable

from textual.cache import LRUCache

from raceway_tui.widgets.table import VirtualTable

CHUNK = 256


class LazyRows:
    """``count`` rows; ``fetch(start, count)`` returns rows start .. start+count-1 as dicts."""

    def __init__(self, count: int, fetch: Callable[[int, int], list[dict]], first: list[dict] | None = None) -> None:
        self.count = count
        self.fetch = fetch
        self.chunks: LRUCache = LRUCache(32)
        if first:  # the first chunk, fetched off the UI thread with the rest of the data
            self.chunks[0] = first

    def __len__(self) -> int:
        return self.count

    def get(self, i: int) -> dict:
        c = i // CHUNK
        chunk = self.chunks.get(c)
        if chunk is None:
            chunk = self.fetch(c * CHUNK, min(CHUNK, self.count - c * CHUNK))
            self.chunks[c] = chunk
        return chunk[i - c * CHUNK]


class LazyTable(VirtualTable):
    """A VirtualTable that also takes LazyRows (never sorted: the rows keep their order)."""

    def _apply_sort(self) -> None:
        if isinstance(self._source, LazyRows):
            self._rows = self._source
            self._update_size()
            return
        super()._apply_sort()
