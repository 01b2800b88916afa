# Two commands on a fresh machine: `make run` and `make test`. Each does all of its set-up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml apt-packages.txt | sha256sum | cut -c1-12)
export DTE_AI_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export DTE_AI_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# Tesseract's own threading fights the test workers for the 2 cores: one thread is faster.
export OMP_THREAD_LIMIT ?= 1
# torch must be the CPU build: from the wheel shipped on these machines, else PyTorch's CPU index
TORCH_SOURCE := $(if $(wildcard /opt/wheels/torch-*.whl),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu)

.PHONY: setup services run test lint typecheck pytest evals bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml apt-packages.txt
	bash scripts/install-apt.sh apt-packages.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH_SOURCE) -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# PostgreSQL and Redis run on this machine kind; start them if a previous job stopped them.
services:
	bash scripts/ensure-services.sh

run: setup
	$(VENV)/bin/dte-ai serve

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check dte_core ai_service embeddings evals tests bench
	$(VENV)/bin/mypy dte_core ai_service embeddings evals

pytest: setup services
	$(PY) -m pytest

# The prompt gate (no network): prompts match their recorded passing runs, recordings replay
# through the real adapters, and the local engines hold their baselines on every dataset.
evals: setup
	$(VENV)/bin/dte-ai eval check
	$(VENV)/bin/dte-ai eval replay
	$(VENV)/bin/dte-ai eval run --task all --provider local

test: lint pytest evals

bench: setup services
	$(PY) bench/issue_throughput.py
	$(PY) bench/received_verify.py
	$(PY) bench/sii_roundtrip.py
	$(PY) bench/extraction.py
	$(PY) bench/validation_latency.py
	$(PY) bench/anomaly_po_latency.py
	$(PY) bench/embeddings_throughput.py
	$(PY) bench/api_latency.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache data
