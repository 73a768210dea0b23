# stepgraph: every set-up step lives here, so a fresh clone needs only `make serve` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

NODE_TOOLS := tests/http tests/federation

.PHONY: install node-tools serve test check schema format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Node tools of the tests (graphql-http audit, federation composers and gateway), from lockfiles.
node-tools:
	@for dir in $(NODE_TOOLS); do \
		if ! command -v npm >/dev/null 2>&1; then \
			echo "npm not found: the tests under $$dir will be skipped"; \
		elif [ ! $$dir/node_modules/.stamp -nt $$dir/package-lock.json ]; then \
			npm ci --prefix $$dir --no-audit --no-fund --loglevel=error && touch $$dir/node_modules/.stamp; \
		fi; \
	done

## Run the gateway on the embedded SQLite store, with demo data the first time.
serve: install
	$(BIN)/stepgraph serve --demo

## The whole test suite: on SQLite, and on PostgreSQL too when STEPGRAPH_TEST_POSTGRES_URL names
## a server (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test); .ci/run always sets it.
test: install node-tools
	$(BIN)/pytest

## Format, lint, types and schema drift: what CI and reviewers expect to pass.
check: install
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/stepgraph export-schema --check schema.graphql

## Rewrite schema.graphql from the live schema.
schema: install
	$(BIN)/stepgraph export-schema --output schema.graphql

format: install
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

## Benchmarks behind bench/RESULTS.md: CPU per page in-process, HTTP load (wrk), memory over
## 100,000 requests, a profile. The 1M-row dataset is built once, under bench/.cache.
bench: install
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.dataset
	$(BIN)/python -m bench.inprocess
	$(BIN)/python -m bench.http_load
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
