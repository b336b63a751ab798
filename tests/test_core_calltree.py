"""The call tree of a trace (raceway_core.analysis.calltree): against a recursive reference
on random forests, and hand-checked shapes of small traces and the distributed-orders sample."""

from __future__ import annotations

import datetime as dt
import json
import random

import numpy as np
import pytest
from test_causality_rules import Trace, call, sc
from tui_support import ROOT

from raceway_core import TraceSession
from raceway_core.analysis.calltree import _assemble

ORDERS = ROOT / "sample_traces" / "distributed-orders.jsonl"


def reference(parent: list[int], start: list[int], end: list[int]) -> list[dict]:
    """Depth-first by recursion, children in row order: one dict per node, in pre-order."""
    n = len(parent)
    kids = {i: [] for i in range(-1, n)}
    for i, p in enumerate(parent):
        kids[p].append(i)
    out: list[dict] = []

    def walk(i: int, depth: int, par: int, last: bool, root: int) -> tuple[int, int, int]:
        me = len(out)
        rec = {"row": i, "depth": depth, "parent": par, "last": last, "root": root if root >= 0 else me}
        out.append(rec)
        lo, hi, size = start[i], end[i], 0
        for k, c in enumerate(kids[i]):
            s, e, sz = walk(c, depth + 1, me, k == len(kids[i]) - 1, rec["root"])
            lo, hi, size = min(lo, s), max(hi, e), size + sz + 1
        rec.update(size=size, span_start_ns=lo, span_end_ns=hi)
        return lo, hi, size

    roots = kids[-1]
    for k, r in enumerate(roots):
        walk(r, 0, -1, k == len(roots) - 1, -1)
    return out


def random_forest(rng: random.Random, n: int) -> tuple[list[int], list[int], list[int]]:
    parent = [-1 if i == 0 or rng.random() < 0.1 else rng.randrange(max(0, i - rng.choice([1, 3, 50])), i)
              for i in range(n)]
    start = [rng.randrange(0, 1000) for _ in range(n)]
    end = [s + rng.choice([0, 0, rng.randrange(0, 500)]) for s in start]
    return parent, start, end


@pytest.mark.parametrize("seed", range(30))
def test_preorder_depths_sizes_and_spans_match_a_recursive_walk(seed):
    rng = random.Random(seed)
    n = rng.choice([0, 1, 2, 5, 40, 300])
    parent, start, end = random_forest(rng, n)
    tree = _assemble("T", np.arange(n, dtype=np.int64) + 1000, np.array(parent, dtype=np.int64),
                     np.array(["x"] * n, dtype=object), np.array(start, dtype=np.int64), np.array(end, dtype=np.int64))
    got = tree.nodes.to_pylist()
    want = reference(parent, start, end)
    assert [g["seq"] - 1000 for g in got] == [w["row"] for w in want]
    for key in ("depth", "parent", "size", "last", "root", "span_start_ns", "span_end_ns"):
        assert [g[key] for g in got] == [w[key] for w in want], key
    # what the view uses: collapsing hides exactly the descendants; guides follow the ancestors
    if n:
        collapsed = set(rng.sample(range(n), min(n, 3)))
        hidden = set()
        for i in range(n):
            a = want[i]["parent"]
            while a >= 0:
                if a in collapsed:
                    hidden.add(i)
                a = want[a]["parent"]
        assert tree.visible(collapsed).tolist() == [i for i in range(n) if i not in hidden]
        node = rng.randrange(n)
        chain, a = [], want[node]["parent"]
        while a >= 0 and want[a]["parent"] >= 0:
            chain.append(not want[a]["last"])
            a = want[a]["parent"]
        assert tree.open_levels(node) == chain[::-1]


def shape(s: TraceSession, trace_id: str) -> list[tuple[int, str, str]]:
    tree = s.call_tree(trace_id)
    rows = s.call_tree_rows(tree, list(range(tree.count)))
    return [(d, i, v) for d, i, v in zip(tree.nodes["depth"].to_pylist(), rows["id"].to_pylist(),
                                         tree.nodes["via"].to_pylist())]


def http(method, url):
    return {"HttpRequest": {"method": method, "url": url, "headers": {}, "body": None}}


def test_spawned_tasks_and_a_cross_service_call_hang_under_what_started_them(tmp_path):
    t = Trace()
    t.ev("req", "main", http("POST", "/checkout"), span="s1")
    t.ev("spawn", "main", {"AsyncSpawn": {"task_id": "k1", "spawned_by": "main"}}, span="s1")
    t.ev("w1", "worker", call("prepare"), parent="spawn", dur=5_000_000, span="s1")
    t.ev("out", "worker", http("POST", "http://pay/charge"), span="s1")
    # the payments service: its own context, reached by the call (no parent link given)
    t.ev("in", "pay-1", http("POST", "/charge"), svc="payments", span="s2", upstream="s1", parent=None)
    t.ev("p1", "pay-1", sc("payment.A", "Write", "pay.py:3", None, "ok"), svc="payments", span="s2", upstream="s1")
    t.ev("w2", "worker", call("finish"), span="s1")
    t.ev("await", "main", {"AsyncAwait": {"future_id": "k1", "awaited_at": "m.py:9"}}, span="s1")
    t.ev("done", "main", call("respond"), span="s1")
    with t.session(tmp_path) as s:
        assert shape(s, "T") == [
            (0, "req", "root"),
            (1, "spawn", "context"),
            (2, "w1", "parent"),      # the task: under the spawn
            (3, "out", "context"),
            (4, "in", "call"),        # the callee: under the outgoing request
            (5, "p1", "context"),
            (3, "w2", "context"),
            (1, "await", "context"),
            (1, "done", "context"),
        ]
        tree = s.call_tree("T")
        size = dict(zip(shape(s, "T"), tree.nodes["size"].to_pylist()))
        assert size[(0, "req", "root")] == 8 and size[(2, "w1", "parent")] == 4
        # w1 starts 30 µs after req and lasts 5 ms: the worker's subtree spans w1's 5 ms
        w1 = [i for i, r in enumerate(shape(s, "T")) if r[1] == "w1"][0]
        assert (tree.nodes["span_end_ns"][w1].as_py() - tree.nodes["span_start_ns"][w1].as_py()) == 5_000_000
        assert s.call_tree("no-such-trace").count == 0


