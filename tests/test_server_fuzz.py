"""Schemathesis against /openapi.json of real `raceway-tui serve` processes, both modes,
with a key and without: no request it makes gets a 5xx.

`make test` runs a short seeded pass in the default mode with a key; `make fuzz`
every combination, long (RACEWAY_FUZZ_EXAMPLES, RACEWAY_FUZZ_PHASES, RACEWAY_FUZZ_SEED)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from helpers import event
from server_proc import ServerProcess

EXAMPLES = os.environ.get("RACEWAY_FUZZ_EXAMPLES", "8")
PHASES = os.environ.get("RACEWAY_FUZZ_PHASES", "fuzzing")
SEED = os.environ.get("RACEWAY_FUZZ_SEED", "15")
KEY = "fuzz-key"


def _schemathesis() -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.exists():
        return str(exe)
    found = shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is not installed: `make install-test` installs it")
    return found


@pytest.mark.parametrize("server_mode,keyed", [
    pytest.param("front", True, id="front-key"),  # the short pass in `make test` (about 20 s)
    pytest.param("front", False, id="front-no-key", marks=pytest.mark.fuzz),
    pytest.param("one-process", True, id="one-process-key", marks=pytest.mark.fuzz),
    pytest.param("one-process", False, id="one-process-no-key", marks=pytest.mark.fuzz),
])
def test_no_request_from_schemathesis_gets_a_5xx(server_mode, keyed, tmp_path):
    with ServerProcess(mode=server_mode, api_keys=(KEY,) if keyed else ()) as srv:
        headers = {"content-type": "application/json", **({"X-Raceway-Key": KEY} if keyed else {})}
        # traces with ids a generator is likely to try, so the trace routes reach the analyses
        evs = [event(i, trace=t, thread=f"t{i % 2}") for i, t in enumerate(["0", "a", "", "0", "a", "A", "00"])]
        r = httpx.post(srv.url + "/events", content=orjson.dumps({"events": evs}), headers=headers, timeout=30)
        assert r.status_code in (200, 206), r.text
        cmd = [_schemathesis(), "run", srv.url + "/openapi.json", "--checks", "not_a_server_error",
               "--max-examples", EXAMPLES, "--seed", SEED, "--phases", PHASES, "--request-timeout", "60",
               "--continue-on-failure", "--no-color"]
        if keyed:
            cmd += ["--header", f"X-Raceway-Key: {KEY}"]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=1800,
                             env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
        report = out.stdout[-6000:] + out.stderr[-2000:]
        assert out.returncode == 0, report
        assert "generated" in report and " 0 passed" not in report, report
