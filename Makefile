# Two commands do all the set-up on a machine with only python3 and make:
#   make demo   installs everything and runs the demo
#   make test   installs everything and runs the whole test suite
# Both are idempotent: the virtualenv is rebuilt only when a pyproject or requirements file changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTS := core plugins/salesforce plugins/hopin plugins/hubspot plugins/pardot_guard
# What `make install` installs (editable): every distribution, with the extras development needs
# (the sandboxes are an extra so that a production install does not carry their dependencies).
EDITABLES := 'core[testing]' 'plugins/salesforce[sandbox]' 'plugins/hopin[sandbox]' \
	'plugins/hubspot[sandbox]' plugins/pardot_guard
PYTEST_ARGS ?= -n 2

.PHONY: install test demo lint bench clean

$(STAMP): pyproject.toml requirements-dev.txt $(foreach d,$(DISTS),$(d)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt \
		$(foreach e,$(EDITABLES),-e $(e))
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/eventsync demo

lint: $(STAMP)
	$(BIN)/ruff check core plugins tests bench

clean:
	rm -rf $(VENV)
