# evenflow — `make run` and `make test` work on a fresh machine with Python 3.11+ and pip.
UV := python3 -m uv
VENV := .venv
BIN := $(VENV)/bin
# tests/browser drive Debian's Chromium; EVENFLOW_CHROMIUM names another binary.
CHROMIUM ?= $(or $(EVENFLOW_CHROMIUM),/usr/bin/chromium)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all uv install install-dev chromium run test test-fast test-browser lint format typecheck docs bench clean

all: lint typecheck test

uv:  ## uv itself, if this machine has none
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q "uv==0.13.9"

install: uv  ## runtime dependencies, exactly as locked
	$(UV) sync --frozen --no-dev

install-dev: uv  ## runtime + test/lint dependencies, exactly as locked
	$(UV) sync --frozen

chromium:  ## Debian's Chromium for the browser tests (apt), if this machine has none
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null \
	  || { echo "no Chromium at $(CHROMIUM) and no apt-get: install Chromium and set EVENFLOW_CHROMIUM" >&2; exit 1; }; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

run: install  ## train, evaluate and register a candidate on the built-in example (UCI Adult)
	$(BIN)/evenflow run

test: install-dev chromium  ## the whole test suite (the browser tests included)
	$(BIN)/pytest

test-browser: install-dev chromium  ## the review surfaces in headless Chromium (tests/browser)
	$(BIN)/pytest tests/browser -m browser

test-fast: install-dev  ## unit tests only
	$(BIN)/pytest tests/unit

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install-dev
	$(BIN)/mypy

docs: install-dev  ## the documentation site (docs/, mkdocs.yml) → site/, warnings are errors
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: install-dev  ## ratio benchmarks → benchmarks/results.json and benchmarks/results.md
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
