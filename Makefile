# Two commands for a fresh machine: `make demo` and `make test`. Everything else installs itself.
# uv comes from PATH, or is installed with pip into the current Python when missing.
# Bytecode is compiled at install: every kommunelake/Dagster process starts faster, also where
# PYTHONDONTWRITEBYTECODE is set (as on CI).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= demo-home
PERSONS ?= 20000
PORT ?= 3000
# The UI end-to-end test drives Debian's chromium (a browser download is impossible offline).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test lint format ui clean azurite postgresql bench bench-lake

install: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

demo: install
	$(BIN)/kommunelake demo --home $(HOME_DIR) --persons $(PERSONS)

test: install azurite $(CHROMIUM) postgresql
	$(BIN)/pytest --durations=20

# Azurite (Azure Blob emulator) for the Azure storage tests, pinned by tests/azurite/package-lock.json.
azurite: tests/azurite/node_modules/.installed
tests/azurite/node_modules/.installed: tests/azurite/package.json tests/azurite/package-lock.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd tests/azurite && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHROMIUM):
	@echo "Installing Debian's chromium for the UI end-to-end test ..."
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null

# Debian's PostgreSQL server binaries (any version) for the instance storage tests, which
# start a throwaway server of their own (tests/postgres.py).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "Installing Debian's postgresql for the instance storage tests ..."; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

# The file-path benchmark (bench/README.md). The baselines' libraries (the bench group: dlt,
# pandas, pandera[pandas]) go into their own environment, so the product is measured as
# `make install` installs it: where pandas is importable, importing pandera costs 0.5 s more.
BENCH_VENV := bench/.venv
bench: install
	UV_PROJECT_ENVIRONMENT=$(BENCH_VENV) $(UV) sync --frozen --group bench --compile-bytecode
	$(BIN)/python -m bench.run --baseline-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

# The lake benchmark (bench/README.md): merge, SCD2 and open after appends; the main
# dependencies are enough.
bench-lake: install
	$(BIN)/python -m bench.lake $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

ui: install
	$(BIN)/kommunelake ui --home $(HOME_DIR) --port $(PORT)

clean:
	rm -rf $(HOME_DIR) .pytest_cache .ruff_cache
