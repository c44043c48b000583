# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Exact versions of everything installed (pyproject.toml states the ranges).
CONSTRAINTS := constraints.txt
# The torch build, read from constraints.txt (the one place that names it): the CPU
# wheel, installed first, because an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= $(shell grep -E '^torch==' $(CONSTRAINTS))
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(CONSTRAINTS) | cksum | cut -d' ' -f1)

.PHONY: run test lint bench screenshots templates clean package constraints

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install -q -c $(CONSTRAINTS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(PY) -m ckpt_gui $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check ckpt_gui tests benchmarks
	$(PY) -m mypy

test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# Relearn the shipped model templates (ckpt_gui/core/check/templates) after a transformers upgrade.
templates: $(STAMP)
	$(PY) -m ckpt_gui.core.check.templates.ship

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py
	QT_QPA_PLATFORM=offscreen $(PY) scripts/export_screenshots.py
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots_diffgui.py

# Linux bundle + .deb + .tar.zst in dist/, each checked (see packaging/build.sh and
# README.md, "Installing"). SKIP_INSTALL=1 skips installing the .deb on this machine.
package: $(STAMP)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[package]"
	PYTHON=$(PY) packaging/build.sh

# Rewrite constraints.txt from the venv after a deliberate upgrade (or a new dependency
# in pyproject.toml), then commit it; `make` installs exactly these versions.
constraints: $(STAMP)
	$(PY) scripts/freeze_constraints.py > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) build dist *.egg-info
