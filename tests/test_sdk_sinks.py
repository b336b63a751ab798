"""The HTTP sink on a real socket (batches, auth, retries with backoff, drops counted, never blocking
the host program) and the NDJSON file sink."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
from clockcheck import clock_problems, read_events
from eventserver import start_event_server

from raceway_core.sdk import Config, FileSink, HttpSink, RacewayClient


@pytest.fixture
def server():
    s = start_event_server()
    yield s
    s.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(client, n: int, trace: str | None = None) -> None:
    with client.trace(trace):
        for i in range(n):
            client.track_state_change("counter", i, i + 1, "Write")


def config(url: str, **kw) -> Config:
    base = dict(endpoint=url, service_name="sink-test", warm_up_http=False, flush_interval=0.05,
                retry_backoff=0.05)
    return Config(**{**base, **kw})


def test_batches_reach_the_server_with_the_api_key(server, monkeypatch, tmp_path, store):
    monkeypatch.setenv("RACEWAY_API_KEY", "s3cret")
    client = RacewayClient(config(server.url, batch_size=7))
    record(client, 30)
    assert client.flush(5)
    posts = server.accepted()
    assert all(p["path"] == "/events" for p in posts)
    assert all(p["headers"]["Authorization"] == "Bearer s3cret" for p in posts)
    assert all(len(json.loads(p["body"])["events"]) <= 7 for p in posts)
    events = server.events()
    assert [e["kind"]["StateChange"]["new_value"] for e in events] == list(range(1, 31))
    assert clock_problems(events) == []
    # What the server received is a capture the store loads (one POST body per line), nothing rejected.
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b"\n".join(p["body"] for p in posts) + b"\n")
    (summary,) = store.load([capture])
    assert (summary.loaded, summary.rejected) == (30, 0)
    client.shutdown()
    s = client.stats()
    assert (s.sent, s.dropped, s.retries) == (30, 0, 0)


def test_config_api_key_wins_over_the_environment(server, monkeypatch):
    monkeypatch.setenv("RACEWAY_API_KEY", "from-env")
    client = RacewayClient(config(server.url, api_key="from-config"))
    record(client, 1)
    client.shutdown()
    assert server.accepted()[0]["headers"]["Authorization"] == "Bearer from-config"


def test_retries_with_exponential_backoff_then_delivers(server):
    server.fail_next(503, 503)
    client = RacewayClient(config(server.url, batch_size=100, retry_backoff=0.1, max_retries=3))
    record(client, 5)
    assert client.flush(10)
    s = client.stats()
    assert (s.sent, s.dropped, s.attempts, s.retries) == (5, 0, 3, 2)
    times = [a["t"] for a in server.attempts]
    assert [a["status"] for a in server.attempts] == [503, 503, 200]
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2  # 0.1 s, then doubled
    assert len(server.events()) == 5
    client.shutdown()


def test_gives_up_after_max_retries_and_counts_the_batch(server):
    server.fail_next(500, 500, 500)
    client = RacewayClient(config(server.url, batch_size=100, max_retries=2, retry_backoff=0.01))
    record(client, 4)
    client.flush(10)
    s = client.stats()
    assert (s.attempts, s.retries, s.dropped, s.sent, s.failed_batches) == (3, 2, 4, 0, 1)
    assert "HTTP 500" in s.last_error
    record(client, 2)  # the next batch gets through: the sink keeps working
    client.flush(10)
    assert client.stats().sent == 2
    client.shutdown()


def test_client_errors_are_not_retried(server):
    server.fail_next(401)
    client = RacewayClient(config(server.url, batch_size=100))
    record(client, 3)
    client.flush(5)
    assert len(server.attempts) == 1
    assert client.dropped_events == 3
    client.shutdown()


def test_bounded_buffer_drops_new_events_without_blocking():
    sink = HttpSink(f"http://127.0.0.1:{free_port()}", batch_size=1000, flush_interval=60, max_buffer=10,
                    max_retries=0)
    for i in range(25):
        sink.submit(b'{"n": %d}' % i)
    s = sink.stats()
    assert (s.accepted, s.buffered, s.dropped) == (10, 10, 15)
    sink.close(5)  # nothing listens: the 10 buffered ones are lost too, and counted
    assert sink.stats().dropped == 25 and sink.stats().sent == 0


HOST_PROGRAM = textwrap.dedent("""
    import sys, time
    from raceway_core.sdk import Config, RacewayClient
    client = RacewayClient(Config(endpoint=sys.argv[1], service_name="host", flush_interval=0.05,
                                  max_retries=2, retry_backoff=0.05, warm_up_http=False))
    total = 0
    with client.trace():
        for i in range(200):
            client.track_state_change("x", i, i + 1, "Write")
            total += i
    print("result", total, flush=True)
    if sys.argv[2] == "shutdown":
        client.shutdown()
        print("dropped", client.dropped_events, flush=True)
    # else: no shutdown at all, the atexit hook flushes
