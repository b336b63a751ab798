"""`raceway-tui export` and `open --pane`, run as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from raceway_core.store import Store

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"
SLOW = ROOT / "sample_traces" / "slow-api.jsonl"
T1 = "3fd52b05-19b7-48c6-a63c-6b785db7f0c9"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "raceway_tui.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_export_a_trace_and_load_it_back(tmp_path):
    out = tmp_path / "t1.json"
    r = cli("export", ORDERS, "--what", "trace", "--trace", "3fd52b05", "-o", out)
    assert r.returncode == 0, r.stderr
    assert f"wrote 62 events to {out}" in r.stderr
    r = cli("load", out)
    assert r.returncode == 0 and "loaded 62 events" in r.stdout, r.stdout + r.stderr
    with Store() as store:
        store.load([out])
        assert store.sql("SELECT DISTINCT trace_id FROM events")["trace_id"].to_pylist() == [T1]


def test_export_to_stdout_keeps_it_clean(tmp_path):
    r = cli("export", ORDERS, "--what", "events", "-t", T1, "-o", "-")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))  # the load summary went to stderr
    assert len(rows) == 62 and {row["trace_id"] for row in rows} == {T1}
    r = cli("export", SLOW, "--what", "anomalies", "-o", "-")
    assert r.returncode == 0 and r.stdout.startswith("# Anomalies: all traces")
    assert "- **Total anomalies:** 2" in r.stdout


def test_export_from_a_db_with_formats(tmp_path):
    db = tmp_path / "s.duckdb"
    assert cli("load", ORDERS, "--db", db).returncode == 0
    r = cli("export", "--db", db, "--what", "critical", "-t", T1, "-f", "json", "-o", "-")
    assert r.returncode == 0, r.stderr
    steps = json.loads(r.stdout)
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1)) and steps[0]["id"]


def test_export_errors_are_clear(tmp_path):
    r = cli("export", ORDERS, "--what", "critical", "-o", tmp_path / "x.md")
    assert r.returncode == 2 and "name it with --trace" in r.stderr and not (tmp_path / "x.md").exists()
    r = cli("export", ORDERS, "--what", "events", "-f", "md", "-o", "-")
    assert r.returncode == 2 and "cannot export events as md: as csv or json" in r.stderr
    r = cli("export", ORDERS, "--what", "trace", "-t", "nope", "-o", tmp_path / "y.json")
    assert r.returncode == 2 and "no trace with id 'nope'" in r.stderr
    r = cli("export", ORDERS, "--what", "trace", "-o", tmp_path / "missing-dir" / "z.json")
    assert r.returncode == 2 and "cannot write" in r.stderr


def test_open_pane_names():
    from raceway_tui.cli import pane_id

    assert pane_id("races") == "races" and pane_id("Races") == "races" and pane_id("3") == "races"
    assert pane_id("0") == "dashboard" and pane_id("critical path") == "critical"
    r = cli("open", ORDERS, "--pane", "nope")
    assert r.returncode == 2 and "unknown --pane 'nope'" in r.stderr and "dashboard, timeline" in r.stderr


def test_export_from_a_server_and_the_originals_form(tmp_path):
    """--what with --server pulls the server's events first; without --what and local data
    it stays the original's `export` (the server's answer, unchanged)."""
    import os

    import httpx
    from server_proc import ServerProcess

    with ServerProcess(mode="one-process", api_keys=("k1",)) as s:
        events = [json.loads(line) for line in ORDERS.read_text().splitlines() if line.strip()]
        r = httpx.post(s.url + "/events", content=json.dumps({"events": events}), timeout=60,
                       headers={"Authorization": "Bearer k1", "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        env = {k: v for k, v in os.environ.items() if k not in ("RACEWAY_API_KEY", "RACEWAY_SERVER")}
        env["RACEWAY_API_KEY"] = "k1"

        def run(*args):
            return subprocess.run([sys.executable, "-m", "raceway_tui.cli", *map(str, args)], capture_output=True,
                                  text=True, timeout=120, env=env)

        r = run("export", "--server", s.url, "--what", "events", "-t", "3fd52b05", "-o", "-")
        assert r.returncode == 0, r.stderr
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        assert [row["id"] for row in rows] == [e["id"] for e in events if e["trace_id"] == T1]
        out = tmp_path / "answer.json"
        r = run("export", "--server", s.url, "-t", T1, "-o", out)
        assert r.returncode == 0, r.stderr
        doc = json.loads(out.read_text())
        assert doc["success"] is True and len(doc["data"]["events"]) == 62
