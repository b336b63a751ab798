"""DuckDB's memory limit while the engine runs and the headless document is built: lowered
to a per-event budget (never raised), and the store's own setting back afterwards."""

from __future__ import annotations

import threading
from pathlib import Path

from raceway_core.causality import engine as engine_mod
from raceway_core.report import analysis_document
from raceway_core.session import TraceSession

SAMPLE = Path(__file__).resolve().parent.parent / "sample_traces" / "banking-unsafe.jsonl"
MiB = 1 << 20


def limit(store) -> float:
    cur = store.cursor()
    try:
        return engine_mod._bytes(cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    finally:
        cur.close()


def set_limit(store, value: str) -> None:
    cur = store.cursor()
    try:
        cur.execute(f"SET memory_limit = '{value}'").fetchall()
    finally:
        cur.close()


def test_the_run_caps_duckdb_memory_and_gives_the_setting_back():
    s = TraceSession.open([SAMPLE])
    try:
        set_limit(s.store, "8GiB")
        seen = []
        s.analyze(progress=lambda stage, i, n: seen.append(limit(s.store)))
        assert seen and all(abs(v - engine_mod.MEMORY_FLOOR) < MiB for v in seen)  # a small store: the floor
        assert abs(limit(s.store) - 8 * 1024 * MiB) < 64 * MiB
    finally:
        s.close()


def test_a_lower_setting_is_never_raised():
    s = TraceSession.open([SAMPLE])
    try:
        set_limit(s.store, "100MiB")
        seen = []
        s.analyze(progress=lambda stage, i, n: seen.append(limit(s.store)))
        assert seen and all(abs(v - 100 * MiB) < MiB for v in seen)
        assert abs(limit(s.store) - 100 * MiB) < MiB
    finally:
        s.close()


def test_the_cap_scales_with_the_events(monkeypatch):
    s = TraceSession.open([SAMPLE])
    try:
        n = s.store.counts()["events"]
        monkeypatch.setattr(engine_mod, "MEMORY_FLOOR", 1 << 20)
        per_event = (300 * MiB) // n + 1  # above the floor: the events decide
        monkeypatch.setattr(engine_mod, "MEMORY_PER_EVENT", per_event)
        seen = []
        s.analyze(progress=lambda stage, i, k: seen.append(limit(s.store)))
        assert seen and all(abs(v - n * per_event) < MiB for v in seen)
    finally:
        s.close()


def test_nested_and_concurrent_blocks_restore_only_when_the_last_ends():
    s = TraceSession.open([SAMPLE])
    try:
        set_limit(s.store, "8GiB")
        outer_in = threading.Event()
        release = threading.Event()
        during = []

        def outer():
            with engine_mod.memory_cap(s.store):
                outer_in.set()
                release.wait(30)

        t = threading.Thread(target=outer)
        t.start()
        assert outer_in.wait(30)
        with engine_mod.memory_cap(s.store):
            during.append(limit(s.store))
        during.append(limit(s.store))  # the inner block ended, the outer still runs
        release.set()
        t.join(30)
        assert all(abs(v - engine_mod.MEMORY_FLOOR) < MiB for v in during)
        assert abs(limit(s.store) - 8 * 1024 * MiB) < 64 * MiB
    finally:
        s.close()


def test_the_headless_document_is_built_under_the_cap(monkeypatch):
    s = TraceSession.open([SAMPLE])
    try:
        set_limit(s.store, "8GiB")
        seen = []
        real = TraceSession.dependencies

        def spy(self, *a, **k):
            seen.append(limit(self.store))
            return real(self, *a, **k)

        monkeypatch.setattr(TraceSession, "dependencies", spy)
        doc = analysis_document(s, max_pairs=10)
        assert doc["events"] > 0 and seen
        assert abs(seen[0] - engine_mod.MEMORY_FLOOR) < MiB
        assert abs(limit(s.store) - 8 * 1024 * MiB) < 64 * MiB
    finally:
        s.close()
