# Every target bootstraps its own environment: uv (pinned) in .tools/, then the
# workspace from uv.lock into .venv/. Only Python 3.11+, make and git are needed.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
RUN := $(UV) run --frozen --no-sync

.PHONY: run test lint typecheck pytest bench env clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode is compiled at install time: every process (the dispatcher child, servers in
# the tests) then starts in about half the time, also where PYTHONDONTWRITEBYTECODE is set.
env: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen --all-packages --quiet --compile-bytecode

run: env
	$(RUN) serverless-scheduler serve

test: env lint typecheck pytest

lint: env
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: env
	$(RUN) mypy

pytest: env
	$(RUN) pytest $(PYTEST_ARGS)

bench: env
	@for b in benchmarks/*.py; do echo "== $$b"; $(RUN) python $$b || exit 1; done

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

# checkov pins boto3 differently from the workspace, so it lives in its own venv.
# The Terraform tests run it offline (--skip-download, BC_SKIP_MAPPING=TRUE).
CHECKOV_VERSION := 3.3.30
.PHONY: checkov
.tools/checkov/bin/checkov:
	python3 -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"

checkov: .tools/checkov/bin/checkov
	BC_SKIP_MAPPING=TRUE .tools/checkov/bin/checkov -d terraform --framework terraform --skip-download --quiet --compact

pytest: .tools/checkov/bin/checkov
