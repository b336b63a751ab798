"""The ingest front process: it never outlives the store's process, a front that
dies stops the server with an error, and requests it passes through come back
unchanged. (Every API test also runs against a server with a front: see the
`server_mode` fixture.)"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from helpers import event
from server_proc import ServerProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


def wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def port_free(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_front_dies_with_the_store_process_and_frees_the_port():
    srv = ServerProcess(mode="front").start()
    [front] = children(srv.proc.pid)
    assert alive(front)
    assert not port_free(srv.url)
    srv.kill()  # SIGKILL: the store's process gets no chance to stop its front
    assert wait_until(lambda: not alive(front)), "the front outlived the store's process"
    assert wait_until(lambda: port_free(srv.url)), "the port is still held"


def test_a_front_that_dies_stops_the_server_with_an_error():
    srv = ServerProcess(mode="front").start()
    try:
        [front] = children(srv.proc.pid)
        os.kill(front, signal.SIGKILL)
        code = srv.proc.wait(20)
        assert code != 0
        assert "ingest front" in "".join(srv.output) and "exited unexpectedly" in "".join(srv.output)
    finally:
        srv.kill()


def test_answers_passed_through_match_the_one_process_server():
    evs = [event(i, trace="t-pass") for i in range(5)]
    answers = []
    for mode in ("front", "one-process"):
        with ServerProcess(mode=mode) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
            assert http.post("/events", content=orjson.dumps({"events": evs}),
                             headers={"content-type": "application/json"}).json()["ingested"] == 5
            got = []
            for method, path, kw in [
                ("GET", "/api/traces/t-pass", {}),
                ("GET", "/api/traces/00000000-0000-4000-8000-000000000000", {}),
                ("GET", "/api/events?limit=2", {}),
                ("GET", "/api/traces/t-pass/audit-trail/a%2Fb", {}),
                ("DELETE", "/api/traces", {}),
                ("OPTIONS", "/events", {"headers": {"Origin": "http://x", "Access-Control-Request-Method": "POST"}}),
                ("POST", "/events", {"content": b'{"events": [', "headers": {"Origin": "http://x",
                                                                    "content-type": "application/json"}}),
            ]:
                r = http.request(method, path, **kw)
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
                if isinstance(body, dict) and isinstance(body.get("data"), dict):
                    body["data"].pop("next_cursor", None)  # names the store, which differs
                    body["data"].pop("store_id", None)
                got.append((r.status_code, r.headers.get("access-control-allow-origin"), body))
            answers.append(got)
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]][:2] == [200, 404]
