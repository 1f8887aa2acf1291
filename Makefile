# make run   : set up .venv (first time) and run the embedded default (digits SAGAN)
# make test  : set up .venv (first time) and run every test (what CI runs)
# make test-quick : skip the slow end-to-end tests
#   both run on $(JOBS) pytest-xdist workers, a test module to a worker (JOBS=1: one process)
# make bench : run every benchmark (python -m bench) into bench/results.md; ARGS="--only=data --full"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JOBS ?= 2
PYTEST := $(PY) -m pytest -q $(if $(filter-out 1,$(JOBS)),-n $(JOBS) --dist loadscope)

.PHONY: setup run test test-quick bench clean

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (TensorFlow 2.15 + TF-GAN): set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) run.py $(ARGS)

test: setup
	$(PYTEST) $(ARGS)

test-quick: setup
	$(PYTEST) -m "not slow" $(ARGS)

bench: setup
	$(PY) -m bench $(ARGS)

clean:
	rm -rf runs .pytest_cache
