# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF

.PHONY: demo test install clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build on disk, so nothing below pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# llama.cpp compiles here (no binary wheel, ~4 min on 2 cores, then pip's cache keeps it). A native
	# build crashed at the first token on AVX-512/AMX CPUs: build for AVX2, which every x86-64 here runs. An
	# AVX-512 build (AMX off) was measured no faster here: 0.98x prompt, 0.89x generation (eval/bench_llama_build.py).
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install, generate the demo data, train and show ranked recommendations (embedded defaults).
demo: $(STAMP)
	$(BIN)/outreach demo

## Install and run the whole test suite (SQLite, the local PostgreSQL, and a headless Chromium for the pages).
# The guardrails' fine-tuned encoders train first (about 5 minutes on 2 cores, once per machine and policy
# version: cached in data/cache, which the tests share), so no test waits for them.
test: $(STAMP) browser
	MODEL_CACHE_DIR=data/cache $(BIN)/outreach review train
	$(BIN)/python -m pytest

# The browser tests drive Debian's chromium through Playwright (no browser download from Playwright).
browser:
	@command -v chromium >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) data
