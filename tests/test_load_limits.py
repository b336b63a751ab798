"""Hostile files load in bounded memory: records past --max-record-size are rejects (issue 15.13)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import zlib

import pytest

from helpers import event
from raceway_core.formats import ImportOptions
from raceway_core.loading import reading
from raceway_core.loading.reading import parse_size
from raceway_core.store import Store


def _peak_rss_mb(args: list[str], seconds: float | None = None) -> tuple[float, str]:
    """Run the CLI; its peak RSS (VmHWM) in MB, sampled until it ends or ``seconds`` pass."""
    proc = subprocess.Popen([sys.executable, "-m", "raceway_tui.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    peak = 0.0
    deadline = time.monotonic() + (seconds or 600)
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            break
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
    out = proc.communicate()[0]
    return peak, out


def test_a_line_past_the_limit_is_a_reject_and_memory_stays_bounded(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w") as f:
        f.write(json.dumps(event(1)) + "\n")
        f.write('{"id": "big", "pad": "' + "a" * 120_000_000 + '"}\n')
        f.write(json.dumps(event(2)) + "\n")
    peak, out = _peak_rss_mb(["load", str(path)])
    assert "loaded 2 events, 1 rejected (line 2: record of 120,000,024 bytes is larger than the limit" in out, out
    assert peak < 600, f"peak RSS {peak:.0f} MB for a 120 MB line"


def test_dev_zero_does_not_grow_without_bound():
    peak, _ = _peak_rss_mb(["load", "/dev/zero"], seconds=6)
    assert 0 < peak < 400, f"peak RSS {peak:.0f} MB reading /dev/zero"


def test_a_gzip_bomb_is_inflated_a_block_at_a_time(tmp_path):
    path = tmp_path / "bomb.jsonl.gz"
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        f.write(c.compress((json.dumps(event(1)) + "\n").encode()))
        zeros = b"\0" * (64 << 20)
        for _ in range(16):  # 1 GB of NULs on one line, ~1 MB on disk
            f.write(c.compress(zeros))
        f.write(c.compress(b"\n" + (json.dumps(event(2)) + "\n").encode()))
        f.write(c.flush())
    peak, out = _peak_rss_mb(["load", str(path)])
    assert "loaded 2 events, 1 rejected (line 2: record of 1,073,741,824 bytes is larger" in out, out
    assert peak < 600, f"peak RSS {peak:.0f} MB for a 1 GB gzip bomb"


@pytest.mark.parametrize("block", [64, 1000, 1 << 20])
@pytest.mark.parametrize("where", ["first", "middle", "last", "last-no-newline"])
def test_oversized_lines_anywhere_across_blocks(tmp_path, monkeypatch, block, where):
    monkeypatch.setattr(reading, "BLOCK", block)
    good = [json.dumps(event(i)) for i in range(4)]
    big = json.dumps(event(99, thread="x" * 3000))
    lines = {"first": [big] + good, "middle": good[:2] + [big] + good[2:],
             "last": good + [big], "last-no-newline": good + [big]}[where]
    text = "\n".join(lines) + ("" if where == "last-no-newline" else "\n")
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    plain = tmp_path / "t.jsonl"
    plain.write_text(text)
    for p in (plain, path):
        with Store() as store:
            [s] = store.load([p], options=ImportOptions(max_record=2000))
            assert (s.loaded, s.rejected, s.records) == (4, 1, 5), s.line()
            [rej] = store.sql("SELECT line, reason, raw FROM rejects").to_pylist()
            assert rej["line"] == lines.index(big) + 1
            assert f"record of {len(big):,} bytes" in rej["reason"]
            assert rej["raw"].startswith(big[:500])
            ids = store.sql("SELECT id FROM events ORDER BY seq").column("id").to_pylist()
            assert ids == [f"ev-{i}" for i in range(4)]


def test_sizes_parse():
    assert parse_size("32M") == 32 << 20
    assert parse_size("1g") == 1 << 30
    assert parse_size("512KiB") == 512 << 10
    assert parse_size("1000") == 1000
    with pytest.raises(ValueError):
        parse_size("lots")


def test_cli_option_sets_the_limit(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(event(1)) + "\n" + json.dumps(event(2, thread="y" * 5000)) + "\n")
    out = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "load", str(path), "--max-record-size", "4k"],
                         capture_output=True, text=True)
    assert "loaded 1 event, 1 rejected (line 2: record of" in out.stdout, out
    bad = subprocess.run([sys.executable, "-m", "raceway_tui.cli", "load", str(path), "--max-record-size", "x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--max-record-size" in bad.stderr
