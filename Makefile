# The README's commands. `make main` and `make test` install into .venv first (torch's CPU build, pinned
# here and not in pyproject.toml, so that GPU users keep their own build). `make main` renders the book from
# the executed chapters and executes nothing; `make reproduce` re-executes the stale and missing chapters
# (hours at the cpu level from an empty cache: it prints what it will compute and the time first).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
LEVEL ?= cpu
PRESET ?= cpu

.PHONY: install main reproduce test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,book,judges]"
	touch $@

main: install
	$(BIN)/toxlab book --level $(LEVEL)
	$(BIN)/toxlab readme --level $(LEVEL)

reproduce: install
	$(BIN)/toxlab book --level $(LEVEL) --execute
	$(BIN)/toxlab readme --level $(LEVEL)

lint: install
	$(BIN)/ruff check toxlab tests bench notebooks

# Unit tests, then every chapter executed at the smoke level and the book built with warnings as errors,
# then the rendered pages in headless Chromium and nbval on the executed chapters.
SMOKE_BOOK := _build/book-smoke

test: lint
	$(BIN)/toxlab book --level smoke --execute --out $(SMOKE_BOOK)
	TOXLAB_BOOK_DIR=$(SMOKE_BOOK) $(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg \
		$(SMOKE_BOOK)/chapters

bench: install
	$(BIN)/python bench/train_bench.py --preset $(PRESET)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
