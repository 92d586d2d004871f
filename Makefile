# cosloss developer commands. Every target creates .venv from nothing if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
# An editable install as a path in a .pth file: setuptools' default import finder
# imports pathlib and more at every start of Python in the venv (10 ms, measured),
# which no installed cosloss pays and which would skew every timing of make bench.
EDITABLE := --config-settings editable_mode=compat -e

.PHONY: demo test pytest lint fuzz bench bench-full docs docs-serve man clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# setup.py and the C file too: a changed kernel is rebuilt by the next make.
BUILD_INPUTS := pyproject.toml setup.py cosloss_cli/core/_kernel.c

$(VENV)/.installed: $(BUILD_INPUTS) | $(BIN)/python
	$(PIP) install $(EDITABLE) .
	touch $@

$(VENV)/.installed-test: $(BUILD_INPUTS) | $(BIN)/python
	$(PIP) install $(EDITABLE) '.[test]'
	touch $(VENV)/.installed $@

## demo: install and run the tutorial example
demo: $(VENV)/.installed
	$(BIN)/cosloss compute sample_data/labels.csv sample_data/predictions.csv --axis 1

## test: the whole suite, then ruff and mypy (what CI runs)
test: pytest lint

pytest: $(VENV)/.installed-test
	$(BIN)/cosloss --version  # says whether the C kernel was built
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check cosloss_cli tests bench scripts setup.py
	$(BIN)/ruff format --check cosloss_cli tests bench scripts setup.py
	$(BIN)/mypy cosloss_cli

## fuzz: the property and fuzz tests with many more examples
fuzz: $(VENV)/.installed-test
	COSLOSS_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest tests -k "fuzz or property" -p no:cacheprovider

## bench: quick benchmark against the baselines (docs/performance.md); bench-full: the large sizes
bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py

bench-full: $(VENV)/.installed-test
	$(PIP) install $(EDITABLE) '.[bench]'
	$(BIN)/python bench/run.py --full

$(VENV)/.installed-docs: $(BUILD_INPUTS) | $(BIN)/python
	$(PIP) install $(EDITABLE) '.[docs]'
	touch $(VENV)/.installed $@

# mkdocs-material prints a notice about its successor at every build unless told not to.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

## docs: regenerate the command reference from the code, then build the site into site/ (strict)
docs: $(VENV)/.installed-docs
	$(BIN)/python scripts/gen_reference.py
	$(MKDOCS) build --strict

## docs-serve: serve the docs at http://127.0.0.1:8000, rebuilt as they are edited
docs-serve: $(VENV)/.installed-docs
	$(BIN)/python scripts/gen_reference.py
	$(MKDOCS) serve

## man: man pages of cosloss and each command into build/man (man -l build/man/man1/cosloss.1)
man: $(VENV)/.installed
	$(BIN)/python scripts/gen_reference.py --man build/man

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis cosloss_cli/core/*.so
