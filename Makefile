# nbm: two commands set everything up on a fresh machine with only python3 and make:
#   make demo   the main job end to end on embedded defaults (everything under .nbm/)
#   make test   the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NBM_HOME ?= .nbm
DEMO_DATA := $(NBM_HOME)/demo/data

.PHONY: install demo test bench clean help

help:
	@echo "make demo   simulate a world, validate it, (later issues: train, score, show decisions)"
	@echo "make test   run the test suite"
	@echo "make bench  print the performance figures"

install: $(STAMP)

# Reinstall only when the project's dependencies change; the editable install picks up code changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/nbm simulate --out $(DEMO_DATA) --customers 2000 --days 60 --seed 7
	$(BIN)/nbm validate --data $(DEMO_DATA) --rejects-out $(NBM_HOME)/demo/rejects.csv
	@echo ""
	@echo "Demo data set: $(DEMO_DATA) (ground truth in $(DEMO_DATA)/ground_truth)."
	@echo "Try: $(BIN)/nbm --help"

test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(NBM_HOME) .pytest_cache .hypothesis
