# The README's two commands: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse a local virtual environment (.venv) and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.genface-installed

.PHONY: install demo test test-all test-fast lint docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[all,dev,docs]"
	$(PY) -m pip install --no-deps "invisible-watermark==0.2.0"
	touch $(STAMP)

install: $(STAMP)

# The main job: every model compared on the embedded synthetic faces, on CPU (<10 min on 2 cores).
# Results: logs/compare/runs/<time>/report.md (+ results.json, sample grids, loss curves).
demo: $(STAMP)
	$(VENV)/bin/genface-compare $(ARGS)

# The CI suite: everything but GPU tests (GPU tests run where CUDA is present: make test-all).
test: $(STAMP)
	$(PY) -m pytest -m "not gpu" -q $(ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not gpu and not slow" -q $(ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check genface tests experiments

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict -d site

clean:
	rm -rf logs outputs multirun site .pytest_cache
