# The two commands a new machine needs: `make demo` and `make test` (both set everything up).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel by default (on disk here); a GPU user sets e.g. TORCH_SPEC="torch==2.13.0" with their index.
TORCH_SPEC ?= torch==2.13.0
PORT ?= 3000
export PTOK_WORKDIR ?= $(CURDIR)
export DAGSTER_HOME ?= $(CURDIR)/.ptok/dagster_home
export PTOK_CONFIG ?= $(CURDIR)/configs/demo.yaml
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test ui bench gpu-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/ptok demo

# UTF-8 text I/O whatever the machine's locale; the suite itself pins no clock, zone, port or core count.
# Two pytest-xdist workers, a whole file each (module-scoped demo worlds are built once), whole-graph
# files first; every test runs single-threaded (tests/conftest.py), so two workers fill two cores.
# CONTRIBUTING.md: where the time goes.
test: install
	PYTHONUTF8=1 $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

ui: install
	$(VENV)/bin/ptok ui --port $(PORT)

bench: install
	$(PY) benchmarks/run_all.py

# Throughput of every model stage at the real sizes on this machine's GPU (~8 min on one H100):
# benchmarks/results/gpu_check.{json,md}. Uses the venv as it is: no install step, no network.
gpu-check:
	@test -x $(PY) || { echo "no $(VENV): run 'make install TORCH_SPEC=...' first (see README, GPU check)"; exit 1; }
	PYTHONUTF8=1 $(PY) benchmarks/gpu_check.py

clean:
	rm -rf .ptok
