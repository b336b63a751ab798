"""Propagation headers: the wire format, and round trips through the WSGI and ASGI middleware of
another client (the downstream continues the trace and its clock carries the upstream's)."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from clockcheck import before, clock_problems, parent_problems, vc
from hypothesis import given
from hypothesis import strategies as st

from raceway_core.sdk import (Config, MemorySink, RacewayASGIMiddleware, RacewayClient, RacewayWSGIMiddleware,
                              get_context)
from raceway_core.sdk.propagation import parse_headers


def make(service):
    sink = MemorySink()
    return RacewayClient(Config(service_name=service, instance_id=f"{service}-1", warm_up_http=False),
                         sink=sink), sink


def kind(e):
    return next(iter(e["kind"]))


def decode(value: str) -> dict:
    assert value.startswith("v1;")
    b64 = value[3:]
    assert "=" not in b64 and re.fullmatch(r"[A-Za-z0-9_-]+", b64)
    return json.loads(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)))


def test_header_format():
    client, sink = make("up")
    with client.trace() as ctx:
        client.track_function_call("work")
        h = client.propagation_headers({"x-extra": "1"})
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", h["traceparent"])
    assert m and uuid.UUID(m.group(1)) == uuid.UUID(ctx.trace_id) and m.group(2) == ctx.span_id
    payload = decode(h["raceway-clock"])
    assert set(payload) == {"trace_id", "span_id", "parent_span_id", "service", "instance", "clock"}
    assert payload["trace_id"] == ctx.trace_id and payload["span_id"] == ctx.span_id
    assert (payload["service"], payload["instance"], payload["parent_span_id"]) == ("up", "up-1", None)
    assert payload["clock"] == sink.events[-1]["causality_vector"]
    assert h["x-extra"] == "1"
    with pytest.raises(RuntimeError):  # as in the original SDK
        client.propagation_headers()


@given(st.dictionaries(st.sampled_from(["traceparent", "raceway-clock", "tracestate", "TraceParent"]),
                       st.text(max_size=200)))
def test_malformed_headers_never_raise(headers):
    inc = parse_headers(headers)
    assert inc.trace_id is None or isinstance(inc.trace_id, str)
    assert all(isinstance(c, str) and isinstance(n, int) and n >= 0 for c, n in inc.clock)


def test_traceparent_only_caller_continues_the_trace():
    client, sink = make("down")
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with client.trace(headers={"TraceParent": tp}) as ctx:
        client.track_function_call("x")
    e = sink.events[0]
    assert e["trace_id"] == str(uuid.UUID("4bf92f3577b34da6a3ce929d0e0e4736"))
    assert e["metadata"]["upstream_span_id"] == "00f067aa0ba902b7"
    assert e["metadata"]["distributed_span_id"] == ctx.span_id != "00f067aa0ba902b7"
    assert len(e["causality_vector"]) == 1


def test_non_uuid_trace_id_survives_the_round_trip():
    up, _ = make("up")
    down, dsink = make("down")
    with up.trace("order-42"):
        h = up.propagation_headers()
    with down.trace(headers=h):
        down.track_function_call("x")
    assert dsink.events[0]["trace_id"] == "order-42"


def check_round_trip(up_events, down_events):
    """The downstream continues the upstream's trace, span and clock; the upstream's response event
    carries the downstream's clock back."""
    events = up_events + down_events
    assert clock_problems(events) == [] and parent_problems(events) == []
    call = next(e for e in up_events if kind(e) == "HttpRequest")
    reply = next(e for e in up_events if kind(e) == "HttpResponse")
    first, last = down_events[0], down_events[-1]
    assert {e["trace_id"] for e in events} == {call["trace_id"]}
    assert first["metadata"]["upstream_span_id"] == call["metadata"]["distributed_span_id"]
    assert first["metadata"]["distributed_span_id"] != call["metadata"]["distributed_span_id"]
    own = call["causality_vector"][-1][0]
    assert vc(first)[own] == vc(call)[own]  # the calling event, found by its counter
    assert before(call, first) and before(last, reply)
    assert [kind(e) for e in down_events][0] == "HttpRequest" and kind(last) == "HttpResponse"
    assert reply["metadata"]["duration_ns"] == 0  # the time is in the callee's events


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_wsgi_round_trip_on_a_real_socket():
    up, usink = make("up")
    down, dsink = make("down")

    def app(environ, start_response):
        down.track_state_change("hits", 0, 1, "Write")
        assert get_context() is not None
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, RacewayWSGIMiddleware(app, down), server_class=_Threading,
                         handler_class=_Quiet)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        with up.trace():
            up.track_function_call("before")
            r = up.request("POST", f"http://127.0.0.1:{server.server_port}/hit", content=b"x")
            up.track_function_call("after")
    finally:
        server.shutdown()
        server.server_close()
    assert r.status_code == 201 and "raceway-clock" in r.headers
    down_events = dsink.events
    assert [kind(e) for e in down_events] == ["HttpRequest", "StateChange", "HttpResponse"]
    assert down_events[0]["kind"]["HttpRequest"]["url"] == "/hit"
    assert down_events[-1]["kind"]["HttpResponse"]["status"] == 201
    check_round_trip(usink.events, down_events)


async def test_asgi_round_trip():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    up, usink = make("up")
    down, dsink = make("down")

    async def hit(request):
        down.track_state_change("hits", 0, 1, "Write")
        return PlainTextResponse("ok", status_code=202)

    app = RacewayASGIMiddleware(Starlette(routes=[Route("/hit", hit)]), down)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        with up.trace():
            r = await up.arequest("GET", "http://svc/hit", http_client=http)
    assert r.status_code == 202
    down_events = dsink.events
    assert [kind(e) for e in down_events] == ["HttpRequest", "StateChange", "HttpResponse"]
    check_round_trip(usink.events, down_events)


async def test_asgi_error_still_records_a_500():
    down, dsink = make("down")

    async def app(scope, receive, send):
        raise RuntimeError("boom")

    mw = RacewayASGIMiddleware(app, down)
    with pytest.raises(RuntimeError):
        await mw({"type": "http", "method": "GET", "path": "/x", "headers": []}, None, None)
    assert [kind(e) for e in dsink.events] == ["HttpRequest", "HttpResponse"]
    assert dsink.events[-1]["kind"]["HttpResponse"]["status"] == 500
    assert get_context() is None  # the request's context ended with it


def test_uninstrumented_callee_call_counts_as_a_leaf_interval():
    up, usink = make("up")

    def handler(request):
        return httpx.Response(200, text="plain")

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        with up.trace():
            up.request("GET", "http://bank.example/authorize", http_client=http)
    reply = usink.events[-1]
    assert kind(reply) == "HttpResponse" and reply["metadata"]["duration_ns"] > 0
