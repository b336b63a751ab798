"""ShiViz / GoVector logs: events of hosts with vector clocks.

Reading (regex, delimiter, upload form) is in ``_shiviz_log``. Here each match
is checked as ShiViz checks a log, then becomes a Raceway event:

* an execution is a trace: ``trace_id`` = the file stem, or ``<stem>/<label>``
  when the log holds several executions;
* a host is a context: ``metadata.thread_id`` = ``instance_id`` = the host;
  ``service_name`` = the file stem (one system, many hosts);
* ``causality_vector`` = the clock as ShiViz reads it: ``[[host, n], ...]`` in the
  log's key order, zero entries dropped (ShiViz deletes them too);
* logs carry no usable time, so timestamps are synthesised: the k-th event of
  the log gets 1970-01-01T00:00:00Z + k µs, hence program order follows the log.
  Should a host's events appear out of clock order, that host's timestamps are
  permuted so its program order follows its own clock;
* event text matching ``extra["access_regex"]`` (groups ``access``, ``variable``,
  optional ``value``, ``address``) is a ``StateChange`` (TSViz ``Read X from V`` /
  ``Write X to V``; the variable is ``V@address`` when an address is given);
  text matching ``extra["lock_regex"]`` (groups ``acquire`` or ``release`` naming
  the lock) is a ``LockAcquire``/``LockRelease``; anything else is
  ``Custom{name: event text, data: fields}``. An empty option disables a mapping.

Validation (violations are rejects, the rest of the log loads): the clock is a
JSON object (retried with ``\\"`` unescaped) of non-negative integers with an
entry for the event's own host; within an execution each host's own entry runs
1, 2, ..., N; every host a clock names has events in the execution, and no
clock names a value beyond that host's last event.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import PurePath

from raceway_core.formats import Converted, ImportOptions, register
from raceway_core.formats._common import rfc3339_us
from raceway_core.formats._shiviz_log import DEFAULT_REGEX, Entry, compile_regex, read_log, upload_header
from raceway_core.loading.fields import ACCESS_TYPES
from raceway_core.loading.reading import Problem

ACCESS_REGEX = (r"^(?:\d+ )?(?P<access>Read|Write) (?P<value>.*?) (?:from|to) (?P<variable>\S+)"
                r"(?: of type .*?)?(?: \(ptr=(?P<address>\w+)\))?$")
# TSViz WiredTiger spin locks: held from the return of __wt_spin_lock to the call of __wt_spin_unlock.
LOCK_REGEX = r"^(?:\d+ )?(?:Exiting (?P<acquire>\S+?)__wt_spin_lock|Entering (?P<release>\S+?)__wt_spin_unlock)$"
_JSON_ARRAY = re.compile(r'\[\s*(?:[\[{"\]\d-]|true|false|null|$)')  # "[INFO] ..." is a log line
_MOTIFS = re.compile(r"^\d+-event subgraphs\s*$", re.MULTILINE)
_CLOCKISH = re.compile(r'\{\s*\\?"[^"\\\n]{1,200}\\?"\s*:\s*\d+\s*[,}]')
_ACCESS = {a.lower(): a for a in ACCESS_TYPES} | {"load": "Read", "store": "Write", "r": "Read", "w": "Write"}


def _first_line_is_json(body: str) -> bool:
    line = body.split("\n", 1)[0].strip()
    if line in ("[", "{"):
        return True  # a pretty-printed document opens so
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def parse_clock(text: str) -> tuple[dict[str, int] | None, str | None]:
    """(clock, None) or (None, why it is not a clock). Zero entries are kept here."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        try:
            value = json.loads(text.replace('\\"', '"'))
        except ValueError:
            return None, f"clock is not JSON ({exc.msg} at column {exc.colno}): {text[:80]}"
    if not isinstance(value, dict):
        return None, f"clock must be a JSON object, got {text[:80]}"
    clock = {}
    for host, n in value.items():
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return None, f"clock value for host {host!r} must be a non-negative integer, got {n!r}"
        clock[host] = n
    return clock, None


