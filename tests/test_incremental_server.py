"""The server's analysis snapshots grow with the store (new events appended to the idle
snapshot, analysed incrementally) and answer exactly what a fresh analysis answers."""

from __future__ import annotations

import json

from raceway_core import TraceSession
from raceway_core.causality import incremental
from raceway_core.server.analysis import Analyses
from raceway_core.server.snapshots import Snapshots
from raceway_core.store import Store
from test_incremental import SHAPES, _base, _write


def _answers(analyses: Analyses) -> dict:
    s = analyses.session
    return {"global": analyses.global_analysis(), "races": analyses.global_races(),
            "counts": s.counts(), "traces": s.traces().to_pylist(),
            "critical": [(c.trace_id, c.events["id"].to_pylist()) for c in s.critical_paths()]}


def test_snapshots_grow_incrementally_and_match_a_fresh_analysis(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental, "MAX_SHARE", 1e9)
    base, t = _base()
    parts = [base]
    for name in ("same contexts", "new contexts", "spawn and await"):
        parts.append(SHAPES[name](sum(map(len, parts)), t))
        t += 100
    store = Store()
    snaps = Snapshots(store, max_running=1)
    load_id = store.open_live("test", "post")
    grown = []
    try:
        for i, part in enumerate(parts):
            store.append(load_id, "test", [json.dumps({"events": part})])
            got = snaps.run(("answers", i), _answers)
            grown.append(incremental.last_reason if i else "first")
            files = [_write(tmp_path / f"p{k}.jsonl", p) for k, p in enumerate(parts[:i + 1])]
            with TraceSession.open(files) as fresh:
                want = _answers(Analyses(fresh.store))
            assert got == want, i
    finally:
        snaps.close()
        store.close()
    assert grown == ["first", None, None, None]  # each later snapshot was grown incrementally
    assert snaps.builds == len(parts) and snaps.grown == len(parts) - 1


def test_server_process_grows_its_snapshot_and_says_so(tmp_path):
    """A real `raceway-tui serve`: events POSTed after an analysis are analysed by growing
    the snapshot (what /status reports), with the answer a fresh analysis gives."""
    import httpx

    from server_proc import ServerProcess

    base, t = _base()
    extra = SHAPES["same contexts"](len(base), t)  # a quarter of the store: under MAX_SHARE
    with ServerProcess(mode="one-process") as srv, httpx.Client(base_url=srv.url, timeout=120) as http:
        assert http.post("/events", json={"events": base}).status_code == 200
        first = http.get("/api/analyze/global").json()["data"]
        assert first["total_events"] == len(base)
        assert http.get("/status").json()["data"]["analysis"]["grown"] == 0
        assert http.post("/events", json={"events": extra}).status_code == 200
        got = http.get("/api/analyze/global").json()["data"]
        status = http.get("/status").json()["data"]["analysis"]
    assert got["total_events"] == len(base) + len(extra)
    assert status["snapshots"] == 2 and status["grown"] == 1, status
    assert status["last_incremental_fallback"] is None
    with TraceSession.open([_write(tmp_path / "a.jsonl", base), _write(tmp_path / "b.jsonl", extra)]) as fresh:
        want = Analyses(fresh.store).global_analysis()
    assert got == json.loads(json.dumps(want, default=str))
