#!/usr/bin/env bash
# The systemd test image used by Molecule and the lab: built once, rebuilt when its recipe changes.
set -euo pipefail
root="${VPSFLEET_ROOT:?}"
image="$(bash "$root/scripts/build-test-image.sh" 2>/tmp/vpsfleet-test-image.log)" || {
  cat /tmp/vpsfleet-test-image.log >&2
  exit 1
}
echo "  $(tail -n 1 /tmp/vpsfleet-test-image.log) ($image)"
