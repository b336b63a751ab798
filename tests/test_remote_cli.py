"""`raceway-tui traces|trace|services|service|races|hotspots|health|performance|edges|analyze|export
--server URL`, run as real processes against a real `raceway-tui serve` that needs an API key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers import event
from server_proc import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"
KEY = "cli-secret"
T1 = "3fd52b05-19b7-48c6-a63c-6b785db7f0c9"
EVIL = "[bold red]evil[/]\x1b[31m"


@pytest.fixture(scope="module")
def server():
    with ServerProcess(mode="one-process", api_keys=(KEY,)) as s:
        events = [json.loads(line) for line in ORDERS.read_text().splitlines() if line.strip()]
        odd = event(1, trace="odd-trace")
        odd["metadata"]["service_name"] = EVIL
        r = httpx.post(s.url + "/events", content=json.dumps({"events": events + [odd]}),
                       headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}, timeout=60)
        assert r.status_code == 200, r.text
        yield s


def cli(server, *args, key=KEY, env_server=False):
    env = {k: v for k, v in os.environ.items() if k not in ("RACEWAY_API_KEY", "RACEWAY_SERVER")}
    env["COLUMNS"] = "250"
    if key:
        env["RACEWAY_API_KEY"] = key
    where = [] if env_server else ["--server", server.url]
    if env_server:
        env["RACEWAY_SERVER"] = server.url
    return subprocess.run([sys.executable, "-m", "raceway_tui.cli", *args, *where], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def api(server, path, **params):
    r = httpx.get(server.url + path, params=params, headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["data"]


@pytest.mark.parametrize("args, path, params", [
    (["traces", "--page-size", "2", "--min-events", "10"], "/api/traces", {"page_size": 2, "min_events": 10}),
    (["services"], "/api/services", {}),
    (["service", "traces", "orders", "--page-size", "1"], "/api/services/orders/traces", {"page_size": 1}),
    (["service", "dependencies", "orders"], "/api/services/orders/dependencies", {}),
    (["races"], "/api/distributed/global-races", {}),
    (["hotspots"], "/api/distributed/hotspots", {}),
    (["edges"], "/api/distributed/edges", {}),
    (["performance", "--limit", "1"], "/api/performance/metrics", {"limit": 1}),
    (["trace", T1], f"/api/traces/{T1}", {}),
])
def test_json_output_is_the_servers_data(server, args, path, params):
    r = cli(server, *args, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == api(server, path, **params)


def test_health_json_lists_every_service(server):
    r = cli(server, "health", "--window", "5", "--json")
    assert r.returncode == 0, r.stderr
    assert {s["name"] for s in json.loads(r.stdout)} == {"frontend", "gateway", "inventory", "orders", "payments", EVIL}


def test_tables_show_the_data_literally(server):
    r = cli(server, "services")
    assert r.returncode == 0, r.stderr
    assert "[bold red]evil[/]\\x1b[31m" in r.stdout  # markup not applied, the escape made visible
    assert "\x1b" not in r.stdout
    rows = {cells[0]: cells[1:] for x in r.stdout.splitlines()
            if len(cells := [c.strip() for c in x.strip("│┃ ").split("│")]) == 3}
    assert rows["frontend"] == ["16", "2"] and rows["gateway"] == ["27", "2"]


@pytest.mark.parametrize("args", [["traces"], ["trace", T1, "--events", "3"], ["service", "overview", "orders"],
                                  ["service", "traces", "orders"], ["service", "dependencies", "orders"], ["races"],
                                  ["hotspots"], ["health"], ["performance"], ["edges"]])
def test_every_command_renders_a_table(server, args):
    r = cli(server, *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "error" not in r.stderr


def test_service_overview_counts(server):
    r = cli(server, "service", "overview", "gateway", "--json")
    assert json.loads(r.stdout) == {"name": "gateway", "event_count": 27, "trace_count": 2}
    r = cli(server, "service", "overview", "nobody")
    assert r.returncode == 5 and "nobody" in r.stderr


def test_exit_codes_a_script_can_test(server, tmp_path):
    assert cli(server, "services", key=None).returncode == 4  # the server needs a key
    assert cli(server, "services", key="wrong").returncode == 4
    assert cli(server, "trace", "00000000-0000-4000-8000-000000000000").returncode == 5  # no such trace
    r = cli(server, "trace", "not-a-uuid")
    assert r.returncode == 5 and "Invalid trace ID format" in r.stderr
    gone = ServerProcess.__new__(ServerProcess)
    gone.url = "http://127.0.0.1:9"  # nothing listens on the discard port
    r = cli(gone, "services")
    assert r.returncode == 3 and "cannot reach" in r.stderr
    assert cli(server, "services", env_server=True).returncode == 0  # RACEWAY_SERVER


def test_analyze_with_server_is_the_originals_analyze(server):
    r = cli(server, "analyze", "-t", T1)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == api(server, f"/api/traces/{T1}")
    r = cli(server, "analyze")
    assert json.loads(r.stdout) == api(server, "/api/analyze/global")


def test_export_writes_the_servers_answer(server, tmp_path):
    out = tmp_path / "t1.json"
    r = cli(server, "export", "-t", T1, "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_bytes())
    assert doc["success"] is True and doc["data"]["trace_id"] == T1 and len(doc["data"]["events"]) == 62
    r = cli(server, "export", "-t", "00000000-0000-4000-8000-000000000000", "-o", str(tmp_path / "none.json"))
    assert r.returncode == 5 and not (tmp_path / "none.json").exists()
