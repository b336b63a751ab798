# Quick start: `make run` opens the explorer on a bundled trace, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE ?= sample_traces/banking-unsafe.jsonl sample_traces/distributed-orders.jsonl sample_traces/slow-api.jsonl

.PHONY: run test fuzz bench install install-test samples clean

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

test: install-test
	$(BIN)/python -m pytest -q

# The server's API fuzzed by schemathesis in both modes, with and without a key (long; seeded).
fuzz: install-test
	RACEWAY_FUZZ_EXAMPLES=$${RACEWAY_FUZZ_EXAMPLES:-100} RACEWAY_FUZZ_PHASES=$${RACEWAY_FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
		$(BIN)/python -m pytest -q -o addopts=-ra tests/test_server_fuzz.py

# Re-record sample_traces/ from the example programs in examples/ (real threads, asyncio, HTTP services).
samples: install
	$(BIN)/python examples/banking.py
	$(BIN)/python examples/banking.py --locked
	$(BIN)/python examples/distributed_orders.py
	$(BIN)/python examples/slow_api.py
	$(BIN)/python examples/deadlock.py

bench: install-test
	$(BIN)/python bench/load.py
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/analyze.py --cli 100000 300000 1000000
	$(BIN)/python bench/races.py
	$(BIN)/python bench/sdk.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/hardening.py
	$(BIN)/python bench/tui.py --analysed
	$(BIN)/python bench/deadlocks.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
