# Two commands do all the set-up on a machine with only python3 and make:
#   make demo   installs everything and runs the demo
#   make test   installs everything and runs the fast tier (all but the `slow` tests)
#   make test-all  installs everything and runs the whole suite, slow tests included (CI)
# Both are idempotent: the virtualenv is rebuilt only when a pyproject or requirements file changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTS := core plugins/salesforce plugins/hopin plugins/hubspot plugins/pardot_guard
# What `make install` installs (editable): every distribution, with the extras development needs
# (the sandboxes are an extra so that a production install does not carry their dependencies).
EDITABLES := 'core[testing,scale]' 'plugins/salesforce[sandbox]' 'plugins/hopin[sandbox]' \
	'plugins/hubspot[sandbox]' plugins/pardot_guard
PYTEST_ARGS ?= -n 2
# The browser tests (tests/browser) drive Debian's Chromium through Playwright; Playwright's own
# browser download cannot be used, so the system package is installed when it is missing.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install browser test test-all screenshots demo lint bench clean

$(STAMP): pyproject.toml requirements-dev.txt $(foreach d,$(DISTS),$(d)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt \
		$(foreach e,$(EDITABLES),-e $(e))
	touch $(STAMP)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "the browser tests need Debian's chromium at $(CHROMIUM) (apt-get not found)" >&2; exit 1; }
	$(SUDO) apt-get install -y -q chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

install: $(STAMP)

browser: $(CHROMIUM)

# The fast tier, for every change: the end-to-end, chaos, scale-out and browser tests (marked
# `slow`) are left to test-all, which CI runs.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

test-all: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Re-take the console's screenshots shown in the README (docs/screenshots/*.png).
screenshots: $(STAMP) $(CHROMIUM)
	EVENTSYNC_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -p no:xdist tests/browser

demo: $(STAMP)
	$(BIN)/eventsync demo

lint: $(STAMP)
	$(BIN)/ruff check core plugins tests bench

clean:
	rm -rf $(VENV)
