"""Detection picks the reading that reads the file, and says so (issue 16.7)."""

from __future__ import annotations

import json

from helpers import event
from raceway_core.store import Store

LOG4J = "\n".join(
    f"[2013-05-24 23:28:00,{i:03d} app.Main] INFO step {i}\n{h} {{\"{h}\":{i // 2 + 1}}}"
    for i, h in enumerate(["a", "b"] * 3))


def test_a_log_whose_lines_start_with_a_bracket_is_read_as_shiviz(tmp_path):
    path = tmp_path / "run.log"
    path.write_text(LOG4J + "\n")
    with Store() as store:
        [s] = store.load([path])
    assert (s.mode, s.loaded, s.rejected) == ("shiviz", 6, 0), s.line()
    assert "read as shiviz: it reads 6 events" in s.notes[0]


def test_json_lines_with_clock_like_objects_stay_raceway(tmp_path):
    evs = [event(i, kind={"Custom": {"name": "c", "data": {"a": i}}}) for i in range(4)]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in evs) + "\n")
    doc = tmp_path / "d.json"
    doc.write_text("[\n" + ",\n".join(json.dumps(e) for e in evs) + "\n]\n")
    with Store() as store:
        a, b = store.load([path, doc])
    assert (a.mode, a.loaded) == ("ndjson", 4)
    assert (b.mode, b.loaded, b.duplicates) == ("json", 0, 4)


def test_a_layout_other_than_the_default_is_found_and_named(tmp_path):
    text = "\n".join(
        f"[INFO] [10/13/2014 04:23:20.{i:03d}] [disp-{i}] [akka://Sys/user/node{i % 2}] "
        f"{{\"node{i % 2}\" : {i // 2 + 1}}} message {i}" for i in range(6))
    path = tmp_path / "akka.log"
    path.write_text(text + "\n")
    with Store() as store:
        [s] = store.load([path])
    assert (s.mode, s.loaded, s.rejected) == ("shiviz", 6, 0), s.line()
    assert any("Akka log line" in n for n in s.notes), s.notes
