"""One bad event never costs its neighbours, on every load path (issues 15.3, 15.4).

Timestamps outside what the store holds, values nested too deep, NaN /
Infinity / 1e400 and impossible UTC offsets made a whole chunk or batch fail
(or were stored and broke every reader after). Each is now a reject with its
reason, and the valid events around it are stored.
"""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

from helpers import event
from raceway_core.loading import batch
from raceway_core.store import Store
from server_proc import ServerProcess


def _deep(n: int):
    v = 1
    for _ in range(n):
        v = [v]
    return v


def _sc(i: int, new_value_json: str) -> str:
    ev = event(i, kind={"StateChange": {"variable": "x", "access_type": "Write", "new_value": "@@"}})
    return json.dumps(ev).replace('"@@"', new_value_json)


BAD = {  # event text -> words its reject reason must hold
    "year 1": (json.dumps(event(100, ts="0001-01-01T00:00:00Z")), "out of range"),
    "year 9999": (json.dumps(event(101, ts="9999-12-31T23:59:59Z")), "out of range"),
    "year 10000": (json.dumps(event(102, ts="10000-01-01T00:00:00Z")), "out of range"),
    "year 1600": (json.dumps(event(103, ts="1600-01-01T00:00:00+00:00")), "out of range"),
    "offset +99:99": (json.dumps(event(104, ts="2026-11-01T12:00:00+99:99")), "offset"),
    "offset +25:00": (json.dumps(event(105, ts="2026-11-01T12:00:00.5+25:00")), "offset"),
    "nested 253": (_sc(106, json.dumps(_deep(253))), "nested"),
    "nested 5000": (_sc(107, "[" * 5000 + "]" * 5000), "nested"),
    "NaN": (_sc(108, "NaN"), "NaN"),
    "nan lower": (_sc(109, "[1, nan]"), "NaN"),
    "-Infinity": (_sc(110, "-Infinity"), "NaN"),
    "1e400": (_sc(111, "1e400"), "NaN"),
    "400 digits": (_sc(112, "1" * 400), "NaN"),
    "NaN in args": (json.dumps(event(113, kind={"FunctionCall": {"function_name": "f", "args": "@@"}}))
                    .replace('"@@"', '{"x": Infinity}'), "NaN"),
}
FINE = {  # look like the above to a quick test, but are valid and must load
    "inf in strings": json.dumps(event(200, thread="info nan Infinity 1e400")),
    "exponent 308": _sc(201, "1.5e308"),
    "tiny": _sc(202, "1e-400"),
    "nested 150": _sc(203, json.dumps(_deep(150))),
    "offset +23:59": json.dumps(event(204, ts="2026-11-01T12:00:00-23:59")),
    "year 2262": json.dumps(event(205, ts="2262-04-11T00:00:00Z")),
    "year 1678": json.dumps(event(206, ts="1678-01-01T00:00:00Z")),
}
GOOD = [json.dumps(event(i)) for i in range(3)]


def _file(tmp_path, texts: list[str], form: str):
    if form == "ndjson":
        data = "\n".join(texts) + "\n"
    elif form == "document":
        data = "[\n" + ",\n".join(texts) + "\n]\n"
    else:  # one batch line
        data = '{"events": [' + ", ".join(texts) + "]}\n"
    p = tmp_path / "in.json"
    p.write_text(data)
    return p


def _load(store: Store, tmp_path, texts: list[str], path: str) -> tuple[int, list[tuple]]:
    """Loads ``texts`` one way; (loaded, [(index of the event, reason)] of the rejects)."""
    if path.startswith("file-"):
        [s] = store.load([_file(tmp_path, texts, path[5:])])
        assert s.ok, s.line()
        rows = store.sql("SELECT line, rec, reason FROM rejects ORDER BY line, rec").to_pylist()
        if path == "file-ndjson":
            return s.loaded, [(r["line"] - 1, r["reason"]) for r in rows]
        if path == "file-document":
            return s.loaded, [(r["line"] - 2, r["reason"]) for r in rows]
        return s.loaded, [(r["rec"], r["reason"]) for r in rows]
    load_id = store.open_live("post", "http")
    old = batch.PY_FAST_MAX
    if path == "append-big":
        batch.PY_FAST_MAX = 0  # what batches over 2,000 events take
    try:
        line = '{"events": [' + ", ".join(texts) + "]}" if path == "append-body" else texts
        out = store.append(load_id, "post", [line])
    finally:
        batch.PY_FAST_MAX = old
    return out.loaded, list(out.lines[0].rejected)


