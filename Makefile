# telewatch — `make run` and `make test` are the whole quick start.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: setup run test system-deps lint typecheck check bench-nab bench-smd bench-labels clean

## setup: create .venv with telewatch and its dev tools (a no-op when pyproject.toml is unchanged)
setup: $(STAMP)

$(STAMP): pyproject.toml
	@bash scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"
	@bash scripts/install-python-deps.sh $(BIN)/python
	@touch $(STAMP)

## system-deps: Debian packages the test suite needs (servers, browser); installs only what is missing
system-deps:
	@bash scripts/system-deps.sh

## run: load the demo month, detect, and serve the UI and API on http://127.0.0.1:8000
##      (the first start prints a one-time sign-in link; see docs/security.md)
run: setup
	$(BIN)/telewatch demo
	$(BIN)/telewatch serve

## test: the whole suite (unit, conformance, integration against real servers, browser)
test: setup system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

check: lint typecheck

bench-nab: setup
	$(BIN)/telewatch bench nab

bench-smd: setup
	$(BIN)/telewatch bench smd

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
