#!/usr/bin/env bash
# The backup tests start their own FTP and database servers on loopback high ports, in temp
# folders (tests/backup/conftest.py). The system instances that the Debian packages of
# scripts/debian-packages/50-backup.txt install are not used: keep them stopped and disabled so
# they hold no port, no socket and no CPU. Idempotent.
set -euo pipefail
for service in proftpd mariadb pure-ftpd; do
  if [[ -d /run/systemd/system ]]; then
    if systemctl list-unit-files "$service.service" 2>/dev/null | grep -q "^$service.service"; then
      if systemctl is-enabled --quiet "$service.service" 2>/dev/null \
        || systemctl is-active --quiet "$service.service" 2>/dev/null; then
        echo "  stopping and disabling the system $service (tests start their own)"
        systemctl disable --now "$service.service" >/dev/null 2>&1 || true
      fi
    fi
  elif [[ -x "/etc/init.d/$service" ]]; then
    if "/etc/init.d/$service" status >/dev/null 2>&1; then
      echo "  stopping the system $service (tests start their own)"
      "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null; then
      update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
  fi
done

# pure-ftpd, the tests' second real FTP server, conflicts with proftpd-core in Debian 12 (both
# provide ftp-server): unpack its package under /opt instead of installing it. Its libraries
# come from scripts/debian-packages/50-backup.txt.
unpacked=/opt/vpsfleet/pure-ftpd
if [[ ! -x /usr/sbin/pure-ftpd && ! -x "$unpacked/usr/sbin/pure-ftpd" ]]; then
  echo "  unpacking pure-ftpd into $unpacked"
  work="$(mktemp -d)"
  chmod 755 "$work"  # apt's download user must write there
  (cd "$work" && apt-get download -q pure-ftpd >/dev/null 2>&1) \
    || { apt-get update -qq && (cd "$work" && apt-get download -q pure-ftpd >/dev/null); }
  mkdir -p "$unpacked"
  dpkg-deb -x "$work"/pure-ftpd_*.deb "$unpacked"
  rm -rf "$work"
fi
echo "  backup test servers: system instances stopped, pure-ftpd available"
