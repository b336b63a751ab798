"""ShiViz logs converted to ``{nodes, links}`` JSON (ShiViz's graph_viz/log_graph_converter.py).

``nodes`` are the hosts; every event is a link whose ``source`` equals its
``destination`` (its host) with ``description`` (the event text), ``clock`` and
``timestamp`` (the host's own counter). The other links are the messages
between hosts, which the clocks already encode, so only the events are read.
They become events exactly as a ShiViz log does (see ``shiviz``), checked the
same way; the input line of each event is the line of its ``description``.
"""

from __future__ import annotations

import json
from pathlib import PurePath

import orjson

from raceway_core.formats import Converted, ImportOptions, register
from raceway_core.formats._common import LineFinder, load_json
from raceway_core.formats._shiviz_log import Entry
from raceway_core.formats.shiviz import events_of
from raceway_core.loading.reading import Problem


class ShivizGraphImporter:
    name = "shiviz-graph"

    def sniff(self, head: str) -> bool:
        return '"nodes"' in head and '"links"' in head and '"clock"' in head

    def convert(self, text: str, options: ImportOptions) -> Converted:
        doc = load_json(text, "ShiViz graph")
        if not isinstance(doc, dict) or not isinstance(doc.get("links"), list):
            raise ValueError("expected an object with a 'links' list")
        lines = LineFinder(text, ("description",))
        entries, problems = [], []
        for link in doc["links"]:
            if not isinstance(link, dict):
                problems.append(Problem(lines.line, None, "link is not an object", orjson.dumps(link).decode()))
                continue
            line = lines.find(link.get("description"))
            if link.get("source") != link.get("destination"):
                continue  # a message: the receiving event's clock already holds it
            raw = orjson.dumps(link).decode()
            entries.append(Entry(line, str(link.get("source") or ""), json.dumps(link.get("clock")),
                                 str(link.get("description") or ""), {}, raw))
        stem = PurePath(options.source).stem or "shiviz"
        conv = events_of(stem, [(stem, entries)], options, self.name)
        conv.problems[:0] = problems
        return conv


register(ShivizGraphImporter())
