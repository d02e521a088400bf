# The two commands: `make demo` and `make test`. Each sets itself up on a fresh machine.
# CI (.ci/run) runs `make lint` (ruff, ruff format, mypy --strict, import-linter contracts) and then `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
AZURITE_VERSION ?= 3.35.0
# checkov pins its own boto3, so it lives in its own virtualenv under .tools, not in the project's
CHECKOV_VERSION ?= 3.3.30
TOOLS ?= .tools

.PHONY: demo test venv venv-dev tools lint typecheck bench package-aws clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(VENV)/.core $@

venv: $(VENV)/.core
venv-dev: $(VENV)/.dev

# Azurite (the Azure Storage emulator) for the Azure integration tests.
$(TOOLS)/node_modules/.bin/azurite:
	mkdir -p $(TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) azurite@$(AZURITE_VERSION)

# checkov (IaC scanner for template.yaml and the Bicep) in its own virtualenv, linked into .tools/bin
$(TOOLS)/bin/checkov:
	mkdir -p $(TOOLS)/bin
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	ln -sf ../checkov/bin/checkov $@

tools: $(TOOLS)/node_modules/.bin/azurite $(TOOLS)/bin/checkov

demo: venv
	$(VENV)/bin/modelpilot demo

test: venv-dev tools
	PATH="$(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest -n 2 -q

# All four checks run even when one fails, so one CI run reports every problem; any failure fails the target.
# mypy's files (shared/modelpilot, functions, function_app.py) and the import contracts are in pyproject.toml.
lint: venv-dev
	@status=0; \
	echo "ruff check"; $(VENV)/bin/ruff check . || status=1; \
	echo "ruff format --check"; $(VENV)/bin/ruff format --check . || status=1; \
	echo "mypy --strict"; $(VENV)/bin/mypy --strict || status=1; \
	echo "lint-imports"; $(VENV)/bin/lint-imports --no-cache --no-logo || status=1; \
	exit $$status

typecheck: venv-dev
	$(VENV)/bin/mypy --strict

bench: venv-dev
	$(PY) benchmarks/cold_start.py
	$(PY) benchmarks/drift.py
	$(PY) benchmarks/slo_check.py

# Lambda zips for the runtime's Python and architecture (ARCH=x86_64 to switch); prints unzipped sizes.
package-aws: venv
	$(PY) infra/aws/package.py --arch $${ARCH:-arm64} --out build/aws

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache build dist
