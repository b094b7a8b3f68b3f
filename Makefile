# reportjobs: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
KUBECONFIG_FILE := $(CURDIR)/.cluster/kubeconfig
TESTBED := scripts/testbed

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements-dev.lock pyproject.toml
	@python3 -c 'import ensurepip' 2>/dev/null || bash $(TESTBED)/packages.sh  # python3-venv
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the locked dev dependencies

.PHONY: cluster-up
cluster-up: ## Start the test cluster (kind with Docker, else built from Debian's packages)
	bash $(TESTBED)/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop everything cluster-up started
	bash $(TESTBED)/cluster.sh down

.PHONY: image
image: ## Build the project image and load it into the cluster
	bash $(TESTBED)/image.sh

.PHONY: deploy
deploy: venv ## Install or upgrade the Helm chart (release reportjobs)
	bash $(TESTBED)/deploy.sh

.PHONY: up
up: cluster-up image deploy ## Bring everything up and show it working at http://127.0.0.1:30080
	bash $(TESTBED)/smoke.sh

.PHONY: lint
lint: venv ## ruff, mypy --strict and the import-linter contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

.PHONY: test-unit
# pytest exits 5 when it collects no test: for us that is a failure, said out loud.
PYTEST_STRICT = ( rc=0; $(PYTEST_E2E) $(1) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$rc )

test-unit: venv ## Unit tests (no cluster)
	@mkdir -p $(TEST_OUT); rc=0; $(VENV)/bin/pytest tests/unit -q --junitxml=$(TEST_OUT)/unit.xml || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no unit tests: failing"; exit 1; fi; exit $$rc

.PHONY: test-e2e
# The e2e suite on the test bed, in two phases. First the tests that share the test bed calmly,
# E2E_WORKERS at once (pytest-xdist, longest first; a module whose tests share one release
# marks itself xdist_group, so its tests stay on one worker and the release is installed once). Then the `serial` ones, alone: they disturb the whole test bed
# (etcd frozen, the API server restarted). `reliability` marks the full-size runs, which
# `make test-reliability` runs instead. The cluster and the image are made ready once, before
# the workers start. JUnit XML per phase lands in TEST_OUT (.ci/run prints its counts).
E2E_WORKERS ?= 4
TEST_OUT ?= $(CURDIR)/.cluster/test-results
E2E_ENV = KUBECONFIG=$${KUBECONFIG:-$(KUBECONFIG_FILE)} \
	REPORTJOBS_IMAGE=$${REPORTJOBS_IMAGE:-$$(cat .cluster/image)}
E2E_READY = { [ -n "$${KUBECONFIG:-}" ] || bash $(TESTBED)/cluster.sh up; } && \
	{ [ -n "$${REPORTJOBS_IMAGE:-}" ] || bash $(TESTBED)/image.sh; } && mkdir -p $(TEST_OUT)
PYTEST_E2E = $(E2E_ENV) $(VENV)/bin/pytest tests/e2e -v -rA --durations=15

test-e2e: venv ## End-to-end tests on a real cluster (brings one up unless KUBECONFIG is set)
	@$(E2E_READY)
	@rc=0; \
	$(call PYTEST_STRICT,-m "not reliability and not serial" -n $(E2E_WORKERS) --dist loadgroup \
	  --junitxml=$(TEST_OUT)/e2e-parallel.xml) || rc=1; \
	$(call PYTEST_STRICT,-m "serial and not reliability" --junitxml=$(TEST_OUT)/e2e-serial.xml) \
	  || rc=1; \
	exit $$rc

.PHONY: test
test: lint test-unit test-e2e ## Lint, unit tests, then the e2e suite on a real cluster (about 15 minutes)

.PHONY: test-reliability
test-reliability: venv ## The full-size reliability runs: burst 1,000, chaos, 300-job sharding, API-server restart, schemathesis
	@$(E2E_READY)
	@$(call PYTEST_STRICT,-m reliability --junitxml=$(TEST_OUT)/reliability.xml)

.PHONY: test-map
test-map: venv ## Render docs/reliability.md's test map from the last e2e runs (.cluster/test-map)
	$(PY) scripts/test_map.py

.PHONY: bench
# The operator benchmarks cordon both nodes and install releases: each holds the test bed's
# cluster lock exclusively (the e2e runs hold it shared). Figures land in BENCH_OUT; summary.py
# prints them side by side at the end. A benchmark prints numbers; it does not fail on speed.
BENCH_OUT ?= $(CURDIR)/.cluster/bench
CLUSTER_LOCK ?= /tmp/rj-cluster.lock
BENCH_COUNT ?= 300
GATEWAY_BENCH ?= tests/bench/gateway_vs_raw.py
EXCLUSIVE = $(if $(shell command -v flock),flock -x $(CLUSTER_LOCK))
bench: venv ## Benchmarks that print their numbers (needs `make up`; the operator ones cordon both nodes while they run)
	@mkdir -p $(BENCH_OUT) && rm -f $(BENCH_OUT)/*.json $(BENCH_OUT)/*.txt
	set -o pipefail; $(PY) $(GATEWAY_BENCH) | tee $(BENCH_OUT)/gateway.txt
	$(EXCLUSIVE) $(PY) tests/bench/operator_cost.py --count $(BENCH_COUNT) \
	  --json $(BENCH_OUT)/operator_cost.json
	$(EXCLUSIVE) $(PY) tests/bench/operator_memory.py --json $(BENCH_OUT)/operator_memory.json \
	  --profile-out $(BENCH_OUT)/operator-profile.txt
	$(EXCLUSIVE) $(PY) tests/bench/operator_scaling.py --count $(BENCH_COUNT) \
	  --json $(BENCH_OUT)/operator_scaling.json
	$(PY) tests/bench/summary.py $(BENCH_OUT)

.PHONY: clean
clean: ## Remove the venv and local state (not the cluster caches)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
