#!/usr/bin/env bash
# Prepares this machine for the lab and the tests. Idempotent: every step checks before it acts,
# so a second run takes seconds. Steps live in scripts/setup.d/ and run in name order; a later
# issue adds a step by adding a file there (and its Debian packages to scripts/debian-packages/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export VPSFLEET_ROOT="${here%/scripts}"
for step in "$here"/setup.d/*.sh; do
  echo "setup: $(basename "$step")"
  bash "$step"
done
