"""Reading a ShiViz log: its parser regex, executions and matched entries (no validation here).

ShiViz semantics: the parser regex has named groups ``event``, ``host`` and
``clock`` (every other named group is a field) and is applied with the
multiline flag over the whole text of an execution, match after match; text
between matches is ignored. An optional delimiter regex splits the log into
executions, labelled by its ``trace`` group. Patterns are JavaScript: named
groups ``(?<name>...)`` are translated to Python's ``(?P<name>...)``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

DEFAULT_REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"  # ShiViz's own default
CONVENTIONAL_DELIMITER = r"^=== (?<trace>.*) ===$"  # used when the log starts with such a line
REQUIRED = ("event", "host", "clock")
FLAGS = re.MULTILINE | re.ASCII  # JS: "m" flag; \w, \d, \b are ASCII-only there too


def js_to_python(pattern: str) -> str:
    """Translate JavaScript regex syntax that Python spells differently."""
    out = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            if pattern.startswith("[^]", i):  # JS: any character
                out.append(r"[\s\S]")
                i += 3
                continue
            in_class = True
            if pattern.startswith("[]", i):  # JS: matches nothing
                out.append("(?!)")
                i += 2
                in_class = False
                continue
        elif c == "(" and pattern.startswith("(?<", i) and pattern[i + 3:i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def compile_regex(pattern: str, what: str, need: tuple[str, ...] = ()) -> re.Pattern:
    """The compiled pattern, or ValueError naming what is wrong with it."""
    try:
        rx = re.compile(js_to_python(pattern), FLAGS)
    except re.error as exc:
        raise ValueError(f"invalid {what} {pattern!r}: {exc}") from None
    missing = [g for g in need if g not in rx.groupindex]
    if missing:
        raise ValueError(f"the {what} {pattern!r} lacks the named group{'s' if len(missing) > 1 else ''} "
                         + ", ".join(f"(?<{g}>...)" for g in missing))
    return rx


@dataclass
class Entry:
    """One regex match: an event of a host with its clock text."""

    line: int  # line in the input where the match starts
    host: str
    clock: str
    text: str  # the event text
    fields: dict[str, str | None]
    raw: str  # the matched text


@dataclass
class Execution:
    label: str
    line: int  # first line of its text
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Log:
    regex: str
    delimiter: str | None
    executions: list[Execution]
    notes: list[str]


def upload_header(text: str) -> tuple[str, str, int] | None:
    """(regex, delimiter, offset of the log) when line 1 is a parser regex (ShiViz upload form)."""
    nl1 = text.find("\n")
    if nl1 < 0:
        return None
    first = text[:nl1].strip()
    if "(?<" not in first and "(?P<" not in first:
        return None
    try:
        compile_regex(first, "regex", REQUIRED)
    except ValueError:
        return None
    nl2 = text.find("\n", nl1 + 1)
    end = nl2 if nl2 >= 0 else len(text)
    return first, text[nl1 + 1:end].strip(), min(end + 1, len(text))


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _segments(text: str, start: int, end: int, delimiter: str | None) -> list[tuple[str, int, int]]:
    """(label, start, end) of each execution's text; the delimiter's ``trace`` group is the label."""
    if not delimiter:
        return [("", start, end)]
    drx = compile_regex(delimiter, "delimiter")
    out, pos, label = [], start, ""
    for m in drx.finditer(text, pos, end):
        out.append((label, pos, m.start()))
        label = (m.groupdict().get("trace") or "") if "trace" in drx.groupindex else ""
        pos = m.end()
    out.append((label, pos, end))
    return out


def read_log(text: str, regex: str | None, delimiter: str | None) -> Log:
    """Split ``text`` into executions and their regex matches.

    ``delimiter`` None means "none given": the conventional ``=== label ===``
    delimiter is used when the log's first line has that shape; "" means none.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    notes: list[str] = []
    start = 0
    header = upload_header(text)
    if header is not None:
        h_regex, h_delim, start = header
        regex = regex or h_regex
        delimiter = delimiter if delimiter is not None else h_delim
        notes.append("regex and delimiter read from the first two lines (ShiViz upload form)")
    rx = compile_regex(regex or DEFAULT_REGEX, "parser regex", REQUIRED)
    body = text[start:]
    if delimiter is None:
        first = body.lstrip().split("\n", 1)[0]
        if re.fullmatch(js_to_python(CONVENTIONAL_DELIMITER), first):
            delimiter = CONVENTIONAL_DELIMITER
            notes.append(f"executions split at lines like {first!r} (delimiter {CONVENTIONAL_DELIMITER})")
    starts = _line_starts(text)

    def line_at(pos: int) -> int:
        return bisect.bisect_right(starts, pos)

    lead = len(body) - len(body.lstrip())
    names = [g for g in rx.groupindex if g not in REQUIRED]
    executions = []
    outside: list[int] = []  # non-blank lines no match covers: reported, as nothing is dropped silently
    for label, a, b in _segments(text, start + lead, start + len(body.rstrip()), delimiter):
        chunk = text[a:b]
        if not chunk.strip():
            continue
        ex = Execution(label, line_at(a))
        covered: set[int] = set()
        for m in rx.finditer(chunk):  # on the execution's own text, as ShiViz does (^ and $ at its ends)
            first, last = line_at(a + m.start()), line_at(a + max(m.end() - 1, m.start()))
            covered.update(range(first, last + 1))
            ex.entries.append(Entry(first, m.group("host") or "", m.group("clock") or "",
                                    m.group("event") or "", {k: m.group(k) for k in names}, m.group(0)))
        outside += [ex.line + k for k, piece in enumerate(chunk.split("\n"))
                    if piece.strip() and ex.line + k not in covered]
        executions.append(ex)
    if outside:
        notes.append(f"{len(outside):,} non-blank line{'s' if len(outside) > 1 else ''} outside any event "
                     f"(not matched by the parser regex; first: line {outside[0]})")
    return Log(regex or DEFAULT_REGEX, delimiter or None, executions, notes)
