# Race Platform: the one entry point. `make help` lists the targets.
SHELL := /bin/bash
# The interpreter named in .python-version (Lambda's python3.12 runtime). pyenv's shim refuses a bare
# python3.12 outside a pyenv-managed folder, so ask pyenv for its real path first.
PYTHON_VERSION := $(strip $(file < .python-version))
PYTHON ?= $(or $(shell PYENV_VERSION=$(PYTHON_VERSION) pyenv which python$(PYTHON_VERSION) 2>/dev/null),python$(PYTHON_VERSION))
VENV := .venv
PY := $(VENV)/bin/python
# Names the interpreter version: a .venv built by another version lacks it, so it is rebuilt.
VENV_MARK := $(VENV)/.python-$(PYTHON_VERSION)
IS_VERSION := import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PYTHON_VERSION)".split("."))))
# Two install sets: the running stack (make dev) and the tools (tests, lint, bench, package).
STACK := $(VENV)/.installed-stack
TOOLS := $(VENV)/.installed-tools
PIP := $(PY) -m pip install --disable-pip-version-check
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help dev test test-unit test-integration lint fmt smoke migrate seed bench setup teardown install \
	install-stack backup restore rotate-jwt-secret package deploy logs mail

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

$(VENV_MARK):
	@if $(PY) -c '$(IS_VERSION)' 2>/dev/null; then touch $@; exit 0; fi; \
	$(PYTHON) -c '$(IS_VERSION)' || { echo "no Python $(PYTHON_VERSION) at $(PYTHON): install it" \
		"(pyenv install $(PYTHON_VERSION)) or pass PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 2; }; \
	if [ -L $(VENV) ]; then echo "$(VENV) links to a shared virtualenv that is not Python $(PYTHON_VERSION):" \
		"not rebuilding it" >&2; exit 2; fi; \
	if [ -e $(VENV) ]; then echo "$(VENV) is not Python $(PYTHON_VERSION): rebuilding it"; rm -rf $(VENV); fi; \
	echo "creating $(VENV) with $(PYTHON) ..."; \
	$(PYTHON) -m venv $(VENV) && touch $@

$(STACK): $(VENV_MARK) requirements.txt requirements-dev.txt
	@echo "installing the stack's requirements into $(VENV) (first run: a few minutes) ..."
	$(PIP) "pip>=23,<26.3"
	$(PIP) -r requirements-dev.txt
	@touch $@

$(TOOLS): $(STACK) requirements-test.txt
	@echo "installing the test, lint and benchmark tools into $(VENV) (first run: a few minutes) ..."
	$(PIP) -r requirements-test.txt
	@touch $@

install: $(TOOLS) ## create .venv and install everything (every target installs what it needs itself)

install-stack: $(STACK) ## create .venv and install only what the running stack needs

dev: $(STACK) ## start the whole platform in the foreground (Ctrl-C stops it)
	$(PY) -m infra.local dev

test: lint ## lint (ruff, ruff format --check, mypy), then the whole suite (own PostgreSQL and emulator)
	$(PY) -m pytest -q

test-unit: $(TOOLS) ## unit tests only (no sockets)
	$(PY) -m pytest -q -m unit

test-integration: $(TOOLS) ## integration tests only (real PostgreSQL and the emulator, started by the tests)
	$(PY) -m pytest -q -m integration

lint: $(TOOLS) ## ruff check, ruff format --check and mypy: fails on any finding
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(TOOLS) ## format with ruff and apply its safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(TOOLS) ## benchmarks vs floors measured in the same run; rewrites docs/benchmarks.md (ONLY=name)
	$(PY) -m bench.run $(if $(ONLY),--only $(ONLY),)

smoke: ## the 6-path smoke test against API_URL / WS_URL (default: the local stack)
	./tools/smoke-test.sh

migrate: $(STACK) ## apply pending migrations (DATABASE_URL, else the local stack's database); STATUS=1 only lists; STAGE= records a stage
	$(PY) -m infra.local migrate $(if $(filter 1,$(STATUS)),--status,)

seed: $(STACK) ## load the demo data (only into a database recorded as stage local or dev)
	$(PY) -m infra.local seed

setup: ## the stack in the background (same as ./setup.sh)
	./setup.sh

teardown: ## stop the background stack (same as ./teardown.sh; WIPE=1 deletes its data)
	./teardown.sh $(if $(filter 1,$(WIPE)),--wipe,)

backup: $(STACK) ## pg_dump + plugin bundles + attachments into backups/*.tar (and the backups bucket when the stack runs)
	$(PY) -m infra.local backup

restore: $(STACK) ## replace the database (one transaction) and put back its objects: make restore FILE=backups/backup-....tar CONFIRM=1
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/backup-....tar CONFIRM=1" >&2; exit 2; }
	$(PY) -m infra.local restore $(FILE) $(if $(filter 1,$(CONFIRM)),--yes,)

rotate-jwt-secret: $(STACK) ## new JWT signing secret for the local stack (restarts it; old tokens get 401)
	$(PY) -m infra.local rotate-jwt-secret

.PHONY: lock
lock: $(STACK) ## resolve requirements.txt into requirements.lock: hashed wheels for the python3.12 Lambda runtime
	$(PY) -m infra.aws.wheels lock

package: $(TOOLS) ## the AWS artefact from the locked wheels: dist/$(or $(STAGE),prod)/ (WHEELHOUSE=dir: offline)
	$(PY) -m infra.aws.package --stage $(or $(filter dev prod,$(STAGE)),prod)
	$(VENV)/bin/cfn-lint dist/$(or $(filter dev prod,$(STAGE)),prod)/sam.json

deploy: $(TOOLS) ## check every prerequisite, then package, migrate (stage recorded), deploy the stack, upload web + docs
	$(PY) -m infra.aws.deploy --stage $(or $(filter dev prod,$(STAGE)),prod) --check
	$(MAKE) package STAGE=$(or $(filter dev prod,$(STAGE)),prod)
	$(PY) -m infra.aws.deploy --stage $(or $(filter dev prod,$(STAGE)),prod)

mail: $(STACK) ## print the newest mail the local SES sent (invitations, confirmations): TO=address, LAST=n
	$(PY) -m infra.local.mail $(if $(TO),--to $(TO),) $(if $(LAST),--last $(LAST),)

logs: $(STACK) ## follow the local stack's logs readably; STAGE=dev|prod: every deployed function together
	$(if $(filter dev prod,$(STAGE)),$(PY) -m infra.aws.logs --stage $(STAGE),$(PY) -m infra.local logs)
