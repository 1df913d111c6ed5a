#!/usr/bin/env bash
# Every test: linters first (cheap), then pytest over tests/ (unit, property, libvirt, molecule).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/lint.sh
# Extra pytest arguments may be passed through, e.g. `scripts/test.sh -k fleet`.
exec .venv/bin/pytest "$@"
