"""ShiViz / GoVector logs: hand-checked conversion, ShiViz's validation, options."""

from __future__ import annotations

import pytest
from conftest import rows

from raceway_core.formats import ImportOptions, by_name, detect
from raceway_core.formats._shiviz_log import js_to_python, read_log

TWO_HOSTS = """start
a {"a":1}
send m
a {"a":2}
init
b {"b":1}
receive m
b {"b":2, "a":2}
"""


def _event(eid, host, ts, text, clock):
    return {"id": f"two:{host}:{eid}", "trace_id": "two", "parent_id": None, "timestamp": ts,
            "kind": {"Custom": {"name": text, "data": {}}},
            "metadata": {"thread_id": host, "service_name": "two", "instance_id": host, "tags": {"event": text}},
            "causality_vector": clock, "lock_set": []}


def test_two_hosts_one_message_exact_events():
    conv = by_name("shiviz").convert(TWO_HOSTS, ImportOptions(source="two.log"))
    # default regex: event line, then "host clock"; one host per context, the log's clocks as given,
    # timestamps 1 µs apart in log order
    assert conv.events == [
        _event(1, "a", "1970-01-01T00:00:00.000001Z", "start", [["a", 1]]),
        _event(2, "a", "1970-01-01T00:00:00.000002Z", "send m", [["a", 2]]),
        _event(1, "b", "1970-01-01T00:00:00.000003Z", "init", [["b", 1]]),
        _event(2, "b", "1970-01-01T00:00:00.000004Z", "receive m", [["b", 2], ["a", 2]]),
    ]
    assert conv.lines == [1, 3, 5, 7]
    assert conv.problems == [] and conv.format == "shiviz"


def test_two_hosts_loaded_into_the_store(store, tmp_path):
    path = tmp_path / "two.log"
    path.write_text(TWO_HOSTS)
    [summary] = store.load([path])
    assert (summary.mode, summary.loaded, summary.rejected) == ("shiviz", 4, 0)
    got = rows(store, "SELECT id, trace_id, thread_id, kind, line, clock, ts_ns FROM events ORDER BY seq")
    assert [(r["id"], r["thread_id"], r["line"], r["ts_ns"]) for r in got] == [
        ("two:a:1", "a", 1, 1000), ("two:a:2", "a", 3, 2000), ("two:b:1", "b", 5, 3000), ("two:b:2", "b", 7, 4000)]
    assert got[3]["clock"] == [{"c": "b", "n": 2}, {"c": "a", "n": 2}]
    assert {r["trace_id"] for r in got} == {"two"}


def test_upload_form_escaped_quotes_and_zero_entries():
    text = ('(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)\n\n\n'
            'x {\\"x\\":1, \\"y\\":0}\nfirst\ny {"y":1,"x":1}\nsecond\n')
    conv = by_name("shiviz").convert(text, ImportOptions(source="up.log"))
    assert [(e["id"], e["kind"]["Custom"]["name"], e["causality_vector"]) for e in conv.events] == [
        ("up:x:1", "first", [["x", 1]]),  # the zero entry is dropped, as ShiViz does
        ("up:y:1", "second", [["y", 1], ["x", 1]]),
    ]
    assert conv.lines == [4, 6]
    assert "upload form" in conv.notes[0]


@pytest.mark.parametrize("clock_line, reason", [
    ('a {"a":1', "host 'a': clock is not JSON"),
    ('a {"b":1}', "host 'a': clock has no entry for its own host 'a'"),
    ('a {"a":0}', "host 'a': own clock entry must start at 1, got 0"),
    ('a {"a":1.5}', "host 'a': clock value for host 'a' must be a non-negative integer, got 1.5"),
    ('a ["a",1]', "host 'a': clock must be a JSON object"),
    ('a {"a":1,"zz":1}', "host 'a': clock names host 'zz', which has no events in this execution"),
    ('a {"a":1,"b":7}', "host 'a': clock names b:7 but host 'b' logs only up to 1"),
])
def test_invalid_clock_is_a_reject_with_its_reason(clock_line, reason):
    text = f"bad\n{clock_line}\nok\nb {{\"b\":1}}\n"
    any_clock = r"(?<event>.*)\n(?<host>\w*) (?<clock>.*)"  # as facebook.log's: any text is a clock
    conv = by_name("shiviz").convert(text, ImportOptions(source="v.log", regex=any_clock))
    assert [e["id"] for e in conv.events] == ["v:b:1"]
    [p] = conv.problems
    assert (p.line, p.raw) == (1, f"bad\n{clock_line}")
    assert p.reason.startswith(reason), p.reason


def test_own_clock_must_run_one_to_n():
    text = 'e1\na {"a":1}\ne2\na {"a":1}\ne3\na {"a":3}\ne4\na {"a":4}\n'
    conv = by_name("shiviz").convert(text, ImportOptions(source="r.log"))
    assert [e["id"] for e in conv.events] == ["r:a:1", "r:a:4"]
    assert [(p.line, p.reason) for p in conv.problems] == [
        (3, "host 'a': own clock value 1 repeats (first at line 1)"),
        (5, "host 'a': own clock goes from 1 to 3 (ShiViz requires each host's own entry to run 1, 2, ..., N)"),
    ]


def test_host_out_of_clock_order_in_the_log_keeps_program_order_by_clock():
    text = 'late\na {"a":2}\nearly\na {"a":1}\n'
    conv = by_name("shiviz").convert(text, ImportOptions(source="o.log"))
    by_id = {e["id"]: e["timestamp"] for e in conv.events}
    assert by_id["o:a:1"] < by_id["o:a:2"]
    assert any("out of clock order" in n for n in conv.notes)


