# Two entry points for a fresh machine: `make demo` (the offline main job) and `make test`.
# Two Python environments, each from its lock (requirements/*.lock, made by `make lock`):
#   .venv        the operator's: CDK app, odctl, tests; the machine's Python 3.11-3.13 (PYTHON=python3.12 to choose)
#   .venv-mxnet  MXNet 1.9.1 on Python 3.11 (uv provides 3.11 where the machine lacks it): local training and the
#                MXNet reference, run as subprocesses through odctl.mxnet_env
#   .venv-labelstudio  Label Studio (Django 5 and its pins) for `odctl label-studio serve` and the labeling tests
#   .venv-lambda the Lambda bundles' own requirements on the Lambda runtime's Python 3.13 (make test-lambda-runtime)
#   .venv-lambda-sdk  only what Lambda's python3.13 runtime provides (boto3, botocore): each bundle runs on it alone
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
MXVENV := .venv-mxnet
MXSTAMP := $(MXVENV)/.installed
LSVENV := .venv-labelstudio
LSSTAMP := $(LSVENV)/.installed
LAMBDAVENV := .venv-lambda
LAMBDASTAMP := $(LAMBDAVENV)/.installed
SDKVENV := .venv-lambda-sdk
SDKSTAMP := $(SDKVENV)/.installed

.PHONY: setup browser docs demo test test-fast test-unit test-mxnet test-lambda-runtime lint typecheck lock bench clean synth deploy

setup: $(STAMP) $(MXSTAMP) $(LSSTAMP) $(SDKSTAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	py=$$(scripts/find-python $(PYTHON)) && "$$py" -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	# asl-validator checks the synthesized state machine; the CDK CLI (aws-cdk) deploys and is tested to synth
	npm install --silent --no-audit --no-fund --prefix .tools asl-validator@4 aws-cdk@2
	touch $(STAMP)

$(MXSTAMP): $(STAMP) requirements/mxnet.lock pyproject.toml
	py=$$(UV=$(UV) scripts/find-python 3.11) && $(UV) venv --quiet --allow-existing --python "$$py" $(MXVENV)
	$(UV) pip install --quiet --python $(MXVENV)/bin/python -r requirements/mxnet.lock
	$(UV) pip install --quiet --python $(MXVENV)/bin/python --no-deps -e .
	touch $(MXSTAMP)

$(LSSTAMP): $(STAMP) requirements/label-studio.lock
	$(UV) venv --quiet --allow-existing --python $(BIN)/python $(LSVENV)
	$(UV) pip install --quiet --python $(LSVENV)/bin/python -r requirements/label-studio.lock
	touch $(LSSTAMP)

# no project code here: the rehearsal puts each function's bundle on this interpreter's path, as Lambda does
$(SDKSTAMP): $(STAMP) requirements/lambda-sdk.lock
	py=$$(UV=$(UV) scripts/find-python 3.13) && $(UV) venv --quiet --allow-existing --python "$$py" $(SDKVENV)
	$(UV) pip install --quiet --python $(SDKVENV)/bin/python -r requirements/lambda-sdk.lock
	touch $(SDKSTAMP)

$(LAMBDASTAMP): $(STAMP) requirements/lambda-runtime.lock pyproject.toml
	py=$$(UV=$(UV) scripts/find-python 3.13) && $(UV) venv --quiet --allow-existing --python "$$py" $(LAMBDAVENV)
	$(UV) pip install --quiet --python $(LAMBDAVENV)/bin/python -r requirements/lambda-runtime.lock
	$(UV) pip install --quiet --python $(LAMBDAVENV)/bin/python --no-deps -e .
	touch $(LAMBDASTAMP)

lock: $(STAMP)
	cd requirements && ../$(UV) pip compile --quiet --universal --python-version 3.11 dev.in -o dev.lock
	cd requirements && ../$(UV) pip compile --quiet --universal --python-version 3.11 mxnet.in -o mxnet.lock
	cd requirements && ../$(UV) pip compile --quiet --python-version 3.13 lambda-runtime.in -o lambda-runtime.lock
	cd requirements && ../$(UV) pip compile --quiet --python-version 3.13 lambda-sdk.in -o lambda-sdk.lock
	cd requirements && ../$(UV) pip compile --quiet --universal --python-version 3.11 label-studio.in -o label-studio.lock

# the demo trains through the MXNet environment and needs nothing else (no Label Studio, no Lambda runtimes)
demo: $(STAMP) $(MXSTAMP)
	$(BIN)/odctl demo --workdir demo-work

# the report and labeling tests drive a real headless Chromium: Debian's package, installed here when we may
browser:
	@scripts/ensure-chromium

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(MXVENV)/bin/pytest -q -p no:cacheprovider tests/mxnet_env
	$(BIN)/pytest -q

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

# what needs no stand-in started (no moto server, MXNet, broker or Label Studio): CI's second Python runs it
test-unit: setup
	$(BIN)/pytest -q -m "not slow and not integration"

test-mxnet: setup
	$(MXVENV)/bin/pytest -q -p no:cacheprovider tests/mxnet_env

# the Lambda functions' tests on the Lambda runtime's Python and the bundles' own requirements
test-lambda-runtime: setup $(LAMBDASTAMP)
	$(LAMBDAVENV)/bin/pytest -q -p no:cacheprovider tests/lambdas

# the CDK CLI that `make setup` installs in .tools/ (not on PATH), run from the root where cdk.json is;
# CDK_ARGS passes options through: make deploy CDK_ARGS="--require-approval never"
CDK := .tools/node_modules/.bin/cdk
synth: $(STAMP)
	$(CDK) synth $(CDK_ARGS)

deploy: $(STAMP)
	$(CDK) deploy $(CDK_ARGS)

# the documentation site (docs/, mkdocs.yml): strict, so a broken link or anchor between pages fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(MXVENV) $(LSVENV) $(LAMBDAVENV) $(SDKVENV) demo-work bench/out .pytest_cache site
