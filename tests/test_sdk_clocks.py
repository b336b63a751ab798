"""The SDK's vector clocks are valid (tests/clockcheck.py) under threads, asyncio tasks and locks,
and happens-before by those clocks gives the races a user expects."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading

import pytest
from clockcheck import before, clock_problems, contexts, parent_problems, races, ts_ns, vc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raceway_core.sdk import Config, MemorySink, RacewayClient


@pytest.fixture
def sdk():
    sink = MemorySink()
    client = RacewayClient(Config(service_name="svc", instance_id="i-1", warm_up_http=False), sink=sink)
    yield client, sink
    client.shutdown()


def kind(e):
    return next(iter(e["kind"]))


def valid(events):
    assert clock_problems(events) == []
    assert parent_problems(events) == []


def test_checker_catches_broken_clocks(sdk):
    """The checker itself can fail: gaps, a shared component, a dangling reference."""
    client, sink = sdk
    with client.trace():
        for i in range(3):
            client.track_state_change("x", i, i + 1)
    good = sink.events
    valid(good)
    gap = [dict(e) for e in good]
    gap[1] = {**gap[1], "causality_vector": [[c, n + 1] for c, n in gap[1]["causality_vector"]]}
    assert clock_problems(gap)
    dangling = [dict(e) for e in good]
    dangling[0] = {**dangling[0], "causality_vector": dangling[0]["causality_vector"] + [["other#x#y", 2]]}
    assert clock_problems(dangling)
    shared = [dict(e) for e in good] + [
        {**good[0], "id": "copy", "metadata": {**good[0]["metadata"], "thread_id": "another"}}]
    assert any("another" in p and "no own component" in p for p in clock_problems(shared))


def test_threads_without_lock_race_and_with_lock_do_not(sdk):
    client, sink = sdk
    for locked in (False, True):
        lock = threading.Lock()
        barrier = threading.Barrier(2)

        def withdraw(amount):
            if locked:
                with client.tracked_lock(lock, "acct"):
                    client.track_state_change("balance", None, 1000, "Read")
                    client.track_state_change("balance", 1000, 1000 - amount, "Write")
            else:
                client.track_state_change("balance", None, 1000, "Read")
                barrier.wait()
                client.track_state_change("balance", 1000, 1000 - amount, "Write")

        with client.trace():
            client.track_state_change("balance", None, 1000, "Write")
            workers = [client.spawn_thread(withdraw, a) for a in (100, 200)]
            for w in workers:
                w.join()
            client.track_state_change("balance", None, 800, "Read")
    events = sink.events
    valid(events)
    by_trace = {}
    for e in events:
        by_trace.setdefault(e["trace_id"], []).append(e)
    unsafe, safe = by_trace.values()
    found = races(unsafe)
    # Two threads each read then write: 1 write-write and 2 read-write pairs, nothing with main.
    assert sorted(r["severity"] for r in found) == ["critical", "warning", "warning"]
    assert all(r["first"]["metadata"]["thread_id"] != unsafe[0]["metadata"]["thread_id"] for r in found)
    assert races(safe) == []
    # The lock hand-off is in the clocks: the second holder's acquire follows the first release.
    rel = [e for e in safe if kind(e) == "LockRelease"]
    acq = [e for e in safe if kind(e) == "LockAcquire"]
    assert before(rel[0], acq[1])
    assert all(e["lock_set"] == ["acct"] for e in safe if kind(e) == "StateChange" and e["lock_set"])


def test_spawn_and_join_structure_threads(sdk):
    client, sink = sdk

    def child():
        client.track_state_change("c", None, 1, "Write")
        client.track_function_call("work", {"n": 1})

    with client.trace():
        client.track_function_call("start")
        t = client.spawn_thread(child)
        t.join()
        t.join()  # a second join records nothing more
        client.track_function_call("end")
    events = sink.events
    valid(events)
    spawn = next(e for e in events if kind(e) == "AsyncSpawn")
    wait = next(e for e in events if kind(e) == "AsyncAwait")
    assert sum(kind(e) == "AsyncAwait" for e in events) == 1
    assert wait["kind"]["AsyncAwait"]["future_id"] == spawn["kind"]["AsyncSpawn"]["task_id"]
    ctxs = contexts(events)
    assert len(ctxs) == 2
    child_events = next(evs for evs in ctxs.values() if evs[0]["parent_id"] == spawn["id"])
    assert [kind(e) for e in child_events] == ["StateChange", "FunctionCall"]
    assert before(spawn, child_events[0]) and before(child_events[-1], wait)
    assert child_events[0]["metadata"]["distributed_span_id"] == spawn["metadata"]["distributed_span_id"]


async def test_asyncio_tasks_gather_and_locks(sdk):
    client, sink = sdk
    alock = asyncio.Lock()

    async def job(i):
        await asyncio.sleep(0.001 * (3 - i))
        async with client.tracked_lock(alock, "shared"):
            client.track_state_change("counter", i, i + 1, "Write")
        client.track_state_change(f"own.{i}", None, i, "Write")
        return i * 10

    with client.trace():
        results = await client.gather(job(0), job(1), job(2))
        single = client.spawn_task(job(3))
        assert await single == 30
        assert await single == 30  # awaiting twice records one AsyncAwait
        # A plain create_task inherits the context: it gets its own child context.
        await asyncio.create_task(job(4))
        client.track_function_call("done")
    assert results == [0, 10, 20]
    events = sink.events
    valid(events)
    spawns = [e for e in events if kind(e) == "AsyncSpawn"]
    awaits = [e for e in events if kind(e) == "AsyncAwait"]
    assert len(spawns) == len(awaits) == 4
    assert {e["kind"]["AsyncSpawn"]["task_id"] for e in spawns} == {e["kind"]["AsyncAwait"]["future_id"]
                                                                     for e in awaits}
    assert len(contexts(events)) == 6  # the trace, 4 tracked tasks, 1 forked task
    assert races(events) == []  # the counter is always under the lock
    done = next(e for e in events if kind(e) == "FunctionCall")
    forked = next(e for e in events if kind(e) == "StateChange" and e["kind"]["StateChange"]["variable"] == "own.4")
    joined = [e for e in events if kind(e) == "StateChange"
              and e["metadata"]["thread_id"] != forked["metadata"]["thread_id"]]
    assert len(joined) == 8 and all(before(e, done) for e in joined)
    assert not before(forked, done)  # a plain create_task is not joined through the SDK


async def test_gather_raises_after_recording_every_await(sdk):
    client, sink = sdk

    async def boom():
        client.track_function_call("boom")
        raise ValueError("x")

    async def fine():
        client.track_function_call("fine")
        return 1

    with client.trace():
        with pytest.raises(ValueError):
            await client.gather(boom(), fine())
        assert await client.gather(boom(), fine(), return_exceptions=True) != [1]
    events = sink.events
    valid(events)
    assert sum(kind(e) == "AsyncAwait" for e in events) == 4


def test_inherited_context_in_plain_thread_forks(sdk):
    client, sink = sdk
    with client.trace():
        client.track_state_change("x", None, 0, "Write")
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(client.track_state_change, "x", 0, 1, "Write"))
        t.start()
        t.join()
        client.track_state_change("x", None, 1, "Read")
    events = sink.events
    valid(events)
    assert len({e["metadata"]["thread_id"] for e in events}) == 2
    # Not joined through the SDK: the forked write is concurrent with the parent's later read.
    assert [r["severity"] for r in races(events)] == ["warning"]


def test_propagation_headers_do_not_bump_the_clock(sdk):
    client, sink = sdk
    with client.trace():
        client.track_function_call("a")
        for _ in range(3):
            client.propagation_headers()
        client.track_function_call("b")
    events = sink.events
    valid(events)
    own = events[0]["causality_vector"][0][0]
    assert [vc(e)[own] for e in events] == [1, 2]


def test_lock_shared_by_two_traces_gives_foreign_components(sdk):
    client, sink = sdk
    lock = threading.Lock()
    for _ in range(2):
        with client.trace():
            with client.tracked_lock(lock, "global"):
                client.track_state_change("shared", None, 1, "Write")
    events = sink.events
    valid(events)
    second = [e for e in events if e["trace_id"] == events[-1]["trace_id"]]
    assert len(second[0]["causality_vector"]) == 2  # the first trace's release
    assert races(events) == []


def test_clock_size_cap_skips_merges_and_stays_valid():
    sink = MemorySink()
    client = RacewayClient(Config(service_name="svc", max_clock_components=3, warm_up_http=False), sink=sink)
    lock = threading.Lock()
    for _ in range(6):
        with client.trace():
            with client.tracked_lock(lock, "hot"):
                client.track_state_change("v", None, 1, "Write")
    events = sink.events
    valid(events)
    assert max(len(e["causality_vector"]) for e in events) <= 3
    assert client.skipped_merges > 0
    client.shutdown()


def test_timestamps_increase_and_durations_start_at_the_call(sdk):
    client, sink = sdk
    import time

    with client.trace():
        client.track_function_call("before")
        t0 = time.time_ns()
        client.track_function("slow", {}, lambda: time.sleep(0.02))
        t1 = time.time_ns()
        client.track_function_call("after")
    events = sink.events
    stamps = [ts_ns(e["timestamp"]) for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    slow = events[1]
    assert slow["metadata"]["duration_ns"] >= 20_000_000
    assert t0 <= stamps[1] <= t1 - 20_000_000  # stamped at its start, not its end


ops = st.lists(st.tuples(st.sampled_from(["read", "write", "lock", "spawn", "fn"]), st.integers(0, 2)),
               min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(programs=st.lists(ops, min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_random_concurrent_programs_have_valid_clocks(programs, seed):
    """Threads running random mixes of accesses, locks and nested spawns: clocks always valid,
    and a race is never reported between accesses under a common lock."""
    sink = MemorySink()
    client = RacewayClient(Config(service_name="fuzz", warm_up_http=False), sink=sink)
    locks = [threading.Lock() for _ in range(3)]
    rnd = random.Random(seed)

    def run(program, depth=0):
        for op, arg in program:
            if op == "read":
                client.track_state_change(f"v{arg}", None, 0, "Read")
            elif op == "write":
                client.track_state_change(f"v{arg}", 0, 1, "Write")
            elif op == "lock":
                with client.tracked_lock(locks[arg], f"L{arg}"):
                    client.track_state_change(f"v{arg}", 0, 1, "Write")
            elif op == "spawn" and depth < 2:
                t = client.spawn_thread(run, rnd.sample(program, min(3, len(program))), depth + 1)
                if arg:
                    t.join()
            else:
                client.track_function_call("f", {"arg": arg})

    with client.trace():
        workers = [client.spawn_thread(run, p) for p in programs]
        for w in workers:
            w.join()
    for t in threading.enumerate():
        if t is not threading.current_thread() and t.name.startswith("Thread"):
            t.join(5)
    client.shutdown()
    events = sink.events
    assert clock_problems(events) == []
    assert parent_problems(events) == []
    for r in races(events):
        assert not (set(r["first"]["lock_set"]) & set(r["second"]["lock_set"]))
