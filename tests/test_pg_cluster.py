"""Three `serve --store` processes on one database, eight clients posting to
all of them, one server SIGKILLed and restarted mid-run: every acknowledged
event is stored exactly once, and the feed of every server returns them all
exactly once."""

from __future__ import annotations

import json
import threading
import time

import httpx
import psycopg
import pytest
from server_proc import ServerProcess
from test_pg_store import svc_event, whole_feed

CLIENTS = 8
PER_CLIENT = 5000
BATCH = 100


def client_events(c: int) -> list[dict]:
    evs = []
    for i in range(PER_CLIENT):
        e = svc_event(i, f"t{c}-{i // 50}", f"2026-11-01T12:{i // 1000:02d}:{i % 60:02d}.{c:06d}+00:00")
        e["id"] = f"c{c}-{i}"
        evs.append(e)
    return evs


@pytest.mark.slow  # ~15 s of CPU, a minute on a loaded machine; test_pg_store covers two servers on one database quickly
def test_three_servers_one_killed_every_acknowledged_event_stored_once(pg_url):
    servers = [ServerProcess(extra=("--store", pg_url), mode=m) for m in ("front", "one-process", "one-process")]
    for s in servers:
        s.start()
    urls = [s.url for s in servers]
    acked: list[set[str]] = [set() for _ in range(CLIENTS)]
    failures = []  # answers that were neither an acknowledgement nor a dead server
    progress = [0]
    refused = [0]  # posts that found a server down
    lock = threading.Lock()

    def run(c: int) -> None:
        evs = client_events(c)
        with httpx.Client(timeout=30) as http:
            for k in range(0, PER_CLIENT, BATCH):
                batch = evs[k:k + BATCH]
                body = json.dumps({"events": batch})
                for attempt in range(200):  # another server when one is down
                    url = urls[(c + k // BATCH + attempt) % len(urls)]
                    try:
                        r = http.post(url + "/events", content=body, headers={"Content-Type": "application/json"})
                    except httpx.TransportError:
                        with lock:
                            refused[0] += 1
                        time.sleep(0.02)
                        continue
                    if r.status_code == 200:
                        d = r.json()
                        if d["ingested"] + d["duplicates"] != len(batch):
                            failures.append(d)
                        acked[c].update(e["id"] for e in batch)
                        break
                    if r.status_code not in (500, 503):
                        failures.append((r.status_code, r.text[:200]))
                        break
                    time.sleep(0.02)
                else:
                    failures.append(f"client {c}: batch {k} never acknowledged")
                with lock:
                    progress[0] += len(batch)

    try:
        threads = [threading.Thread(target=run, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        total = CLIENTS * PER_CLIENT
        while progress[0] < total // 3:
            time.sleep(0.01)
        victim = servers[2]
        port = int(victim.url.rsplit(":", 1)[1])
        victim.kill()  # SIGKILL mid-run: its commits in flight are lost, and were never acknowledged
        killed_at = progress[0]
        servers[2] = ServerProcess(extra=("--store", pg_url), mode="one-process", port=port).start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
        assert killed_at < total and refused[0] > 0  # the kill did happen mid-run, and was felt
        assert failures == []
        every = set().union(*acked)
        assert len(every) == total
        with psycopg.connect(pg_url) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM raceway_events")]
        assert len(ids) == len(set(ids)) == total and set(ids) == every
        for s in servers:
            fed = whole_feed(s.url, limit=5000)
            assert len(fed) == total and set(fed) == every
            assert httpx.get(s.url + "/status", timeout=30).json()["data"]["events_captured"] == total
    finally:
        for s in servers:
            s.stop()
