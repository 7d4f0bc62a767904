# The two commands of the README: `make demo` and `make test`. Each sets up .venv from scratch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# anthropic SDKs without built-in tracing, each in a directory of its own (tests run them in a
# subprocess with PYTHONPATH pointing there): 1.13.0 is the newest before the SDK traced itself,
# 0.75.0 the httpx generation the recorded traffic comes from.
OLD_ANTHROPIC := 1.13.0 0.75.0
OLD_ANTHROPIC_DIR := $(VENV)/old-anthropic
OLD_ANTHROPIC_STAMPS := $(foreach version,$(OLD_ANTHROPIC),$(OLD_ANTHROPIC_DIR)/$(version)/.installed)

# OpenLLMetry's instrumentors, beside spancost's in one process: tests check that a call both see is
# priced once. Installed without dependencies: they need only what .venv already has.
OPENLLMETRY := opentelemetry-instrumentation-openai==0.62.4 opentelemetry-instrumentation-anthropic==0.62.4 \
	opentelemetry-semantic-conventions-ai==0.5.1
OPENLLMETRY_STAMP := $(VENV)/peers/openllmetry/.installed

.PHONY: demo test lint install old-anthropic peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(OLD_ANTHROPIC_DIR)/%/.installed: | $(STAMP)
	rm -rf $(OLD_ANTHROPIC_DIR)/$*
	$(BIN)/pip install --quiet --disable-pip-version-check --target $(OLD_ANTHROPIC_DIR)/$* 'anthropic==$*'
	touch $@

old-anthropic: $(OLD_ANTHROPIC_STAMPS)

$(OPENLLMETRY_STAMP): | $(STAMP)
	rm -rf $(VENV)/peers/openllmetry
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --target $(VENV)/peers/openllmetry $(OPENLLMETRY)
	touch $@

peers: $(OPENLLMETRY_STAMP)

demo: $(STAMP)
	$(BIN)/spancost demo

test: $(STAMP) $(OLD_ANTHROPIC_STAMPS) $(OPENLLMETRY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .spancost .pytest_cache .ruff_cache
