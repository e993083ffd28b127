# Two commands set everything up: `make demo` and `make test`.
# Both build .venv from requirements.lock (every package at one exact version), the first
# time and again whenever the lock or pyproject.toml changes. `make lock` rewrites the lock
# from pyproject.toml's ranges; `make test-latest` tries the newest releases those ranges allow.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
BEDS   ?= 8
# make test's pytest-xdist workers; --dist loadfile keeps a notebook's cells and a test module
# (its module-scoped fixtures) on one worker. WORKERS=0: one process
WORKERS ?= 3

.PHONY: demo test lint unit labs browser lab bench captures clean lock test-latest learner-bundle doctor

# uv comes from the lock too: pip installs that one pinned version, then uv installs the rest.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$$(grep -E '^uv==' requirements.lock)"
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $(STAMP)

# authentication on: device keys (made in device-keys.json on first run), required for
# telemetry and the alarm channel, and dashboard sessions. `make demo AUTH=off` turns both off,
# as the early labs (00-05) have them
AUTH ?= on
DEMO_AUTH_on = --keys device-keys.json --require-keys
DEMO_AUTH_off = --no-auth
# TLS=on: HTTPS and TLS on the alarm channel, with a self-signed certificate in tls/
TLS ?= off
DEMO_TLS_on = --tls tls
demo: $(STAMP)
	$(PY) -m server --beds $(BEDS) $(DEMO_AUTH_$(AUTH)) $(DEMO_TLS_$(TLS))

test: $(STAMP)
	$(PY) -m ruff check --no-cache .
	$(PY) -m pytest -p no:cacheprovider -n $(WORKERS) --dist loadfile --durations=20 \
	  tests labs --nbval-lax --nbval-current-env

lint: $(STAMP)
	$(PY) -m ruff check --no-cache .

lab: $(STAMP)
	$(VENV)/bin/jupyter lab labs/

# What a student gets: learner notebooks, captures and install files, no solutions (course.bundle).
learner-bundle: $(STAMP)
	$(PY) -m course bundle dist/learner-bundle

# What this environment allows (root, capabilities, libpcap, nftables, a hub), lab by lab.
doctor: $(STAMP)
	$(PY) -m course doctor

bench: $(STAMP)
	$(PY) -m bench

# Rewrite the lock (and environment.yml, which follows it) from pyproject.toml's ranges.
lock: $(STAMP)
	$(UV) pip compile pyproject.toml --extra course --extra dev --universal \
	  --fork-strategy fewest --python-version 3.11 --quiet \
	  --custom-compile-command "make lock" -o requirements.lock
	$(PY) tools/environment_from_lock.py

# The newest releases pyproject.toml allows, in a throwaway venv: unit tests and labs, then
# which packages differ from the lock. Not part of `make test`.
test-latest: $(STAMP)
	$(PY) tools/test_latest.py

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
