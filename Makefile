# Race Platform: the one entry point. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help dev test test-unit test-integration lint fmt smoke migrate seed bench setup teardown install backup restore rotate-jwt-secret package deploy logs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip>=23,<26.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install everything (done by every target that needs it)

dev: $(STAMP) ## start the whole platform in the foreground (Ctrl-C stops it)
	$(PY) -m infra.local dev

test: $(STAMP) ## run the whole test suite (starts its own PostgreSQL and emulator)
	$(PY) -m pytest -q

test-unit: $(STAMP) ## unit tests only (no sockets)
	$(PY) -m pytest -q -m unit

lint: $(STAMP) ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check chalicelib infra app.py || true
	$(VENV)/bin/mypy

fmt: $(STAMP) ## apply ruff's fixes
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP) ## benchmarks vs floors measured in the same run; rewrites docs/benchmarks.md (ONLY=name)
	$(PY) -m bench.run $(if $(ONLY),--only $(ONLY),)

smoke: ## the 6-path smoke test against API_URL / WS_URL (default: the local stack)
	./tools/smoke-test.sh

migrate: $(STAMP) ## apply pending migrations (DATABASE_URL, else the local stack's database)
	$(PY) -m infra.local migrate

seed: $(STAMP) ## load the demo data (refuses when STAGE=prod)
	$(PY) -m infra.local seed

setup: $(STAMP) ## the stack in the background (same as ./setup.sh)
	$(PY) -m infra.local up

teardown: $(STAMP) ## stop the background stack (same as ./teardown.sh; WIPE=1 deletes its data)
	$(PY) -m infra.local down $(if $(WIPE),--wipe,)

backup: $(STAMP) ## compressed pg_dump into backups/ (and the backups bucket when the stack runs)
	$(PY) -m infra.local backup

restore: $(STAMP) ## destructive: make restore FILE=backups/backup-....dump CONFIRM=1
	$(PY) -m infra.local restore $(FILE) $(if $(filter 1,$(CONFIRM)),--yes,)

rotate-jwt-secret: $(STAMP) ## new JWT signing secret for the local stack (restarts it; old tokens get 401)
	$(PY) -m infra.local rotate-jwt-secret

package: $(STAMP) ## the AWS artefact: dist/$(or $(STAGE),prod)/sam.json + deployment.zip (WHEELHOUSE=dir: offline)
	$(PY) -m infra.aws.package --stage $(or $(filter dev prod,$(STAGE)),prod)
	$(VENV)/bin/cfn-lint dist/$(or $(filter dev prod,$(STAGE)),prod)/sam.json

deploy: package ## migrate the target database first (DATABASE_URL), then deploy the packaged stack (aws CLI)
	@test -n "$$DATABASE_URL" || { echo "DATABASE_URL (the target database) is required"; exit 2; }
	$(PY) -m chalicelib.db.migrate
	aws cloudformation package --template-file dist/$(or $(STAGE),prod)/sam.json \
		--s3-bucket $$DEPLOY_BUCKET --output-template-file dist/$(or $(STAGE),prod)/packaged.yaml
	aws cloudformation deploy --template-file dist/$(or $(STAGE),prod)/packaged.yaml \
		--stack-name race-platform-$(or $(STAGE),prod) --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
		--parameter-overrides DatabaseUrl=$$DATABASE_URL

logs: $(STAMP) ## follow the local stack's logs in a readable form (Ctrl-C stops)
	$(PY) -m infra.local logs
