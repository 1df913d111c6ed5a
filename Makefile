# The two commands of this repository (see README.md).
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup lab test lint
setup:
	@bash scripts/setup.sh

## The main job: validate the lab fleet and show it.
lab: setup
	@bash scripts/lab.sh

## Every test: linters, unit and property tests, and the integration suites.
test: setup
	@bash scripts/test.sh

lint: setup
	@bash scripts/lint.sh
