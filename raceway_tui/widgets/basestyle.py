"""The widget's Rich style, worked out once, not once per line drawn.

``Widget.rich_style`` walks every ancestor's styles (colours blended, opacity, text style):
called in ``render_line`` it was about half of a table's or the timeline's drawing time.
Like Textual's DataTable (which reads its pseudo-class state in ``render_lines``), a pass
over the lines works it out once; between passes it is kept until a style of the widget or
of one of its ancestors changes (a theme, a focus or a class change all update the styles'
counters that the key is made of)."""

from __future__ import annotations

from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip


class BaseStyle:
    """Mixin for line-API widgets: use ``self.base_style`` in ``render_line``."""

    _base_key: tuple | None = None
    _base_style: Style | None = None
    _pass_style: Style | None = None  # set while render_lines runs

    @property
    def base_style(self) -> Style:
        if self._pass_style is not None:
            return self._pass_style
        # Textual's own change counter of each node's styles (rules set, cleared, merged)
        key = tuple((id(node), node.styles._cache_key) for node in self.ancestors_with_self)
        if key != self._base_key or self._base_style is None:
            self._base_key, self._base_style = key, self.rich_style
        return self._base_style

    def render_lines(self, crop: Region) -> list[Strip]:
        self._pass_style = self.base_style
        try:
            return super().render_lines(crop)
        finally:
            self._pass_style = None