def test_a_context_without_links_is_a_root_and_its_events_its_children(tmp_path):
    t = Trace()
    t.ev("a1", "A", call("one"))
    t.ev("b1", "B", call("other"))  # no link: a second root
    t.ev("a2", "A", call("two"))
    with t.session(tmp_path) as s:
        assert shape(s, "T") == [(0, "a1", "root"), (1, "a2", "context"), (0, "b1", "root")]
        last = s.call_tree("T").nodes["last"].to_pylist()
        assert last == [False, True, True]


def _ns(ts: str) -> int:
    d = dt.datetime.fromisoformat(ts[:26] + "+00:00")
    return int(d.timestamp()) * 10**9 + int(ts[20:29])


def test_distributed_orders_tree_hand_checked():
    """The first checkout of the sample (read in the file): frontend POST /checkout spawns
    two tasks; each sends POST /orders to the gateway, which calls orders, which calls
    payments, which calls inventory; the span of the root runs from the request to the
    last response (419.157 ms, from their timestamps)."""
    events = [json.loads(line) for line in ORDERS.read_text().splitlines()]
    by_id = {e["id"]: e for e in events}
    root_id = "3e49be63-9d34-4078-bb1c-adf35fc05e35"
    trace = by_id[root_id]["trace_id"]
    with TraceSession.open([ORDERS]) as s:
        tree = s.call_tree(trace)
        rows = s.call_tree_rows(tree, list(range(tree.count))).to_pylist()
        nodes = tree.nodes.to_pylist()
        assert tree.count == sum(e["trace_id"] == trace for e in events) == 62
        assert [r["id"] for r, n in zip(rows, nodes) if n["depth"] == 0] == [root_id]
        top = [r["id"][:4] for r, n in zip(rows, nodes) if n["parent"] == 0]
        assert top == ["6d4f", "a5ce", "2c84", "a4cf", "c289"]  # 2 spawns, 2 awaits, the response
        # the first branch goes down the services, each request under its caller's request
        chain, i = [], 1
        while i < tree.count:
            chain.append((nodes[i]["depth"], rows[i]["service"], rows[i]["kind"]))
            kids = [j for j in range(tree.count) if nodes[j]["parent"] == i and rows[j]["kind"] in
                    ("HttpRequest", "AsyncSpawn")]
            i = kids[0] if kids else tree.count
        assert chain == [(1, "frontend", "AsyncSpawn"), (2, "frontend", "HttpRequest"), (3, "gateway", "HttpRequest"),
                         (4, "gateway", "HttpRequest"), (5, "orders", "HttpRequest"), (6, "orders", "HttpRequest"),
                         (7, "payments", "HttpRequest"), (8, "payments", "HttpRequest"), (9, "inventory", "HttpRequest")]
        span = nodes[0]["span_end_ns"] - nodes[0]["span_start_ns"]
        last = next(e for e in events if e["id"].startswith("c289"))  # the checkout's response
        assert span == _ns(last["timestamp"]) - _ns(by_id[root_id]["timestamp"])
        assert round(span / 1e6, 3) == 419.157
        # payments' charge (1bfa): from its request to its last response, bank.authorize inside
        pay = next(i for i, r in enumerate(rows) if r["id"].startswith("1bfa"))
        assert nodes[pay]["size"] == 9 and round((nodes[pay]["span_end_ns"] - nodes[pay]["span_start_ns"]) / 1e6, 3) \
            == 323.614


def test_a_context_serving_two_calls_is_cut_where_each_call_enters(tmp_path):
    """One server thread handles two requests in turn: each request's events hang under its
    own caller, not all under the thread's first event."""
    t = Trace()
    t.ev("a1", "A", http("POST", "http://pay/charge"), svc="shop", span="s1")
    t.ev("in1", "pay-1", http("POST", "/charge"), svc="pay", span="s2", upstream="s1", parent=None)
    t.ev("p1", "pay-1", sc("payment.A", "Write", "pay.py:3", None, "ok"), svc="pay", span="s2", upstream="s1")
    t.ev("b1", "B", http("POST", "http://pay/charge"), svc="shop", span="s3")
    t.ev("in2", "pay-1", http("POST", "/charge"), svc="pay", span="s4", upstream="s3")
    t.ev("p2", "pay-1", sc("payment.B", "Write", "pay.py:3", None, "ok"), svc="pay", span="s4", upstream="s3")
    with t.session(tmp_path) as s:
        assert shape(s, "T") == [(0, "a1", "root"), (1, "in1", "call"), (2, "p1", "context"),
                                 (0, "b1", "root"), (1, "in2", "call"), (2, "p2", "context")]


def test_a_link_from_another_trace_leaves_a_root(tmp_path):
    t = Trace()
    t.ev("a1", "A", call("producer"), trace="T1")
    t.ev("b1", "B", call("consumer"), trace="T2", parent="a1")  # caused by T1, but T2's tree is T2's own
    t.ev("b2", "B", call("more"), trace="T2")
    with t.session(tmp_path) as s:
        assert shape(s, "T2") == [(0, "b1", "root"), (1, "b2", "context")]
        assert shape(s, "T1") == [(0, "a1", "root")]
