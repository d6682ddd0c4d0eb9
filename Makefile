# se_edge: every target creates .venv and installs the project into it when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUN    ?= runs/demo

.PHONY: install demo test bench device-test clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The whole pipeline on scikit-learn's digits: runs/demo/{report.json,report.md,*.png,*.tflite,*.pte}
demo: $(STAMP)
	$(BIN)/se-edge run --out $(RUN)

## Unit and integration tests (CPU only, no network, no ../shared)
test: $(STAMP)
	$(BIN)/python -m pytest -q tests

## Latency of an existing run's artifacts (not a test; run `make demo` first)
bench: $(STAMP)
	$(BIN)/se-edge bench --run $(RUN) --runs 200 --json $(RUN)/bench.json

## Load the exported files of a run in their runtimes and check outputs and latency
device-test: $(STAMP)
	$(BIN)/python -m pytest -q device_tests --run-dir $(RUN)

clean:
	rm -rf runs .pytest_cache
