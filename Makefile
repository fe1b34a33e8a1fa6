# packflow developer entry points. `make test` sets everything up from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test lint typecheck tools demo kafka-up kafka-down bench clean

# Tools the deploy tests use, built by the project itself from the Go module proxy into .tools/
# (git-ignored): Helm, and KEDA's ScaledObject CRD (its schema) from the KEDA module.
TOOLS := .tools
HELM_VERSION := v3.22.0
KEDA_VERSION := v2.17.0
HELM := $(TOOLS)/bin/helm
KEDA_CRD := $(TOOLS)/crds/keda.sh_scaledobjects.yaml

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

# The tools build (minutes on a fresh machine: Helm compiles from source) runs beside lint,
# typecheck and the tests; the tests that need it run last and wait for it
# (tests/deploy/conftest.py).
test: venv
	@mkdir -p $(TOOLS) && rm -f $(TOOLS)/build.rc && touch $(TOOLS)/build.started
	@( $(MAKE) --no-print-directory tools > $(TOOLS)/build.log 2>&1; echo $$? > $(TOOLS)/build.rc ) &
	$(MAKE) --no-print-directory lint typecheck
	$(BIN)/pytest

tools: $(HELM) $(KEDA_CRD)

$(HELM):
	GOBIN=$(abspath $(TOOLS)/bin) CGO_ENABLED=0 go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(KEDA_CRD):
	@mkdir -p $(dir $@)
	dir=$$(go mod download -json github.com/kedacore/keda/v2@$(KEDA_VERSION) | \
	  $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') && \
	  cp "$$dir/config/crd/bases/keda.sh_scaledobjects.yaml" $@.tmp && mv $@.tmp $@

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
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
