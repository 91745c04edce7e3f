# The two commands a new user needs: `make demo` and `make test`. Each creates or reuses .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The STAC stand-in of the satellite tests and demo: its own environment (see constraints-stac.txt).
STAC_VENV := .venv-stac
STAC_STAMP := $(STAC_VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export GEOVISION_HOME ?= $(CURDIR)/.geovision_home

.PHONY: setup demo test ui bench lint clean-demo sshd chromium stac-venv satellite-demo

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(STAC_STAMP): constraints-stac.txt
	test -x $(STAC_VENV)/bin/python || $(PYTHON) -m venv $(STAC_VENV)
	$(STAC_VENV)/bin/pip install -c constraints-stac.txt stac-fastapi-static==1.0.1
	touch $(STAC_STAMP)

stac-venv: $(STAC_STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m geovision_assets.demo

# The SSH tests start their own sshd on loopback: Debian's openssh-server, installed if missing.
sshd:
	test -x /usr/sbin/sshd || (apt-get update && apt-get install -y --no-install-recommends openssh-server)

# The UI test drives Debian's chromium headless through playwright (which cannot fetch its own).
chromium:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

test: setup sshd chromium $(STAC_STAMP)
	$(VENV)/bin/pytest

ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Loopback stand-ins of the providers plus the UI: turn a satellite sensor on and watch.
satellite-demo: setup $(STAC_STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m geovision_assets.satellite_demo

bench: setup $(STAC_STAMP)
	$(PY) -m bench

lint: setup
	$(VENV)/bin/ruff check .

# pixi users' manifest: the same pins as constraints.txt.
pixi.toml: constraints.txt docker/pixi_manifest.py
	$(PYTHON) docker/pixi_manifest.py > pixi.toml

clean-demo:
	rm -rf $(DAGSTER_HOME) $(GEOVISION_HOME)
