"""The example programs as a user runs them: where their events go (issue 16.3)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import httpx
import pytest
from server_proc import ROOT, ServerProcess


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run(*args, tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


def test_by_default_an_example_records_outside_the_repository(tmp_path):
    before = digest(ROOT / "sample_traces")
    r = run("examples/banking.py", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "raceway-examples" / "banking-unsafe.jsonl"
    assert f"events recorded in {out}" in r.stdout and out.stat().st_size > 0
    assert digest(ROOT / "sample_traces") == before


@pytest.mark.slow
def test_distributed_orders_with_an_endpoint_sends_every_service_and_writes_nothing(tmp_path):
    before = digest(ROOT / "sample_traces")
    with ServerProcess() as server:
        r = run("examples/distributed_orders.py", "--endpoint", server.url, tmp_path=tmp_path)
        assert r.returncode == 0, r.stderr
        traces = httpx.get(server.url + "/api/traces", params={"page_size": 100}, timeout=60).json()["data"]["traces"]
    services = {s for t in traces for s in t["services"]}
    assert services == {"frontend", "gateway", "orders", "payments", "inventory"}
    assert sum(t["event_count"] for t in traces) > 50
    assert f"events sent to {server.url}" in r.stdout
    assert digest(ROOT / "sample_traces") == before
    assert not (tmp_path / "raceway-examples").exists()
