# Two commands set everything up: `make demo` and `make test`.
# Each creates .venv the first time, and again whenever pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BEDS   ?= 8

.PHONY: demo test lint unit labs browser lab bench captures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m server --beds $(BEDS)

test: $(STAMP)
	$(PY) -m ruff check --no-cache .
	$(PY) -m pytest -p no:cacheprovider tests labs --nbval-lax --nbval-current-env

lint: $(STAMP)
	$(PY) -m ruff check --no-cache .

lab: $(STAMP)
	$(VENV)/bin/jupyter lab labs/

bench: $(STAMP)
	$(PY) -m server.bench

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
