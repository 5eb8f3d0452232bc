# RootTrading: `make demo` runs the platform offline; `make test` runs the lint and every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo lint test test-all test-py test-web web venv bench clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# The dashboard is built when Node is available; the API works without it.
web:
	@if [ -f frontend/package.json ] && command -v npm >/dev/null 2>&1; then \
		cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	else echo "dashboard not built (no frontend/ or no npm); the API still runs"; fi

demo: $(STAMP) web
	$(VENV)/bin/roottrading demo

# Lint first (prerequisites run left to right): ruff (lint + format check), then mypy (config in pyproject.toml).
test: lint test-py test-web

lint: $(STAMP)
	$(VENV)/bin/ruff check roottrading tests benchmarks
	$(VENV)/bin/ruff format --check roottrading tests benchmarks
	$(VENV)/bin/mypy

# The soaks (marked slow) take most of the suite's time: a laptop's `make test` skips them, CI (CI=true) runs
# everything. `make test-all` runs them locally too.
ifeq ($(CI),true)
PYTEST_MARK :=
else
PYTEST_MARK := -m "not slow"
endif

test-py: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=25 $(PYTEST_MARK)

test-all: lint
	$(PY) -m pytest -q
	@$(MAKE) test-web

test-web: $(STAMP)
	@if [ -f frontend/package.json ]; then $(MAKE) web && cd frontend && npm test; fi

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) data frontend/node_modules frontend/dist roottrading/web
