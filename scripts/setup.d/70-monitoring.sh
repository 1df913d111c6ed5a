#!/usr/bin/env bash
# Monitoring (issue 14): the Debian package prometheus starts its own service on port 9090 when
# installed on a machine with systemd; this machine runs Prometheus only inside tests (on an
# ephemeral port, with its own data), so the package's service is stopped and disabled.
# Idempotent: does nothing once the service is disabled and stopped (or on a machine without
# systemd, where it was never started).
set -euo pipefail
unit=prometheus.service
if ! command -v systemctl >/dev/null 2>&1; then
  echo "  no systemctl: nothing to stop"
  exit 0
fi
if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
  systemctl disable --quiet "$unit" 2>/dev/null || rm -f /etc/systemd/system/multi-user.target.wants/"$unit"
  echo "  $unit disabled"
fi
# Without a running systemd (containers), disable fails: remove the symlink the package made.
rm -f /etc/systemd/system/multi-user.target.wants/"$unit"
if systemctl is-active --quiet "$unit" 2>/dev/null; then
  systemctl stop "$unit"
  echo "  $unit stopped"
fi
echo "  $unit neither enabled nor running (tests start their own Prometheus)"
