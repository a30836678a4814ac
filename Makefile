# Two entry points for a fresh machine: `make demo` and `make test`. Each does all set-up first:
# Debian packages, the virtualenv, the local stack of six real servers and their schemas.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
POLYFLOW := $(BIN)/polyflow
PYTHON ?= python3
# Flows run from the command line report to the stack's Prefect server (UI on port 4200);
# their Prefect settings live with the stack's state, not in ~/.prefect.
export PREFECT_HOME ?= $(CURDIR)/.stack/prefect-cli
export PREFECT_API_URL ?= http://127.0.0.1:4200/api
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: setup system stack bootstrap demo test lint down status clean

setup: system $(BIN)/.installed

system:
	bash deployments/stack/install-system-packages.sh

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

stack: setup
	$(POLYFLOW) stack up

bootstrap: stack
	$(POLYFLOW) bootstrap

DEMO_CATALOG := tests/fixtures/catalog

demo: bootstrap
	$(POLYFLOW) stack status
	$(POLYFLOW) health
	$(POLYFLOW) smoke
	$(POLYFLOW) catalog import $(DEMO_CATALOG)/products.csv --tenant acme
	$(POLYFLOW) catalog import $(DEMO_CATALOG)/products.jsonl --tenant globex
	$(POLYFLOW) reindex --tenant acme
	$(POLYFLOW) reindex --tenant globex --mode incremental
	$(POLYFLOW) search kettle --tenant acme
	$(POLYFLOW) search tea --tenant globex --max-price 30

test: bootstrap
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

status: setup
	$(POLYFLOW) stack status

down:
	$(POLYFLOW) stack down

clean: down
	rm -rf .stack
