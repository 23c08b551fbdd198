# Two commands matter on a fresh machine: `make run` and `make test`. Both create the
# virtualenv, install the project and compile the translation catalogs themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYBABEL := $(BIN)/pybabel
EXTRACT_FLAGS := -F babel.cfg -k N_ -k _ -k gettext -k ngettext:1,2 \
	--add-comments=TRANSLATORS: --no-wrap --sort-by-file --project=atazhurt-bot

LOCK_FLAGS := --generate-hashes --python-version 3.11 --universal --no-header --quiet

.PHONY: install catalogs run sandbox test unit lint typecheck messages bench chaos clean lock wheel-check

# Dependencies come from the hash-pinned lock file (make lock re-resolves it), then the project
# itself is installed editable on top, without resolving anything again.
$(STAMP): pyproject.toml setup.py requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# After changing dependencies in pyproject.toml: resolve and hash them again (uv, a dev tool).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra build $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra build --extra dev $(LOCK_FLAGS) -o requirements-dev.lock

# Build the wheel, install it into a fresh virtualenv outside the checkout, and check that it
# answers Russian and Kazakh users in their language (.ci/run runs it after make test).
wheel-check: $(STAMP)
	$(BIN)/python tests/wheel_check.py

install: $(STAMP) catalogs

# Compiled catalogs (.mo) are build products, never committed.
catalogs: $(STAMP)
	$(PYBABEL) compile -d locales -D messages --statistics

# Runs the bot on Telegram when BOT_TOKEN is set (environment or .env), else the offline sandbox.
run: install
	@if [ -n "$$BOT_TOKEN" ] || grep -qs '^BOT_TOKEN=.\+' .env; then \
		$(BIN)/python -m bot run; \
	else \
		echo "BOT_TOKEN is not set: starting the offline sandbox."; \
		$(BIN)/python -m bot sandbox; \
	fi

sandbox: install
	$(BIN)/python -m bot sandbox

lint: $(STAMP)
	$(BIN)/ruff check bot tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest -q tests/unit

test: install lint typecheck
	$(BIN)/python -m pytest -q

# Re-extract strings and merge them into every catalog (then translate the new entries).
messages: $(STAMP)
	PYTHONPATH=. $(PYBABEL) extract $(EXTRACT_FLAGS) -o locales/messages.pot .
	$(PYBABEL) update -i locales/messages.pot -d locales -D messages --no-wrap --no-fuzzy-matching --ignore-obsolete
	$(BIN)/python locales/fill_english.py

bench: install
	$(BIN)/python -m tests.bench

# The full crash (50 kills), fault and fuzz (10,000 updates) runs; `make test` runs reduced ones.
# Each test prints a CHAOS line with its figures; CHAOS_REPORT=file also appends them there.
chaos: install
	CHAOS_FULL=1 CHAOS_REPORT="$(CHAOS_REPORT)" $(BIN)/python -m pytest -q -s tests/chaos

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
	find locales -name '*.mo' -delete
