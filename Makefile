# memwal-enclave: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := tests/interop/node_modules/.installed

.PHONY: run run-plain test lint test-external test-boot test-kernel-reproducible bench image verify-build enclave-run venv node clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.lock requirements-dev.lock requirements-sdk.lock
	@bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements.lock -r requirements-dev.lock
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-sdk.lock
	touch $@

venv: $(STAMP)  ## create .venv with the pinned dependencies

$(NODE_STAMP): tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: $(NODE_STAMP)  ## install the pinned npm packages used by the interop tests

run: $(STAMP)  ## the TEE appliance: enclave runtime in a netns (as root) behind the host proxy, attested + provisioned
	$(PY) -m devtools.appliance

run-plain: $(STAMP)  ## the plain stack, no enclave (embedded databases, localnet, sidecar, relayer, indexer)
	$(PY) -m devtools.devstack

# Packages mypy checks (all of them once each is clean); strictness per package is set in pyproject.toml.
MYPY_PACKAGES := attestation memwal_enclave chain sealcrypto memwal_common localnet devtools bench imagebuild enclave host_proxy manifest relayer sidecar

test: $(STAMP) $(NODE_STAMP) lint  ## lint, then run the whole test suite
	@bash scripts/system-deps.sh
	$(PY) -m pytest -q

lint: $(STAMP)  ## ruff on everything, mypy on the checked packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(MYPY_PACKAGES)

test-external: $(STAMP) $(NODE_STAMP)  ## database-facing tests against DATABASE_URL / REDIS_URL
	$(PY) -m pytest -q -m database

bench: $(STAMP)  ## run every benchmark in bench/, then one table of subject vs baseline ratios (build/bench/summary.json)
	$(PY) -m bench

image: $(STAMP)  ## build the reproducible enclave image from the committed tree (HEAD; kernel compiled from source, cached) and print its PCRs
	@bash scripts/system-deps.sh
	$(PY) -m imagebuild build

# The second cold kernel build (minutes of CPU) is its own target; CI runs it last (.ci/run, README).
KERNEL_REBUILD_TEST := tests/imagebuild/test_kernel_reproducible.py
test-boot: image  ## the image (kernel built once, cached), two builds give the same EIF, QEMU boots: production EIF + the full test boot
	BOOT_TEST_EIF=build/image/enclave.eif $(PY) -m pytest -q -m "image or boot" --ignore=$(KERNEL_REBUILD_TEST)

test-kernel-reproducible: $(STAMP)  ## a second kernel build from a cold cache, elsewhere, gives the same bzImage (~6 min on 2 idle cores)
	@bash scripts/system-deps.sh
	$(PY) -m pytest -q -m image $(KERNEL_REBUILD_TEST)

verify-build: $(STAMP)  ## rebuild in a fresh directory and compare with PCRS=published.json
	@bash scripts/system-deps.sh
	$(PY) -m imagebuild verify --pcrs $(PCRS)

EIF ?= build/image/enclave.eif
enclave-run: $(STAMP)  ## on a Nitro parent: nitro-cli run-enclave sized by MANIFEST=file.toml [EIF=…] [DEBUG=1] [DRY_RUN=1]
	@test -n "$(MANIFEST)" || { echo "usage: make enclave-run MANIFEST=manifest.toml [EIF=$(EIF)] [DEBUG=1] [DRY_RUN=1]  (docs/nitro.md)"; exit 2; }
	$(PY) -m host_proxy.nitro_cli --manifest $(MANIFEST) --eif $(EIF) $(if $(DEBUG),--debug-mode) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) tests/interop/node_modules build
