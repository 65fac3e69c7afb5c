# Entry points for people and CI alike: `make check` and `make test`.
SHELL := /bin/bash
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VENV_BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp
PYTEST_ARGS ?=

.PHONY: all venv check test demo bench clean distclean

all: check test

venv: $(STAMP)

# Reinstalls only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	@test -x $(VENV_BIN)/python || $(PYTHON) -m venv $(VENV)
	$(VENV_BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on this disk, never a multi-GB CUDA one.
	$(VENV_BIN)/python -m pip install --quiet torch==2.13.0
	$(VENV_BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

check: venv
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .
	$(VENV_BIN)/mypy
	scripts/typecheck_tests.sh

test: venv
	scripts/test.sh $(PYTEST_ARGS)

# The main job: tune a CNN on the bundled digits data into sqlite:///dltune.db (~3 min).
demo: venv
	$(VENV_BIN)/dltune tune examples/digits.yaml

bench: venv
	$(VENV_BIN)/python -m benchmarks

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis \
		test-artifacts benchmarks/_work checkpoints
	find . -path ./$(VENV) -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 \
		| xargs -0 -r rm -rf

distclean: clean
	rm -rf $(VENV)
