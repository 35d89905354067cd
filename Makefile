# The two commands of the README, and the pieces they are made of.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch first and pinned: on these machines the CPU wheel of 2.13.0 is cached, and any looser
# request would fetch a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: demo test test-minimal lint venv install install-dev bench fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[torch]'

install-dev: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev,torch,postgres,tensorboard,text,registry,mlflow,dask,spark]'

demo: install
	$(BIN)/watchkeeper demo

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: install-dev
	$(MAKE) lint
	$(BIN)/pytest -q

# The suite without any optional extra: proves the core imports and works without torch & co.
test-minimal:
	$(MAKE) VENV=.venv-minimal .venv-minimal/bin/python
	.venv-minimal/bin/pip install -q -e '.[dev]'
	.venv-minimal/bin/pytest -q -m "not slow" -p no:cacheprovider

bench: install-dev
	bash benchmarks/peers/setup.sh
	$(BIN)/python -m benchmarks.run all

# Schemathesis over the app's own OpenAPI, every operation, four callers, fixed seed: 5,000+
# cases (CI runs the same test with about 300).
fuzz: install-dev
	WATCHKEEPER_FUZZ_EXAMPLES=30 WATCHKEEPER_FUZZ_DEEP=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/server/test_server_fuzz.py