PATHS = ["file-ndjson", "file-document", "file-batch-line", "append-small", "append-big", "append-body"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_event_is_rejected_and_its_neighbours_stored(tmp_path, name, path):
    text, words = BAD[name]
    texts = GOOD[:2] + [text] + GOOD[2:]
    with Store() as store:
        loaded, rejects = _load(store, tmp_path, texts, path)
        assert loaded == 3
        assert [i for i, _ in rejects] == [2]
        assert words in rejects[0][1]
        ids = store.sql("SELECT id FROM events ORDER BY seq").column("id").to_pylist()
        assert ids == ["ev-0", "ev-1", "ev-2"]


@pytest.mark.parametrize("path", PATHS)
def test_look_alikes_load(tmp_path, path):
    texts = list(FINE.values())
    with Store(keep_raw=True) as store:
        loaded, rejects = _load(store, tmp_path, texts, path)
        assert rejects == []
        assert loaded == len(texts)
        # every stored event reads back as JSON, raw and values alike
        for r in store.sql("SELECT CAST(raw AS VARCHAR) AS raw, CAST(new_value AS VARCHAR) AS v FROM events")\
                .to_pylist():
            orjson.loads(r["raw"])
            if r["v"] is not None:
                orjson.loads(r["v"])


@pytest.mark.parametrize("path", ["file-ndjson", "append-small", "append-big"])
def test_timestamps_near_the_edges_keep_their_nanoseconds(tmp_path, path):
    from datetime import datetime, timezone

    def ns(ts: str) -> int:  # independent: whole seconds by datetime, the fraction by hand
        whole, frac = ts.rstrip("Z").split(".")
        sec = int((datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
                   - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds())
        return sec * 10**9 + int(frac.ljust(9, "0"))

    inside = ["2262-04-11T23:47:16.854774123Z", "1677-09-21T00:12:43.145225001Z"]
    past = ["2262-04-11T23:47:16.854775807Z", "1677-09-21T00:12:43.145224192Z"]  # the int64 edges themselves
    texts = [json.dumps(event(i, ts=t)) for i, t in enumerate(inside + past)]
    with Store() as store:
        loaded, rejects = _load(store, tmp_path, texts, path)
        got = store.sql("SELECT ts_ns FROM events ORDER BY seq").column("ts_ns").to_pylist()
    assert loaded == 2 and got == [ns(t) for t in inside]
    assert [i for i, _ in rejects] == [2, 3] and all("out of range" in r for _, r in rejects)


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess().start()
    yield srv
    srv.stop()


def _post(server, body: bytes) -> httpx.Response:
    return httpx.post(server.url + "/events", content=body, headers={"Content-Type": "application/json"},
                      timeout=30)


def test_server_stores_the_valid_events_of_a_batch_and_names_the_bad_ones(server):
    evs = [event(i, trace="t-hostile") for i in range(1000, 1003)]
    texts = [json.dumps(e) for e in evs]
    bad = [BAD[k][0].replace('"trace-1"', '"t-hostile"') for k in ("year 10000", "NaN", "nested 253", "1e400")]
    body = ('{"events": [' + ", ".join(texts[:1] + bad + texts[1:]) + "]}").encode()
    r = _post(server, body)
    assert r.status_code == 206, r.text
    data = r.json()
    assert data["ingested"] == 3
    assert [x["index"] for x in data["rejected"]] == [1, 2, 3, 4]
    # every answer about the trace stays valid JSON
    for url in ("/api/traces/t-hostile", "/api/analyze/global", "/api/traces"):
        resp = httpx.get(server.url + url, timeout=60)
        assert resp.status_code == 200, (url, resp.text[:300])
        json.loads(resp.text, parse_constant=lambda c: pytest.fail(f"{url} answered {c}"))
    got = httpx.get(server.url + "/api/traces/t-hostile", timeout=30).json()["data"]["events"]
    assert sorted(e["id"] for e in got) == sorted(e["id"] for e in evs)


def test_server_rejects_an_all_bad_batch_with_422(server):
    r = _post(server, ('{"events": [' + BAD["NaN"][0].replace("ev-108", "ev-x") + "]}").encode())
    assert r.status_code == 422, r.text
    assert "NaN" in r.json()["rejected"][0]["reason"]


@pytest.mark.parametrize("depth", [100_000, 2_000])
def test_server_answers_400_to_a_body_nested_past_reading(server, depth):
    r = _post(server, b"[" * depth + b"]" * depth)
    assert r.status_code == 400, r.text[:300]
    r = _post(server, b'{"events": [' + b"[" * depth + b"]" * depth + b"]}")
    assert r.status_code in (400, 422), r.text[:300]
