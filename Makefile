# The two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB := data/demo.duckdb

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# the whole pipeline offline: replay server, nightly ingest, classify, flag, report, export
# (a second run reuses data/demo.duckdb; `make clean` starts over)
demo: $(STAMP)
	$(BIN)/monitor --db $(DEMO_DB) demo

# two workers (pytest-xdist): the suite takes half the time on the 2 cores CI has
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) data/*.duckdb data/*.duckdb.wal data/demo
