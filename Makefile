# lmscale: the two commands that matter are `make demo` and `make test`; both set up
# everything they need on a fresh machine (Python venv, Debian packages, cluster binaries).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
LMSCALE := $(VENV)/bin/lmscale

.PHONY: all venv deps binaries cluster-up cluster-down image demo test test-unit test-integration \
        lint crds bench capacity-docs kind-up kind-down clean

all: test

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,sim]'
	touch $@

venv: $(VENV)/.installed

deps:
	@bash hack/install-deps.sh

# Finds each binary (TEST_ASSET_<NAME>, $$KUBEBUILDER_ASSETS, the version cache) or builds
# it once per version into ~/.cache/lmscale/bin.
binaries: venv
	@$(LMSCALE) cluster binaries

cluster-up: venv deps binaries
	$(LMSCALE) cluster up

cluster-down: venv
	$(LMSCALE) cluster down

# The operator image (operator/Dockerfile) and the engine stand-in, built with buildah on a
# Debian base made here (no registry), cached by their inputs, loaded into the real node.
image: venv deps binaries
	$(LMSCALE) cluster images

demo: venv deps binaries
	$(PY) hack/demo.py

test: venv deps binaries
	$(PY) -m pytest -q tests

test-unit: venv
	$(PY) -m pytest -q tests/unit

test-integration: venv deps binaries
	$(PY) -m pytest -q tests/e2e tests/integration

lint: venv
	$(VENV)/bin/ruff check operator tests hack
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

crds: venv
	$(LMSCALE) crd --write crds
	bash hack/sync_chart_crds.sh

capacity-docs: venv
	$(PY) hack/gen_capacity_doc.py

# Policy benchmark on the real traces (docs/benchmarks.md) and the operator's own speed on
# the local cluster and the activator's on loopback (docs/operator-benchmarks.md).
bench: venv deps binaries
	$(PY) hack/bench_policies.py
	$(PY) hack/bench.py
	$(PY) hack/bench_fleet.py
	$(PY) hack/bench_calibration.py
	$(PY) hack/bench_gateway.py

kind-up: venv
	bash hack/kind/up.sh

kind-down:
	bash hack/kind/down.sh

clean: cluster-down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
