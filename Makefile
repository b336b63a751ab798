# Quick start: `make run` opens the explorer on a bundled trace, `make test` runs the tests
# (`make test-slow`: the long end-to-end ones it skips; `make test-all`: both).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE ?= sample_traces/banking-unsafe.jsonl sample_traces/distributed-orders.jsonl sample_traces/slow-api.jsonl

.PHONY: run test test-slow test-all fuzz bench install install-test samples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/raceway-tui $(SAMPLE)

# Tests marked `slow` (pytest.mark.slow: reference checks, fuzzing, live reconnects,
# re-recording the samples) are left to test-slow; PYTEST_ARGS passes more options (e.g.
# -x, -k NAME). The quick ones run in JOBS processes (pytest-xdist; worksteal: a worker that
# is done takes tests queued for another, where `--dist load` left one idle for the last ~1.5
# min). Three on two cores, as tests wait on servers and subprocesses: 5 min 4 s against 5 min
# 54 s with two, the same tree one after the other at load 0.5-3; JOBS=1 runs them in one.
JOBS ?= 3
# Each test process and each `raceway-tui` subprocess a test starts imports the project and
# (pytest) rewrites the test modules: with PYTHONDONTWRITEBYTECODE set (as on this project's
# 2-core machine) that is recompiled every time, 2.6 s of CPU per pytest process
# and ~0.15 s per subprocess; the test targets let Python keep its __pycache__ (gitignored).
test test-slow test-all fuzz: export PYTHONDONTWRITEBYTECODE :=
test: install-test
	$(BIN)/python -m pytest -q -m "not slow and not fuzz" $(if $(filter-out 1,$(JOBS)),-n $(JOBS) --dist worksteal) $(PYTEST_ARGS)

test-slow: install-test
	$(BIN)/python -m pytest -q -m "slow and not fuzz" $(PYTEST_ARGS)

test-all: install-test
	$(BIN)/python -m pytest -q -m "not fuzz" $(PYTEST_ARGS)

# The server's API fuzzed by schemathesis in both modes, with and without a key (long; seeded).
fuzz: install-test
	RACEWAY_FUZZ_EXAMPLES=$${RACEWAY_FUZZ_EXAMPLES:-100} RACEWAY_FUZZ_PHASES=$${RACEWAY_FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
		$(BIN)/python -m pytest -q -o addopts=-ra tests/test_server_fuzz.py

# Re-record sample_traces/ from the example programs in examples/ (real threads, asyncio, HTTP services).
samples: install
	$(BIN)/python examples/banking.py --out sample_traces/banking-unsafe.jsonl
	$(BIN)/python examples/banking.py --locked --out sample_traces/banking-locked.jsonl
	$(BIN)/python examples/distributed_orders.py --out sample_traces/distributed-orders.jsonl
	$(BIN)/python examples/slow_api.py --out sample_traces/slow-api.jsonl
	$(BIN)/python examples/deadlock.py --out sample_traces/deadlock-transfers.jsonl

# The first table is issue 18's: the CLI's load and engine at 100k-3M events with the baselines
# (read_json, orjson, wc -l) measured in the same run; BENCH_SIZES changes its sizes.
# The 10M-event run (time and peak RSS; ~an hour on 2 loaded cores) comes last; BENCH_BIG= skips it.
BENCH_SIZES ?= 100000,300000,1000000,3000000
BENCH_BIG ?= 10000000
bench: install-test
	$(BIN)/python bench/summary.py --sizes $(BENCH_SIZES)
	$(BIN)/python bench/load.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/analyze.py --cli 100000 300000 1000000
	$(BIN)/python bench/races.py
	$(BIN)/python bench/sdk.py
	$(BIN)/python bench/incremental.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/hardening.py
	$(BIN)/python bench/tui.py --startup
	$(BIN)/python bench/tui.py --analysed
	$(BIN)/python bench/deadlocks.py
	$(BIN)/python bench/web.py
	$(if $(BENCH_BIG),$(BIN)/python bench/big.py --events $(BENCH_BIG) --baseline)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
