# Two commands on a fresh machine:  make demo   |   make test
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint data clean

# exact versions from constraints.txt; pyproject.toml itself only sets compatible ranges
$(BIN)/retain: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(BIN)/retain

setup: $(BIN)/retain

data: setup
	$(BIN)/retain data fetch mnist

demo: data
	$(BIN)/retain demo --out results/demo

lint: setup
	$(BIN)/ruff check src tests $(wildcard benchmarks)
	$(BIN)/lint-imports

test: data lint
	$(BIN)/python -m pytest -x --durations=15

clean:
	rm -rf $(VENV) results .pytest_cache
