"""An in-memory load of a plain JSONL file keeps no copy of its lines (events.raw is
NULL, raw_at says where the line is): the text is read back from the file, byte for
byte, by the detail view, search and export; a file changed or gone since the load
gives a clear error, never another line. Other inputs keep their text as before."""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest

from helpers import event, raw_texts
from raceway_core import browse, export, rawtext
from raceway_core.session import TraceSession
from raceway_core.store import Store

KINDS = [
    {"HttpRequest": {"method": "GET", "url": "/a/\u00e9t\u00e9 \"q\"", "headers": {"x-needle": "Hidden-Tok"}}},
    {"DatabaseQuery": {"query": "SELECT 1", "database": "db"}},
    {"DatabaseResult": {"rows_affected": 7}},
    {"DatabaseResult": {"rows_affected": None}},
    {"Error": {"error_type": "Boom", "message": "it broke \\ here"}},
    {"Error": {"message": "no type"}},
    {"Custom": {"name": "tick", "data": {"n": 1}}},
    {"MemoryFence": {"ordering": "SeqCst"}},
    {"FunctionCall": {"function_name": "f", "file": "a.py", "line": 3}},
]


def _lines() -> list[str]:
    out = []
    for i, kind in enumerate(KINDS * 2):
        ev = event(i, thread=f"t-{i % 3} \u00fcn\u00efcode", kind=kind)
        ev["metadata"]["environment"] = None if i == 4 else f"env-{i % 2}"
        out.append(json.dumps(ev, ensure_ascii=bool(i % 2), separators=(",", ":") if i % 3 else None))
    out[5] = "  " + out[5] + " \t"  # blanks around the record are part of its line
    return out


def _write(path, lines, end="\n"):
    path.write_bytes("".join(x + end for x in lines).encode())
    return path


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_the_line_comes_back_from_the_file_byte_for_byte(tmp_path, end):
    lines = _lines()
    path = _write(tmp_path / "in.jsonl", ["", *lines[:4], "not json", *lines[4:]], end)
    s = TraceSession.open([path])
    try:
        lazy = s.store.sql("SELECT count(*) FILTER (WHERE raw IS NULL AND raw_at IS NOT NULL) AS n FROM events")
        assert lazy["n"][0].as_py() == len(lines)  # no text held in the store
        for i, line in enumerate(lines):
            rec = s.event(f"ev-{i}")
            assert rec["raw"] == line and "raw_error" not in rec
        assert raw_texts(s.store) == lines
        assert browse.event_record(s.store, "ev-3")["raw"] == lines[3]
    finally:
        s.store.close()


def _note_reference(lines: list[str]) -> dict[str, str | None]:
    """browse's note by hand, from the parsed lines."""
    out = {}
    for line in lines:
        ev = json.loads(line)
        (k, f), = ev["kind"].items()
        out[ev["id"]] = {
            "HttpRequest": lambda: f.get("url"), "DatabaseQuery": lambda: f.get("query"),
            "DatabaseResult": lambda: "rows " + (str(f["rows_affected"]) if f.get("rows_affected") is not None else "?"),
            "Error": lambda: (f.get("error_type") or "Error") + ": " + (f.get("message") or ""),
            "Custom": lambda: f.get("name"), "MemoryFence": lambda: f.get("ordering"),
        }.get(k, lambda: None)()
    return out


def test_note_and_environment_match_the_text(tmp_path):
    lines = _lines()
    path = _write(tmp_path / "in.jsonl", lines)
    with Store() as mem, Store(tmp_path / "s.duckdb") as disk:  # lazy / text kept
        mem.load([path])
        disk.load([path])
        q = (f"SELECT e.id, {browse.NOTE} AS note, {rawtext.environment('e')} AS env, "
             f"{rawtext.custom_name('e')} AS custom FROM events e ORDER BY seq")
        got, kept = mem.sql(q).to_pylist(), disk.sql(q).to_pylist()
        assert disk.sql("SELECT count(*) AS n FROM events WHERE raw IS NULL")["n"][0].as_py() == 0
    assert got == kept
    ref = _note_reference(lines)
    assert {r["id"]: r["note"] for r in got} == ref
    assert [r["env"] for r in got] == [json.loads(x)["metadata"]["environment"] for x in lines]
    assert [r["custom"] for r in got if r["custom"] is not None] == ["tick", "tick"]


def test_search_finds_text_only_in_the_line(tmp_path):
    lines = _lines()
    batch = json.dumps({"events": [event("b1", kind={"Custom": {"name": "x", "data": "hidden-tok too"}})]})
    reject = '{"id": "r", "note": "hidden-tok in a reject"}'
    path = _write(tmp_path / "in.jsonl", [*lines, batch, reject])
    s = TraceSession.open([path])
    try:
        tl = browse.Timeline(s)
        for q in ("HIDDEN-TOK", "x-needle", "\u00fcn\u00efcode", "\\u00fcn", "nowhere-at-all", "rows"):
            want = sum(q.lower() in x.lower() for x in [*lines, batch])  # the reject is no event
            assert tl.search(q).matches == want, q
        assert tl.search("hidden-tok").matches == 3  # two lines + the batch's event (text kept)
    finally:
        s.store.close()


def test_export_round_trips(tmp_path):
    lines = _lines()
    path = _write(tmp_path / "in.jsonl", lines)
    s = TraceSession.open([path])
    try:
        buf = io.BytesIO()
        assert export.write_trace_json(s, None, buf, summary=False) == len(lines)
    finally:
        s.store.close()
    doc = json.loads(buf.getvalue())
    assert doc["events"] == [json.loads(x) for x in lines]
    (tmp_path / "out.json").write_bytes(buf.getvalue())
    with Store() as again:
        again.load([tmp_path / "out.json"])
        assert [json.loads(x) for x in raw_texts(again)] == [json.loads(x) for x in lines]


