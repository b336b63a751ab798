"""The command line as a user runs it: exit codes, summaries, SQL output."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import event, ndjson, write_lines


def cli(*args, cwd=None, columns=200):
    import os

    env = dict(os.environ, COLUMNS=str(columns))
    return subprocess.run([sys.executable, "-m", "raceway_tui.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120, env=env)


def test_version_and_help():
    from raceway_core import __version__

    assert cli("--version").stdout.strip() == f"raceway-tui {__version__}"
    for sub in ([], ["load"], ["sql"], ["open"]):
        r = cli(*sub, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout


def test_load_prints_one_line_per_file_and_exit_codes(tmp_path):
    good = ndjson(tmp_path / "good.jsonl", [event(1), event(2)])
    bad = write_lines(tmp_path / "bad.jsonl", [json.dumps(event(3)), "{nope"])
    r = cli("load", good, bad, tmp_path / "missing.jsonl")
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    assert lines[0] == f"{good}: loaded 2 events"
    assert lines[1].startswith(f"{bad}: loaded 1 event, 1 rejected (line 2: not valid JSON")
    assert lines[2] == f"{tmp_path / 'missing.jsonl'}: cannot read: file not found"
    assert "Traceback" not in r.stdout + r.stderr


def test_exit_code_2_when_nothing_could_be_read(tmp_path):
    garbage = write_lines(tmp_path / "g.jsonl", ["not json", "still not"])
    r = cli("load", garbage, tmp_path / "missing.jsonl")
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr


def test_db_persists_between_commands(tmp_path):
    db = tmp_path / "s.duckdb"
    assert cli("load", ndjson(tmp_path / "a.jsonl", [event(1), event(2)]), "--db", db).returncode == 0
    r = cli("sql", "--db", db, "--query", "SELECT id FROM events ORDER BY id", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == [{"id": "ev-1"}, {"id": "ev-2"}]


def test_sql_table_and_errors(tmp_path):
    path = ndjson(tmp_path / "a.jsonl", [event(1), event(2, thread="w")])
    r = cli("sql", path, "-q", "SELECT thread_id, count(*) AS n FROM events GROUP BY 1 ORDER BY 1")
    assert r.returncode == 0 and "thread_id" in r.stdout and "main" in r.stdout and "2 rows" in r.stdout
    r = cli("sql", path, "-q", "SELECT * FROM nowhere")
    assert r.returncode == 2 and "query failed" in r.stderr and "Traceback" not in r.stderr


def test_sql_on_hb_tables_runs_the_analysis_first(tmp_path):
    """Issue 12 item 8: the README says the hb tables are queryable from `raceway-tui sql`."""
    from test_causality_rules import banking_race

    path = ndjson(tmp_path / "bank.jsonl", banking_race().events)
    r = cli("sql", path, "--json", "-q", "select count(*) AS n from HB.edges")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"n": 0}]  # program order only: no explicit edges
    r = cli("sql", path, "--json", "-q", "SELECT severity, count(*) AS n FROM hb.race_pairs GROUP BY 1 ORDER BY 1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"severity": "critical", "n": 1}, {"severity": "warning", "n": 2}]


def _banking(tmp_path):
    from test_causality_rules import banking_race

    return ndjson(tmp_path / "bank.jsonl", banking_race().events)


def test_analyze_json_document_and_fail_on(tmp_path):
    path = _banking(tmp_path)
    r = cli("analyze", path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == ["schema", "events", "traces", "rejected", "races", "critical_paths", "anomalies", "dependencies",
                         "deadlocks"]
    assert doc["deadlocks"]["count"] == 0 and doc["deadlocks"]["groups"] == []
    assert (doc["schema"], doc["events"], doc["traces"], doc["rejected"]) == ("raceway-tui/analysis/v1", 4, 2, 0)
    races = doc["races"]
    assert (races["pair_count"], races["truncated"]) == (3, False)
    first = races["pairs"][0]
    assert (first["variable"], first["severity"], first["kind"]) == ("alice.balance", "critical", "write-write")
    assert set(first["first"]) == {"event_id", "trace_id", "thread_id", "access", "location", "timestamp"}
    assert (first["first"]["event_id"], first["second"]["event_id"]) == ("w1", "w2")
    assert races["groups"][0] == {"variable": "alice.balance", "severity": "critical", "kind": "write-write",
                                  "locations": ["bank.py:21", "bank.py:21"], "count": 1, "cross_trace_count": 1,
                                  "example": ["w1", "w2"]}
    assert races["variable_scope"] == "auto"
    assert {p["trace_id"] for p in doc["critical_paths"]} == {"req-1", "req-2"}
    r = cli("analyze", path, "--json", "--max-pairs", "1")
    races = json.loads(r.stdout)["races"]
    assert (races["pair_count"], races["truncated"], len(races["pairs"]), len(races["groups"])) == (3, True, 1, 2)
    assert cli("analyze", path, "--fail-on", "critical").returncode == 1
    assert cli("analyze", path, "--fail-on", "anomalies").returncode == 0


def test_analyze_readable_report(tmp_path):
    r = cli("analyze", _banking(tmp_path))
    assert r.returncode == 0
    text = r.stdout
    assert text.index("Races: 3 racing pairs in 2 groups") < text.index("Critical paths") < text.index("Anomalies")
    assert "alice.balance" in text and "critical" in text
    assert "Jaeger path ms" not in text  # no spans in these traces


def test_analyze_report_offers_jaegers_path_for_span_traces():
    from pathlib import Path

    skew = Path("/work/shared/corpus/otel/zipkin/skew.json")
    if not skew.exists():
        import pytest

        pytest.skip("shared corpus not available")
    r = cli("analyze", skew)
    assert r.returncode == 0
    row = next(line for line in r.stdout.splitlines() if "1e223ff1f80f1c69" in line)
    # hand-checked in test_formats_span_critical_path: 3,134 + 28,136 + 66,403 + 1,738 µs
    assert row.split("│")[-2].strip() == "99.41" and "Jaeger path ms" in r.stdout


def test_analyze_words_counts_and_prints_long_names_whole_when_piped(tmp_path):
    """One trace, one race: singular words; piped (no COLUMNS), a 150-character variable and
    location are printed whole, on one line, not folded at 80 columns (16.14)."""
    import os

    from test_causality_rules import Trace, sc

    var, loc = "orders." + "x" * 143, "services/" + "deep/" * 25 + "file.py:12"
    t = Trace()
    t.ev("a", "A", sc(var, "Write", loc, 0, 1))
    t.ev("b", "B", sc(var, "Write", loc, 0, 2))
    path = ndjson(tmp_path / "one.jsonl", t.events)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "analyze", str(path)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2 events in 1 trace," in r.stdout and "Races: 1 racing pair in 1 group" in r.stdout
    assert "Critical paths (1 trace," in r.stdout
    assert any(var in line for line in r.stdout.splitlines())
    r = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "sql", str(path), "-q",
                        "SELECT DISTINCT variable, location FROM events"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert any(var in line and loc in line for line in r.stdout.splitlines()) and "1 row" in r.stdout


def test_serve_without_db_says_where_it_writes(tmp_path):
    import os
    import signal

    env = dict(os.environ, COLUMNS="300")
    p = subprocess.Popen([sys.executable, "-m", "raceway_tui.cli", "serve", "--port", "0", "--ingest-workers", "0"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    assert "listening on http://127.0.0.1:" in line
    assert f"db: {tmp_path / 'raceway.duckdb'} (the default, in the current directory" in line
