# Quick start: `make run` (set up, then start the app) and `make test` (set up, then run lint and tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test lint train browser clean

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

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

test: $(VENV)/.dev browser lint
	$(PY) -m pytest $(ARGS)

train: $(VENV)/.runtime
	$(PY) train.py --data ../shared/datasets/observations --scenes ../shared/datasets/scenes-dev --epochs 40 --patience 8 $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
