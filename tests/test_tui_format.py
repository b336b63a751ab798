"""How the explorer words and draws values (pure functions)."""

from __future__ import annotations

from raceway_tui import format as fmt
from raceway_tui.widgets.timeline import rel_time, short_label


def test_clock_entries_put_the_focus_first_then_the_largest_and_count_the_rest():
    clock = {f"ctx{i}": i for i in range(1, 30_001)}  # a late event in a big store
    entries, hidden = fmt.clock_entries(clock, ["ctx7", "ctx3", "missing"], limit=4)
    assert entries == [("ctx7", 7), ("ctx3", 3), ("ctx30000", 30000), ("ctx29999", 29999)]
    assert hidden == 29_996
    assert fmt.clock_text(clock, ["ctx7"], limit=2) == "ctx7: 7, ctx30000: 30000  (+29,998 more components)"
    assert fmt.clock_entries({}, ["a"]) == ([], 0) and fmt.clock_text(None) == "∅"
    assert fmt.clock_text({"a": 1, "b": 2}) == "b: 2, a: 1"  # all of a small clock, nothing hidden


def test_event_summaries():
    sc = {"kind": "StateChange", "access": "Write", "variable": "alice.balance", "old_value": "1000",
          "new_value": "900"}
    assert fmt.summary(sc) == "Write alice.balance 1000 → 900"
    assert fmt.summary(sc | {"access": "Read", "new_value": '"abc"'}) == "Read alice.balance = abc"
    assert fmt.summary({"kind": "HttpRequest", "http_method": "POST", "note": "/pay"}) == "POST /pay"
    assert fmt.summary({"kind": "LockAcquire", "lock_id": "L"}) == "L"
    assert fmt.summary({"kind": "Unknown(Foo)", "note": '{"Foo": 1}'}) == '{"Foo": 1}'
    assert fmt.value("x" * 40, limit=10) == "x" * 9 + "…" and fmt.value(None) == "∅"
    assert fmt.access_letter("AtomicRMW") == "W" and fmt.access_letter("AtomicRead") == "R"


def test_bars_times_and_labels():
    assert fmt.bar(0.5, 4) == "██  " and fmt.bar(1.5, 2) == "██" and fmt.bar(0.0, 3) == "   "
    assert fmt.bar(0.25 + 1 / 32, 4) == "█▏  "  # 1.125 cells: one full and one eighth
    assert rel_time(1_500_000, 0) == "+1.500ms" and rel_time(2_500_000_000, 0) == "+2.500s"
    assert rel_time(None, 0) == ""
    assert short_label("svc/main") == "svc/main"
    label = short_label("python-service-a/python-10053-a45fc549")
    assert label.startswith("python-service-a/") and label.endswith("5fc549") and "…" in label
    assert fmt.location("/srv/app/services/x/server.py:305") == "x/server.py:305"


def test_counts_read_singular_and_plural():
    assert fmt.count(1, "trace") == "1 trace" and fmt.count(2, "trace") == "2 traces"
    assert fmt.count(0, "racing pair") == "0 racing pairs" and fmt.count(1, "racing pair") == "1 racing pair"
    assert fmt.count(1, "anomaly") == "1 anomaly" and fmt.count(1_000, "anomaly") == "1,000 anomalies"
    assert fmt.count(1, "match") == "1 match" and fmt.count(5, "access") == "5 accesses"


def test_times_an_hour_after_the_start_read_as_wall_clock():
    import datetime as dt

    start = int(dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    assert rel_time(start + 3_599_000_000_000, start) == "+3599.000s"  # 59 min 59 s: still relative
    later = start + (7 * 3600 + 61) * 1_000_000_000 + 250_000_000  # old and new traces of a live server
    assert rel_time(later, start) == "19:01:01.250"
    assert rel_time(start + 3 * 86_400_000_000_000, start) == "11-04 12:00"
