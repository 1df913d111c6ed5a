# The two commands of this repository (see README.md).
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup lab lab-down test lint
setup:
	@bash scripts/setup.sh

## The main job: the lab fleet as systemd containers at their fixed addresses, configured by
## site.yml over SSH (docs/lab.md).
lab: setup
	@bash scripts/lab.sh

## Removes everything `make lab` made (containers, networks, namespace, lab keys).
lab-down:
	@bash scripts/lab-down.sh

## Every test: linters, unit and property tests, and the integration suites.
test: setup
	@bash scripts/test.sh

lint: setup
	@bash scripts/lint.sh
