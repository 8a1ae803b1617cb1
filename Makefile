# liveq: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
# Install this torch build first: an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/liveq compare --config livestream_default --out runs/demo --episodes 2000 --checkpoint latest --json runs/demo/compare.json

test: $(STAMP)
	$(BIN)/pytest -q --timeout=900

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/liveq bench

clean:
	rm -rf $(VENV) runs .pytest_cache