def check_execution(entries: list[Entry]) -> list[tuple[dict | None, str | None]]:
    """Per entry: (clock without zero entries, None) when valid as ShiViz requires, else (None, reason)."""
    out: list[tuple[dict | None, str | None]] = []
    for e in entries:
        clock, why = parse_clock(e.clock)
        if why is None and e.host not in clock:
            why = f"clock has no entry for its own host {e.host!r}"
        elif why is None and clock[e.host] < 1:
            why = f"own clock entry must start at 1, got {clock[e.host]}"
        if why is not None:
            out.append((None, f"host {e.host!r}: {why}"))
        else:
            out.append(({h: n for h, n in clock.items() if n}, None))  # ShiViz drops zeros too
    by_host: dict[str, list[int]] = defaultdict(list)
    for i, (clock, _) in enumerate(out):
        if clock is not None:
            by_host[entries[i].host].append(i)
    last = {h: max(out[i][0][h] for i in idx) for h, idx in by_host.items()}
    for host, idx in by_host.items():
        prev, first_line = 0, {}
        for i in sorted(idx, key=lambda i: out[i][0][host]):
            own = out[i][0][host]
            if own == prev:
                out[i] = (None, f"host {host!r}: own clock value {own} repeats (first at line {first_line[own]})")
                continue
            first_line[own] = entries[i].line
            if own != prev + 1:
                out[i] = (None, f"host {host!r}: own clock goes from {prev} to {own} "
                                "(ShiViz requires each host's own entry to run 1, 2, ..., N)")
            prev = own
    for i, (clock, _) in enumerate(out):
        if clock is None:
            continue
        for other, n in clock.items():
            if other not in last:
                out[i] = (None, f"host {entries[i].host!r}: clock names host {other!r}, "
                                "which has no events in this execution")
                break
            if n > last[other]:
                out[i] = (None, f"host {entries[i].host!r}: clock names {other}:{n} "
                                f"but host {other!r} logs only up to {last[other]}")
                break
    return out


def _optional_regex(options: ImportOptions, key: str, default: str, need: tuple[str, ...]):
    pattern = options.extra.get(key, default)
    return compile_regex(pattern, key, need) if pattern else None


def _kind(text: str, fields: dict, access: re.Pattern | None, lock: re.Pattern | None) -> dict:
    m = access.search(text) if access else None
    if m and m.group("access") and m.group("access").lower() in _ACCESS:
        variable = m.group("variable")
        groups = m.groupdict()
        if groups.get("address"):
            variable = f"{variable}@{groups['address']}"
        return {"StateChange": {"variable": variable, "old_value": None, "new_value": groups.get("value"),
                                "location": None, "access_type": _ACCESS[m.group("access").lower()]}}
    m = lock.search(text) if lock else None
    if m and (m.group("acquire") or m.group("release")):
        variant = "LockAcquire" if m.group("acquire") else "LockRelease"
        return {variant: {"lock_id": m.group("acquire") or m.group("release"), "lock_type": None,
                          "location": None}}
    return {"Custom": {"name": text, "data": fields}}


def _trace_names(stem: str, labels: list[str]) -> list[str]:
    if len(labels) == 1 and not labels[0]:
        return [stem]
    out, seen = [], set()
    for i, label in enumerate(labels, 1):
        name = f"{stem}/{label}" if label and label not in seen else f"{stem}/{i}"
        seen.add(label)
        out.append(name)
    return out


def _program_order(events: list[dict], owns: list[int], notes: list[str]) -> None:
    """Give each host its timestamps in own-clock order (a no-op when the log is in that order)."""
    by_ctx: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        by_ctx[(e["trace_id"], e["metadata"]["thread_id"])].append(i)
    moved = []
    for (trace, host), idx in by_ctx.items():
        ordered = sorted(idx, key=lambda i: owns[i])
        if ordered != idx:
            stamps = [events[i]["timestamp"] for i in idx]
            for i, ts in zip(ordered, stamps):
                events[i]["timestamp"] = ts
            moved.append(host)
    if moved:
        notes.append(f"events of host{'s' if len(moved) > 1 else ''} {', '.join(moved[:3])} appear out of "
                     "clock order in the log; their timestamps follow their own clock")


# Layouts of ShiViz's own example logs (its index.html pairs each with a parser regex):
# tried in turn when no regex is given, the one reading the most events wins.
KNOWN_LAYOUTS = {
    "ShiViz default (event line, then host and clock)": DEFAULT_REGEX,
    "host and clock, then event line (GoVector, chord)": r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)",
    "Akka log line with clock (reliable-broadcast)":
        r"\[\w+\] \[(?<date>([^ ]+ [^ ]+))\] [^ ]+ \[akka://[^/]+/user/(?<host>\w+)\] (?<clock>.*\}) (?<event>.*)",
    "TLA+ TLC trace with Host and Clock (ewd998)":
        r'^State [0-9]+: <(?<event>\w*) .*>\n\/\\ Host = (?<host>.*)\n\/\\ Clock = "(?<clock>.*)"\n'
        r"\/\\ active = (?<active>.*)\n\/\\ color = (?<color>.*)\n\/\\ counter = (?<counter>.*)",
    "timestamped event, then host and clock (TSViz)":
        r"(?<timestamp>(\d*)) (?<event>.*)\n(?<host>\w*) (?<clock>.*)",
    "log4j line, then host and clock (voldemort)":
        r"\[(?<date>\d{4}-\d{2}-\d{2} (\d{2}:){2}\d{2},\d{3}) (?<path>\S*)\] (?<priority>(INFO|WARN)) (?<event>.*)\n"
        r"(?<host>\S*) (?<clock>{.*})",
    "access log line, then host and clock (facebook)":
        r"(?<ip>(\d{1,3}\.){3}\d{1,3}) (?<date>(\d{1,2}/){2}\d{4} (\d{2}:){2}\d{2} (AM|PM)) "
        r"(?<action>(INFO|GET|POST)) (?<event>.*)\n(?<host>\w*) (?<clock>.*)",
}


