# Two commands matter (see README): `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data
DEMO_STUDY ?= $(DATA)/tcia-brain-tumor-progression/PGBM-001/1992-04-02
DEMO_OUT ?= output/demo
export HOLOSCAN_LOG_LEVEL ?= WARN

.PHONY: install system-deps demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# DICOM validators and an independent RTSTRUCT reader used by the integration tests (Debian packages).
system-deps:
	@command -v dciodvfy >/dev/null && command -v plastimatch >/dev/null && command -v dcmdump >/dev/null || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dicom3tools plastimatch dcmtk; }

demo: install
	@test -d "$(DEMO_STUDY)" || { echo "sample study $(DEMO_STUDY) not found (needs ../shared/data)"; exit 2; }
	ulimit -s 32768; start=$$(date +%s.%N); \
	  $(BIN)/python -m app -i "$(DEMO_STUDY)" -o "$(DEMO_OUT)"; rc=$$?; \
	  echo "wall time $$(echo "$$(date +%s.%N) - $$start" | bc) s"; \
	  [ $$rc -eq 0 ] && echo "outputs in $(abspath $(DEMO_OUT)): $$(ls $(DEMO_OUT) | tr '\n' ' ')"; exit $$rc

test: install system-deps
	ulimit -s 32768; $(BIN)/python -m pytest -q -ra

test-fast: install
	ulimit -s 32768; $(BIN)/python -m pytest -q -ra -m "not integration and not slow"

lint: install
	$(BIN)/ruff check app operators training tests

clean:
	rm -rf output work/eval_* .pytest_cache
