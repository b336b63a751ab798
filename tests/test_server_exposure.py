"""Hardening of what a server exposes and how it fails (issue 15, items 9-11), against
real `raceway-tui serve` processes in both modes: query parameters validated and
clamped, a 500 never breaking its keep-alive connection, no CORS unless allowed,
JSON-only POSTs, keys from the environment or a file, error bodies that leak nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from helpers import event
from server_proc import ROOT, ServerProcess


def post(http, events, **kw):
    headers = {"content-type": "application/json", **kw.pop("headers", {})}
    return http.post("/events", content=json.dumps({"events": events}), headers=headers, **kw)


@pytest.fixture(scope="module", params=["front", "one-process"])
def server(request):
    with ServerProcess(mode=request.param) as s:
        with httpx.Client(base_url=s.url, timeout=60) as http:
            assert post(http, [event(i, trace=f"t{i % 3}") for i in range(9)]).status_code == 200
        yield s


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


HUGE = [10**18, 2**63, 10**30, -(10**18)]


@pytest.mark.parametrize("value", HUGE)
def test_huge_page_numbers_are_clamped_not_a_500(http, value):
    r = http.get("/api/traces", params={"page": value, "page_size": 5})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["total_traces"] == 3 and data["page_size"] == 5
    assert data["traces"] == ([] if value > 0 else data["traces"])
    if value < 0:
        assert data["page"] == 1 and len(data["traces"]) == 3


@pytest.mark.parametrize("name", ["page_size", "limit"])
@pytest.mark.parametrize("value", [*HUGE, "1e3", "nan", " 7"])
def test_size_parameters_are_clamped_everywhere(http, name, value):
    path = "/api/traces" if name == "page_size" else "/api/events"
    r = http.get(path, params={name: value})
    assert r.status_code == 200, r.text


def test_after_an_error_the_same_keep_alive_connection_still_answers(http):
    # the same connection (httpx keeps it alive): each error answer is followed by a good one
    for _ in range(15):
        http.get("/api/traces", params={"page": 2**63 - 1, "page_size": 10_000})  # was a 500
        good = http.get("/api/traces")
        assert good.status_code == 200 and good.json()["data"]["total_traces"] == 3
        bad = http.get("/api/events", params={"after": "x" * 50})
        assert bad.status_code == 400
        good = http.get("/api/traces")
        assert good.status_code == 200 and good.json()["data"]["total_traces"] == 3


def test_no_cors_headers_by_default(http):
    r = http.get("/api/traces", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200
    assert not any(k.lower().startswith("access-control-") for k in r.headers)
    pre = http.options("/events", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None])
def test_post_events_needs_a_json_content_type(http, ctype):
    body = json.dumps({"events": [event("ctype-" + str(ctype), trace="ctype")]})
    headers = {} if ctype is None else {"content-type": ctype}
    for extra in ({}, {"Origin": "http://evil.example"}):
        r = http.post("/events", content=body, headers={**headers, **extra})
        assert r.status_code == 415, r.text
        assert "application/json" in r.json()["error"]
    assert http.get("/api/traces/ctype").status_code in (400, 404)  # nothing stored (400: not a UUID, as the original)


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_are_accepted(http, ctype):
    r = http.post("/events", content=json.dumps({"events": [event("ok-" + ctype, trace="ok-ct")]}),
                  headers={"content-type": ctype})
    assert r.status_code == 200, r.text


def test_cors_allow_list(server_mode):
    with ServerProcess(mode=server_mode, extra=("--cors-origin", "http://ui.example")) as s, \
            httpx.Client(base_url=s.url, timeout=60) as http:
        r = http.get("/api/traces", headers={"Origin": "http://ui.example"})
        assert r.headers["access-control-allow-origin"] == "http://ui.example"
        r = http.get("/api/traces", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        pre = http.options("/events", headers={"Origin": "http://ui.example",
                                               "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://ui.example"


def _no_leak(text: str) -> None:
    assert "SELECT" not in text.upper() and "Traceback" not in text
    assert str(ROOT) not in text and "/site-packages/" not in text and ".py" not in text


def test_keys_with_trailing_unicode_whitespace_do_not_pass(server_mode):
    with ServerProcess(mode=server_mode, api_keys=("s3cret",)) as s, httpx.Client(base_url=s.url, timeout=60) as http:
        good = {"X-Raceway-Key": "s3cret", "content-type": "application/json"}
        assert http.get("/api/traces", headers=good).status_code == 200
        body = json.dumps({"events": [event("ws", trace="ws")]})
        assert http.post("/events", content=body, headers=good).status_code == 200
        # as latin-1 bytes (how a header is read) and as UTF-8: NBSP, NEL, a separator, em space
        for raw in (b"s3cret\xa0", b"s3cret\x85", b"s3cret\x1f", b"\xa0s3cret", "s3cret\u2003".encode(),
                    "s3cret\u3000".encode(), "s3cret\u00a0".encode()):
            for name, value in ((b"X-Raceway-Key", raw), (b"Authorization", b"Bearer " + raw)):
                r = http.get("/api/traces", headers=[(name, value)])
                assert r.status_code == 401, raw
                r = http.post("/events", content=body, headers=[(name, value), (b"content-type", b"application/json")])
                assert r.status_code == 401, raw


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode(errors="replace")


@pytest.mark.parametrize("how", ["env", "file"])
def test_api_key_from_the_environment_or_a_file_stays_off_the_command_line(server_mode, tmp_path, how):
    key = "k3y-from-" + how
    s = ServerProcess(mode=server_mode)
    if how == "file":
        path = tmp_path / "key"
        path.write_text(key + "\n")
        os.chmod(path, 0o600)
        s.args += ["--api-key-file", str(path)]
    env_before = os.environ.get("RACEWAY_API_KEY")
    # ServerProcess drops RACEWAY_API_KEY from the environment; pass it through here
    s.env = {"RACEWAY_API_KEY": key} if how == "env" else {}
    with s, httpx.Client(base_url=s.url, timeout=60) as http:
        assert http.get("/api/traces").status_code == 401
        assert http.get("/api/traces", headers={"X-Raceway-Key": key}).status_code == 200
        assert post(http, [event("k", trace="k")], headers={"X-Raceway-Key": key}).status_code == 200
        pids = [s.proc.pid] + _children(s.proc.pid)
        assert len(pids) == (2 if server_mode == "front" else 1)
        for pid in pids:
            assert key not in _cmdline(pid)
    assert os.environ.get("RACEWAY_API_KEY") == env_before


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_serve_help_names_the_key_environment_variable_and_file():
    out = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "serve", "--help"], capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": "200"}, cwd=ROOT).stdout
    assert "RACEWAY_API_KEY" in out and "--api-key-file" in out and "--cors-origin" in out
    assert re.search(r"/proc/\S*cmdline|visible to other users", out)


class InProcessServer:
    """The one-process server on a real socket, in this process, over a store the
    test can break for real (a dropped table): a genuine internal error."""

    def __init__(self, store) -> None:
        import socket
        import threading

        import uvicorn

        from raceway_core.server import ServerConfig, create_app

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        app = create_app(store, ServerConfig())
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        import time

        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def test_a_real_internal_error_is_a_short_500_with_a_request_id_logged_and_the_connection_lives(caplog):
    import logging

    from raceway_core.store import Store

    store = Store()
    try:
        with InProcessServer(store) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
            assert post(http, [event(1, trace="t")]).status_code == 200
            store.sql("ALTER TABLE events RENAME TO events_gone")  # every read of events now fails in DuckDB
            caplog.set_level(logging.ERROR, logger="raceway.server")
            for _ in range(5):
                r = http.get("/api/traces")
                assert r.status_code == 500
                msg = r.json()["error"]
                rid = r.headers["x-request-id"]
                assert rid in msg and len(msg) < 120
                assert "events" not in msg and "Catalog" not in msg and "/" not in msg.replace("request id", "")
                assert any(rid in rec.getMessage() and "events" in rec.getMessage() for rec in caplog.records)
                assert http.get("/health").status_code == 500  # health reads the counts too
                ok = http.get("/openapi.json")  # the same keep-alive connection still answers
                assert ok.status_code == 200
            store.sql("ALTER TABLE events_gone RENAME TO events")
            assert http.get("/api/traces").json()["data"]["total_traces"] == 1
    finally:
        store.close()
