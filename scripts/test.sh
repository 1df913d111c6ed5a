#!/usr/bin/env bash
# Every test: linters first (cheap), then pytest over tests/ (unit, property, libvirt, molecule),
# and at the end a table of where the time went (the suite's budget is 40 minutes on a two-core
# machine; CI allows 90).
set -euo pipefail
cd "$(dirname "$0")/.."
timing="$(mktemp /tmp/vpsfleet-timing.XXXXXX)"
trap 'rm -f "$timing"' EXIT
export VPSFLEET_TIMING="$timing"
start=$SECONDS
bash scripts/lint.sh
# The programs the roles install, built from vpsfleet_agents/ (the Molecule scenarios deploy them).
.venv/bin/python -m vpsfleet.agent_build
# Two workers (docs/test-suite.md): Molecule scenarios side by side, the rest in one group. Not in
# pyproject's addopts, which the scenarios' own testinfra runs read too and must stay in order.
# Extra pytest arguments may be passed through, e.g. `scripts/test.sh -k fleet`.
status=0
.venv/bin/pytest -n 2 "$@" || status=$?
printf '{"part": "make test (wall clock)", "seconds": %d}\n' "$((SECONDS - start))" >>"$timing"
.venv/bin/python -m tests.timing_table "$timing"
exit "$status"
