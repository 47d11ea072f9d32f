# The two commands of the README: `make demo` and `make test`. Each creates .venv from nothing when missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned, so that nothing later pulls a different build. torchvision is not ours (no module
	# here imports it) but timm's: timm requires it and imports it with timm.layers; pinned beside torch so
	# that timm's install does not choose a torchvision built for another torch
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m medicane_hf.demo

test: $(STAMP)
	$(PY) -m pytest -q -ra --timeout=900

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow" --timeout=600

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
