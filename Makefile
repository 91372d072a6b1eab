# Two commands do all set-up on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-all lint bench bench-large install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	# --compile-bytecode: the environment may set PYTHONDONTWRITEBYTECODE, and without .pyc files
	# every process compiles Feast and scikit-learn again (about 5 s of CPU per command).
	# Every extra: the demo draws plots, the tests run the HTTP service, PostgreSQL, Spark, Redis.
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python \
		-e '.[dev,serve,postgres,spark,report,redis]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## The main job, end to end, on the embedded defaults (writes ./demo/).
demo: $(STAMP)
	$(BIN)/usage-features demo

## The default test suite (unit, integration, e2e; not slow tests).
test: $(STAMP)
	$(BIN)/pytest

## The linter, on the rule set in pyproject.toml ([tool.ruff.lint]).
lint: $(STAMP)
	$(BIN)/ruff check .

## Everything, slow tests included (benchmarks are scripts: `make bench`).
test-all: $(STAMP)
	$(BIN)/pytest -m ""

## Every benchmark at ~10^5, 10^6 and 10^7 events -> benchmarks/results/latest.{json,md}.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

## Opt-in: every phase at 10^7 and 10^8 events in one run, time and peak memory, growth
## factors -> benchmarks/results/large.{json,md} (about 10 minutes; ~20 GB of disk in /tmp).
bench-large: $(STAMP)
	$(BIN)/python benchmarks/bench_large.py

clean:
	rm -rf $(VENV) demo .pytest_cache .hypothesis