def test_executions_become_traces_and_validate_separately():
    text = ('=== first run ===\nx\nh {"h":1}\n=== second run ===\ny\nh {"h":1}\nz\nh {"h":2}\n')
    conv = by_name("shiviz").convert(text, ImportOptions(source="m.log"))  # delimiter detected
    assert [(e["trace_id"], e["id"]) for e in conv.events] == [
        ("m/first run", "m/first run:h:1"), ("m/second run", "m/second run:h:1"), ("m/second run", "m/second run:h:2")]
    assert conv.problems == []
    # without the delimiter the second run's clock restarts: a repeat, rejected, and the
    # delimiter lines are reported as text outside any event
    conv = by_name("shiviz").convert(text, ImportOptions(source="m.log", delimiter=""))
    assert [e["id"] for e in conv.events] == ["m:h:1", "m:h:2"]
    assert [(p.line, p.reason) for p in conv.problems] == [
        (5, "host 'h': own clock value 1 repeats (first at line 2)")]
    assert "2 non-blank lines outside any event (not matched by the parser regex; first: line 1)" in conv.notes


def test_named_groups_become_fields_and_python_syntax_is_accepted():
    text = "10 go\nh {\"h\":1}\n"
    for regex in (r"(?<ts>\d+) (?<event>.*)\n(?<host>\w*) (?<clock>.*)", r"(?P<ts>\d+) (?P<event>.*)\n(?P<host>\w*) (?P<clock>.*)"):
        [e] = by_name("shiviz").convert(text, ImportOptions(source="f.log", regex=regex)).events
        assert e["kind"] == {"Custom": {"name": "go", "data": {"ts": "10"}}}
        assert e["metadata"]["tags"] == {"event": "go", "ts": "10"}


def test_js_regex_translation():
    assert js_to_python(r"(?<a>x)(?<=y)(?<!z)\(?<no>[(?<in>]") == r"(?P<a>x)(?<=y)(?<!z)\(?<no>[(?<in>]"
    assert js_to_python(r"[^]") == r"[\s\S]"


def test_access_and_lock_mapping_and_turning_them_off():
    text = ("1 Read 7 from s.v of type i64* (ptr=ab)\nt1 {\"t1\":1}\n"
            "2 Write 8 to s.v of type i64* (ptr=ab)\nt1 {\"t1\":2}\n"
            "3 Exiting q.0x1__wt_spin_lock\nt1 {\"t1\":3}\n3 Entering q.0x1__wt_spin_unlock\nt1 {\"t1\":4}\n")
    regex = r"(?<timestamp>(\d*)) (?<event>.*)\n(?<host>\w*) (?<clock>.*)"
    kinds = [e["kind"] for e in by_name("shiviz").convert(text, ImportOptions(source="t.log", regex=regex)).events]
    assert kinds == [
        {"StateChange": {"variable": "s.v@ab", "old_value": None, "new_value": "7", "location": None,
                         "access_type": "Read"}},
        {"StateChange": {"variable": "s.v@ab", "old_value": None, "new_value": "8", "location": None,
                         "access_type": "Write"}},
        {"LockAcquire": {"lock_id": "q.0x1", "lock_type": None, "location": None}},
        {"LockRelease": {"lock_id": "q.0x1", "lock_type": None, "location": None}},
    ]
    off = ImportOptions(source="t.log", regex=regex, extra={"access_regex": "", "lock_regex": ""})
    assert {next(iter(e["kind"])) for e in by_name("shiviz").convert(text, off).events} == {"Custom"}
    custom = ImportOptions(source="t.log", regex=regex,
                           extra={"access_regex": r"^(?<access>Write) (?<value>\d+) to (?<variable>\S+)"})
    kinds = [next(iter(e["kind"])) for e in by_name("shiviz").convert(text, custom).events]
    assert kinds == ["Custom", "StateChange", "LockAcquire", "LockRelease"]


def test_bad_regex_and_no_match_are_clear_errors():
    sh = by_name("shiviz")
    with pytest.raises(ValueError, match=r"lacks the named group \(\?<clock>"):
        sh.convert("x\n", ImportOptions(regex=r"(?<event>.*) (?<host>\w+)"))
    with pytest.raises(ValueError, match="invalid parser regex"):
        sh.convert("x\n", ImportOptions(regex=r"(?<event>(.*) (?<host>\w+) (?<clock>.*)"))
    with pytest.raises(ValueError, match="no events match the parser regex .* give the log's own with --regex"):
        sh.convert("[INFO] a {\"a\": 1} started\n", ImportOptions())


def test_sniffing():
    assert detect(TWO_HOSTS).name == "shiviz"
    assert detect("[INFO] [akka://x/user/n0] {\"n0\" : 1} go\n").name == "shiviz"  # needs --regex, but is ShiViz
    assert detect('(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)\n\n').name == "shiviz"
    assert detect('{"id": "1", "trace_id": "t"}\n') is None
    assert detect('[{"id": "1"}]') is None
    assert detect("just some text\nwith lines\n") is None


def test_reading_keeps_matched_lines_and_reports_the_rest():
    log = read_log('noise\nev\nh {"h":1}\n\nmore noise\n', None, None)
    [ex] = log.executions
    assert [(e.line, e.host, e.text, e.clock) for e in ex.entries] == [(2, "h", "ev", '{"h":1}')]
    assert log.notes == ["2 non-blank lines outside any event (not matched by the parser regex; first: line 1)"]
