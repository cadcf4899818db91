# Two commands: `make demo` and `make test`. Everything they need is set up here.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NATIVE_SOURCES := $(shell find native -name '*.cpp' -o -name '*.hpp' -o -name '*.cu' -o -name CMakeLists.txt)
SHARED_MODELS := $(abspath ../shared/data/models)

# The detector lives beside the repository when the shared data is present.
ifneq ($(wildcard $(SHARED_MODELS)/*.onnx),)
export PV_MODELS_DIR ?= $(SHARED_MODELS)
endif

# The web viewer's browser tests drive Debian's Chromium; Playwright never downloads one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: help install demo test lint format bench chaos postgres up clean web chromium

help:
	@echo "make demo   - set up and run the embedded stack end to end"
	@echo "make test   - set up and run the whole test suite (lint included)"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks; ratios go to bench/results/"
	@echo "make chaos  - faults, fuzzing and attacks; writes RELIABILITY.md"
	@echo "make up     - run the embedded stack until Ctrl-C"

install: $(STAMP) web chromium

# The web viewer (web/, npm with a pinned lockfile), built into web/dist for the API to serve.
web:
	./scripts/build_web.sh

# Debian's Chromium for the browser tests (apt, when it is missing).
chromium:
	./scripts/ensure_chromium.sh

# The project installs editable with its native build; the stamp re-runs it when the
# dependencies or the C++ sources change.
$(STAMP): pyproject.toml $(NATIVE_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check "scikit-build-core>=0.10" "pybind11>=2.13"
	command -v cmake >/dev/null || $(PY) -m pip install -q "cmake>=3.18"
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e '.[dev]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "trackeval==1.3.0"
	touch $@

postgres:
	./scripts/ensure-postgres.sh

demo: $(STAMP) web
	$(PY) -m programs.cli demo --keep-data

up: $(STAMP)
	$(PY) -m programs.cli up

test: $(STAMP) postgres web chromium lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	./scripts/check_deploy.sh $(VENV)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The benchmarks' peers: the `bench` extra, then BoxMOT without its dependencies (see the extra's
# note in pyproject.toml: they would replace our OpenCV and pandas and pull a CUDA PyTorch).
BENCH_STAMP := $(VENV)/.bench-stamp
BOXMOT := boxmot==25.0.0

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e '.[dev,bench]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "$(BOXMOT)"
	touch $@

# bench.ladder's peer is Debian's ffmpeg command line; bench.load_delivery's is Debian's nginx.
bench: $(BENCH_STAMP)
	command -v ffmpeg >/dev/null || { apt-get update -q && apt-get install -y -q ffmpeg; }
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update -q && apt-get install -y -q nginx-light; }
	$(PY) -m bench

# The fault, fuzzing, attack and load suite (seeded, repeatable); it regenerates RELIABILITY.md.
# CHAOS_ARGS picks parts or another seed, e.g. CHAOS_ARGS='--only kills --seed 7'.
chaos: $(BENCH_STAMP) postgres web
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update -q && apt-get install -y -q nginx-light; }
	$(PY) -m chaos $(CHAOS_ARGS)

clean:
	rm -rf build .polyvision $(VENV) .pytest_cache .mypy_cache .ruff_cache
