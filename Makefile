# Two commands do all the set-up on a fresh machine:
#   make demo   installs locallearn and runs the main job (a rule comparison on the embedded digits data)
#   make test   installs the test extras and runs the test suite
#   make gpu-check   on a machine with a CUDA GPU: the cuda tests and the memory/time benchmark there, a report naming the card (< 8 min)
# torch 2.13.0 (CPU wheel) is installed first: a bare `torch` requirement would pull a multi-GB CUDA build.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-dev demo test gpu-check

install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .

install-dev:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"

demo: install
	$(PYTHON) -m locallearn.cli compare --data digits --rules local,e2e,joint,fa-heads,predsim,predsim-bio,dfa,ib --seeds 3 --epochs 5 --out results.json

test: install-dev
	$(PYTHON) -m pytest

gpu-check:
	$(PYTHON) -m locallearn.bench.gpu_check --out benchmarks/results/gpu_check
