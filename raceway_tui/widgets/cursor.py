"""Vim-style cursor keys shared by the row widgets (tables and the timeline)."""

from __future__ import annotations

from textual.binding import Binding

MOVE_BINDINGS = [
    Binding("j,down", "cursor(1)", "Down", show=False),
    Binding("k,up", "cursor(-1)", "Up", show=False),
    Binding("g,home", "first", "First", show=False),
    Binding("G,end", "last", "Last", show=False),
    Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False),
    Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
]


class CursorKeys:
    """The actions of MOVE_BINDINGS. A widget provides ``cursor``, ``_set_cursor(i)``,
    ``rows_total`` and ``page_rows`` (rows one page moves)."""

    def action_cursor(self, delta: int) -> None:
        self._set_cursor(self.cursor + delta)

    def action_first(self) -> None:
        self._set_cursor(0)

    def action_last(self) -> None:
        self._set_cursor(self.rows_total - 1)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * max(1, self.page_rows))
