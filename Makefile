# Trade Window — the two commands a newcomer needs are `make demo` and `make test`.
# Every target does the set-up it needs itself (virtual environment, system packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000
export PORT

.PHONY: venv demo test lint system-deps bench clean

venv: $(STAMP)

# The venv itself: made once, with a Python that is 3.11 or newer.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "Trade Window needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "Run e.g. 'make PYTHON=python3.11 $(MAKECMDGOALS)'." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Pinned dependencies first, then the project itself without touching them.
# Re-runs whenever the lock or pyproject.toml changes.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

demo: venv
	$(BIN)/tradewindow demo

# PostgreSQL server binaries and chromium, installed from the system's packages when missing.
system-deps:
	@bash scripts/ensure-system-deps.sh

lint: venv
	$(BIN)/ruff check tradewindow tests
	$(BIN)/lint-imports --config .importlinter

# The whole suite: SQLite and PostgreSQL database tests, browser tests, system tests.
test: venv system-deps lint
	$(BIN)/pytest -n 2

bench: venv
	@if [ -f benchmarks/run.py ]; then $(BIN)/python benchmarks/run.py; \
	else echo "no benchmarks yet (benchmarks/run.py is absent)"; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
