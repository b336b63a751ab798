"""The causality engine trusts the SDK's clocks, and `raceway-tui analyze --json` finds what each
sample is meant to show (README, "Sample traces")."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from clockcheck import races, read_events
from helpers import ndjson

from raceway_core.sdk import Config, MemorySink, RacewayClient
from raceway_core.session import TraceSession

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
SDK_SAMPLES = ["banking-unsafe", "banking-locked", "distributed-orders", "slow-api"]


def trust(path: Path) -> list[dict]:
    with TraceSession.open([path]) as s:
        return s.clock_trust().to_pylist()


@pytest.mark.parametrize("name", SDK_SAMPLES)
def test_engine_trusts_every_sample_and_agrees_with_the_brute_force_races(name):
    path = SAMPLES / f"{name}.jsonl"
    verdicts = trust(path)
    assert verdicts and all(v["trusted"] for v in verdicts), verdicts
    with TraceSession.open([path]) as s:
        pairs = s.report()["races"]["pairs"]
    engine = {frozenset((p["first"]["event_id"], p["second"]["event_id"])) for p in pairs}
    brute = {frozenset((r["first"]["id"], r["second"]["id"])) for r in races(read_events(path))}
    assert engine == brute


def test_the_original_sdk_clocks_are_not_trusted():
    """The contrast that shows the trust check can fail: one counter per service instance."""
    assert not any(v["trusted"] for v in trust(SAMPLES / "original-sdk-distributed.jsonl"))


def test_engine_trusts_threads_tasks_and_locks(tmp_path):
    sink = MemorySink()
    client = RacewayClient(Config(service_name="mix", warm_up_http=False), sink=sink)
    lock = threading.Lock()

    def worker(i):
        with client.tracked_lock(lock, "L"):
            client.track_state_change("shared", i, i + 1, "Write")
        client.track_state_change(f"own{i}", None, i, "Write")

    async def job(i, alock):
        async with client.tracked_lock(alock, "A"):
            client.track_state_change("ashared", i, i + 1, "Write")
        await client.track_function_async("io", {"i": i}, asyncio.sleep(0.001))

    async def main():
        alock = asyncio.Lock()
        with client.trace():
            await client.gather(*(job(i, alock) for i in range(3)))
            await asyncio.create_task(job(9, alock))

    with client.trace():
        for t in [client.spawn_thread(worker, i) for i in range(3)]:
            t.join()
    asyncio.run(main())
    path = ndjson(tmp_path / "mix.jsonl", sink.events)
    verdicts = trust(path)
    assert len(verdicts) == 2 and all(v["trusted"] for v in verdicts), verdicts
    with TraceSession.open([path]) as s:
        assert s.report()["races"]["pair_count"] == 0


def analyze(name: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "analyze", str(SAMPLES / f"{name}.jsonl"),
                        "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rejected"] == 0
    return doc


def groups(doc) -> Counter:
    return Counter({(g["variable"], g["severity"], g["kind"]): g["count"] for g in doc["races"]["groups"]})


def event_names(name: str) -> dict[str, str]:
    out = {}
    for e in read_events(SAMPLES / f"{name}.jsonl"):
        kind, body = next(iter(e["kind"].items()))
        out[e["id"]] = body.get("function_name") or body.get("variable") or kind
    return out


def test_analyze_banking():
    unsafe = analyze("banking-unsafe")
    assert groups(unsafe) == {("alice.balance", "critical", "write-write"): 1,
                              ("alice.balance", "warning", "read-write"): 2}
    assert analyze("banking-locked")["races"]["pair_count"] == 0


def test_analyze_distributed_orders():
    doc = analyze("distributed-orders")
    by_loc = Counter()
    for g in doc["races"]["groups"]:
        by_loc[(g["variable"], g["severity"], tuple(loc.split(":")[0] for loc in g["locations"]))] += g["count"]
    assert {(v, s) for v, s, _ in by_loc} == {("stock.widget", "critical"), ("stock.widget", "warning")}
    assert sum(g["count"] for g in doc["races"]["groups"] if g["severity"] == "critical") == 1
    assert doc["races"]["pair_count"] == 5
    # The cross-service pairs: the check in orders against the decrement in inventory.
    services = {e["id"]: e["metadata"]["service_name"] for e in read_events(SAMPLES / "distributed-orders.jsonl")}
    pair_services = Counter((services[p["first"]["event_id"]], services[p["second"]["event_id"]])
                            for p in doc["races"]["pairs"])
    assert pair_services == {("orders", "inventory"): 2, ("inventory", "inventory"): 3}
    deps = {(d["from"], d["to"]): d for d in doc["dependencies"]}
    assert {k: d["calls"] for k, d in deps.items()} == {("frontend", "gateway"): 3, ("gateway", "orders"): 3,
                                                         ("orders", "payments"): 3, ("payments", "inventory"): 3}
    assert deps[("orders", "payments")]["mean_ms"] >= 300 > 3 * deps[("payments", "inventory")]["mean_ms"]
    names = event_names("distributed-orders")
    for cp in doc["critical_paths"]:  # the slow dependency is on every checkout's critical path
        assert "bank.authorize" in {names[i] for i in cp["event_ids"]}
        assert cp["duration_ms"] >= 300


def test_analyze_slow_api():
    doc = analyze("slow-api")
    assert doc["races"]["pair_count"] == 0
    names = event_names("slow-api")
    anomalies = [a for a in doc["anomalies"] if a["severity"] == "critical"]
    assert {a["key"] for a in anomalies} == {"FunctionCall(recommendations.fetch)"}
    assert len(anomalies) == 2 and all(a["actual_ms"] >= 10 * a["expected_ms"] for a in anomalies)
    slow_traces = {a["trace_id"] for a in anomalies}
    paths = {cp["trace_id"]: cp for cp in doc["critical_paths"]}
    normal = statistics.median(cp["duration_ms"] for t, cp in paths.items() if t not in slow_traces)
    for t in slow_traces:
        assert "recommendations.fetch" in {names[i] for i in paths[t]["event_ids"]}
        assert paths[t]["duration_ms"] >= 8 * normal
