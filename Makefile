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

bench: install
	ulimit -s 32768; mkdir -p output; $(BIN)/python -m tools.benchmarks.bench --out output/bench.json

lint: install
	$(BIN)/ruff check app operators training tools tests

clean:
	rm -rf output work/eval_* .pytest_cache

# ---- MAP: the MONAI Application Package container (docs/deployment.md) --------------------------------
# make map-deps       Docker engine + debootstrap (Debian packages); starts dockerd if none answers
# make network-deps   Orthanc, the stand-in PACS / planning system of the DICOM network test
# make map-base       offline base image: Debian 12 by debootstrap, `docker import`
# make wheelhouse     every wheel the image needs, for the offline (--no-index) build
# make map            build the MAP image from the local base + wheelhouse (CI); MAP_BASE=<image> to change base
# make map-test       run the image with docker run as `monai-deploy run` would, compare with the in-process run
MAP_NAME ?= gbm-gtv-map
MAP_BASE ?= gbm-gtv-map-base:bookworm
WHEELHOUSE ?= build/wheelhouse

.PHONY: map-deps network-deps map-base wheelhouse map map-test

map-deps:
	@command -v dockerd >/dev/null && command -v debootstrap >/dev/null || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap; }
	@docker info >/dev/null 2>&1 || { mkdir -p build; (dockerd > build/dockerd.log 2>&1 &); \
	  for i in $$(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done; docker info >/dev/null; }

network-deps:
	@command -v Orthanc >/dev/null && command -v storescu >/dev/null || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc dcmtk; }

map-base: map-deps
	tools/map/base-image.sh $(MAP_BASE)

$(WHEELHOUSE)/requirements.txt: pyproject.toml tools/map/requirements.py tools/map/wheelhouse.sh
	tools/map/wheelhouse.sh $(WHEELHOUSE)

wheelhouse: install $(WHEELHOUSE)/requirements.txt

map: install map-base wheelhouse
	@mkdir -p models  # the bundles the image carries (an empty folder builds an image that needs -m / a mount)
	@version=$$($(BIN)/python tools/map/manifests.py --config app.yaml --get application.version); \
	  start=$$(date +%s); set -x; \
	  docker build --build-arg BASE_IMAGE=$(MAP_BASE) --build-arg WHEELHOUSE=$(WHEELHOUSE) \
	    --build-arg APP_VERSION=$$version \
	    --build-arg MONAI_DEPLOY_APP_SDK_VERSION=$$($(PYTHON) tools/map/requirements.py --version monai-deploy-app-sdk) \
	    --build-arg VCS_REF=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
	    --build-arg BUILD_DATE=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
	    -t $(MAP_NAME):$$version -t $(MAP_NAME):latest . ; { set +x; } 2>/dev/null; \
	  echo "built $(MAP_NAME):$$version in $$(( $$(date +%s) - start )) s, size $$(docker image inspect \
	    -f '{{.Size}}' $(MAP_NAME):$$version | awk '{printf "%.2f GB", $$1/1e9}')"

map-test: map
	ulimit -s 32768; MAP_IMAGE=$(MAP_NAME):latest $(BIN)/python -m pytest -q -ra -m docker tests/integration/test_map.py
