# packflow developer entry points. `make test` sets everything up from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test lint typecheck demo kafka-up kafka-down bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

demo: venv
	$(BIN)/python scripts/demo.py

bench: venv  ## SDK speed vs packflow 0.4.1, worker throughput/latency, worker memory (prints JSON)
	$(BIN)/python bench/sdk_speed.py
	$(BIN)/python bench/worker_throughput.py
	$(BIN)/python bench/worker_memory.py

kafka-up:  ## start the local single-node Kafka broker (state in .kafka/); prints its address
	scripts/kafka start

kafka-down:  ## stop the local Kafka broker
	scripts/kafka stop

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
