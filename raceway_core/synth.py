"""Synthetic Raceway traces of realistic shape, for benchmarks and tests.

A small discrete-event simulation of a service: requests (traces) arrive over
time; each request's main context receives an HTTP request, bumps a metrics
counter under a global mutex, spawns 2-7 worker tasks and awaits them. Workers
call functions, query a database, call a downstream service and update the
order's status (under the order's lock, mostly) and shared stock (under the
inventory lock, mostly). Locks are real mutexes: a context that wants a held
lock waits until it is released, so timestamps, lock hand-offs and values
(lost updates included) are what a real run would record. Durations are
log-normal with rare 10-30x outliers (anomalies).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

SERVICES = ("api-gateway", "orders", "payments", "inventory")
EPOCH = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)
EPOCH_US = int(EPOCH.timestamp() * 1_000_000)


@dataclass(frozen=True)
class SynthConfig:
    traces: int = 100
    contexts: tuple[int, int] = (3, 8)  # per trace, inclusive
    events_per_context: tuple[int, int] = (10, 40)
    shared_skus: int = 50
    unlocked_ratio: float = 0.005  # share of shared-state updates done without their lock (real races)
    outlier_ratio: float = 0.002
    arrival_us: float = 800.0  # mean gap between requests
    clock_style: str = "instance"  # "instance" (original SDK), "context" (valid clocks), "none"
    seed: int = 1


def _iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us - EPOCH_US)).isoformat(timespec="microseconds")


class _Ctx:
    __slots__ = ("sim", "trace", "thread", "program", "t", "last", "counter", "held", "done", "waiter",
                 "service", "instance", "span", "end_t")

    def __init__(self, sim: "Simulation", trace: dict, thread: str, t: int, parent: str | None) -> None:
        self.sim, self.trace, self.thread, self.t, self.last = sim, trace, thread, t, parent
        self.counter = 0
        self.held: list[str] = []
        self.done = False
        self.waiter: _Ctx | None = None
        self.program = None
        self.end_t = 0

    def emit(self, kind: dict, duration_ns: int | None = None, gap_us: float = 40.0) -> dict:
        sim, tr = self.sim, self.trace
        self.t += max(1, int(sim.rng.expovariate(1 / gap_us)))
        self.counter += 1
        if sim.cfg.clock_style == "instance":
            key = f"{tr['service']}#{tr['instance']}"
            sim.instance_clock[key] = sim.instance_clock.get(key, 0) + 1
            cv = [[key, sim.instance_clock[key]]]
        elif sim.cfg.clock_style == "context":
            cv = [[f"{tr['id'][:8]}/{self.thread}", self.counter]]
        else:
            cv = []
        ev = {
            "id": str(uuid.UUID(int=sim.rng.getrandbits(128), version=4)),
            "trace_id": tr["id"],
            "parent_id": self.last,
            "timestamp": _iso(self.t),
            "kind": kind,
            "metadata": {
                "thread_id": self.thread,
                "process_id": 4000 + SERVICES.index(tr["service"]) * 10 + int(tr["instance"][-1]),
                "service_name": tr["service"],
                "environment": "prod",
                "tags": {"sdk_language": "python"},
                "duration_ns": duration_ns,
                "instance_id": tr["instance"],
                "distributed_span_id": tr["span"],
                "upstream_span_id": None,
            },
            "causality_vector": cv,
            "lock_set": list(self.held),
        }
        if duration_ns and "HttpResponse" not in kind:  # a response is stamped when done: its time is behind it
            self.t += duration_ns // 1000
        self.last = ev["id"]
        sim.out.append(ev)
        return ev

    def duration(self, median_us: float) -> int:
        rng = self.sim.rng
        d = median_us * math.exp(rng.gauss(0, 0.35))
        if rng.random() < self.sim.cfg.outlier_ratio:
            d *= 10 + rng.random() * 20
        return int(d * 1000)

    def state(self, variable: str, old, new, access: str, line: int) -> None:
        self.emit({"StateChange": {"variable": variable, "old_value": old, "new_value": new,
                                   "location": f"app/handlers.py:{line}", "access_type": access}})

    def call(self, name: str, median_us: float, args: dict | None = None) -> None:
        self.emit({"FunctionCall": {"function_name": name, "module": "app.handlers", "args": args or {},
                                    "file": "app/handlers.py", "line": 100 + len(name)}},
                  duration_ns=self.duration(median_us))


class Simulation:
    """Runs context programs (generators yielding actions) in time order."""

    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.instance_clock: dict[str, int] = {}
        self.stock = {f"inventory.sku-{i}": 100 for i in range(cfg.shared_skus)}
        self.requests = 0
        self.locks: dict[str, _Ctx | None] = {}
        self.released_at: dict[str, int] = {}  # a step may run ahead in time: acquires wait for this
        self.waiting: dict[str, deque] = {}
        self.heap: list = []
        self.tie = itertools.count()
        self.out: list[dict] = []

    # -- scheduling -------------------------------------------------------------
    def start(self, ctx: _Ctx, program) -> None:
        ctx.program = program
        heapq.heappush(self.heap, (ctx.t, next(self.tie), ctx))

    def run(self) -> Iterator[dict]:
        t = EPOCH_US
        for _ in range(self.cfg.traces):
            t += max(1, int(self.rng.expovariate(1 / self.cfg.arrival_us)))
            tr = self._new_trace()
            main = _Ctx(self, tr, f"req-{tr['id'][:8]}", t, None)
            self.start(main, self._main(main))
        while self.heap:
            _, _, ctx = heapq.heappop(self.heap)
            self._step(ctx)
            if self.out:
                yield from self.out
                self.out.clear()

    def _step(self, ctx: _Ctx, send=None) -> None:
        try:
            action = ctx.program.send(send) if send is not None else next(ctx.program)
        except StopIteration:
            ctx.done = True
            ctx.end_t = ctx.t
            if ctx.waiter is not None:  # its parent awaits it
                w, ctx.waiter = ctx.waiter, None
                w.t = max(w.t, ctx.t)
                heapq.heappush(self.heap, (w.t, next(self.tie), w))
            return
        op = action[0]
        if op == "acquire":
            lock = action[1]
            if self.locks.get(lock) is None:
                self._acquire(ctx, lock)
            else:
                self.waiting.setdefault(lock, deque()).append(ctx)
                return  # resumed by the release
        elif op == "release":
            lock = action[1]
            ctx.held.remove(lock)
            ctx.emit({"LockRelease": {"lock_id": lock, "lock_type": "Mutex", "location": "app/locks.py:27"}})
            self.locks[lock] = None
            self.released_at[lock] = ctx.t
            queue = self.waiting.get(lock)
            if queue:
                nxt = queue.popleft()
                nxt.t = max(nxt.t, ctx.t)
                self._acquire(nxt, lock)
                heapq.heappush(self.heap, (nxt.t, next(self.tie), nxt))
        elif op == "await":
            child = action[1]
            if not child.done:
                child.waiter = ctx
                return  # resumed when the child finishes
            ctx.t = max(ctx.t, child.end_t)
        heapq.heappush(self.heap, (ctx.t, next(self.tie), ctx))

    def _acquire(self, ctx: _Ctx, lock: str) -> None:
        self.locks[lock] = ctx
        ctx.t = max(ctx.t, self.released_at.get(lock, 0))
        ctx.emit({"LockAcquire": {"lock_id": lock, "lock_type": "Mutex", "location": "app/locks.py:21"}})
        ctx.held.append(lock)

    def _new_trace(self) -> dict:
        rng = self.rng
        service = rng.choice(SERVICES[1:])
        return {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "service": service,
                "instance": f"{service}-{rng.randint(1, 3)}", "span": "%016x" % rng.getrandbits(64)}

    # -- programs -----------------------------------------------------------------
    def _main(self, m: _Ctx):
        cfg, rng = self.cfg, self.rng
        start = m.t
        m.emit({"HttpRequest": {"method": rng.choice(("GET", "POST", "POST", "PUT")),
                                "url": f"/api/orders/{rng.randint(1, 99999)}", "headers": {}, "body": None}})
        m.call("handle_request", 120)
        yield ("acquire", "metrics")
        m.state("metrics.requests", self.requests, self.requests, "Read", 31)
        self.requests += 1
        m.state("metrics.requests", self.requests - 1, self.requests, "Write", 32)
        yield ("release", "metrics")
        order = f"order.{m.trace['id'][:8]}.status"
        per_ctx = rng.randint(*cfg.events_per_context)
        children = []
        for w in range(rng.randint(*cfg.contexts) - 1):
            task = f"task-{m.trace['id'][:8]}-{w}"
            spawn = m.emit({"AsyncSpawn": {"task_id": task, "spawned_by": m.thread}})
            child = _Ctx(self, m.trace, f"worker-{m.trace['id'][:8]}-{w}", m.t, spawn["id"])
            self.start(child, self._worker(child, w, order, per_ctx))
            children.append((task, child))
        for task, child in children:
            yield ("await", child)
            m.emit({"AsyncAwait": {"future_id": task, "awaited_at": "app/handlers.py:88"}})
        status = 500 if rng.random() < 0.01 else 200
        m.emit({"HttpResponse": {"status": status, "headers": {}, "body": None,
                                 "duration_ms": (m.t - start) / 1000}},
               duration_ns=(m.t - start) * 1000)

    def _worker(self, c: _Ctx, w: int, order: str, n: int):
        rng, cfg = self.rng, self.cfg
        c.call(f"worker_step_{w % 3}", 80, {"attempt": 1})
        order_lock = f"lock:{order}"
        while c.counter < n:
            r = rng.random()
            if r < 0.25:
                c.call(rng.choice(("validate", "price_lookup", "serialize", "compress")), 60)
            elif r < 0.4:
                c.emit({"DatabaseQuery": {"query": "SELECT * FROM orders WHERE id = $1", "database": "orders-db",
                                          "duration_ms": None}}, duration_ns=c.duration(900))
            elif r < 0.55:
                locked = rng.random() >= cfg.unlocked_ratio
                if locked:
                    yield ("acquire", order_lock)
                old = self.stock.get(order, "new")
                c.state(order, old, old, "Read", 52)
                new = rng.choice(("paid", "packed", "shipped"))
                self.stock[order] = new
                c.state(order, old, new, "Write", 53)
                if locked:
                    yield ("release", order_lock)
            elif r < 0.75:
                sku = f"inventory.sku-{rng.randrange(cfg.shared_skus)}"
                locked = rng.random() >= cfg.unlocked_ratio
                if locked:
                    yield ("acquire", "inventory")
                stock = self.stock[sku]
                c.state(sku, stock, stock, "Read", 61)
                yield ("pause",)  # the read and the write are separate steps: others may run between
                self.stock[sku] = stock - 1
                c.state(sku, stock, stock - 1, "Write", 62)
                if locked:
                    yield ("release", "inventory")
            elif r < 0.85:
                c.emit({"HttpRequest": {"method": "POST", "url": "http://payments:8080/charge",
                                        "headers": {}, "body": None}})
                d = c.duration(2500)
                c.t += d // 1000  # the call's time passes before its response
                c.emit({"HttpResponse": {"status": 200, "headers": {}, "body": None, "duration_ms": None}},
                       duration_ns=d)
            elif r < 0.87:
                c.emit({"Error": {"error_type": "TimeoutError", "message": "upstream timed out",
                                  "stack_trace": ["app/handlers.py:70", "app/client.py:12"]}})
            else:
                c.emit({"Custom": {"name": "cache_probe", "data": {"hit": rng.random() < 0.7}}})
            yield ("pause",)


def generate(cfg: SynthConfig) -> Iterator[dict]:
    """Events in the order a collector would receive them (by time, across traces)."""
    yield from Simulation(cfg).run()


def config_for_events(n_events: int, **kw) -> SynthConfig:
    """A config whose output is close to n_events events."""
    probe = SynthConfig(traces=40, **kw)
    per_trace = sum(1 for _ in generate(probe)) / probe.traces
    return SynthConfig(traces=max(1, round(1.15 * n_events / per_trace) + 2), **kw)  # a margin: cut at n


def write_ndjson(path, cfg: SynthConfig, limit: int | None = None) -> int:
    """Write events as NDJSON; returns the number written."""
    n = 0
    with open(path, "wb") as f:
        for ev in generate(cfg):
            f.write(orjson.dumps(ev))
            f.write(b"\n")
            n += 1
            if limit is not None and n >= limit:
                break
    return n


def hot_variable(accesses: int = 20_000, contexts: int = 200, unlocked_ratio: float = 0.01,
                 seed: int = 7) -> list[dict]:
    """One variable hammered by many concurrent contexts of one trace.

    Each context repeats: acquire 'hot', read, write, release; a small share of
    the updates skip the lock (real races). Contexts interleave in time the way
    a thread pool would; lock hand-offs follow the time order.
    """
    rng = random.Random(seed)
    trace = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    per_ctx = max(1, accesses // (2 * contexts))
    t = EPOCH_US
    events: list[dict] = []
    last: dict[int, str] = {}
    value = 0

    def emit(c: int, kind: dict) -> None:
        nonlocal t
        t += rng.randint(1, 5)
        ev = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "trace_id": trace,
              "parent_id": last.get(c), "timestamp": _iso(t), "kind": kind,
              "metadata": {"thread_id": f"worker-{c}", "process_id": 1, "service_name": "counter",
                           "environment": "bench", "tags": {}, "duration_ns": None},
              "causality_vector": [], "lock_set": []}
        last[c] = ev["id"]
        events.append(ev)

    pending = [per_ctx] * contexts
    while any(pending):
        c = rng.choice([i for i, n in enumerate(pending) if n])
        pending[c] -= 1
        locked = rng.random() >= unlocked_ratio
        if locked:
            emit(c, {"LockAcquire": {"lock_id": "hot", "lock_type": "Mutex", "location": "counter.py:10"}})
        emit(c, {"StateChange": {"variable": "hot.counter", "old_value": value, "new_value": value,
                                 "location": "counter.py:11", "access_type": "Read"}})
        emit(c, {"StateChange": {"variable": "hot.counter", "old_value": value, "new_value": value + 1,
                                 "location": "counter.py:12", "access_type": "Write"}})
        value += 1
        if locked:
            emit(c, {"LockRelease": {"lock_id": "hot", "lock_type": "Mutex", "location": "counter.py:13"}})
    return events
