"""The detail panel: every field of the selected event, its vector clock, lock set and raw JSON."""

from __future__ import annotations

import io
import threading

import orjson
from rich.console import Console, Group
from rich.highlighter import JSONHighlighter
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.worker import get_current_worker

from raceway_core.errors import RacewayError
from raceway_tui import format as fmt
from raceway_tui.debounce import Debounce
from raceway_tui.literal import literal, visible
from raceway_tui.widgets.basestyle import BaseStyle

FIELDS = ("id", "trace_id", "parent_id", "timestamp", "thread_id", "service", "instance_id", "span_id",
          "upstream_span_id", "duration_ns", "kind", "variable", "access", "old_value", "new_value", "location",
          "lock_id", "function_name", "task_id", "future_id", "http_method", "http_status", "source", "line")


_JSON = JSONHighlighter()


def event_fields(rec: dict) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold grey70", no_wrap=True, min_width=12)
    t.add_column(overflow="fold")
    for k in FIELDS:
        v = rec.get(k)
        if v is None:
            continue
        if k == "timestamp":
            v = fmt.timestamp(v)
        style = fmt.event_style(rec) if k in ("kind", "http_status") else ""
        t.add_row(k, literal(v, style=style))
    return t


def render_event(rec: dict) -> Group:
    head = Text()
    head.append(f"{visible(rec.get('kind'))} ", style=fmt.event_style(rec))
    head.append(visible(rec.get("id")), style="bold")
    if rec.get("context"):
        head.append(f"  {visible(fmt.context_label(rec.get('service'), rec.get('context')))} #{rec.get('pos')}",
                    style="grey70")
    locks = rec.get("held_locks")
    causal = Table.grid(padding=(0, 2))
    causal.add_column(style="bold grey70", no_wrap=True, min_width=12)
    causal.add_column(overflow="fold")
    clock = rec.get("vector_clock")
    if clock is None:
        causal.add_row("vector clock", Text("after the analysis", style="dim"))
    else:
        own = fmt.context_label(rec.get("service"), rec.get("context"))
        causal.add_row("vector clock", literal(fmt.clock_text(clock, [own], limit=12), style="cyan"))
    given = rec.get("clock")
    if given:
        causal.add_row("given clock", literal(fmt.clock_text({c["c"]: c["n"] for c in given}, limit=12), style="grey70"))
    if "held_locks" not in rec:
        causal.add_row("lock set", Text("after the analysis", style="dim"))
    else:
        causal.add_row("lock set", literal(", ".join(locks) if locks else "∅ (no lock held)"))
    if rec.get("ord") is not None:
        causal.add_row("causal rank", str(rec["ord"]))
    raw = rec.get("raw")
    try:
        pretty = orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode() if raw else ""
    except orjson.JSONDecodeError:
        pretty = visible(raw, multiline=True)
    if rec.get("raw_error"):  # read back from a file that changed since the load
        return Group(head, causal, event_fields(rec), Text("raw JSON", style="bold grey70"),
                     Text(visible(rec["raw_error"]), style="yellow"))
    # a regex highlighter, not Syntax (Pygments): half of the panel's drawing time went there
    return Group(head, causal, event_fields(rec), Text("raw JSON", style="bold grey70"),
                 _JSON(Text(pretty, style="grey85")))


def render_lines(renderable, width: int) -> list[Strip]:
    """A renderable as lines of ``width`` cells (any thread: a console of its own)."""
    console = getattr(_consoles, "console", None)
    if console is None:
        console = _consoles.console = Console(color_system="truecolor", force_terminal=True, legacy_windows=False,
                                              file=io.StringIO(), markup=False, emoji=False, highlight=False)
    width = max(1, width)
    lines = console.render_lines(renderable, console.options.update(width=width, max_width=width), pad=False)
    return [Strip(line).adjust_cell_length(width) for line in lines]


_consoles = threading.local()


