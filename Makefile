# The README's commands. `make main` and `make test` install into .venv first (torch's CPU build, pinned
# here and not in pyproject.toml, so that GPU users keep their own build).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
PRESET ?= cpu
SEEDS ?= 0

.PHONY: install main test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,book]"
	touch $@

main: install
	$(BIN)/toxlab sweep --preset $(PRESET) --seeds $(SEEDS) | tee .sweep.log
	$(BIN)/toxlab readme --summary "$$(tail -n 1 .sweep.log)"

lint: install
	$(BIN)/ruff check toxlab tests bench

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/train_bench.py --preset $(PRESET)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
