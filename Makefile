# Two commands do all the set-up on a fresh machine (Python >= 3.10 on PATH as python3):
#   make train   create .venv, install pinned dependencies, run `python train.py --algo ppo`
#   make test    create .venv, install pinned dependencies, lint (ruff), type-check (mypy), run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install train test check bench clean

# torch==2.13.0 is the CPU build; where a local wheel folder exists (/opt/wheels) pip takes it from there.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

$(STAMP): pyproject.toml requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(FIND_LINKS) -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) train.py --algo ppo $(ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks train.py
	$(PY) -m mypy

test: check
	$(PY) -m pytest -q $(ARGS)

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py
	$(PY) benchmarks/solver_time.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
