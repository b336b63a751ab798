"""The key bar at the bottom: the keys the focused widget and its panes offer, in one line.

Textual's Footer composes a widget per key again on every focus change: a third of a
second per pane switch on a loaded machine. This bar is one line of text, worked out
again when the keys change and repainted only when the line differs."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget, can_focus=False):
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--disabled"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        background: $footer-background;
        color: $footer-foreground;
    }
    KeyBar > .keybar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
    KeyBar > .keybar--description { color: $footer-description-foreground; background: $footer-description-background; }
    KeyBar > .keybar--disabled { text-style: dim; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: list[tuple[str, str, str, bool]] = []  # (key, key shown, description, enabled)
        self.palette: tuple[str, str] | None = None  # (key, key shown): the command palette, on the right
        self._spans: list[tuple[int, int, str]] = []  # where each key is drawn (for clicks)
        self._pending = False

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._rebuild()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen and not self._pending:  # once per refresh, however many changes
            self._pending = True
            self.call_after_refresh(self._rebuild)

    def _rebuild(self) -> None:
        self._pending = False
        app = self.app
        active = self.screen.active_bindings
        items, seen = [], set()
        for _node, binding, enabled, _tooltip in active.values():
            if not binding.show or binding.action in seen:  # one entry per action, as the Footer shows
                continue
            seen.add(binding.action)
            items.append((binding.key, app.get_key_display(binding), binding.description, enabled))
        palette = None
        if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
            _node, binding, _enabled, _tooltip = active[app.COMMAND_PALETTE_BINDING]
            items = [i for i in items if i[0] != binding.key]
            palette = (binding.key, app.get_key_display(binding))
        if (items, palette) != (self.items, self.palette):
            self.items, self.palette = items, palette
            self.refresh()  # the same size: a repaint, no layout

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key")
        desc_style = self.get_component_rich_style("keybar--description")
        dim = self.get_component_rich_style("keybar--disabled")
        out = Text(no_wrap=True, overflow="ellipsis", end="")
        spans = []
        for key, shown, description, enabled in self.items:
            start = out.cell_len
            out.append(f" {shown} ", key_style + (dim if not enabled else key_style))
            if description:
                out.append(f"{description} ", desc_style + (dim if not enabled else desc_style))
            spans.append((start, out.cell_len, key))
        if self.palette is not None:
            key, shown = self.palette
            tail = Text.assemble(("▏", "dim"), (f"{shown} ", key_style), ("palette ", desc_style))
            gap = self.size.width - out.cell_len - tail.cell_len
            if gap >= 1:
                spans.append((out.cell_len + gap, out.cell_len + gap + tail.cell_len, key))
                out.append(" " * gap)
                out.append_text(tail)
        self._spans = spans
        return out

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
