# Entry points for a fresh machine (see README):
#   make run   - create .venv, install everything, run the main job
#   make test  - create .venv, install everything, lint, type-check, run the test suite
#   make test-fast - the unit tests only: no end-to-end runs (slow), no anvil nodes (anvil)
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
ARGS    ?=

.PHONY: setup run test test-fast lint bench clean

$(STAMP): pyproject.toml package.json package-lock.json
	python3 -m venv $(VENV)
	# torch first, pinned: pip then takes the CPU build and never pulls CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# ci, not install: installs exactly the committed lock and never rewrites it.
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/aoichain run $(ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -n 2 $(ARGS)

test-fast: setup
	$(VENV)/bin/pytest -n 2 -m "not slow and not anvil" $(ARGS)

bench: setup
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) node_modules
