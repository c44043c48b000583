# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The pinned CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Test-only, in a folder of its own: DeepSpeed writes the ZeRO test fixtures and is their oracle,
# but transformers and accelerate import it whenever it is importable (and it then prints to
# stdout), so it stays off ckpt-gui's own path; only the tests that need it add the folder.
DEEPSPEED_SPEC ?= deepspeed>=0.19,<0.20
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench screenshots templates clean package

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps --upgrade --target $(VENV)/deepspeed-site "$(DEEPSPEED_SPEC)" \
		|| echo "DeepSpeed could not be installed: the ZeRO tests will skip"
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
	$(PY) -m pip install -q -e ".[package]"
	PYTHON=$(PY) packaging/build.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
