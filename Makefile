# TaskForge Billing. `make run` and `make test` are the two Quick start commands: both set up
# everything they need (virtualenv, packages, buf) on a fresh machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVICES := metering subscriptions
PACKAGES := libs/common $(addprefix services/,$(SERVICES))
STAMP := $(VENV)/.installed

.PHONY: setup protos migrate run lint test bench clean

$(STAMP): requirements.txt requirements-dev.txt package.json $(addsuffix /pyproject.toml,$(PACKAGES))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	npm install --no-audit --no-fund --silent
	touch $@

setup: $(STAMP)

## Regenerate the Python code for protos/ into libs/common/src/taskforge (committed).
protos: setup
	$(BIN)/python scripts/gen_protos.py

## Apply every service's Alembic migrations to the database its TASKFORGE_<SVC>_DATABASE_URL names.
migrate: setup
	@for svc in $(SERVICES); do $(BIN)/python -m taskforge_common.db.migrate $$svc || exit 1; done

## Run every service locally on SQLite (or the configured databases) in the foreground.
run: setup
	$(BIN)/python scripts/run_local.py

lint: setup
	node_modules/.bin/buf lint
	node_modules/.bin/buf format --exit-code > /dev/null
	node_modules/.bin/buf breaking --against '.git#branch=main'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/common/src $(addsuffix /src,$(addprefix services/,$(SERVICES))) tests bench scripts

## Every test: unit, storage and end-to-end, on PostgreSQL and SQLite.
test: lint
	$(BIN)/python -m pytest

## Every benchmark; installs h2load (Debian's nghttp2-client) when missing, or says why not.
bench: setup
	$(BIN)/python -m bench.run_all --install-h2load

clean:
	rm -rf $(VENV) node_modules var .mypy_cache .ruff_cache .pytest_cache
