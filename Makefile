# Quick start: `make run` (set up, then start the app) and `make test` (set up, then run lint and tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test lint train loso browser servers docs clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) app.py $(ARGS)

# Headless Chromium for the browser tests, from Debian's packages (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The servers the scale-out tests run (PostgreSQL, Mosquitto, Prometheus's promtool), from Debian's packages. The
# packages' own services are not started (policy-rc.d): each test run starts and stops servers of its own.
servers:
	@test -x /usr/sbin/mosquitto && command -v promtool >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod +x /usr/sbin/policy-rc.d; \
			trap '$$SUDO rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
			postgresql mosquitto prometheus >/dev/null; }

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

test: $(VENV)/.dev browser lint
	$(PY) -m pytest $(ARGS)

DATASETS := ../shared/datasets
FINE_TUNE := --learning-rate 1.5e-4 --epochs 9 --patience 2

# The shipped model in two stages (docs/model-card.md): a two-class base on observations + scenes-dev from random
# weights, then all four sources of ../shared/datasets (train.py's defaults) with three classes, fine-tuned from it.
train: $(VENV)/.runtime
	$(PY) train.py --data $(DATASETS)/observations --scenes $(DATASETS)/scenes-dev --classes with_mask,without_mask \
		--epochs 40 --patience 8 --out runs/base
	$(PY) train.py --init-model runs/base/mask_detector.keras $(FINE_TUNE) $(ARGS)

# Leave-one-source-out: the second stage without chandrikadeb7, then without ilc2021, each scored on all of it
# (4 epochs, as measured in docs/model-card.md).
loso: $(VENV)/.runtime
	for source in chandrikadeb7 ilc2021; do \
		$(PY) train.py --init-model runs/base/mask_detector.keras $(FINE_TUNE) --epochs 4 --leave-out $$source \
			--out runs/loso-$$source || exit 1; done

# docs/configuration.md is generated from the settings models, the app's and train.py's (tests/test_settings.py
# checks it is current).
docs: $(VENV)/.runtime
	{ $(PY) -m maskdetector.settings_docs && $(PY) -m maskdetector.training.settings; } > docs/configuration.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
