# Two entry points: `make serve` (install and run the gateway) and `make test` (install and run every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip

.PHONY: serve test lint install install-test bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# llama-cpp-python is source-only on PyPI; these flags keep its one-time build to the library (~7 min).
export CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF

install: $(BIN)/python
	$(PIP) install -q -e '.[local]'
	$(PIP) install -q --no-deps -r requirements/local-nodeps.txt

install-test: install
	$(PIP) install -q -e '.[local,test]'

serve: install
	$(BIN)/tollway serve

test: install-test
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install-test
	$(BIN)/python -m bench
