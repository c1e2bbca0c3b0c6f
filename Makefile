# The two commands: `make run` and `make test`. Both build .venv from scratch when it is missing.
# `make bench [BENCH_QUICK=1]` measures the engine (docs/performance.md); it is not part of `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/rapport run --demo-shop

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .  # not in `test`: ruff is not pinned, and its style may move
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider tests/structure  # every module in a layer

bench: $(STAMP)
	BENCH_QUICK=$(BENCH_QUICK) $(BIN)/python bench/suite.py

clean:
	rm -rf $(VENV) .rapport .pytest_cache .mypy_cache .ruff_cache
