"""The detail panel: every field of the selected event, its vector clock, lock set and raw JSON."""

from __future__ import annotations

import orjson
from rich.console import Group
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from raceway_core.errors import RacewayError
from raceway_tui import format as fmt
from raceway_tui.debounce import Debounce
from raceway_tui.literal import literal, visible

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
    # a regex highlighter, not Syntax (Pygments): half of the panel's drawing time went there
    return Group(head, causal, event_fields(rec), Text("raw JSON", style="bold grey70"),
                 _JSON(Text(pretty, style="grey85")))


class EventDetail(VerticalScroll):
    """Shows one event; fetches it in a worker a moment after the selection settles."""

    BINDINGS = [  # once focused (D): scroll; Esc gives the focus back to the pane
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
        Binding("escape", "leave", "Back", show=False),
    ]

    def action_leave(self) -> None:
        self.app.pane().focus_main()

    class Loaded(Message):
        def __init__(self, event_id: str, record: dict | None, error: str | None = None) -> None:
            super().__init__()
            self.event_id, self.record, self.error = event_id, record, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event_id: str | None = None
        self.record: dict | None = None
        self._settle = Debounce(self, self._settled)
        self.waiting = False  # a fetch is due when the selection settles
        self._session = None

    def compose(self):
        yield Static(Text("Select an event to see its fields, vector clock, lock set and raw JSON.", style="dim"),
                     id="detail-body")

    def show(self, session, event_id: str | None, preview: dict | None = None) -> None:
        """Show an event once the selection settles: nothing is drawn here while keys
        move the cursor (a tall panel's layout costs more than the cursor's move)."""
        if event_id == self.event_id and (self.record is not None or self.waiting):
            return
        self.event_id = event_id
        self.record = None
        self._session = session
        if event_id is None:
            self._settle.cancel()
            self.waiting = False
            self.query_one("#detail-body", Static).update(Text("No event selected.", style="dim"))
            return
        self.waiting = True
        self._settle(session, event_id, preview)

    def _settled(self, session, event_id: str, preview: dict | None) -> None:
        if preview is not None:
            self.query_one("#detail-body", Static).update(
                Group(literal(f"{preview.get('kind')} {event_id}", style="bold"), literal(fmt.summary(preview)),
                      Text("loading…", style="dim")))
        self._start_fetch(session, event_id)

    def reload(self) -> None:
        """Fetch the shown event again (the analysis finished: its clock and lock set are known)."""
        if self.event_id is not None and self._session is not None:
            event_id, self.record = self.event_id, None
            self.event_id = None
            self.show(self._session, event_id)

    def _start_fetch(self, session, event_id: str) -> None:
        self.waiting = False
        self._fetch(session, event_id)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _fetch(self, session, event_id: str) -> None:
        from raceway_core.browse import event_record

        try:
            rec = session.event(event_id) if session.analysed else event_record(session.store, event_id)
            error = None
        except RacewayError as exc:
            rec, error = None, str(exc)
        except Exception as exc:  # a database failure: said in the panel
            rec, error = None, f"{type(exc).__name__}: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(event_id, rec, error))

    def on_event_detail_loaded(self, msg: Loaded) -> None:
        msg.stop()
        if msg.event_id != self.event_id:
            return
        body = self.query_one("#detail-body", Static)
        if msg.record is None:
            body.update(literal(msg.error or f"No event {msg.event_id}.", style="red"))
            return
        self.record = msg.record
        body.update(render_event(msg.record))
        self.scroll_home(animate=False)