class ShivizImporter:
    name = "shiviz"

    def sniff(self, head: str) -> bool:
        body = head.lstrip("\ufeff \t\r\n")
        if not body or body[0] == "{":
            return False
        if _JSON_ARRAY.match(body) and _first_line_is_json(body):
            return False  # "[2013-05-24 ...] INFO" is a log line, "[{...}]" is not
        return upload_header(body) is not None or bool(_CLOCKISH.search(body))

    def convert(self, text: str, options: ImportOptions) -> Converted:
        if options.regex or upload_header(text.lstrip("\ufeff")) is not None:
            return self._convert(text, options)
        best: tuple[int, str, Converted] | None = None
        failures = []
        for name, regex in KNOWN_LAYOUTS.items():  # the default first: it wins ties
            try:
                conv = self._convert(text, replace(options, regex=regex))
            except ValueError as exc:
                failures.append(exc)
                continue
            score = len(conv.events) - len(conv.problems)
            if best is None or score > best[0]:
                best = (score, name, conv)
        if best is None:
            raise failures[0]
        _, name, conv = best
        if name != next(iter(KNOWN_LAYOUTS)):
            conv.notes.insert(0, f"parser regex of the known layout '{name}' (it reads the most events; "
                                 "--regex to give another)")
        return conv

    def _convert(self, text: str, options: ImportOptions) -> Converted:
        log = read_log(text, options.regex, options.delimiter)
        if not any(ex.entries for ex in log.executions):
            if _MOTIFS.search(text):
                raise ValueError("this is ShiViz's motif library (motifs.json: the event patterns ShiViz "
                                 "searches for, one JSON list per line), not the log of a run; nothing to load")
            hint = (" (ShiViz's default regex; give the log's own with --regex)"
                    if log.regex == DEFAULT_REGEX else "")
            raise ValueError(f"no events match the parser regex '{log.regex}'{hint}")
        stem = PurePath(options.source).stem or "shiviz"
        traces = _trace_names(stem, [ex.label for ex in log.executions])
        conv = events_of(stem, [(t, ex.entries) for t, ex in zip(traces, log.executions)], options, self.name)
        notes = list(log.notes)
        if len(log.executions) > 1:
            notes.append(f"{len(log.executions)} executions: " + ", ".join(traces[:5])
                         + (", ..." if len(traces) > 5 else ""))
        conv.notes[:0] = notes
        return conv


def events_of(stem: str, executions: list[tuple[str, list[Entry]]], options: ImportOptions,
              fmt: str) -> Converted:
    """The events of checked entries, one trace per execution."""
    access = _optional_regex(options, "access_regex", ACCESS_REGEX, ("access", "variable"))
    lock = _optional_regex(options, "lock_regex", LOCK_REGEX, ("acquire", "release"))
    events: list[dict] = []
    lines: list[int | None] = []
    owns: list[int] = []
    problems: list[Problem] = []
    for trace, entries in executions:
        for e, (clock, why) in zip(entries, check_execution(entries)):
            if why is not None:
                problems.append(Problem(e.line, None, why, e.raw))
                continue
            tags = {k: v for k, v in e.fields.items() if v is not None}
            events.append({
                "id": f"{trace}:{e.host}:{clock[e.host]}",
                "trace_id": trace,
                "parent_id": None,
                "timestamp": rfc3339_us(len(events) + 1),
                "kind": _kind(e.text, tags, access, lock),
                "metadata": {"thread_id": e.host, "service_name": stem, "instance_id": e.host,
                             "tags": {"event": e.text, **tags}},
                "causality_vector": [[h, n] for h, n in clock.items()],
                "lock_set": [],
            })
            lines.append(e.line)
            owns.append(clock[e.host])
    notes = ["timestamps are synthesised in log order (the log has no clock time)"]
    _program_order(events, owns, notes)
    return Converted(events, lines, problems, notes, fmt)


register(ShivizImporter())
