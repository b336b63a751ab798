"""The lock-order edges the deadlock analysis starts from (deadlocks.ACQUISITIONS), row by
row against a walk of each context's lock events in program order."""

from __future__ import annotations

import random

import pytest

from raceway_core.analysis import deadlocks
from raceway_core.dbutil import query_arrow
from test_causality_rules import Trace, rel
from test_deadlocks import acq


def _random_trace(rnd: random.Random) -> Trace:
    """Up to five contexts in two traces, interleaved in time (ties included), each taking
    and releasing locks of A-D at random: nested holds, re-entrant acquires, stray releases."""
    t = Trace()
    threads = [(f"tr{k % 2}", f"T{k}") for k in range(rnd.randint(1, 5))]
    held: dict[tuple, list[str]] = {th: [] for th in threads}
    for j in range(rnd.randint(1, 40)):
        trace, th = rnd.choice(threads)
        at = t.t if j and rnd.random() < 0.2 else None  # same timestamp: appearance orders them
        h = held[(trace, th)]
        r = rnd.random()
        if h and r < 0.35:
            lock = h.pop(rnd.randrange(len(h)))
            t.ev(f"e{j}", th, rel(lock), trace=trace, at=at)
        elif r < 0.42:
            t.ev(f"e{j}", th, rel(rnd.choice("ABCD")), trace=trace, at=at)  # maybe never acquired: ignored
        elif h and r < 0.5:
            lock = rnd.choice(h)  # re-entrant
            h.append(lock)
            t.ev(f"e{j}", th, acq(lock, f"l.py:{j}"), trace=trace, at=at)
        else:
            lock = rnd.choice("ABCD")
            h.append(lock)
            t.ev(f"e{j}", th, acq(lock, f"l.py:{j}"), trace=trace, at=at)
    return t


def _expected(events: list[dict]) -> list[tuple]:
    """(acquire, context, to, from, the acquire that opened the held lock, held set, locations)
    per lock held at an acquire of a lock its context did not hold."""
    by_ctx: dict[tuple, list[tuple]] = {}
    for i, e in enumerate(events):
        by_ctx.setdefault((e["trace_id"], e["metadata"]["thread_id"]), []).append((e["timestamp"], i, e))
    out = []
    for key, evs in by_ctx.items():
        count: dict[str, int] = {}
        opener: dict[str, str] = {}
        for _, _, e in sorted(evs, key=lambda x: x[:2]):
            kind, body = next(iter(e["kind"].items()))
            lock = body["lock_id"]
            if kind == "LockRelease":
                count[lock] = max(0, count.get(lock, 0) - 1)
                continue
            held = sorted(x for x, n in count.items() if n > 0)
            if lock not in held:
                out += [(e["id"], key, lock, h, opener[h], tuple(held), body["location"], "l.py:" + opener[h][1:])
                        for h in held]
                opener[lock] = e["id"]
            count[lock] = count.get(lock, 0) + 1
    return sorted(out)


# `make test` runs the first 20 of the 60 random traces (19 of them nest locks); all 60 are slow
@pytest.mark.parametrize("cases", [20, pytest.param(60, marks=pytest.mark.slow)])
def test_lock_order_rows_match_a_walk_in_program_order(tmp_path, cases):
    rnd = random.Random(18)
    nested_seen = 0
    for case in range(cases):
        t = _random_trace(rnd)
        want = _expected(t.events)
        nested_seen += bool(want)
        d = tmp_path / str(case)
        d.mkdir()
        with t.session(d) as s:
            eng = s.engine
            cur = s.store.cursor()
            try:
                got = query_arrow(cur, f"SELECT l.*, a.id AS acq_id, h.id AS held_id FROM ({deadlocks.ACQUISITIONS}) l "
                                       "JOIN events a ON a.seq = l.acq_seq JOIN events h ON h.seq = l.held_seq").to_pylist()
            finally:
                cur.close()
            rows = sorted((r["acq_id"], (eng.ctx_trace[r["ctx"]], eng.ctx_thread[r["ctx"]]), r["to_lock"],
                           r["from_lock"], r["held_id"], tuple(r["held"]), r["to_location"], r["from_location"])
                          for r in got)
            assert rows == want, case
    assert nested_seen >= cases // 3  # the cases nest locks
