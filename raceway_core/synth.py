"""Synthetic Raceway traces of realistic shape, for benchmarks and tests.

Each trace is one request to a small service: a main context receives an HTTP
request, updates a shared counter under a global lock, spawns 2-7 worker tasks
(AsyncSpawn / first event parented to the spawn) that call functions, query a
database, call a downstream service and touch per-request and shared state
(sometimes without the lock, which makes real races), then awaits them and
responds. Durations are log-normal with rare 10x outliers (anomalies).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

SERVICES = ("api-gateway", "orders", "payments", "inventory")
EPOCH = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SynthConfig:
    traces: int = 100
    contexts: tuple[int, int] = (3, 8)  # per trace, inclusive
    events_per_context: tuple[int, int] = (10, 40)
    shared_skus: int = 50
    unlocked_ratio: float = 0.05  # share of shared-state accesses done without the lock
    outlier_ratio: float = 0.002
    clock_style: str = "instance"  # "instance" (original SDK), "context" (valid clocks), "none"
    seed: int = 1


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")


class _Trace:
    """Builds one trace; contexts append events in their own time order."""

    def __init__(self, gen: "Generator", start: datetime) -> None:
        self.gen = gen
        self.rng = gen.rng
        self.trace_id = _uuid(self.rng)
        self.service = self.rng.choice(SERVICES[1:])
        self.instance = f"{self.service}-{self.rng.randint(1, 3)}"
        self.span = "%016x" % self.rng.getrandbits(64)
        self.events: list[dict] = []
        self.start = start

    def ctx(self, thread_id: str, t: datetime, parent: str | None) -> "_Ctx":
        return _Ctx(self, thread_id, t, parent)


class _Ctx:
    def __init__(self, trace: _Trace, thread_id: str, t: datetime, parent: str | None) -> None:
        self.trace = trace
        self.thread_id = thread_id
        self.t = t
        self.last = parent
        self.counter = 0
        self.held: list[str] = []

    def emit(self, kind: dict, duration_ns: int | None = None, gap_us: float = 40.0) -> dict:
        tr, gen = self.trace, self.trace.gen
        self.t += timedelta(microseconds=max(1, int(tr.rng.expovariate(1 / gap_us))))
        self.counter += 1
        if gen.cfg.clock_style == "instance":
            key = f"{tr.service}#{tr.instance}"
            gen.instance_clock[key] = gen.instance_clock.get(key, 0) + 1
            cv = [[key, gen.instance_clock[key]]]
        elif gen.cfg.clock_style == "context":
            cv = [[f"{tr.trace_id[:8]}/{self.thread_id}", self.counter]]
        else:
            cv = []
        ev = {
            "id": _uuid(tr.rng),
            "trace_id": tr.trace_id,
            "parent_id": self.last,
            "timestamp": _iso(self.t),
            "kind": kind,
            "metadata": {
                "thread_id": self.thread_id,
                "process_id": 4000 + SERVICES.index(tr.service) * 10 + int(tr.instance[-1]),
                "service_name": tr.service,
                "environment": "prod",
                "tags": {"sdk_language": "python"},
                "duration_ns": duration_ns,
                "instance_id": tr.instance,
                "distributed_span_id": tr.span,
                "upstream_span_id": None,
            },
            "causality_vector": cv,
            "lock_set": list(self.held),
        }
        if duration_ns:
            self.t += timedelta(microseconds=duration_ns // 1000)
        self.last = ev["id"]
        tr.events.append(ev)
        return ev

    def duration(self, median_us: float) -> int:
        rng = self.trace.rng
        d = median_us * math.exp(rng.gauss(0, 0.35))
        if rng.random() < self.trace.gen.cfg.outlier_ratio:
            d *= 10 + rng.random() * 20
        return int(d * 1000)

    def state(self, variable: str, old, new, access: str, line: int) -> dict:
        return self.emit({"StateChange": {"variable": variable, "old_value": old, "new_value": new,
                                          "location": f"app/handlers.py:{line}", "access_type": access}})

    def lock(self, lock_id: str) -> None:
        self.emit({"LockAcquire": {"lock_id": lock_id, "lock_type": "Mutex",
                                   "location": "app/locks.py:21"}})
        self.held.append(lock_id)

    def unlock(self, lock_id: str) -> None:
        self.held.remove(lock_id)
        self.emit({"LockRelease": {"lock_id": lock_id, "lock_type": "Mutex",
                                   "location": "app/locks.py:27"}})

    def call(self, name: str, median_us: float, args: dict | None = None) -> None:
        self.emit({"FunctionCall": {"function_name": name, "module": "app.handlers",
                                    "args": args or {}, "file": "app/handlers.py",
                                    "line": 100 + len(name)}},
                  duration_ns=self.duration(median_us))


class Generator:
    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.instance_clock: dict[str, int] = {}
        self.stock = {f"inventory.sku-{i}": 100 for i in range(cfg.shared_skus)}
        self.requests = 0

    def traces(self) -> Iterator[list[dict]]:
        start = EPOCH
        for _ in range(self.cfg.traces):
            start += timedelta(microseconds=int(self.rng.expovariate(1 / 800)))
            yield self._trace(start)

    def _trace(self, start: datetime) -> list[dict]:
        cfg, rng = self.cfg, self.rng
        tr = _Trace(self, start)
        main = tr.ctx(f"req-{tr.trace_id[:8]}", start, None)
        main.emit({"HttpRequest": {"method": rng.choice(("GET", "POST", "POST", "PUT")),
                                   "url": f"/api/orders/{rng.randint(1, 99999)}",
                                   "headers": {}, "body": None}})
        main.call("handle_request", 120)
        main.lock("metrics")
        main.state("metrics.requests", self.requests, None, "Read", 31)
        self.requests += 1
        main.state("metrics.requests", self.requests - 1, self.requests, "Write", 32)
        main.unlock("metrics")
        n_workers = rng.randint(*cfg.contexts) - 1
        workers = []
        for w in range(n_workers):
            task = f"task-{tr.trace_id[:8]}-{w}"
            spawn = main.emit({"AsyncSpawn": {"task_id": task, "spawned_by": main.thread_id}})
            workers.append((task, tr.ctx(f"worker-{tr.trace_id[:8]}-{w}", main.t, spawn["id"])))
        order_var = f"order.{tr.trace_id[:8]}.status"
        per_ctx = rng.randint(*cfg.events_per_context)
        for w, (task, ctx) in enumerate(workers):
            self._work(ctx, w, order_var, per_ctx)
        for task, ctx in workers:
            main.t = max(main.t, ctx.t)
            main.emit({"AsyncAwait": {"future_id": task, "awaited_at": "app/handlers.py:88"}})
        status = 500 if rng.random() < 0.01 else 200
        main.emit({"HttpResponse": {"status": status, "headers": {}, "body": None,
                                    "duration_ms": (main.t - start).total_seconds() * 1000}},
                  duration_ns=int((main.t - start).total_seconds() * 1e9))
        return tr.events

    def _work(self, ctx: _Ctx, w: int, order_var: str, n: int) -> None:
        rng = self.rng
        ctx.call(f"worker_step_{w % 3}", 80, {"attempt": 1})
        while ctx.counter < n:
            r = rng.random()
            if r < 0.25:
                ctx.call(rng.choice(("validate", "price_lookup", "serialize", "compress")), 60)
            elif r < 0.4:
                ctx.emit({"DatabaseQuery": {"query": "SELECT * FROM orders WHERE id = $1",
                                            "database": "orders-db",
                                            "duration_ms": None}},
                         duration_ns=ctx.duration(900))
            elif r < 0.55:
                old = rng.choice(("new", "paid", "packed"))
                ctx.state(order_var, old, None, "Read", 52)
                ctx.state(order_var, old, rng.choice(("paid", "packed", "shipped")), "Write", 53)
            elif r < 0.75:
                sku = f"inventory.sku-{rng.randrange(self.cfg.shared_skus)}"
                locked = rng.random() >= self.cfg.unlocked_ratio
                if locked:
                    ctx.lock("inventory")
                stock = self.stock[sku]
                ctx.state(sku, stock, None, "Read", 61)
                self.stock[sku] = stock - 1
                ctx.state(sku, stock, stock - 1, "Write", 62)
                if locked:
                    ctx.unlock("inventory")
            elif r < 0.85:
                ctx.emit({"HttpRequest": {"method": "POST", "url": "http://payments:8080/charge",
                                          "headers": {}, "body": None}})
                ctx.emit({"HttpResponse": {"status": 200, "headers": {}, "body": None,
                                           "duration_ms": None}},
                         duration_ns=ctx.duration(2500))
            elif r < 0.87:
                ctx.emit({"Error": {"error_type": "TimeoutError", "message": "upstream timed out",
                                    "stack_trace": ["app/handlers.py:70", "app/client.py:12"]}})
            else:
                ctx.emit({"Custom": {"name": "cache_probe", "data": {"hit": rng.random() < 0.7}}})


def generate(cfg: SynthConfig) -> Iterator[dict]:
    """Events of every trace, trace after trace (each in its own emission order)."""
    for events in Generator(cfg).traces():
        yield from events


def config_for_events(n_events: int, **kw) -> SynthConfig:
    """A config whose output is close to n_events events (about 110 per trace)."""
    probe = SynthConfig(traces=40, **kw)
    per_trace = sum(1 for _ in generate(probe)) / probe.traces
    return SynthConfig(traces=max(1, round(n_events / per_trace)), **kw)


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
