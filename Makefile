# nbm: two commands set everything up on a fresh machine with only python3 and make:
#   make demo   the main job end to end on embedded defaults (everything under .nbm/)
#   make test   the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NBM_HOME ?= .nbm
DEMO_DATA := $(NBM_HOME)/demo/data

DEMO_MODEL := $(NBM_HOME)/model
TRACKING := sqlite:///$(NBM_HOME)/mlflow.db

.PHONY: install demo serve test bench loadtest audit clean help mlflow-ui

help:
	@echo "make demo   simulate a world, validate it, train, score and show decisions"
	@echo "make serve  serve the decision API on the demo model (after make demo)"
	@echo "make mlflow-ui  review the runs and the registered model"
	@echo "make test   run the test suite"
	@echo "make bench  print the performance figures"
	@echo "make loadtest  load-test the API with locust for 2 x 60 s (LOADTEST_ARGS=\"--seconds 20\")"
	@echo "make audit  check the installed dependencies for known vulnerabilities (docs/security.md)"

install: $(STAMP)

# Reinstall only when the project's dependencies change; the editable install picks up code changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip "setuptools>=78.1.1,<81"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/nbm simulate --out $(DEMO_DATA) --customers 3000 --days 60 --seed 7
	$(BIN)/nbm validate --data $(DEMO_DATA) --rejects-out $(NBM_HOME)/demo/rejects.csv
	$(BIN)/nbm train --data $(DEMO_DATA) --model-dir $(DEMO_MODEL) --tracking-uri $(TRACKING)
	$(BIN)/nbm score --data $(DEMO_DATA) --model-dir $(DEMO_MODEL) --as-of 2026-06-30T00:00:00Z --channel all --out $(NBM_HOME)/demo/scores.csv
	$(BIN)/nbm show --scores $(NBM_HOME)/demo/scores.csv --customers 8
	@echo ""
	@echo "Demo data: $(DEMO_DATA) (ground truth in ground_truth/); model bundle: $(DEMO_MODEL)/current"
	@echo "Review runs, metrics, plots and the registered model:  make mlflow-ui   (then open http://127.0.0.1:5000)"
	@echo "All commands:  $(BIN)/nbm --help"

# The decision API on the model `make demo` trained; events and the decision log go to $(NBM_HOME)/events.db.
# Extra options: make serve SERVE_ARGS="--port 9000 --workers 2"; keys: NBM_API_KEYS=... NBM_ADMIN_KEYS=... make serve
SERVE_ARGS ?=
serve: install
	@test -e $(DEMO_MODEL)/current || { echo "no model in $(DEMO_MODEL): run make demo first"; exit 2; }
	NBM_PATHS__HOME=$(NBM_HOME) $(BIN)/nbm serve --model-dir $(DEMO_MODEL) $(SERVE_ARGS)

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri $(TRACKING) --host 127.0.0.1 --port 5000

test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# The benchmark compares with polars and DuckDB: they are installed for it only.
bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/run.py

# locust against `nbm serve` on loopback, 1 worker then 2, each run bounded by --seconds (default 60).
LOADTEST_ARGS ?=
loadtest: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/loadtest.py $(LOADTEST_ARGS)

# pip-audit is not a project dependency: installed into the venv here only. --strict fails when a package
# could not be checked (no "no known vulnerabilities" for an audit that checked nothing); nbm itself is
# installed editable and is not on PyPI.
audit: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip-audit
	$(BIN)/pip-audit --progress-spinner off --strict --skip-editable --desc

clean:
	rm -rf $(NBM_HOME) .pytest_cache .hypothesis
