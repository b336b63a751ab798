"""`raceway-tui load/analyze --store postgresql://...` read a shared database
straight into the local DuckDB store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_proc import ServerProcess
from test_pg_store import post, sample_events

ROOT = Path(__file__).resolve().parent.parent


def cli(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RACEWAY_DATABASE_URL"} | {"COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "raceway_tui.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)


@pytest.fixture
def filled(pg_url, tmp_path):
    evs = sample_events()
    with ServerProcess(extra=("--store", pg_url), mode="one-process") as s:
        assert post(s.url, evs).status_code == 200
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in evs))
    return pg_url, path, evs


def test_load_copies_the_database_and_a_second_run_fetches_only_what_is_new(filled, tmp_path):
    url, _, evs = filled
    db = tmp_path / "local.duckdb"
    r = cli("load", "--store", url, "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert f": {len(evs)} new events" in r.stdout
    r = cli("load", "--store", url, "--db", str(db))
    assert r.returncode == 0 and ": 0 new events" in r.stdout, r.stdout + r.stderr
    r = cli("sql", "--db", str(db), "--json", "-q", "SELECT count(*) AS n, count(DISTINCT id) AS d FROM events")
    assert json.loads(r.stdout) == [{"n": len(evs), "d": len(evs)}]


def test_analyze_from_the_database_equals_analyze_of_the_same_events_from_a_file(filled):
    url, path, _ = filled
    a = cli("analyze", "--store", url, "--json")
    b = cli("analyze", str(path), "--json")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert da["races"]["pair_count"] > 0 and da["events"] == db["events"] > 0
    assert da == db


def test_a_database_without_raceway_tables_is_named(pg_url):
    r = cli("load", "--store", pg_url)
    assert r.returncode == 2 and "holds no raceway tables" in r.stderr
