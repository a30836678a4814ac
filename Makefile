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
DEMO_DAY := $(shell date -u +%F)

demo: bootstrap
	$(POLYFLOW) stack status
	$(POLYFLOW) health
	$(POLYFLOW) smoke
	$(POLYFLOW) catalog import $(DEMO_CATALOG)/products.csv --tenant acme
	$(POLYFLOW) catalog import $(DEMO_CATALOG)/products.jsonl --tenant globex
	$(POLYFLOW) reindex --tenant acme
	$(POLYFLOW) reindex --tenant globex --mode incremental
	$(POLYFLOW) order place --tenant acme KET-001=1 TOR-7=2 --key demo-acme-1 \
		--customer ann --email ann@example.com --name "Ann Lee"
	$(POLYFLOW) order place --tenant acme KNIFE-8=1 --currency CHF --key demo-acme-2 --via-api \
		--customer bo --email bo@example.com --name "Bo Chen"
	$(POLYFLOW) order place --tenant globex KET-001=2 --key demo-globex-1 \
		--customer cy --email cy@example.com --name "Cy Diaz"
	$(POLYFLOW) outbox sync
	$(POLYFLOW) events generate .stack/demo-events-acme.jsonl --tenant acme --day $(DEMO_DAY) \
		--events 3000 --customers ann,bo --skus KET-001,TOR-7,KNIFE-8
	$(POLYFLOW) events generate .stack/demo-events-globex.jsonl --tenant globex --day $(DEMO_DAY) \
		--events 2000 --customers cy --skus KET-001 --seed 2
	$(POLYFLOW) events ingest .stack/demo-events-acme.jsonl --tenant acme
	$(POLYFLOW) events ingest .stack/demo-events-globex.jsonl --tenant globex
	$(POLYFLOW) analytics rollup --tenant acme --day $(DEMO_DAY)
	$(POLYFLOW) analytics rollup --tenant globex --day $(DEMO_DAY)
	$(POLYFLOW) analytics show --tenant acme --day $(DEMO_DAY)
	$(POLYFLOW) order show --tenant acme
	$(POLYFLOW) order show --tenant globex
	$(POLYFLOW) search kettle --tenant acme
	$(POLYFLOW) search tea --tenant globex --max-price 30
	$(POLYFLOW) recommendations rebuild --tenant acme
	$(POLYFLOW) recommendations rebuild --tenant globex
	$(POLYFLOW) recommend --tenant acme --product KET-001
	$(POLYFLOW) recommend --tenant acme --customer ann
	$(POLYFLOW) recommend --tenant globex --product KET-001

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
