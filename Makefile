# The two commands a new user needs: `make demo` and `make test`. Each creates or reuses .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export GEOVISION_HOME ?= $(CURDIR)/.geovision_home

.PHONY: setup demo test ui bench lint clean-demo sshd

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m geovision_assets.demo

# The SSH tests start their own sshd on loopback: Debian's openssh-server, installed if missing.
sshd:
	test -x /usr/sbin/sshd || (apt-get update && apt-get install -y --no-install-recommends openssh-server)

test: setup sshd
	$(VENV)/bin/pytest

ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: setup
	$(PY) -m bench

lint: setup
	$(VENV)/bin/ruff check .

# pixi users' manifest: the same pins as constraints.txt.
pixi.toml: constraints.txt docker/pixi_manifest.py
	$(PYTHON) docker/pixi_manifest.py > pixi.toml

clean-demo:
	rm -rf $(DAGSTER_HOME) $(GEOVISION_HOME)
