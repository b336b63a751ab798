"""Work that follows the cursor (the detail panel, a race pair, an audit trail) waits until
the keys stop: redrawing a tall panel on every j of a held key is what made the cursor lag."""

from __future__ import annotations

from collections.abc import Callable

from textual.timer import Timer
from textual.widget import Widget

DELAY = 0.06  # seconds without a new call before the work runs (key repeat is ~30 ms)


class Debounce:
    """``d(*args)`` runs ``fn(*args)`` on ``owner``'s message loop once no call came for
    ``delay`` seconds; only the last call's arguments count."""

    def __init__(self, owner: Widget, fn: Callable[..., None], delay: float = DELAY) -> None:
        self.owner, self.fn, self.delay = owner, fn, delay
        self._timer: Timer | None = None
        self._args: tuple = ()

    @property
    def pending(self) -> bool:
        """A call waits for the keys to stop (tests wait for it)."""
        return self._timer is not None

    def __call__(self, *args) -> None:
        self._args = args
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.owner.set_timer(self.delay, self._fire)

    def flush(self) -> None:
        """Run a waiting call now (the user acts on what it shows, e.g. Enter)."""
        if self._timer is not None:
            self._timer.stop()
            self._fire()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self.fn(*self._args)
