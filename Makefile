# d2lcnn — every target sets up its own virtualenv (.venv) from pyproject.toml,
# so a fresh clone needs only Python 3.11+ and pip.
#
#   make book    set up, execute every chapter in place, render the HTML book to build/html
#   make test    set up, lint, run the package tests and validate every notebook with nbval
#   make lab     open JupyterLab on the notebooks
#   make bench   time the NumPy layers against torch, training, grading (ratios, one run)
#   make homework  build every assignment: student notebooks + private autograder bundles

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CHAPTERS := $(sort $(wildcard notebooks/[0-9][0-9]-*.py))
HOMEWORK := $(sort $(wildcard notebooks/homework/hw[0-9]*-*.py))

.PHONY: all install book execute html test test-package test-notebooks lint lab bench homework clean distclean help

all: test

help:
	@sed -n '2,10p' Makefile

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "d2lcnn needs Python >= 3.11; $(PYTHON) is " + sys.version.split()[0] + " (run: make PYTHON=python3.11 ...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The .py files are the source of truth; --update refreshes each .ipynb's inputs and
# keeps its outputs, then every chapter is executed in place (deterministically).
execute: $(STAMP)
	$(BIN)/jupytext --quiet --update --to ipynb $(CHAPTERS)
	$(BIN)/python -m d2lcnn.book execute $(CHAPTERS:.py=.ipynb)

# jupyter-book 1.x turns _config.yml/_toc.yml into a Sphinx conf.py (generated, not
# committed), then Sphinx renders the executed notebooks; warnings are errors.
html: $(STAMP)
	@$(BIN)/jupyter-book config sphinx notebooks > /dev/null
	$(BIN)/sphinx-build -b html -d build/doctrees -W --keep-going -q notebooks build/html
	@echo "The book is at $(CURDIR)/build/html/index.html"

book: execute
	@$(MAKE) --no-print-directory html

test: lint test-package test-notebooks

test-package: $(STAMP)
	$(BIN)/python -m pytest tests

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider $(CHAPTERS:.py=.ipynb)

lint: $(STAMP)
	$(BIN)/ruff check d2lcnn tests benchmarks notebooks

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Each source notebooks/homework/hwN-name.py (with solutions and tests) becomes
# build/homework/hwN-name/student/ (hand out) and .../autograder/ (keep private). assign
# fails if a solution or hidden test would leak or if the solution does not score full marks.
homework: $(STAMP)
	@for src in $(HOMEWORK); do \
	  $(BIN)/python -m d2lcnn.grading assign $$src --out build/homework/$$(basename $$src .py) || exit 1; \
	done

clean:
	rm -rf build .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV)
