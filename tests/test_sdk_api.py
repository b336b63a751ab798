"""The original SDK's API ports by changing the import, and every event kind loads into the store."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import types

import pytest
from clockcheck import clock_problems, ts_ns
from helpers import ndjson

from raceway_core.sdk import (Config, FastAPIMiddleware, MemorySink, RacewayClient, create_context,
                              flask_middleware, get_context, raceway_context, set_context, track_async,
                              track_function, track_lock_acquire, track_lock_release, track_method, tracked_lock)


def make(**kw):
    sink = MemorySink()
    return RacewayClient(Config(service_name="api", warm_up_http=False, **kw), sink=sink), sink


def kind(e):
    return next(iter(e["kind"]))


def test_signatures_match_the_original_sdk():
    """Argument names and order of the original RacewayClient methods (Mode7Labs/raceway)."""
    expected = {
        "track_state_change": ["variable", "old_value", "new_value", "access_type"],
        "track_function_call": ["function_name", "args", "duration_ns"],
        "track_function": ["function_name", "args", "fn"],
        "track_http_request": ["method", "url", "headers", "body"],
        "track_http_response": ["status", "headers", "body", "duration_ms"],
        "track_lock_acquire": ["lock_id", "lock_type"],
        "track_lock_release": ["lock_id", "lock_type"],
        "propagation_headers": ["extra_headers"],
        "flush": ["timeout"],
        "shutdown": ["timeout"],
    }
    for name, params in expected.items():
        got = list(inspect.signature(getattr(RacewayClient, name)).parameters)[1:]
        assert got[:len(params)] == params, name
    fields = set(Config.__dataclass_fields__)
    assert {"endpoint", "service_name", "instance_id", "environment", "batch_size", "flush_interval", "debug",
            "api_key"} <= fields
    assert list(inspect.signature(tracked_lock).parameters) == ["client", "lock", "lock_id", "lock_type"]


def test_every_kind_loads_with_no_rejects(tmp_path, store):
    client, sink = make()
    lock = threading.Lock()

    async def child():
        client.track_state_change("a", 1, 2, "AtomicRMW")

    async def main():
        await client.gather(child())

    with client.trace():
        client.track_state_change("x", None, {"nested": [1, 2]}, "read")  # case-insensitive access type
        client.track_function_call("f", {"k": "v"}, duration_ns=1500)
        client.track_function("g", None, lambda: 42)
        client.track_http_request("post", "/orders", {"h": "1"}, {"b": 2})
        client.track_http_response(201, duration_ms=12)
        track_lock_acquire(client, "L")
        track_lock_release(client, "L", "RWLock")
        with tracked_lock(client, lock, "M"):
            pass
        client.track_error(ValueError("bad input"))
        t = client.spawn_thread(lambda: client.track_state_change("y", 0, 1, "AtomicWrite"))
        t.join()
        asyncio.run(main())
    events = sink.events
    kinds = {kind(e) for e in events}
    assert kinds == {"StateChange", "FunctionCall", "HttpRequest", "HttpResponse", "LockAcquire",
                     "LockRelease", "Error", "AsyncSpawn", "AsyncAwait"}
    assert clock_problems(events) == []
    (summary,) = store.load([ndjson(tmp_path / "all.jsonl", events)])
    assert (summary.loaded, summary.rejected) == (len(events), 0)
    rows = {r["id"]: r for r in store.sql("SELECT id, ts_ns, duration_ns, kind, access, http_method, "
                                          "http_status, clock FROM events").to_pylist()}
    for e in events:
        r = rows[e["id"]]
        assert r["ts_ns"] == ts_ns(e["timestamp"])  # all nine digits kept
        assert [[c["c"], c["n"]] for c in r["clock"]] == e["causality_vector"]
    by_kind = {r["kind"]: r for r in rows.values()}
    assert by_kind["HttpRequest"]["http_method"] == "POST"
    assert by_kind["HttpResponse"]["duration_ns"] == 12_000_000
    assert {r["access"] for r in rows.values() if r["kind"] == "StateChange"} == {"Read", "AtomicRMW", "AtomicWrite"}


def test_bad_access_type_is_an_error_and_no_event():
    client, sink = make()
    with client.trace():
        with pytest.raises(ValueError, match="access_type"):
            client.track_state_change("x", 0, 1, "Modify")
    assert sink.events == []


def test_outside_any_context_nothing_is_recorded():
    client, sink = make()
    client.track_state_change("x", 0, 1)
    client.track_function_call("f")
    assert client.track_function("g", {}, lambda: 7) == 7
    with client.tracked_lock(threading.Lock(), "L"):
        pass
    t = client.spawn_thread(lambda: None)
    t.join()
    assert sink.events == []


def test_original_style_contexts_and_decorators():
    client, sink = make()

    @track_function(client, capture_args=True, capture_result=True)
    def add(a, b):
        return a + b

    @track_async(client)
    async def later():
        return "done"

    class Account:
        def __init__(self):
            self._raceway_client = client
            self.balance = 0

        @track_method(capture_args=True)
        def deposit(self, amount):
            self.balance += amount

    @raceway_context()
    def handler():
        assert add(2, 3) == 5
        assert asyncio.run(later()) == "done"
        Account().deposit(7)

    handler()
    assert get_context() is None
    set_context(create_context("trace-x"))
    try:
        client.track_state_change("y", 0, 1)
    finally:
        set_context(None)
    events = sink.events
    calls = [e["kind"]["FunctionCall"] for e in events if kind(e) == "FunctionCall"]
    assert [c["function_name"] for c in calls] == [f"{__name__}.{add.__qualname__}", f"{__name__}.{later.__qualname__}",
                                                   "test_original_style_contexts_and_decorators.<locals>.Account.deposit"]
    assert calls[0]["args"] == {"args": {"a": "2", "b": "3"}, "result": "5"}
    assert calls[2]["args"] == {"class": "Account", "args": {"amount": "7"}}
    assert all(e["metadata"]["duration_ns"] is not None for e in events if kind(e) == "FunctionCall")
    assert calls[0]["file"].endswith("test_sdk_api.py") and calls[0]["line"] > 0
    assert events[-1]["trace_id"] == "trace-x"


def test_asyncio_lock_needs_async_with():
    client, _ = make()

    async def main():
        with client.trace():
            with pytest.raises(TypeError, match="async with"):
                with client.tracked_lock(asyncio.Lock(), "a"):
                    pass

    asyncio.run(main())


def test_flask_hooks_with_a_stand_in_flask(monkeypatch):
    """flask_middleware(client).before_request()/after_request(response), as in the original examples."""
    client, sink = make()
    request = types.SimpleNamespace(headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
                                    method="POST", path="/api/transfer")
    fake = types.ModuleType("flask")
    fake.request, fake.g = request, types.SimpleNamespace()
    monkeypatch.setitem(sys.modules, "flask", fake)
    mw = flask_middleware(client)
    mw.before_request()
    client.track_state_change("alice.balance", 1000, 900, "Write")
    response = types.SimpleNamespace(status_code=200, headers={})
    assert mw.after_request(response) is response
    assert get_context() is None
    events = sink.events
    assert [kind(e) for e in events] == ["HttpRequest", "StateChange", "HttpResponse"]
    assert events[0]["metadata"]["upstream_span_id"] == "b" * 16
    assert response.headers["raceway-clock"].startswith("v1;")


def test_fastapi_middleware_name_is_the_asgi_middleware():
    from starlette.applications import Starlette

    client, _ = make()
    app = Starlette()
    app.add_middleware(FastAPIMiddleware, client=client)  # as the original docs show
    app.build_middleware_stack()


def test_shutdown_twice_and_events_after_shutdown_are_counted():
    client = RacewayClient(Config(service_name="s", endpoint="http://127.0.0.1:9", warm_up_http=False,
                                  max_retries=0))
    client.shutdown()
    client.shutdown()
    with client.trace():
        client.track_function_call("late")
    assert client.dropped_events == 1
