# Every target sets itself up: `make run` and `make test` install into .venv/ when needed.
VENV   := .venv
PY     := $(VENV)/bin/python
QA     := $(VENV)/bin/qa
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test test-fast lint format eval bench model clean

install: $(STAMP)

# torch first, pinned: its CPU build is on this machine's disk, while an unpinned torch would
# pull a several-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

model: install
	$(QA) model build

run: install
	$(QA) model build
	$(QA) ingest seeds/
	$(QA) serve --host $(HOST) --port $(PORT)

# The model (and its ONNX export) first: test processes would otherwise each wait on building it.
test: install
	$(QA) model build >/dev/null
	$(PY) -m pytest

# Everything but the tests marked `model` (the real model) and `browser` (headless Chromium); no
# model build needed. About 5 minutes on two cores.
test-fast: install
	$(PY) -m pytest -m "not model and not browser"

eval: install
	$(QA) eval

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(QA) bench

# Not in CI (it takes minutes): 8 clients for 60 s against a real `qa serve` on 127.0.0.1; see docs/reliability.md.
.PHONY: soak
soak: install
	$(QA) model build
	$(PY) -m qa.reliability.soak --seconds 60 --clients 8

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) data .pytest_cache