""")


@pytest.mark.parametrize("ending", ["shutdown", "atexit"])
def test_host_program_finishes_normally_with_the_server_down(tmp_path, ending):
    prog = tmp_path / "host.py"
    prog.write_text(HOST_PROGRAM)
    r = subprocess.run([sys.executable, str(prog), f"http://127.0.0.1:{free_port()}", ending],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "result 19900" in r.stdout
    assert "Traceback" not in r.stderr
    if ending == "shutdown":
        assert "dropped 200" in r.stdout
    assert "200 events were dropped" in r.stderr  # the SDK says so on its way out


def test_unencodable_values_never_raise(server):
    client = RacewayClient(config(server.url))
    weird = {"obj": object(), "big": 2**80, "set": {1, 2}, "bytes": b"\xff\x00", (1, 2): "tuple key",
             "nested": [float("nan"), {3: 4}]}
    with client.trace():
        client.track_state_change("weird", weird, 2**100, "Write")
        client.track_function_call("f", weird)
    client.shutdown()
    events = server.events()
    assert len(events) == 2 and client.dropped_events == 0
    new = events[0]["kind"]["StateChange"]["new_value"]
    assert new in (str(2**100), 2**100)
    assert "object object" in json.dumps(events[0])


def test_file_sink_many_processes_append_whole_lines(tmp_path, store):
    out = tmp_path / "shared.jsonl"
    prog = tmp_path / "writer.py"
    prog.write_text(textwrap.dedent("""
        import sys
        from raceway_core.sdk import Config, RacewayClient
        client = RacewayClient(Config(service_name="w" + sys.argv[2], output_file=sys.argv[1], batch_size=37,
                                      flush_interval=0.01, warm_up_http=False))
        with client.trace():
            for i in range(400):
                client.track_state_change("v" + sys.argv[2], "x" * (i % 50), i, "Write")
        client.shutdown()
    """))
    procs = [subprocess.Popen([sys.executable, str(prog), str(out), str(k)]) for k in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    events = read_events(out)  # every line is one whole JSON event
    assert len(events) == 1200
    assert clock_problems(events) == []
    (summary,) = store.load([out])
    assert (summary.loaded, summary.rejected) == (1200, 0)


def test_file_sink_write_errors_are_counted(tmp_path):
    sink = FileSink(tmp_path / "x.jsonl", flush_interval=60)
    import os

    os.close(sink._fd)  # the disk goes away under the sink
    sink._fd = os.open(os.devnull, os.O_RDONLY)
    sink.submit(b"{}")
    assert sink.flush(5)
    assert sink.stats().dropped == 1 and "write" in sink.stats().last_error
    sink.close()


def test_flush_from_many_threads_while_recording(server):
    client = RacewayClient(config(server.url, batch_size=5))

    def work():
        record(client, 20)
        client.flush(5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.shutdown()
    events = server.events()
    assert len(events) == 80 and len({e["id"] for e in events}) == 80
    assert clock_problems(events) == []
