# Two commands on a fresh machine: `make run` and `make test`. Each does all of its set-up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml apt-packages.txt | sha256sum | cut -c1-12)
export DTE_AI_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export DTE_AI_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: setup services run test lint typecheck pytest bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml apt-packages.txt
	bash scripts/install-apt.sh apt-packages.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# PostgreSQL and Redis run on this machine kind; start them if a previous job stopped them.
services:
	bash scripts/ensure-services.sh

run: setup
	$(VENV)/bin/dte-ai serve

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check dte_core ai_service tests bench
	$(VENV)/bin/mypy dte_core ai_service

pytest: setup services
	$(PY) -m pytest

test: lint pytest

bench: setup
	$(PY) bench/issue_throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache data