class EventDetail(BaseStyle, Widget, can_focus=True):
    """Shows one event; fetches it in a worker a moment after the selection settles.

    Its lines are drawn in that worker too, and the panel keeps its size: showing another
    event repaints the panel's lines, without laying out the screen again (a tall Static in
    a scrolling container cost several layouts of the whole screen per cursor move)."""

    BINDINGS = [  # once focused (D): scroll; Esc gives the focus back to the pane
        Binding("j,down", "scroll_by(1)", "Down", show=False),
        Binding("k,up", "scroll_by(-1)", "Up", show=False),
        Binding("pagedown,ctrl+f", "scroll_page(1)", "Page down", show=False),
        Binding("pageup,ctrl+b", "scroll_page(-1)", "Page up", show=False),
        Binding("g,home", "scroll_to_line(0)", "Top", show=False),
        Binding("G,end", "scroll_to_line(-1)", "Bottom", show=False),
        Binding("escape", "leave", "Back", show=False),
    ]
    LOADING_AFTER = 0.25  # s: say "loading…" only when the event takes this long to come

    def action_leave(self) -> None:
        self.app.focus_pane()

    class Loaded(Message):
        def __init__(self, event_id: str, record: dict | None, error: str | None = None,
                     shown=None, lines: list[Strip] | None = None, width: int = 0) -> None:
            super().__init__()
            self.event_id, self.record, self.error = event_id, record, error
            self.shown, self.lines, self.width = shown, lines, width  # what to show, drawn at width

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event_id: str | None = None
        self.record: dict | None = None
        self._settle = Debounce(self, self._settled)
        self.waiting = False  # a fetch is due when the selection settles
        self._session = None
        self._loading_timer = None
        self.shown = Text("Select an event to see its fields, vector clock, lock set and raw JSON.", style="dim")
        self._lines: list[Strip] | None = None  # self.shown drawn at self._width
        self._width = 0
        self.top = 0  # the first line shown (D, then j / k scroll)

    # -- drawing ---------------------------------------------------------------------------
    def _set(self, renderable, lines: list[Strip] | None = None, width: int = 0) -> None:
        """Show a renderable (with its lines if drawn already, at ``width``): a repaint only."""
        self.shown = renderable
        self._lines, self._width = (lines, width) if lines is not None else (None, 0)
        self.top = 0
        self.refresh()

    @property
    def text_width(self) -> int:
        return self.content_size.width

    def lines(self) -> list[Strip]:
        width = self.text_width
        if self._lines is None or self._width != width:
            self._lines, self._width = render_lines(self.shown, width), width
        return self._lines

    @property
    def max_top(self) -> int:
        return max(0, len(self.lines()) - self.content_size.height)

    def render_line(self, y: int) -> Strip:
        lines = self.lines()
        width, height = self.text_width, self.content_size.height
        base = self.base_style
        i = self.top + y
        below = len(lines) - (self.top + height)
        if y == height - 1 and below > 0:  # the last line says what is out of sight
            hint = f"▼ {below:,} more line{'s' if below != 1 else ''}" + ("" if self.has_focus else " · D scrolls")
            return Strip([Segment(hint, base + Style(dim=True, italic=True))]).adjust_cell_length(width, base)
        if i >= len(lines):
            return Strip.blank(width, base)
        return lines[i].apply_style(base)

    def on_resize(self) -> None:
        self.top = min(self.top, self.max_top)

    def _scroll_to(self, top: int) -> None:
        top = max(0, min(top, self.max_top))
        if top != self.top:
            self.top = top
            self.refresh()

    def action_scroll_by(self, delta: int) -> None:
        self._scroll_to(self.top + delta)

    def action_scroll_page(self, direction: int) -> None:
        self._scroll_to(self.top + direction * max(1, self.content_size.height - 1))

    def action_scroll_to_line(self, line: int) -> None:
        self._scroll_to(self.max_top if line < 0 else line)

    def on_focus(self) -> None:
        self.refresh()  # the hint changes

    def on_blur(self) -> None:
        self.refresh()

    # -- the event -------------------------------------------------------------------------
    def show(self, session, event_id: str | None, preview: dict | None = None) -> None:
        """Show an event once the selection settles: nothing is drawn here while keys
        move the cursor."""
        if event_id == self.event_id and (self.record is not None or self.waiting):
            return
        self.event_id = event_id
        self.record = None
        self._session = session
        if event_id is None:
            self._settle.cancel()
            self.waiting = False
            self._set(Text("No event selected.", style="dim"))
            return
        self.waiting = True
        self._settle(session, event_id, preview)

    def _settled(self, session, event_id: str, preview: dict | None) -> None:
        if self._loading_timer is not None:
            self._loading_timer.stop()
        if preview is not None:  # said only if the event is slow to come
            self._loading_timer = self.set_timer(self.LOADING_AFTER, lambda: self._say_loading(event_id, preview))
        self._start_fetch(session, event_id)

    def _say_loading(self, event_id: str, preview: dict) -> None:
        if event_id == self.event_id and self.record is None:
            self._set(Group(literal(f"{preview.get('kind')} {event_id}", style="bold"), literal(fmt.summary(preview)),
                            Text("loading…", style="dim")))

    def reload(self) -> None:
        """Fetch the shown event again (the analysis finished: its clock and lock set are known)."""
        if self.event_id is not None and self._session is not None:
            event_id, self.record = self.event_id, None
            self.event_id = None
            self.show(self._session, event_id)

    def _start_fetch(self, session, event_id: str) -> None:
        self.waiting = False
        self._fetch(session, event_id, self.text_width)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _fetch(self, session, event_id: str, width: int) -> None:
        from raceway_core.browse import event_record

        try:
            rec = session.event(event_id) if session.analysed else event_record(session.store, event_id)
            error = None
        except RacewayError as exc:
            rec, error = None, str(exc)
        except Exception as exc:  # a database failure: said in the panel
            rec, error = None, f"{type(exc).__name__}: {exc}"
        if get_current_worker().is_cancelled:
            return
        shown = render_event(rec) if rec is not None else literal(error or f"No event {event_id}.", style="red")
        lines = render_lines(shown, width)  # here, not on the UI thread
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(event_id, rec, error, shown, lines, width))

    def on_event_detail_loaded(self, msg: Loaded) -> None:
        msg.stop()
        if msg.event_id != self.event_id:
            return
        if self._loading_timer is not None:
            self._loading_timer.stop()
            self._loading_timer = None
        if msg.record is not None:
            self.record = msg.record
        self._set(msg.shown, msg.lines, msg.width)
