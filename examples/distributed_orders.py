"""Distributed order processing: frontend -> gateway -> orders -> payments -> inventory.

Five HTTP services on 127.0.0.1, each its own process with its own SDK client,
propagating ``traceparent``/``raceway-clock``. frontend and gateway are ASGI
(Starlette on uvicorn); orders, payments and inventory are plain WSGI apps
(wsgiref, a thread per request). orders and inventory share a SQLite stock table.

Checkout 1 places two orders for the last widget concurrently (one trace).
Both pass the stock check in ``orders``, both payments go through, and
``inventory`` loses an update: stock 1 -> 0 twice, two widgets sold from one.
Checkout 2 buys a gadget alone (no race). ``payments`` is slow: its bank
authorization takes ~300 ms, the bulk of every checkout.

    python examples/distributed_orders.py [--out FILE | --endpoint URL]
    python examples/distributed_orders.py serve NAME --db stock.sqlite (--out F | --endpoint URL) [--downstream URL]
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from _common import arguments, client, fresh, recorded

SERVICES = ["frontend", "gateway", "orders", "payments", "inventory"]
STOCK = {"widget": 1, "gadget": 5}
CHECKOUTS = [
    {"user": "ann", "items": [{"order_id": "A-1001", "sku": "widget", "qty": 1},
                              {"order_id": "A-1002", "sku": "widget", "qty": 1}]},
    {"user": "bo", "items": [{"order_id": "B-2001", "sku": "gadget", "qty": 1}]},
]
BANK_LATENCY = 0.3  # the slow dependency
# Both widget orders pass each check before either goes on, every run: this only
# makes the recording deterministic; the bug is the unguarded check-then-act.
RENDEZVOUS = {"widget": threading.Barrier(2, timeout=5)}


def rendezvous(sku: str) -> None:
    barrier = RENDEZVOUS.get(sku)
    if barrier is not None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass


# -- WSGI services ---------------------------------------------------------------------------
def wsgi_json(handler):
    """A tiny WSGI app: JSON body in, (status, JSON) out."""

    def app(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        status, payload = handler(body)
        data = json.dumps(payload).encode()
        start_response(f"{status} {'OK' if status < 400 else 'Error'}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    return app


def orders_app(raceway, db: str, downstream: str):
    def place(order):
        sku, oid = order["sku"], order["order_id"]
        with sqlite3.connect(db) as conn:
            (stock,) = conn.execute("SELECT qty FROM stock WHERE sku = ?", (sku,)).fetchone()
        raceway.track_state_change(f"stock.{sku}", None, stock, "Read")
        if stock < order["qty"]:
            raceway.track_state_change(f"order.{oid}.status", None, "rejected", "Write")
            return 409, {"order_id": oid, "status": "out of stock"}
        rendezvous(sku)
        raceway.track_state_change(f"order.{oid}.status", None, "pending", "Write")
        r = raceway.request("POST", f"{downstream}/charge", json=order, timeout=10)
        status = "confirmed" if r.status_code == 200 else "failed"
        raceway.track_state_change(f"order.{oid}.status", "pending", status, "Write")
        return r.status_code, {"order_id": oid, "status": status, "payment": r.json()}

    return wsgi_json(place)


def payments_app(raceway, db: str, downstream: str):
    def charge(order):
        oid = order["order_id"]
        raceway.track_function("bank.authorize", {"order_id": oid}, lambda: time.sleep(BANK_LATENCY))
        raceway.track_state_change(f"payment.{oid}", None, "authorized", "Write")
        r = raceway.request("POST", f"{downstream}/reserve", json=order, timeout=10)
        return r.status_code, {"order_id": oid, "charged": True, "reservation": r.json()}

    return wsgi_json(charge)


def inventory_app(raceway, db: str, downstream: str):
    def reserve(order):
        sku = order["sku"]
        with sqlite3.connect(db) as conn:
            (stock,) = conn.execute("SELECT qty FROM stock WHERE sku = ?", (sku,)).fetchone()
        raceway.track_state_change(f"stock.{sku}", None, stock, "Read")
        rendezvous(sku)
        with sqlite3.connect(db) as conn:  # read-modify-write, no lock, no transaction: the bug
            conn.execute("UPDATE stock SET qty = ? WHERE sku = ?", (stock - order["qty"], sku))
        raceway.track_state_change(f"stock.{sku}", stock, stock - order["qty"], "Write")
        return 200, {"sku": sku, "left": stock - order["qty"]}

    return wsgi_json(reserve)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_wsgi(app, ready) -> None:
    from raceway_core.sdk import RacewayWSGIMiddleware

    server = make_server("127.0.0.1", 0, RacewayWSGIMiddleware(app, ready.raceway),
                         server_class=_ThreadingWSGIServer, handler_class=_Quiet)
    ready(server.server_port)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()


# -- ASGI services ---------------------------------------------------------------------------
def frontend_app(raceway, db: str, downstream: str):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def checkout(request):
        cart = await request.json()

        async def place(item):
            r = await raceway.arequest("POST", f"{downstream}/orders", json={**item, "user": cart["user"]},
                                       timeout=10)
            return r.json()

        # Each cart line is its own order, placed concurrently.
        results = await raceway.gather(*(place(item) for item in cart["items"]))
        return JSONResponse({"user": cart["user"], "orders": results})

    return Starlette(routes=[Route("/checkout", checkout, methods=["POST"])])


def gateway_app(raceway, db: str, downstream: str):
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    counter_lock = asyncio.Lock()
    served = {"n": 0}

    async def orders(request):
        body = await request.json()
        await raceway.track_function_async("gateway.authenticate", {"user": body.get("user")},
                                           lambda: asyncio.sleep(0.003))
        async with raceway.tracked_lock(counter_lock, "gateway.counter"):
            n = served["n"]
            raceway.track_state_change("gateway.requests_served", None, n, "Read")
            served["n"] = n + 1
            raceway.track_state_change("gateway.requests_served", n, n + 1, "Write")
        r = await raceway.arequest("POST", f"{downstream}/orders", json=body, timeout=10)
        return JSONResponse(r.json(), status_code=r.status_code)

    return Starlette(routes=[Route("/orders", orders, methods=["POST"])])


def serve_asgi(app, ready) -> None:
    import uvicorn

    from raceway_core.sdk import RacewayASGIMiddleware

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(RacewayASGIMiddleware(app, ready.raceway), log_level="warning",
                                           lifespan="off"))
    original = server.startup

    async def startup(sockets=None):
        await original(sockets=sockets)
        ready(sock.getsockname()[1])

    server.startup = startup
    server.run(sockets=[sock])


APPS = {"frontend": (frontend_app, serve_asgi), "gateway": (gateway_app, serve_asgi),
        "orders": (orders_app, serve_wsgi), "payments": (payments_app, serve_wsgi),
        "inventory": (inventory_app, serve_wsgi)}


def serve(name: str, db: str, out: Path | None, downstream: str, endpoint: str | None = None) -> None:
    raceway = client(name, out, endpoint)
    make_app, run = APPS[name]

    def ready(port: int) -> None:
        print(f"READY {port}", flush=True)

    ready.raceway = raceway
    # SIGTERM from the runner: stop serving, then flush the recording.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        run(make_app(raceway, db, downstream), ready)
    except KeyboardInterrupt:
        pass
    finally:
        raceway.shutdown()
    if raceway.dropped_events:
        raise SystemExit(f"{name}: {raceway.dropped_events} events were dropped")


# -- the runner ------------------------------------------------------------------------------
def run_all(out: Path, endpoint: str | None = None) -> None:
    """Each service records into its own part file (merged into ``out`` at the end), or
    sends to ``endpoint``."""
    import httpx

    with tempfile.TemporaryDirectory(prefix="raceway-orders-") as tmp:
        db = str(Path(tmp) / "stock.sqlite")
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE stock (sku TEXT PRIMARY KEY, qty INTEGER)")
            conn.executemany("INSERT INTO stock VALUES (?, ?)", STOCK.items())
        procs, url = [], ""
        try:
            for name in reversed(SERVICES):  # downstream first: each needs the next one's URL
                part = Path(tmp) / f"{name}.jsonl"
                sink = ["--endpoint", endpoint] if endpoint else ["--out", str(part)]
                p = subprocess.Popen([sys.executable, __file__, "serve", name, "--db", db, *sink,
                                      "--downstream", url], stdout=subprocess.PIPE, text=True)
                procs.append((name, p, part))
                line = p.stdout.readline().split()
                if not line or line[0] != "READY":
                    raise SystemExit(f"{name} did not start")
                url = f"http://127.0.0.1:{line[1]}"
                print(f"{name:9s} {url}")
            for cart in CHECKOUTS:
                t0 = time.perf_counter()
                r = httpx.post(f"{url}/checkout", json=cart, timeout=30)
                print(f"checkout {cart['user']}: {r.status_code} in {time.perf_counter() - t0:.2f}s:",
                      [o.get("status") for o in r.json()["orders"]])
        finally:
            for _, p, _ in procs:
                p.send_signal(signal.SIGTERM)
            for name, p, _ in procs:
                if p.wait(15) != 0:
                    print(f"{name} exited with {p.returncode}", file=sys.stderr)
        with sqlite3.connect(db) as conn:
            left = dict(conn.execute("SELECT sku, qty FROM stock").fetchall())
        print(f"stock left: {left} (2 widgets sold from a stock of {STOCK['widget']})")
        if endpoint:
            return
        with open(fresh(out), "wb") as f:
            for name in SERVICES:
                f.write(next(part for n, _, part in procs if n == name).read_bytes())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        import argparse

        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("name", choices=SERVICES)
        p.add_argument("--db", required=True)
        sink = p.add_mutually_exclusive_group(required=True)
        sink.add_argument("--out", type=Path)
        sink.add_argument("--endpoint")
        p.add_argument("--downstream", default="")
        a = p.parse_args()
        serve(a.name, a.db, a.out, a.downstream, a.endpoint)
        return
    args = arguments("distributed-orders", __doc__).parse_args()
    run_all(args.out, args.endpoint)
    recorded(args.out, args.endpoint)


if __name__ == "__main__":
    main()
