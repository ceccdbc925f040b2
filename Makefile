# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit openapi bench bench-isolation soak outage-soak fuzz clean install

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(UV) pip sync --quiet --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the gateway on :8000 and the simulator on :8001 (embedded PostgreSQL unless DATABASE_URL)
	MGW_ENVIRONMENT=$${MGW_ENVIRONMENT:-dev} $(BIN)/motion-gateway serve --with-simulator

test: lint  ## lint, type-check, then the whole suite
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

openapi: $(STAMP)  ## regenerate openapi.yaml from the app
	$(BIN)/python -m app.openapi > openapi.yaml

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-isolation: $(STAMP)  ## a healthy endpoint's delivery latency alone and beside six failing ones
	$(BIN)/python -m bench.endpoint_isolation

soak: $(STAMP)
	$(BIN)/python -m bench.soak

outage-soak: $(STAMP)  ## the database-outage test with a 20 s outage (`make test` uses 6 s)
	MGW_TEST_OUTAGE_S=20 $(BIN)/pytest -q -s tests/e2e/test_database_outage.py

FUZZ_SECONDS ?= 180
fuzz: $(STAMP)  ## schemathesis, every check, against a live gateway + simulator (FUZZ_SECONDS, FUZZ_SEED)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m bench.fuzz

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
