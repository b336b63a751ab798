"""Every benchmark script answers --help at once and writes nothing (issue 16.6)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tui_support import ROOT

SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if p.name != "common.py")


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_the_script_and_runs_nothing(script, tmp_path):
    env = dict(os.environ, RACEWAY_BENCH_OUT=str(tmp_path / "out"))
    r = subprocess.run([sys.executable, f"bench/{script}", "--help"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ("usage" in r.stdout.lower() or "benchmark" in r.stdout.lower()) and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and not (ROOT / "bench" / "out").exists()


def test_benchmarks_write_outside_the_repository():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import common
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert ROOT not in common.OUT.resolve().parents
