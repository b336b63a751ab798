"""A few lines of text that follow a cursor (an audit trail's title, a service's callers)."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import Static


class FollowLines(Static):
    """A Static whose height is the number of lines its text takes, never shrinking while
    the cursor moves: updating it lays out the screen only when a longer text comes (an auto
    height laid out the whole screen on every update, that is on every j/k, and moved what
    is below it up and down). ``shrink``: fit a shorter text too (new data shown)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text("")
        self._lines = -1  # the height set (-1: none yet)
        self._width = 0  # the width it was fitted at

    def show(self, text: Text, shrink: bool = False) -> None:
        self._text = text
        self._fit(shrink)
        self.update(text, layout=False)

    def _fit(self, shrink: bool = True) -> None:
        width = self.size.width - self.styles.gutter.width
        if width <= 0:  # hidden or not laid out yet: fitted when shown (on_resize)
            self._width = -1
            return
        self._width = width
        n = len(self._text.wrap(self.app.console, width)) if self._text.plain else 0
        if not shrink:
            n = max(n, self._lines)
        if n != self._lines:
            self._lines = n
            self.styles.height = n

    def on_resize(self, event: events.Resize) -> None:
        # not before the first text (the stylesheet's height), nor when hidden and shown again;
        # a text shown before the first layout (a pane mounted on its visit) is fitted now, not
        # on the first j/k
        if (self._lines >= 0 or self._width == -1) and self.size.width - self.styles.gutter.width not in (0, self._width):
            self._fit()
