"""An ingest front: a process that answers the server's public port.

It parses and checks POST /events bodies itself and sends each batch to the
store's process over the channel (``channel.py``), answering once that says
the batch is committed. Every other request is passed through unchanged to
the store's process, which serves it on a private Unix socket: one API, one
set of answers, wherever the request is handled.

Started by ``serve`` (``workers.py``); not meant to be run by hand:
    python -m raceway_core.server.front --fd N --core PATH --channel PATH
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket

import httpx
import orjson

from raceway_core.server.channel import ChannelClient, ChannelClosed
from raceway_core.server.conns import ACCEPT_BURST, default_max_connections, guarded_protocol, limit_logs
from raceway_core.server.http import (
    OPEN_PATHS, ApiKeyAuth, answer_ingest, fail, internal_error, plain_ingest, refuse_early,
)
from raceway_core.server.proc import KEYS_ENV, die_with_parent, lean_gc

log = logging.getLogger("raceway.server")

# connection-level headers: meaningful for one hop only
_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"trailer",
                  b"upgrade"})


class FrontApp:
    """The ASGI application of a front."""

    def __init__(self, core_socket: str, channel_socket: str, api_keys: tuple[str, ...], max_body: int,
                 cors_origins: tuple[str, ...] = ()) -> None:
        self.core_socket = core_socket
        self.channel_socket = channel_socket
        self.auth = ApiKeyAuth(None, api_keys, OPEN_PATHS)
        self.max_body = max_body
        self.cors_origins = frozenset(cors_origins)
        self.channel = ChannelClient()
        self.on_channel_closed = None  # called when the store's process goes away
        self.stopping = False
        self._proxy: httpx.AsyncClient | None = None
        self._watcher: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if plain_ingest(scope, self.auth):
                await answer_ingest(scope, receive, send, self.max_body, self._commit)
            else:
                await self._pass_through(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.channel.connect(self.channel_socket)
                except OSError as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"cannot reach the store: {exc}"})
                    return
                # pooled connections are dropped here (2 s) before the store's process
                # closes them as idle (5 s): never reused just as they close
                self._proxy = httpx.AsyncClient(
                    transport=httpx.AsyncHTTPTransport(uds=self.core_socket, retries=1),
                    limits=httpx.Limits(max_connections=256, keepalive_expiry=2.0),
                    base_url="http://raceway-store", timeout=None)
                self._watcher = asyncio.create_task(self._watch_channel())  # held: tasks are weak
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stopping = True
                await self.channel.close()
                if self._proxy is not None:
                    await self._proxy.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _watch_channel(self) -> None:
        await self.channel.closed.wait()
        if self.stopping:
            return
        log.warning("ingest front: the store's process closed the channel; stopping")
        if self.on_channel_closed is not None:
            self.on_channel_closed()

    async def _commit(self, payload, n: int) -> dict:
        try:
            return await self.channel.commit(payload, n)
        except ChannelClosed as exc:
            return {"error": 503, "message": str(exc)}

    async def _pass_through(self, scope, receive, send) -> None:
        """Anything but a plain POST /events, to the store's process. Refused here
        before its body is read (a wrong key, a declared size past the limit);
        otherwise the body is streamed on, and cut off past the limit."""
        refusal = refuse_early(scope, self.auth, self.max_body)
        if refusal is not None:
            await self._with_cors(scope, refusal)(scope, receive, send)
            return
        cut = None  # why the body stopped short: "gone" or "too big"

        async def body():
            nonlocal cut
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    cut = "gone"
                    raise _BodyCut
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    cut = "too big"
                    raise _BodyCut
                yield chunk
                if not message.get("more_body"):
                    return

        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP]
        bodyless = not any(k == b"content-length" for k, _ in headers) and not any(
            k == b"transfer-encoding" for k, _ in scope["headers"])
        request = self._proxy.build_request(scope["method"], target.decode("latin-1"), headers=headers,
                                            content=b"" if bodyless else body())
        try:
            response = await self._proxy.send(request, stream=True)
        except (_BodyCut, httpx.TransportError) as exc:  # httpx may wrap what the body raised
            if cut == "too big":
                await fail(413, f"request body exceeds the limit of {self.max_body:,} bytes")(scope, receive, send)
            elif cut is None:
                await internal_error("passing a request to the store's process", exc, 503)(scope, receive, send)
            return  # (the client is gone: nobody to answer)
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw
                                    if k.lower() not in _HOP and k.lower() != b"date"]})  # uvicorn adds its own
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    def _with_cors(self, scope, response):
        """A refusal the front answers itself carries the CORS headers the store's
        process would have added (for an allowed origin only)."""
        origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
        if origin is not None and origin in self.cors_origins:
            response.headers["access-control-allow-origin"] = origin
            response.headers["vary"] = "Origin"
        return response


class _BodyCut(Exception):
    """A passed-through body stopped short: past the limit, or its client left."""


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    ap = argparse.ArgumentParser(prog="raceway_core.server.front")
    ap.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    ap.add_argument("--core", required=True, help="the store process's HTTP Unix socket")
    ap.add_argument("--channel", required=True, help="the store process's ingest channel socket")
    ap.add_argument("--parent", type=int, required=True, help="the store process's pid")
    ap.add_argument("--max-body", type=int, required=True)
    ap.add_argument("--log-level", default="warning")
    ap.add_argument("--cors-origin", action="append", default=[])
    ap.add_argument("--client-timeout", type=float, default=10.0)
    ap.add_argument("--max-connections", type=int, default=None)
    args = ap.parse_args(argv)
    die_with_parent(args.parent)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_logs()
    max_connections = default_max_connections() if args.max_connections is None else args.max_connections
    keys = tuple(orjson.loads(os.environ.pop(KEYS_ENV, "[]")))
    sock = socket.socket(fileno=args.fd)
    app = FrontApp(args.core, args.channel, keys, args.max_body, tuple(args.cors_origin))
    config = uvicorn.Config(app, lifespan="on", log_level=args.log_level, access_log=False,
                            timeout_graceful_shutdown=15, server_header=False,
                            http=guarded_protocol(args.client_timeout, max_connections), backlog=ACCEPT_BURST)
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    app.on_channel_closed = stop
    with lean_gc():
        server.run(sockets=[sock])


if __name__ == "__main__":
    main()