@pytest.mark.parametrize("change", ["rewrite_and_grow", "same_size", "touch", "remove"])
def test_a_file_changed_after_the_load_gives_a_clear_error(tmp_path, change):
    lines = _lines()
    path = _write(tmp_path / "in.jsonl", lines)
    s = TraceSession.open([path])
    try:
        st = path.stat()
        if change == "rewrite_and_grow":  # longer, but its loaded part is no longer what was loaded
            path.write_bytes(path.read_bytes().replace(b"ev-1", b"ev-X") + (lines[0] + "\n").encode())
        elif change == "same_size":  # other lines, same size: the modification time tells
            path.write_bytes(path.read_bytes().replace(b"ev-1", b"ev-X"))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        elif change == "touch":
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        else:
            path.unlink()
        rec = s.event("ev-1")
        assert rec["raw"] is None and str(path) in rec["raw_error"]
        assert ("changed since it was loaded" if change != "remove" else "cannot read") in rec["raw_error"]
        assert rec["kind"] == "Custom" or rec["id"] == "ev-1"  # the stored fields are still there
        with pytest.raises(rawtext.RawUnavailable, match="load the file again"):
            export.write_trace_json(s, None, io.BytesIO(), summary=False)
        with pytest.raises(rawtext.RawUnavailable):
            browse.Timeline(s).search("x-needle")
    finally:
        s.store.close()


def test_other_inputs_keep_their_text(tmp_path):
    lines = _lines()
    plain = _write(tmp_path / "a.jsonl", lines)
    gz = tmp_path / "b.jsonl.gz"
    gz.write_bytes(gzip.compress("".join(x.replace("ev-", "gz-") + "\n" for x in lines).encode()))
    doc = tmp_path / "c.json"
    doc.write_text(json.dumps({"events": [json.loads(x.replace("ev-", "doc-")) for x in lines]}, indent=2))
    with Store() as store:
        store.load([plain, gz, doc])
        r = store.sql("SELECT source, count(raw) AS kept, count(raw_at) AS lazy FROM events GROUP BY 1 ORDER BY 1")
        assert r.to_pylist() == [{"source": str(plain), "kept": 0, "lazy": len(lines)},
                                 {"source": str(gz), "kept": len(lines), "lazy": 0},
                                 {"source": str(doc), "kept": len(lines), "lazy": 0}]
    with Store(tmp_path / "s.duckdb") as disk:  # a file store keeps the text (zstd)
        disk.load([plain])
        assert disk.sql("SELECT count(raw_at) AS n FROM events")["n"][0].as_py() == 0


def test_the_detail_panel_says_why_the_raw_json_is_missing(tmp_path):
    from rich.console import Console

    from raceway_tui.widgets.detail import render_event

    path = _write(tmp_path / "in.jsonl", _lines())
    s = TraceSession.open([path])
    try:
        console = Console(width=300, record=True, color_system=None)
        console.print(render_event(s.event("ev-2")))
        assert '"rows_affected": 7' in console.export_text()
        path.unlink()
        console.print(render_event(s.event("ev-2")))
        out = console.export_text()
        assert "cannot read" in out and "load the file again" in out and "DatabaseResult" in out
    finally:
        s.store.close()


def test_a_file_being_written_to_keeps_its_loaded_lines_readable(tmp_path):
    """A program still writing its trace: the file grows after the load. The loaded lines
    are where they were (checked: the CRC of the loaded part), so the detail panel, export
    and search keep their raw JSON; a last line that had no newline stays as loaded."""
    lines = _lines()
    path = tmp_path / "in.jsonl"
    path.write_bytes(("\n".join(lines[:5])).encode())  # no final newline yet
    s = TraceSession.open([path])
    try:
        st = path.stat()
        with open(path, "ab") as f:
            f.write(b"junk-on-the-last-line\n" + "".join(x + "\n" for x in lines[5:]).encode())
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert s.store.counts()["events"] == 5
        assert [s.event(f"ev-{i}")["raw"] for i in range(5)] == lines[:5]
        assert raw_texts(s.store) == lines[:5]
        assert s.event("ev-4")["raw"] == lines[4]  # not lines[4] + "junk-on-the-last-line"
        assert browse.Timeline(s).search("junk-on-the").matches == 0  # not in any loaded line
        out = io.BytesIO()
        export.write_trace_json(s, None, out, summary=False)
        assert [json.dumps(e, separators=(",", ":")) for e in json.loads(out.getvalue())["events"]] \
            == [json.dumps(json.loads(x), separators=(",", ":")) for x in lines[:5]]
    finally:
        s.store.close()


def test_a_reload_of_a_grown_file_keeps_the_earlier_lines_readable(tmp_path):
    lines = _lines()
    path = _write(tmp_path / "in.jsonl", lines[:5])
    s = TraceSession.open([path])
    try:
        with open(path, "a") as f:  # a trace being written: lines appended
            f.write("".join(x + "\n" for x in lines[5:]))
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        s.load([path])  # the app's reload: earlier lines are duplicates, dropped
        assert s.store.counts()["events"] == len(lines)
        assert raw_texts(s.store) == lines
        assert s.event("ev-1")["raw"] == lines[1]
        # rewritten, not grown: the earlier load's lines are no longer known to be there
        path.write_bytes(path.read_bytes().replace(b"ev-1", b"ev-Y") + (lines[0] + "\n").encode())
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        s.load([path])
        assert "changed since it was loaded" in s.event("ev-1")["raw_error"]
    finally:
        s.store.close()
