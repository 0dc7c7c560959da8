PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest tests

demo: $(STAMP)
	$(BIN)/ojd run examples/render-demo.yaml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: bench bench-smoke

$(BENCH_STAMP):
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet 'openjd-cli==0.8.0' py-spy
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m compileall -q src
	$(BIN)/python benchmarks/bench.py --reference $(BENCH_VENV) --results benchmarks/RESULTS.md

bench-smoke: $(STAMP)
	$(BIN)/python benchmarks/bench.py --smoke
