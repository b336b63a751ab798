"""The NaN / Infinity / 1e400 pre-filter (loading/guard.py) against a brute force:
every line DuckDB's JSON reader takes but orjson refuses (what the guard is for) comes
out of ``non_finite_lines``, and no line orjson reads, whatever the surrounding bytes."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import orjson
import pytest

from raceway_core.loading import guard

TOKENS = ["nan", "NaN", "-nan", "+Inf", "Infinity", "-infinity", "inf", "NAN", "iNf", "naN", "1e400", "1E+400",
          "-2.0e-400", "1.5e308", "3e45", "1e0400", "12e1000", "7e-3", "1" * 310, "1" * 300, "0." + "0" * 400 + "1",
          '"info"', '"a nan b"', '"3e456"', '"' + "9" * 320 + '"', "null", "true", "7", "-0.5e-3", "[]", "{}"]
SEPS = [",", ", ", ",\t", ":", ": ", "[", "[ ", " ", "", "-", "+", "x", "e", '"', "1", "."]


def _line(rng: random.Random) -> str:
    """Mostly valid JSON arrays of hostile tokens, sometimes garbage around them."""
    if rng.random() < 0.5:
        return "[" + ", ".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 6))) + "]"
    return "".join(rng.choice(SEPS) + rng.choice(TOKENS) for _ in range(rng.randint(1, 8)))


def _parses(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _brute(lines: list[str]) -> tuple[set[int], set[int]]:
    """(lines DuckDB reads and orjson does not: must be found, lines orjson reads: must not)."""
    con = duckdb.connect()
    duck = [r[0] for r in con.execute("SELECT json_valid(unnest(?))", [lines]).fetchall()]
    must = {i for i, text in enumerate(lines) if duck[i] and not _parses(text)}
    return must, {i for i, text in enumerate(lines) if _parses(text)}


@pytest.mark.parametrize("piece", [None, 7, 64])  # the block is classified piece by piece
@pytest.mark.parametrize("seed", range(20))
def test_non_finite_lines_match_a_line_by_line_check(seed, piece, monkeypatch):
    if piece:
        monkeypatch.setattr(guard, "_PIECE", piece)  # many piece boundaries inside tokens
    rng = random.Random(seed)
    lines = [_line(rng) for _ in range(200)]
    data = "".join(x + "\n" for x in lines).encode()
    offsets = np.zeros(len(lines) + 1, np.int64)
    np.cumsum([len(x.encode()) + 1 for x in lines], out=offsets[1:])
    must, fine = _brute(lines)
    assert must and fine, "the sample holds both kinds"
    found = set(guard.non_finite_lines(data, np.frombuffer(data, np.uint8), offsets))
    assert must <= found
    assert not found & fine


def test_a_block_may_start_with_the_token():
    # nothing before the token: the first bytes of a block are looked at whatever they are
    for text in ("nan", "-Infinity", "+inf", "NaN,1"):
        data = (text + "\n").encode()
        offsets = np.array([0, len(data)], np.int64)
        assert guard.non_finite_lines(data, np.frombuffer(data, np.uint8), offsets) == [0], text


def test_the_array_may_be_a_prefix_of_the_data():
    # the reader passes a block's complete lines as a view of a longer buffer
    data = b'[1, NaN]\n[2]\n[3, -inf'
    arr = np.frombuffer(data, np.uint8, count=13)
    assert guard.non_finite_lines(data, arr, np.array([0, 9, 13], np.int64)) == [0]


def test_valid_look_alikes_are_not_rejected():
    lines = ['["info nan Infinity 1e400"]', "[1.5e308]", "[1e-400]", '{"id": "3e456a"}', "[" + "1" * 300 + "]"]
    data = "".join(x + "\n" for x in lines).encode()
    offsets = np.zeros(len(lines) + 1, np.int64)
    np.cumsum([len(x) + 1 for x in lines], out=offsets[1:])
    assert guard.non_finite_lines(data, np.frombuffer(data, np.uint8), offsets) == []
    assert all(orjson.loads(x) is not None for x in lines)
