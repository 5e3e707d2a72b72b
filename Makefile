# Ops-Core: `make run` starts everything, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test faults lint fmt install docs docs-serve uat worker beat web mock bench-state bench-workflows bench-engine bench-discovery bench-dashboard clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) requirements.txt requirements-dev.txt sdk/pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e ./sdk
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m opscore_project.launcher

test: $(STAMP)
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

# The full fault suite (docs/engine-faults.md): 100 kills, Redis/Postgres/AgentKit outages. It stops and starts the
# machine's Redis and Postgres: run it on a machine of your own.
faults: $(STAMP)
	FAULTS_FULL=1 $(PY) -m pytest -m faults -p no:randomly -s $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The documentation site from docs/ into site/ (strict: a broken link, anchor or stale generated page fails).
docs: $(STAMP)
	$(PY) docs/hooks/cli_reference.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# Acceptance scenarios against a running stack (`make run`, or OPSCORE_URL); report in var/uat-report.md.
uat: $(STAMP)
	$(PY) -m uat

web: $(STAMP)
	$(PY) -m opscore_project.webserver

worker: $(STAMP)
	$(VENV)/bin/celery -A opscore_project worker --loglevel INFO

beat: $(STAMP)
	$(VENV)/bin/celery -A opscore_project beat --loglevel INFO

mock: $(STAMP)
	$(PY) -m mock_agentkit

bench-state: $(STAMP)
	$(PY) bench/bench_state.py

bench-workflows: $(STAMP)
	$(PY) bench/bench_workflows.py

bench-engine: $(STAMP)
	$(PY) bench/bench_engine.py

bench-discovery: $(STAMP)
	$(PY) bench/bench_discovery.py

bench-dashboard: $(STAMP)
	$(PY) bench/bench_dashboard.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var site staticfiles .pytest_cache .coverage htmlcov
