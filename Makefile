# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build on disk, so nothing below pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install, generate the demo data, train and show ranked recommendations (embedded defaults).
demo: $(STAMP)
	$(BIN)/outreach demo

## Install and run the whole test suite (SQLite and the local PostgreSQL).
test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data
