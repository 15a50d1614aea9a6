# d2lcnn — every target sets up its own virtualenv (.venv) from pyproject.toml,
# so a fresh clone needs only Python 3.11+ and pip.
#
#   make book    set up, execute every chapter in place, render the HTML book to build/html
#   make test    set up, lint, run the package tests and validate every notebook with nbval
#   make lab     open JupyterLab on the notebooks
#   make bench   time the NumPy layers against torch, training, data parallelism, grading (ratios)
#   make homework  build every assignment: student notebooks + private autograder bundles
#   make mutate  mutation testing of the numerical core and the grader (sampled, ~30 min)
#   make ddp-demo  LeNet-5 on the digits in 2 CPU processes (torchrun, loopback) and in 1

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Editable install in setuptools' "compat" mode: a .pth path entry to this folder, not the
# default mode's import hook, which Python consults only after sys.path; there the clone's
# own folder (named d2lcnn, no __init__.py) in the current directory would win as a
# namespace package and hide the real one. The mode is in the stamp's name: changing it
# reinstalls.
EDITABLE_MODE := compat
STAMP  := $(VENV)/.installed-$(EDITABLE_MODE)
CHAPTERS := $(sort $(wildcard notebooks/[0-9][0-9]-*.py))
HOMEWORK := $(sort $(wildcard instructor/homework/hw[0-9]*-*.py))

.PHONY: all install book execute html test test-package test-notebooks lint lab bench homework mutate ddp-demo clean distclean help

all: test

help:
	@sed -n '2,11p' Makefile

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "d2lcnn needs Python >= 3.11; $(PYTHON) is " + sys.version.split()[0] + " (run: make PYTHON=python3.11 ...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing d2lcnn and its dependencies into $(VENV) with pip (a few minutes the first time)..."
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=$(EDITABLE_MODE)
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

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
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider $(CHAPTERS:.py=.ipynb)

lint: $(STAMP)
	$(BIN)/ruff check d2lcnn tests benchmarks notebooks instructor tools

# JupyterLab on notebooks/. JUPYTER_CONFIG_PATH adds ./jupyter_server_config.py to your own
# Jupyter config: it hides the chapters' .py twins and the generated conf.py from the file
# browser. --allow-root only for root (Docker, cloud VMs), where Jupyter refuses without it.
# More options: make lab LAB_ARGS='--port=8890 --no-browser'.
LAB_ARGS ?=
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Each instructor source instructor/homework/hwN-name.py (with solutions and tests) becomes
# build/homework/hwN-name/student/ (hand out) and .../autograder/ (keep private); the student
# files are also copied to notebooks/homework/hwN-name/, the committed copies the book links
# (tests/grading/test_assignments.py checks they match a fresh build). assign fails if a
# solution or hidden test would leak or if the solution does not score full marks. The wheel
# in build/homework/ is what students install (README, "Homework and grading").
# HOMEWORK_SECRET=path/to/file seeds the hidden cases with your course secret.
homework: $(STAMP)
	@for src in $(HOMEWORK); do \
	  name=$$(basename $$src .py); \
	  $(BIN)/python -m d2lcnn.grading assign $$src --out build/homework/$$name \
	    $(if $(HOMEWORK_SECRET),--secret-file $(HOMEWORK_SECRET)) || exit 1; \
	  mkdir -p notebooks/homework/$$name && cp build/homework/$$name/student/* notebooks/homework/$$name/; \
	done
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w build/homework .

# Not part of make test (too slow). mutmut plants mutants in a copy (mutants/), runs the
# tests of each mutated function, and prints the kill rate per module and the survivors.
# MUTATE_ARGS='--per-module 0' runs every mutant (hours); see tools/mutate.py.
MUTATE_ARGS ?=
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py $(MUTATE_ARGS)

# Data parallelism with PyTorch's own engine: the same script in 2 processes, then in 1.
ddp-demo: $(STAMP)
	GLOO_SOCKET_IFNAME=lo $(BIN)/torchrun --standalone --nproc_per_node=2 benchmarks/ddp_digits.py
	$(BIN)/python benchmarks/ddp_digits.py

clean:
	rm -rf build .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV)
