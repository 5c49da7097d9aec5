# Pressroom — every target installs what it needs first.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.lock requirements/bootstrap.lock | cksum | cut -d' ' -f1)
PACKAGES := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
LOCAL := $(patsubst %/pyproject.toml,-e %,$(PACKAGES))
export UV_PYTHON := $(BIN)/python
export VIRTUAL_ENV := $(abspath $(VENV))
export UV_NO_CONFIG := 1

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): requirements/dev.lock requirements/bootstrap.lock $(PACKAGES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/bootstrap.lock
	$(UV) pip sync --quiet --require-hashes requirements/dev.lock
	$(UV) pip install --quiet --no-deps --no-build-isolation $(LOCAL)
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv with the locked dependencies and every package (editable)

up: install ## run the whole system on embedded defaults (Ctrl-C stops everything)
	$(BIN)/pressroom up $(ARGS)

# The suite waits on real servers more than it computes: four workers on two cores halve its time. Each
# worker starts its own servers; a file's tests stay on one worker (they share module fixtures).
TEST_WORKERS ?= 4

test: install browser promtool ## run the test suite (everything but the slow suites)
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile --durations=15

test-slow: install browser containers ## run the slow suites (clusters, containers, faults under load)
	$(BIN)/python -m pytest -m slow --durations=15; rc=$$?; [ $$rc -eq 5 ] && echo "no slow tests collected" || exit $$rc

# The browser test drives Debian's chromium. Installed with apt where it is missing and we can (root, as
# in CI); a failed install does not fail the target: tests/test_browser.py then skips with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium is not installed and could not be installed: the browser test will be skipped"

lint: install ## ruff and mypy over sources, tests, benchmarks and docs/generate.py (also .pre-commit-config.yaml)
	$(BIN)/ruff check libs services tests benchmarks docs
	$(BIN)/ruff format --check libs services tests benchmarks docs
	$(BIN)/mypy

# Each benchmark has options for longer runs, e.g. `.venv/bin/python benchmarks/throughput.py --seconds 60`.
bench: install ## measure concurrency, throughput, scale-out, pipeline latency, fan-out and footprint (writes benchmarks/results/)
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/scaleout.py
	$(BIN)/python benchmarks/pipeline_latency.py $(ARGS)
	$(BIN)/python benchmarks/fanout.py
	$(BIN)/python benchmarks/footprint.py

bench-quality: install ## measure what gets published, topic by topic (writes benchmarks/results/quality.json)
	$(BIN)/python benchmarks/quality.py $(ARGS)

catalog: install ## regenerate the event catalogue, the NATS topology file and docs/configuration.md
	$(BIN)/python -m pressroom_contracts.catalog
	$(BIN)/python deploy/k8s/generate.py
	$(BIN)/python docs/generate.py

lock: install ## re-resolve the hashed lock files (dev, the service image, the CLI alone): no index URLs, no paths
	$(UV) lock --quiet
	$(UV) export --quiet --frozen --all-packages --all-groups --no-emit-workspace --no-header -o requirements/dev.lock
	$(UV) export --quiet --frozen --only-group build --no-emit-workspace --no-header -o requirements/build.lock
	$(UV) export --quiet --frozen --only-group services --no-emit-workspace --no-header -o requirements/services.lock
	$(UV) export --quiet --frozen --package pressroom-cli --no-dev --no-emit-workspace --no-header -o libs/cli/requirements.lock
	rm -f uv.lock

clean: ## remove the virtual environment (keeps .pressroom data)
	rm -rf $(VENV)

# promtool checks the alert rules and dashboard queries: Debian's prometheus package, unpacked into the
# venv (nothing is installed system-wide and no server is started). Without it tests/test_monitoring.py skips.
promtool: $(BIN)/promtool
$(BIN)/promtool:
	@tmp=$$(mktemp -d) && cd $$tmp && { apt-get download -qq prometheus >/dev/null 2>&1 \
	  || { apt-get update -qq >/dev/null 2>&1 && apt-get download -qq prometheus >/dev/null 2>&1; }; } \
	  && dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool $(abspath $@); rm -rf $$tmp; \
	  test -x $(abspath $@) || echo "promtool could not be installed: the monitoring tests will be skipped"

# The compose test runs the stack with podman (Debian's), building images from a debootstrap root file
# system; installed with apt where missing and we can (root, as in CI), otherwise that test skips.
containers:
	@command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 \
	  || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; } \
	  || echo "podman could not be installed: the compose test will be skipped"

.PHONY: help install up test test-slow browser promtool containers lint bench bench-quality catalog lock clean
