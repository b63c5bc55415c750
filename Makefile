# Two entry points for a fresh machine: `make demo` (the offline main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	# asl-validator checks the synthesized state machine; the CDK CLI (aws-cdk) deploys and is tested to synth
	npm install --silent --no-audit --no-fund --prefix .tools asl-validator@4 aws-cdk@2
	touch $(STAMP)

demo: setup
	$(BIN)/odctl demo --workdir demo-work

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo-work bench/out .pytest_cache
