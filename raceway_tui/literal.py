"""Data on screen, literally: the one way a string from a trace, a file name or an error
text becomes something to draw.

Rich and Textual read markup (``[/]``, ``[link=...]``), emoji codes (``:skull:``) in plain
``str``; a terminal obeys control characters (a newline draws over the next row, ESC starts
an escape sequence). So data is always a ``Text`` (no markup, no emoji) and its control
characters are shown as visible symbols: ``␊ ␍ ␉`` and ``\\xNN`` / ``\\uNNNN`` escapes.
"""

from __future__ import annotations

from rich.text import Text

_NAMED = {"\n": "␊", "\r": "␍", "\t": "␉"}


def _table() -> dict[int, str]:
    table = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
    for ch, sym in _NAMED.items():
        table[ord(ch)] = sym
    # line / paragraph separators break lines too; bidi overrides reorder what follows
    for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF):
        table[c] = f"\\u{c:04x}"
    return table


_VISIBLE = _table()


def visible(value, multiline: bool = False) -> str:
    """``value`` as a string whose control characters are visible (``multiline``: newlines
    stay line breaks, for text shown in a box of its own such as an error dialog)."""
    s = "" if value is None else str(value)
    if multiline:
        return "\n".join(line.translate(_VISIBLE) for line in s.split("\n"))
    return s.translate(_VISIBLE)


def literal(value, style: str = "", multiline: bool = False) -> Text:
    """``value`` as Text shown exactly as it is: no markup, no emoji, control characters visible."""
    return Text(visible(value, multiline), style=style)
